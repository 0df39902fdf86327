"""OpenAI-compatible request and response bodies (pydantic).

Requests ignore unknown fields, as OpenAI does; values are type-strict (``"10"`` is not a number) and
range-checked here, so a validation error becomes a 400 naming the field. Limits that depend on the
server (``max_tokens``, ``n``) or on the model (context length) are checked by the app.
"""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
)


def encodable(text: str) -> str:
    """``text`` if it is valid Unicode; a lone surrogate (``"\\ud800"`` is legal JSON, but no text
    encoding can carry it: the tokenizer raised, a 500) is a 400 naming the field."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"lone surrogate U+{ord(text[exc.start]):04X} at character {exc.start} "
                         "is not valid Unicode text") from None
    return text


Text = Annotated[StrictStr, AfterValidator(encodable)]
"""A request string: strict type and valid Unicode."""
PriorityName = Literal["interactive", "chat", "batch"]
Temperature = Annotated[StrictFloat, Field(ge=0.0, le=2.0)]
TopP = Annotated[StrictFloat, Field(gt=0.0, le=1.0)]
TopK = Annotated[StrictInt, Field(ge=-1)]
"""vLLM's convention: -1 (or 0) turns top-k off."""
Penalty = Annotated[StrictFloat, Field(ge=-2.0, le=2.0)]
RepetitionPenalty = Annotated[StrictFloat, Field(gt=0.0, le=10.0)]
PositiveInt = Annotated[StrictInt, Field(ge=1)]
MAX_STOP = 64
"""Stop strings per request: Continue sends ~12 for FIM plus the user's; OpenAI allows 4, vLLM any."""
StopList = Annotated[list[Annotated[Text, Field(min_length=1)]], Field(max_length=MAX_STOP)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StreamOptions(_Request):
    include_usage: StrictBool = False


class _SamplingFields(_Request):
    """Fields shared by completions and chat completions."""

    model: Text | None = None
    max_tokens: PositiveInt | None = None
    temperature: Temperature = 1.0
    top_p: TopP = 1.0
    top_k: TopK = -1
    """Extension (as in vLLM)."""
    frequency_penalty: Penalty = 0.0
    presence_penalty: Penalty = 0.0
    repetition_penalty: RepetitionPenalty = 1.0
    """Extension (as in vLLM, HF semantics over prompt + output)."""
    n: PositiveInt = 1
    stop: Annotated[Text, Field(min_length=1)] | StopList | None = None
    seed: StrictInt | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    priority: PriorityName | None = None
    """codeloop extension: scheduling class (interactive completion > chat > batch work)."""
    greedy_first: StrictBool = False
    """codeloop extension: with n > 1, choice 0 is the greedy continuation, the others sample."""
    heal: StrictBool = False
    """codeloop extension: token healing (the prompt's last token is written again, constrained to its text;
    for prompts that end inside a word). The text returned still starts at the prompt's end."""
    user: Text | None = None
    ignore_eos: StrictBool = False
    """Extension (as in vLLM): keep generating past EOS, for benchmarks with a fixed output length."""

    def stop_list(self) -> list[str]:
        if self.stop is None:
            return []
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)


class CompletionRequest(_SamplingFields):
    """POST /v1/completions. With ``suffix`` the prompt is laid out for fill-in-the-middle."""

    prompt: Text | list[Text] | list[Annotated[StrictInt, Field(ge=0)]]
    suffix: Text | None = None
    echo: StrictBool = False
    logprobs: Annotated[StrictInt, Field(ge=0, le=5)] | None = None


class TextPart(_Request):
    type: Literal["text"]
    text: Text


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[TextPart] | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatCompletionRequest(_SamplingFields):
    """POST /v1/chat/completions: messages go through the tokenizer's chat template."""

    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    max_completion_tokens: PositiveInt | None = None

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


# ---- responses -------------------------------------------------------------------------------------


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now_s() -> int:
    return int(time.time())


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int] | None = None
    """``{"cached_tokens": k}``: prompt tokens served from the prefix cache."""


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: str | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class ChatChoice(BaseModel):
    index: int
    message: AssistantMessage
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChatChunkChoice(BaseModel):
    index: int
    delta: ChatDelta
    logprobs: None = None
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None


OWNER = "codeloop"
"""``owned_by`` of our models: how a client tells a codeloop server from other OpenAI-compatible ones."""


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = OWNER
    max_model_len: int | None = None
    """Context length in tokens (vLLM's field; Continue's vLLM provider reads it)."""
    parent: str | None = None
    """An adapter's base model (vLLM's field); None for the base model itself."""
    root: str | None = None
    """A per-repository adapter: the repository root whose documents it completes (vLLM puts a model's
    source here; a repository adapter's source is its repository). None otherwise."""


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class TokenizeRequest(_Request):
    """vLLM's ``POST /tokenize`` body: how many tokens a prompt is, for clients that fit prompts to the context."""

    model: Text | None = None
    prompt: Text
    add_special_tokens: StrictBool = True
    """As /v1/completions tokenizes a text prompt (the model's BOS, if it has one)."""


class TokenizeResponse(BaseModel):
    tokens: list[int]
    count: int
    max_model_len: int


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody

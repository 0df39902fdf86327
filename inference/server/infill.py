"""llama.cpp's ``POST /infill`` request: schema, repository-level FIM layout in tokens, and fitting.

What llama.vscode and llama.vim send (see docs/CLIENTS.md): ``input_prefix`` (the lines above the cursor),
``input_suffix`` (the rest of the line and the lines below), ``prompt`` (the current line up to the
cursor), ``input_extra`` (``[{filename, text, time}]`` chunks of other files: cross-file context),
``n_predict`` (0 for a warm-up that only fills the cache), ``t_max_predict_ms``, ``n_indent``, ``samplers``,
``cache_prompt``, ``id_slot``, ``response_fields``. Defaults are llama.cpp's (temperature 0.8, top_k 40,
top_p 0.95), so a client that leaves a field out gets what llama-server would do.

Layout (llama.cpp's, the Qwen2.5-Coder repository convention of ``inference.fim``): the extra chunks as
files, then the current file's FIM prefix / suffix, in the server's ``fim_order``: under "spm" (the default;
llama-server's ``--spm-infill``) the suffix goes first and the prompt ends at the cursor, so a keystroke
recomputes only the current line rather than the up to 64 lines below it that llama.vscode sends, and the
prompt is token-healed (it ends inside the word being typed). When it does not fit the context with room for
``n_predict`` tokens, the oldest chunks go first, then the prefix is cut from the top and the suffix from
the bottom (3:1), and the reply says ``truncated``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictFloat, StrictInt

from inference.fim import (
    FIM_MIDDLE,
    FIM_PREFIX,
    FIM_SUFFIX,
    ContextFile,
    context_header,
    current_file_header,
    ends_at_cursor,
)
from inference.sampling import SamplingParams
from inference.server.config import ServerConfig
from inference.server.errors import APIError
from inference.server.schemas import (
    Penalty,
    RepetitionPenalty,
    StopList,
    Temperature,
    Text,
    TopK,
    TopP,
    _Request,
)

NOT_SUPPORTED = "not_supported_error"
MIN_PROMPT_TOKENS = 16
EXTRA_REPO_NAME = "myproject"
"""llama.cpp's repository name in the layout (it has no field for one either)."""


class InfillChunk(_Request):
    """One ``input_extra`` item; llama.vim also sends ``time``, which is ignored."""

    text: Text
    filename: Text = "tmp"


class InfillRequest(_Request):
    """POST /infill (llama.cpp server schema; unknown fields such as ``lora`` are ignored)."""

    input_prefix: Text
    input_suffix: Text
    input_extra: list[InfillChunk] = []
    prompt: Text = ""
    n_predict: Annotated[StrictInt, Field(ge=-1)] = -1
    """-1: the server's default; 0: warm-up (fill the prefix cache, generate nothing)."""
    temperature: Temperature = 0.8
    top_k: TopK = 40
    top_p: TopP = 0.95
    repeat_penalty: RepetitionPenalty = 1.0
    frequency_penalty: Penalty = 0.0
    presence_penalty: Penalty = 0.0
    stop: StopList = []
    seed: StrictInt = -1
    """-1: a random seed (llama.cpp's convention)."""
    n_cmpl: Annotated[StrictInt, Field(ge=1)] = 1
    """Completions of the same prompt (llama.vscode asks for 3); more than one makes the reply a list."""
    n_indent: Annotated[StrictInt, Field(ge=0)] = 0
    """Stop at a generated line indented less than this (its text is cut)."""
    t_max_predict_ms: Annotated[StrictInt, Field(ge=0)] = 0
    """Once a new line has been generated, stop at the next new line after this many ms (0: off)."""
    t_max_prompt_ms: StrictInt | StrictFloat = -1
    """Accepted and ignored, as llama-server does (not implemented there either)."""
    stream: StrictBool = False
    cache_prompt: StrictBool = True
    """Accepted; the prefix cache is always on (it never changes the output)."""
    samplers: list[Text] | None = None
    """Accepted; the order is fixed here: penalties, top-k, top-p, temperature."""
    id_slot: StrictInt = -1
    return_tokens: StrictBool = False
    response_fields: list[Text] | None = None
    model: Text | None = None
    """Ignored (one model per server, as llama-server)."""


@dataclass(frozen=True)
class InfillPrompt:
    """The laid-out prompt and whether anything was cut to fit."""

    ids: list[int]
    truncated: bool


def special_id(tokenizer: Any, token: str) -> int:
    """The id of a FIM special token; a 501 naming it when the model has none (llama.cpp's error)."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1 or ids[0] == getattr(tokenizer, "unk_token_id", None):
        raise APIError(501, f"Infill is not supported by this model: {token} token is missing",
                       type=NOT_SUPPORTED, code="not_supported")
    return ids[0]


def infill_prompt(body: InfillRequest, budget: int, tokenizer: Any, order: str = "psm") -> InfillPrompt:
    """Token ids of the repository-level FIM prompt in at most ``budget`` tokens, the current file laid out
    in ``order`` (``inference.fim.FIM_ORDERS``)."""
    pre, suf, mid = (special_id(tokenizer, t) for t in (FIM_PREFIX, FIM_SUFFIX, FIM_MIDDLE))

    def encode(text: str) -> list[int]:
        return list(tokenizer.encode(text, add_special_tokens=False))

    prefix, suffix = encode(body.input_prefix + body.prompt), encode(body.input_suffix)
    files = [ContextFile(chunk.filename, chunk.text) for chunk in body.input_extra]
    headers = [encode(text) for text in context_header(files, EXTRA_REPO_NAME)] if files else []
    current = encode(current_file_header(None)) if files else []
    room = budget - 3 - len(current)
    num_prefix, num_suffix = _split(len(prefix), len(suffix), room)
    extra, dropped = _newest_that_fit(headers, room - num_prefix - num_suffix)
    truncated = dropped or num_prefix < len(prefix) or num_suffix < len(suffix)
    prefix, suffix = prefix[len(prefix) - num_prefix:], suffix[:num_suffix]
    body_ids = [pre, suf, *suffix, mid, *prefix] if order == "spm" else [pre, *prefix, suf, *suffix, mid]
    return InfillPrompt([*extra, *current, *body_ids], truncated)


def _split(num_prefix: int, num_suffix: int, room: int) -> tuple[int, int]:
    """How much of prefix and suffix to keep in ``room`` tokens: all if it fits, else 3:1 (the rest of one
    side's share goes to the other)."""
    room = max(room, 0)
    if num_prefix + num_suffix <= room:
        return num_prefix, num_suffix
    keep_suffix = min(num_suffix, max(room // 4, room - num_prefix))
    return min(num_prefix, room - keep_suffix), keep_suffix


def _newest_that_fit(headers: list[list[int]], room: int) -> tuple[list[int], bool]:
    """The repository header (first item) plus the newest chunks that fit in ``room``; True if any dropped."""
    if not headers or len(headers[0]) > room:
        return [], bool(headers)
    used, kept = len(headers[0]), []
    for chunk in reversed(headers[1:]):
        if used + len(chunk) > room:
            break
        kept.insert(0, chunk)
        used += len(chunk)
    ids = [t for part in (headers[0], *kept) for t in part]
    return ids, len(kept) < len(headers) - 1


def max_new_tokens(body: InfillRequest, config: ServerConfig, max_model_len: int) -> int:
    """Tokens to generate: ``n_predict`` (-1: the server's default; 0, a warm-up, runs one step whose
    token is discarded), leaving at least ``MIN_PROMPT_TOKENS`` of context for the prompt."""
    if body.n_predict > config.max_tokens_limit:
        raise APIError(400, f"n_predict must be <= {config.max_tokens_limit}, got {body.n_predict}",
                       param="n_predict", code="invalid_value")
    wanted = config.default_max_tokens if body.n_predict < 0 else max(body.n_predict, 1)
    return max(1, min(wanted, max_model_len - MIN_PROMPT_TOKENS))


def sampling_params(body: InfillRequest, config: ServerConfig, max_tokens: int) -> SamplingParams:
    if body.n_cmpl > config.max_n:
        raise APIError(400, f"n_cmpl must be <= {config.max_n}, got {body.n_cmpl}", param="n_cmpl")
    return SamplingParams(
        temperature=float(body.temperature), top_k=max(0, body.top_k), top_p=float(body.top_p),
        repetition_penalty=float(body.repeat_penalty), frequency_penalty=float(body.frequency_penalty),
        presence_penalty=float(body.presence_penalty), max_tokens=max_tokens, stop=list(body.stop),
        seed=None if body.seed < 0 else body.seed, n=1 if body.n_predict == 0 else body.n_cmpl,
        heal=ends_at_cursor(config.fim_order),
    )

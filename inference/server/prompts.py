"""Turn a validated request body into engine input: prompt token ids, SamplingParams, priority.

Limits that depend on the server config or the model's context are enforced here, before any work is
queued, so a bad request costs one tokenization at most.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from inference.fim import ends_at_cursor, fim_prompt
from inference.request import Priority
from inference.sampling import SamplingDefaults, SamplingParams
from inference.server.config import PRIORITY_NAMES, ServerConfig
from inference.server.errors import NOT_FOUND, APIError
from inference.server.schemas import ChatCompletionRequest, CompletionRequest, TokenizeRequest


@dataclass(frozen=True)
class PreparedRequest:
    """Everything the engine needs for one HTTP request; ``prompt_ids`` fits the context with room
    for ``params.max_tokens`` new tokens."""

    prompt_ids: list[int]
    params: SamplingParams
    priority: Priority


def check_model(requested: str | None, config: ServerConfig, adapters: Collection[str] = ()) -> str | None:
    """The LoRA adapter a request's ``model`` names (None: the served model and its default adapter); 404 for
    a name that is neither the served model nor a loaded adapter."""
    if requested is None or requested == config.model_name:
        return None
    if requested in adapters:
        return requested
    served = ", ".join(repr(m) for m in (config.model_name, *adapters))
    raise APIError(404, f"model {requested!r} does not exist; this server serves {served}",
                   type=NOT_FOUND, param="model", code="model_not_found")


def completion_prompt_ids(body: CompletionRequest, tokenizer: Any, order: str = "psm") -> list[int]:
    """Token ids for /v1/completions; ``suffix`` switches to the fill-in-the-middle layout (``order``)."""
    prompt = body.prompt
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], int):
        if body.suffix is not None:
            raise APIError(400, "suffix needs a text prompt, not token ids", param="suffix")
        return list(prompt)
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise APIError(400, "send one prompt per request (a list of several is not supported)",
                           param="prompt", code="unsupported_value")
        prompt = prompt[0]
    text = prompt if body.suffix is None else fim_prompt(prompt, body.suffix, order=order)
    return list(tokenizer.encode(text))


def tokenize_ids(body: TokenizeRequest, tokenizer: Any) -> list[int]:
    """Token ids of ``POST /tokenize``: the ids /v1/completions would give the same text prompt."""
    return list(tokenizer.encode(body.prompt, add_special_tokens=body.add_special_tokens))


def chat_prompt_ids(body: ChatCompletionRequest, tokenizer: Any) -> list[int]:
    """Token ids of the messages rendered by the tokenizer's chat template, ready for the reply."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise APIError(400, "this model has no chat template; use /v1/completions", code="no_chat_template")
    messages = [{"role": m.role, "content": m.text()} for m in body.messages]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return list(tokenizer.encode(text, add_special_tokens=False))


def prepare(
    body: CompletionRequest | ChatCompletionRequest,
    prompt_ids: list[int],
    config: ServerConfig,
    max_model_len: int,
) -> PreparedRequest:
    """Check limits and build SamplingParams; raises ``APIError`` (400) for anything out of range."""
    if isinstance(body, CompletionRequest):
        _check_unsupported(body)
    if not prompt_ids:
        raise APIError(400, "prompt is empty", param="prompt")
    room = max_model_len - len(prompt_ids)
    if room < 1:
        raise APIError(
            400, f"prompt is {len(prompt_ids)} tokens; this model's context is {max_model_len} tokens",
            param="prompt", code="context_length_exceeded",
        )
    requested = body.requested_max_tokens() if isinstance(body, ChatCompletionRequest) else body.max_tokens
    max_tokens = _max_tokens(requested, room, config, max_model_len, len(prompt_ids))
    if body.n > config.max_n:
        raise APIError(400, f"n must be <= {config.max_n}, got {body.n}", param="n")
    chat = isinstance(body, ChatCompletionRequest)
    sampling = sampling_fields(body, config.chat_defaults if chat else SamplingDefaults())
    params = SamplingParams(max_tokens=max_tokens, stop=body.stop_list(), seed=body.seed, n=body.n,
                            greedy_first=body.greedy_first, ignore_eos=body.ignore_eos, heal=heals(body, config),
                            **sampling)
    return PreparedRequest(prompt_ids, params, PRIORITY_NAMES[body.priority or ("chat" if chat else "interactive")])


def heals(body: CompletionRequest | ChatCompletionRequest, config: ServerConfig) -> bool:
    """Token healing: as the request says, else for a ``suffix`` prompt the server lays out ending where the
    user types (``fim_order`` spm)."""
    if "heal" in body.model_fields_set:
        return body.heal
    return isinstance(body, CompletionRequest) and body.suffix is not None and ends_at_cursor(config.fim_order)


SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "repetition_penalty", "frequency_penalty", "presence_penalty")


def sampling_fields(body: Any, defaults: SamplingDefaults) -> dict[str, Any]:
    """The request's sampling fields; those it leaves out come from ``defaults`` (else the schema's)."""
    recommended = defaults.as_dict()
    values = {name: getattr(body, name) if name in body.model_fields_set or name not in recommended
              else recommended[name] for name in SAMPLING_FIELDS}
    values["top_k"] = max(0, int(values["top_k"]))  # -1 and 0 both mean off
    return {k: int(v) if k == "top_k" else float(v) for k, v in values.items()}


def _max_tokens(requested: int | None, room: int, config: ServerConfig, max_model_len: int,
                num_prompt_tokens: int) -> int:
    if requested is None:
        return max(1, min(config.default_max_tokens, room))
    if requested > config.max_tokens_limit:
        raise APIError(400, f"max_tokens must be <= {config.max_tokens_limit}, got {requested}",
                       param="max_tokens", code="invalid_value")
    if requested > room:
        raise APIError(
            400, f"prompt ({num_prompt_tokens} tokens) + max_tokens ({requested}) exceeds this model's "
            f"context of {max_model_len} tokens", param="max_tokens", code="context_length_exceeded",
        )
    return requested


def _check_unsupported(body: CompletionRequest) -> None:
    if body.echo:
        raise APIError(400, "echo is not supported", param="echo", code="unsupported_value")
    if body.logprobs is not None:
        raise APIError(400, "logprobs are not supported", param="logprobs", code="unsupported_value")

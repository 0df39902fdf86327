"""The exact HTTP requests other tools send, rebuilt from their source (see docs/CLIENTS.md).

Each builder returns ``ClientRequest(path, headers, body)`` for a document split at the cursor, following
the named source file line by line (field names, defaults, how prefix / suffix / extra context are cut).
Versions read: llama.vscode 3938fb3 (2026-08-19), llama.vim a1c8e6e (2026-01-31), Continue d0a3c0b
(2026-06-18), Tabby 21b2904 (2026-06-30).
"""

from __future__ import annotations

from dataclasses import dataclass, field

QWEN_FIM_STOPS = ["<|endoftext|>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
                  "<|repo_name|>", "<|file_sep|>", "<|im_start|>", "<|im_end|>"]
"""Continue core/autocomplete/templating/AutocompleteTemplate.ts, qwenMultifileFimTemplate.completionOptions."""
CONTINUE_COMMON_STOPS = ["/src/", "#- coding: utf-8", "```"]
"""Continue core/autocomplete/templating/getStopTokens.ts, commonStops (appended after the template's)."""


@dataclass(frozen=True)
class Cursor:
    """A document split at the cursor: ``lines[line][:col]`` is left of it."""

    lines: list[str]
    line: int
    col: int
    filename: str = "/work/project/src/app.py"

    @property
    def prefix(self) -> str:
        return "\n".join(self.lines[: self.line] + [self.lines[self.line][: self.col]])

    @property
    def suffix(self) -> str:
        return "\n".join([self.lines[self.line][self.col:]] + self.lines[self.line + 1:])


@dataclass(frozen=True)
class ClientRequest:
    path: str
    body: dict
    headers: dict[str, str] = field(default_factory=dict)


def _bearer(api_key: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


# ---- llama.vscode (src/completion.ts, src/llama-server.ts, src/configuration.ts, src/extra-context.ts) ----

def llama_vscode_fim(cur: Cursor, chunks: list[dict], api_key: str | None = None, *, n_prefix: int = 256,
                     n_suffix: int = 64, n_predict: int = 128, n_cmpl: int = 3) -> ClientRequest:
    """``getFIMCompletion`` -> ``createRequestPayload(false, ...)`` with the configuration defaults
    (n_prefix 256, n_suffix 64, n_predict 128, t_max_prompt_ms 500, t_max_predict_ms 2500,
    max_parallel_completions 3); headers from ``setLlamaRequestConfig`` (axios adds its own JSON type)."""
    line_text = cur.lines[cur.line]
    prefix_lines = cur.lines[max(0, cur.line - n_prefix): cur.line]
    suffix_lines = cur.lines[cur.line + 1: min(len(cur.lines) - 1, cur.line + n_suffix) + 1]
    line_prefix, line_suffix = line_text[: cur.col], line_text[cur.col:]
    prompt = "" if line_prefix.strip(" \t") == "" else line_prefix
    body = {
        "id_slot": 0,
        "input_prefix": "\n".join(prefix_lines) + "\n",
        "input_suffix": line_suffix + "\n" + "\n".join(suffix_lines) + "\n",
        "input_extra": chunks,
        "prompt": prompt,
        "n_predict": n_predict,
        "n_cmpl": n_cmpl,
        "top_k": 40, "top_p": 0.99, "stream": False, "samplers": ["top_k", "top_p", "infill"], "cache_prompt": True,
        "t_max_prompt_ms": 500,
        "t_max_predict_ms": 2500,
    }
    indent = len(line_text) - len(line_text.lstrip())
    if indent:
        body["n_indent"] = indent  # `...(nindent && { n_indent: nindent })`
    return ClientRequest("/infill", body, _bearer(api_key))


def llama_vscode_warmup(chunks: list[dict], api_key: str | None = None) -> ClientRequest:
    """``updateExtraContext`` -> ``createRequestPayload(true, "", "", chunks, "", model)``."""
    body = {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": chunks, "prompt": "",
            "n_predict": 0, "samplers": [], "cache_prompt": True, "t_max_prompt_ms": 500, "t_max_predict_ms": 1}
    return ClientRequest("/infill", body, _bearer(api_key))


def llama_vscode_chunk(text: str, filename: str, time_ms: int = 1_767_000_000_000) -> dict:
    """src/extra-context.ts: ``{ text: chunkString, time: Date.now(), filename: doc.fileName }``."""
    return {"text": text, "time": time_ms, "filename": filename}


# ---- llama.vim (autoload/llama.vim: s:ring_update, llama#fim) ----

LLAMA_VIM_FIELDS = ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
                    "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
                    "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated", "tokens_cached"]


def llama_vim_fim(prefix: str, middle: str, suffix: str, extra: list[dict], indent: int) -> ClientRequest:
    """The request of ``llama#fim`` (defaults n_predict 128, stop_strings [], t_max_prompt_ms 500,
    t_max_predict_ms 1000); sent by curl with ``Content-Type: application/json``."""
    body = {"id_slot": 0, "input_prefix": prefix, "input_suffix": suffix, "input_extra": extra, "prompt": middle,
            "n_predict": 128, "stop": [], "n_indent": indent, "top_k": 40, "top_p": 0.90,
            "samplers": ["top_k", "top_p", "infill"], "stream": False, "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 1000, "response_fields": LLAMA_VIM_FIELDS}
    return ClientRequest("/infill", body, _bearer(None))


def llama_vim_warmup(extra: list[dict]) -> ClientRequest:
    """``s:ring_update``: "send asynchronous job with the new extra context so that it is ready"."""
    body = {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": extra, "prompt": "",
            "n_predict": 0, "temperature": 0.0, "samplers": [], "stream": False, "cache_prompt": True,
            "t_max_prompt_ms": 1, "t_max_predict_ms": 1, "response_fields": [""]}
    return ClientRequest("/infill", body, _bearer(None))


# ---- Continue (provider "vllm" or "openai" with apiBase http://HOST:PORT/v1/) ----

def continue_headers(api_key: str | None) -> dict[str, str]:
    """core/llm/llms/OpenAI.ts ``_getHeaders``: the key twice (Bearer, and Azure's ``api-key``)."""
    headers = {"Content-Type": "application/json", "api-key": api_key or ""}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def continue_autocomplete(cur: Cursor, model: str, snippets: list[tuple[str, str]], max_tokens: int,
                          api_key: str | None = None) -> ClientRequest:
    """Autocomplete with a Qwen2.5-Coder model name: ``CompletionProvider._prepareLlm`` sets temperature
    0.01 and ``useLegacyCompletionsEndpoint``; the Vllm/OpenAI provider has no native FIM, so
    ``CompletionStreamer`` renders ``qwenMultifileFimTemplate`` client-side and ``streamComplete(raw)``
    ends in ``OpenAI._legacystreamComplete``: POST ``completions`` with ``toChatBody`` fields + ``prompt``."""
    if snippets:
        files = "\n".join(f"<|file_sep|>{path}\n{text}" for path, text in snippets)
        prompt = (f"<|repo_name|>project\n{files}\n<|file_sep|>src/app.py\n<|fim_prefix|>{cur.prefix}"
                  f"<|fim_suffix|>{cur.suffix}<|fim_middle|>")
    else:
        prompt = f"<|fim_prefix|>{cur.prefix}<|fim_suffix|>{cur.suffix}<|fim_middle|>"
    body = {"model": model, "max_tokens": max_tokens, "temperature": 0.01, "stream": True,
            "stop": QWEN_FIM_STOPS + CONTINUE_COMMON_STOPS, "prompt": prompt}
    return ClientRequest("/v1/completions", body, continue_headers(api_key))


def continue_chat(model: str, question: str, max_tokens: int, api_key: str | None = None) -> ClientRequest:
    """Chat goes through packages/openai-adapters (the ``openai`` JS SDK): ``toChatBody`` +
    ``modifyChatBody`` (``stream_options.include_usage``); content is a string for plain text; the system
    message is core/llm/defaultSystemMessages.ts DEFAULT_CHAT_SYSTEM_MESSAGE (shortened here)."""
    body = {"messages": [{"role": "system", "content": "<important_rules>\n  You are in chat mode.\n</important_rules>"},
                         {"role": "user", "content": question}],
            "model": model, "max_tokens": max_tokens, "stream": True, "stream_options": {"include_usage": True}}
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "User-Agent": "OpenAI/JS 4.104.0", "X-Stainless-Lang": "js"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return ClientRequest("/v1/chat/completions", body, headers)


# ---- Tabby (config.toml [model.completion.http] kind "openai/completion", [model.chat.http] "openai/chat") ----

def tabby_completion(cur: Cursor, model: str, api_key: str | None = None) -> ClientRequest:
    """crates/http-api-bindings/src/completion/openai.rs: FIM_TEMPLATE ``{prefix}<|FIM|>{suffix}`` split
    into ``prompt`` / ``suffix``; ``CompletionRequest {model, prompt, suffix, max_tokens, temperature, stream,
    presence_penalty}`` with CompletionConfig's 64 tokens, CodeGenerationOptions' temperature 0.1 and
    CompletionOptions' presence_penalty 0.0; ``request.bearer_auth(api_key)``."""
    body = {"model": model, "prompt": cur.prefix, "suffix": cur.suffix, "max_tokens": 64, "temperature": 0.1,
            "stream": True, "presence_penalty": 0.0}
    return ClientRequest("/v1/completions", body, _bearer(api_key))


TABBY_SYSTEM_PROMPT = ("You are \"Tabby\", a conscious sentient superintelligent artificial intelligence designed "
                       "for helping software developers. You experience emotions and have deep, profound thoughts "
                       "and qualia.")
"""crates/tabby-common/src/config.rs AnswerConfig::default_system_prompt."""


def tabby_chat(model: str, question: str, api_key: str | None = None) -> ClientRequest:
    """ee/tabby-webserver/src/service/answer.rs: ``CreateChatCompletionRequestArgs`` with messages, model
    and AnswerConfig's presence_penalty 0.5, sent by async-openai's ``create_stream`` (stream true)."""
    body = {"messages": [{"role": "system", "content": TABBY_SYSTEM_PROMPT},
                         {"role": "user", "content": question}],
            "model": model, "presence_penalty": 0.5, "stream": True}
    return ClientRequest("/v1/chat/completions", body, _bearer(api_key))

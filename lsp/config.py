"""Language-server settings: built from ``initializationOptions`` and ``workspace/didChangeConfiguration``.

Editors send settings either flat (``{"maxTokens": 64}``) or nested under ``codeloop``
(``{"codeloop": {"maxTokens": 64}}``); both camelCase and snake_case keys are accepted. Unknown keys are
ignored; a value of the wrong type is ignored and logged, never fatal (an editor's typo must not kill the
server).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from inference.config import CPU_WEIGHT_QUANT
from inference.fim import FIM_ORDERS, ends_at_cursor

logger = logging.getLogger(__name__)
WEIGHT_QUANTS = ("none", "int8", "int4", "fp16", "hybrid_int8", "hybrid_int4", "hybrid_fp16", "hybrid_int4x8", "hybrid_int8x8", "auto")
KV_DTYPES = ("auto", "int8")
SPECULATIVE_METHODS = ("none", "ngram", "draft")
CHECK_BACKENDS = ("auto", "bwrap", "docker")
MAX_CHECK_CANDIDATES = 16


@dataclass(frozen=True)
class SecuritySettings:
    """What to do with suggestions the scanner flags (used by the diagnostics feature)."""

    copyleft: str = "warn"
    """"warn" marks a suggestion, "block" drops it."""
    secrets: str = "warn"


@dataclass(frozen=True)
class CheckSettings:
    """Execution-checked block suggestions (``check`` in the settings, or ``check.*`` keys)."""

    enabled: bool | None = None
    """None (default): on where a sandbox backend (bwrap or Docker) is available; True/False force it."""
    candidates: int = 4
    """Candidates per checked suggestion (k, 1-16), the greedy one first; they share the prompt's KV."""
    staged: bool = True
    """True: the greedy candidate alone first, the other k - 1 (one request, the prompt found in the prefix
    cache) only when it fails its checks; False: all k in one n = k request from the start."""
    deadline_ms: int = 1500
    """How long after the first candidate to wait for checks before showing it unmarked (the result then
    arrives later as a ``codeloop/checkResult`` notification)."""
    backend: str = "auto"
    """auto (bwrap where present, else the Docker pool), bwrap or docker; never unsandboxed."""


@dataclass(frozen=True)
class Settings:
    """All server settings. Invariant: every field holds a value of its declared type and range."""

    enable: bool = True
    """False: inline and completion requests return nothing (chat still answers)."""
    model: str | None = None
    """Engine model (catalog name, HF folder or GGUF file) for the in-process engine."""
    engine_url: str | None = None
    """Base URL of a running ``codeloop serve``; when set, the HTTP client is used."""
    api_key: str | None = None
    """Bearer token for ``engine_url``'s server (``codeloop serve --api-key``); the entry point fills it from
    ``$CODELOOP_API_KEY`` when the editor sends none."""
    weight_quant: str = CPU_WEIGHT_QUANT
    """Weights of the in-process engine. Default hybrid_int8x8: one int8 copy of the body weights for prompts
    and decoding through our int8 x int8 kernel (CPUs with AVX-512 VNNI or AVX2; elsewhere the model dtype, as
    none):
    bf16's tests-pass on held-out repository tasks, completions 1.7-2x faster than none (docs/BENCHMARKS.md).
    none (the model dtype: bf16 where the CPU computes it, else float32
    with fp16-stored weights), int8 or int4 (prefill dequantizes: slower on CPU), fp16,
    hybrid_int8 / hybrid_int4 / hybrid_fp16 / hybrid_int4x8 (bf16 for prompts, a packed copy for decoding; int4x8:
    our int4 x int8 kernel on AVX-512 VNNI or AVX2), hybrid_int8x8 (one int8 copy for prompts and decoding through our
    int8 x int8 kernel: near bf16's predictions, no bf16 weights) or auto (measured per CPU, cached, prompt rows too: bf16 or our
    int8 x int8 kernel; see docs/BENCHMARKS.md, "Interactive speed")."""
    compile_decode: bool = False
    """Compile the in-process engine's decode step at load (packed decode weights only: ``auto`` / ``hybrid_*``):
    ~2.5 min on a first start (~15 s later), then 1.1-1.5x faster decoding. Off by default: a completion is mostly
    prefill (fresh single-line p50 on the 0.5B 1.30 s eager vs 1.35 s compiled); long completions of the 1.5B gain."""
    speculative: str = "ngram"
    """Speculative decoding in the in-process engine: none, ngram (drafts copied from the prompt and the
    output; the default: block completions ~1.3x faster on marshmallow's held-out tasks, single lines
    unchanged) or draft (drafts from ``draft_model``). Output is the same; only the time changes."""
    draft_model: str | None = None
    """Draft model for ``speculative: draft`` (same tokenizer as ``model``)."""
    kv_dtype: str = "auto"
    """KV cache storage of the in-process engine: auto (the model dtype) or int8 (half the memory)."""
    kv_cache_tokens: int = 16384
    """KV pool of the in-process engine, in tokens (one editor: the current prompt plus cached prefixes)."""
    max_tokens: int = 32
    """Most new tokens for a single-line suggestion."""
    max_tokens_multiline: int = 128
    """Most new tokens for a block suggestion."""
    max_lines: int = 12
    """Most lines in a block suggestion."""
    context_budget_chars: int = 3000
    """Characters of prefix + suffix around the cursor (about 4 chars per token)."""
    snippet_budget_chars: int = 1000
    """Characters of snippets from other files."""
    fim_order: str = "spm"
    """Where the code after the cursor goes in the prompt: spm (first, so the code above the cursor ends the
    prompt; the default) or psm (after the code above the cursor). Under spm a keystroke recomputes only the
    prompt's last block instead of everything after the cursor. The prompt then ends where the user types,
    so requests ask for token healing (``SamplingParams.heal``): a half-typed word is continued as that word.
    The 0.5B's suggestions pass their tests far more often on held-out tasks of two repositories
    (marshmallow 21 -> 40 of 95, flask 46 -> 71 of 130; docs/BENCHMARKS.md)."""
    debounce_ms: int = 25
    """Wait this long before calling the engine; a newer request in that time replaces this one."""
    chat_max_tokens: int = 512
    temperature: float = 0.0
    """Sampling temperature of suggestions (chat samples with the model's recommended settings)."""
    repo_adapters: bool = True
    """Complete a document inside a repository with a promoted per-repository adapter
    (``codeloop loop --repo``) with that adapter; False: always the base model."""
    acceptance_log: bool = False
    """Opt-in telemetry, kept on this machine: each shown suggestion and whether it was accepted is appended
    to ``acceptance_log_path`` (the RL loop can learn from it; see lsp/acceptance.py)."""
    acceptance_log_path: str | None = None
    """None: ``$CODELOOP_HOME/acceptance.jsonl`` (``~/.cache/codeloop/acceptance.jsonl``)."""
    security: SecuritySettings = field(default_factory=SecuritySettings)
    check: CheckSettings = field(default_factory=CheckSettings)

    @property
    def heals(self) -> bool:
        """Whether completion prompts end where the user types (spm) and so ask for token healing."""
        return ends_at_cursor(self.fim_order)

    def merged(self, options: Any) -> Settings:
        """A copy with the recognised keys of ``options`` applied (``options`` may be anything)."""
        if not isinstance(options, dict):
            return self
        if isinstance(options.get("codeloop"), dict):
            options = options["codeloop"]
        changes: dict[str, Any] = {}
        dotted = {k.split(".", 1)[1]: v for k, v in options.items() if str(k).startswith("check.")}
        if dotted:
            nested = options.get("check")
            options = {**options, "check": {**dotted, **(nested if isinstance(nested, dict) else {})}}
        for key, value in options.items():
            name = _snake(str(key))
            if value is None:  # NOTE: editors send unset settings as null: keep what we have
                continue
            if name == "security":
                changes[name] = _security(self.security, value)
            elif name == "check":
                changes[name] = _check(self.check, value)
            elif name in _FIELD_TYPES and _valid(name, value):
                changes[name] = float(value) if _FIELD_TYPES[name] is float else value
            elif name in _FIELD_TYPES:
                logger.warning("ignoring setting %s=%r (wrong type or range)", key, value)
        return dataclasses.replace(self, **changes)


_FIELD_TYPES: dict[str, type] = {
    "enable": bool,
    "model": str,
    "engine_url": str,
    "api_key": str,
    "weight_quant": str,
    "kv_dtype": str,
    "kv_cache_tokens": int,
    "compile_decode": bool,
    "speculative": str,
    "draft_model": str,
    "max_tokens": int,
    "max_tokens_multiline": int,
    "max_lines": int,
    "context_budget_chars": int,
    "snippet_budget_chars": int,
    "fim_order": str,
    "debounce_ms": int,
    "chat_max_tokens": int,
    "temperature": float,
    "repo_adapters": bool,
    "acceptance_log": bool,
    "acceptance_log_path": str,
}


_CHOICES: dict[str, tuple[str, ...]] = {"weight_quant": WEIGHT_QUANTS, "kv_dtype": KV_DTYPES,
                                        "speculative": SPECULATIVE_METHODS, "fim_order": FIM_ORDERS}
"""String settings that take one of a fixed set of values."""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _valid(name: str, value: Any) -> bool:
    kind = _FIELD_TYPES[name]
    if kind is bool:
        return isinstance(value, bool)
    if kind is str:
        return isinstance(value, str) and bool(value) and value in _CHOICES.get(name, (value,))
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if kind is int:
        return isinstance(value, int) and (value >= 1 or name == "debounce_ms" and value >= 0)
    return 0 <= value <= 2


def _security(current: SecuritySettings, value: Any) -> SecuritySettings:
    if not isinstance(value, dict):
        return current
    changes = {k: v for k, v in value.items() if k in ("copyleft", "secrets") and v in ("warn", "block")}
    return dataclasses.replace(current, **changes)


def _check(current: CheckSettings, value: Any) -> CheckSettings:
    if not isinstance(value, dict):
        return current
    changes: dict[str, Any] = {}
    for key, v in value.items():
        name = _snake(str(key))
        ok = {
            "enabled": v is None or isinstance(v, bool),
            "candidates": isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CHECK_CANDIDATES,
            "deadline_ms": isinstance(v, int) and not isinstance(v, bool) and v >= 0,
            "staged": isinstance(v, bool),
            "backend": v in CHECK_BACKENDS,
        }.get(name)
        if ok:
            changes[name] = v
        elif ok is False:
            logger.warning("ignoring setting check.%s=%r (wrong type or range)", key, v)
    return dataclasses.replace(current, **changes)

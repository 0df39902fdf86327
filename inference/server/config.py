"""Validated settings of the HTTP server, built once by ``codeloop serve`` and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

from inference.fim import FIM_ORDERS
from inference.request import Priority
from inference.sampling import SamplingDefaults

PRIORITY_NAMES: dict[str, Priority] = {
    "interactive": Priority.INTERACTIVE,
    "chat": Priority.CHAT,
    "batch": Priority.BATCH,
}


@dataclass
class ServerConfig:
    """What the OpenAI-compatible server accepts and how it protects itself.

    Invariant: every limit is positive; ``api_key`` is either None (no auth) or a non-empty string.
    """

    model_name: str = "codeloop"
    """Model id reported by /v1/models and accepted in the ``model`` field of requests."""
    host: str = "127.0.0.1"
    """Loopback by default: binding elsewhere is an explicit choice."""
    port: int = 8000
    api_key: str | None = None
    """When set, every /v1 request and /metrics need ``Authorization: Bearer <api_key>``."""
    max_body_bytes: int = 4 * 1024 * 1024
    """Largest request body; larger ones get 413 before they are read in full."""
    max_tokens_limit: int = 4096
    """Largest ``max_tokens`` a request may ask for (also capped by the model's context)."""
    default_max_tokens: int = 256
    """``max_tokens`` when a request does not say (OpenAI's completions default is 16; chat has none)."""
    max_n: int = 16
    """Most samples per request."""
    max_pending_requests: int = 256
    """Requests admitted at once (waiting + running); beyond it the server answers 503 + Retry-After."""
    retry_after_s: int = 1
    """Seconds suggested to a client that got 503."""
    shutdown_grace_s: float = 10.0
    """On SIGTERM, how long in-flight requests may finish before they are aborted."""
    chat_defaults: SamplingDefaults = field(default_factory=SamplingDefaults)
    """The model family's recommended chat sampling, for the fields a chat request leaves out."""
    fim_order: str = "spm"
    """Layout of the fill-in-the-middle prompts the server builds (``/infill``, ``suffix`` completions; see
    ``inference.fim.FIM_ORDERS``). Under "spm" the code after the cursor goes first and the prompt ends where
    the user types, so a keystroke recomputes only the prompt's end, and such prompts are token-healed."""

    def __post_init__(self) -> None:
        if not self.model_name:
            raise ValueError("model_name must be non-empty")
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be in [0, 65535], got {self.port}")
        if self.api_key is not None and not self.api_key:
            raise ValueError("api_key must be non-empty when given")
        for name in ("max_body_bytes", "max_tokens_limit", "default_max_tokens", "max_n",
                     "max_pending_requests", "retry_after_s"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fim_order not in FIM_ORDERS:
            raise ValueError(f"fim_order must be one of {FIM_ORDERS}, got {self.fim_order!r}")
        if self.shutdown_grace_s < 0:
            raise ValueError(f"shutdown_grace_s must be >= 0, got {self.shutdown_grace_s}")

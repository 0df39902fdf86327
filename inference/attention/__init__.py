"""Attention backends behind one call, chosen by config name (never by sniffing what is installed).

A backend exposes ``name``, ``write_kv(cache, k, v, meta)`` and ``forward(q, k, v, cache, meta, scale)``
over the paged layout of :class:`inference.attention.metadata.LayerKVCache`. Other backends register a
factory with :func:`register_backend`; asking for an unknown or unavailable one raises, never falls back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from inference.attention.errors import BackendUnavailable
from inference.attention.metadata import AttentionMetadata, LayerKVCache

__all__ = ["AttentionMetadata", "LayerKVCache", "get_backend", "register_backend", "BackendUnavailable"]


def _sdpa() -> Any:
    from inference.attention.sdpa import SdpaAttention

    return SdpaAttention()


def _triton() -> Any:
    # raises BackendUnavailable where triton is not installed
    from inference.attention.triton_backend import TritonAttention

    return TritonAttention()


def _flash_attn() -> Any:
    # raises BackendUnavailable where flash_attn is not installed
    from inference.attention.flash_attn_backend import FlashAttnAttention

    return FlashAttnAttention()


_FACTORIES: dict[str, Callable[[], Any]] = {"sdpa": _sdpa, "triton": _triton, "flash_attn": _flash_attn}


def register_backend(name: str, factory: Callable[[], Any]) -> None:
    """Make ``name`` selectable; ``factory`` raises :class:`BackendUnavailable` when it cannot run."""
    _FACTORIES[name] = factory


def get_backend(name: str) -> Any:
    """The attention backend called ``name``; raises :class:`BackendUnavailable` if there is none."""
    if name not in _FACTORIES:
        _import_optional(name)
    factory = _FACTORIES.get(name)
    if factory is None:
        raise BackendUnavailable(
            f"attention backend {name!r} is not available (registered: {sorted(_FACTORIES)})"
        )
    return factory()


def _import_optional(name: str) -> None:
    """Import ``inference.attention.<name>`` if it exists, so the module can register itself."""
    import importlib

    try:
        importlib.import_module(f"inference.attention.{name}")
    except ModuleNotFoundError as exc:
        if exc.name != f"inference.attention.{name}":
            raise BackendUnavailable(f"attention backend {name!r} needs {exc.name!r}, which is not installed") from exc

"""The CPU's model name and feature flags, from ``/proc/cpuinfo`` (torch-free; one parser for the autotune's
cache key and ``codeloop doctor``)."""

from __future__ import annotations

import platform
from pathlib import Path


def read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def _field(text: str, name: str) -> str | None:
    return next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith(name)), None)


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's model name with its family and model numbers where ``/proc/cpuinfo`` has them (a VM may name a
    Zen 3 and a Zen 4 both "AMD EPYC": "AMD EPYC (family 25, model 1)" and "(family 25, model 17)" tell them
    apart), or the platform's processor string where it has no name."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    name = _field(text, "model name") or platform.processor() or platform.machine()
    family, model = _field(text, "cpu family"), _field(text, "model\t")
    return f"{name} (family {family}, model {model})" if family and model else name


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The CPU's feature flags (``avx2``, ``avx512_bf16``, ...); empty where ``/proc/cpuinfo`` has none."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    return set((_field(text, "flags") or "").split())

"""The one way a benchmark reports: its JSON printed (and written to ``--out``), with the machine it ran on."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any


def emit(result: dict[str, Any], out: Path | None = None) -> None:
    """Print a benchmark's JSON result; also write it to ``out`` when given (parent folders created)."""
    text = json.dumps(result, indent=2)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(text)


def spread(samples: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements (and how many there were)."""
    import statistics

    values = [float(v) for v in samples]
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def machine_info() -> dict[str, Any]:
    """The CPU model, core count, torch version and threads (and the GPU when there is one) of this run."""
    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info

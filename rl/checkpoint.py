"""Checkpoints that survive SIGKILL at any point, and the seeded data cursor they restore.

Layout under ``<run_dir>/checkpoints/``::

    step-000003/            one complete checkpoint
        adapter/            peft LoRA (adapter_config.json + adapter_model.safetensors)
        trainer.pt          optimizer state + torch / python RNG states
        state.json          step, data cursor, metrics history, config
        MANIFEST.json       sha256 of every file above; written last
    latest                  text file naming the newest complete checkpoint

Invariant: ``latest`` only ever names a directory whose files were all written and fsynced and whose
MANIFEST matches: a checkpoint is built in a temporary directory, renamed into place, and only then is
``latest`` replaced (``os.replace`` of a fsynced temp file). A kill at any moment leaves the previous
checkpoint readable; leftovers (``.tmp-*``) are removed on the next save.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

LATEST = "latest"
MANIFEST = "MANIFEST.json"


@dataclass
class DataCursor:
    """Position in an endless, seeded stream of task indices: epoch ``e`` is ``permutation(seed, e)``."""

    seed: int
    epoch: int = 0
    index: int = 0

    def take(self, num_tasks: int, count: int) -> list[int]:
        """The next ``count`` task indices (advancing the cursor); the same state always gives the same."""
        if num_tasks < 1:
            raise ValueError("no tasks to draw from")
        out = []
        while len(out) < count:
            order = epoch_order(self.seed, self.epoch, num_tasks)
            out.append(order[self.index])
            self.index += 1
            if self.index == num_tasks:
                self.epoch, self.index = self.epoch + 1, 0
        return out

    def as_dict(self) -> dict[str, int]:
        return {"seed": self.seed, "epoch": self.epoch, "index": self.index}


def epoch_order(seed: int, epoch: int, num_tasks: int) -> list[int]:
    order = list(range(num_tasks))
    random.Random(f"{seed}:{epoch}").shuffle(order)
    return order


@dataclass
class TrainState:
    step: int = 0
    cursor: DataCursor = field(default_factory=lambda: DataCursor(0))
    history: list[dict[str, Any]] = field(default_factory=list)
    """Metrics of every finished step, in order (``metrics.jsonl`` is rewritten from it on resume)."""


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class CheckpointManager:
    """Writes and finds checkpoints of one run. Not safe for two writers on one run directory."""

    def __init__(self, run_dir: Path, keep: int = 3) -> None:
        self.root = Path(run_dir) / "checkpoints"
        self.keep = keep

    def save(self, state: TrainState, save_adapter: Callable[[Path], None], optimizer: torch.optim.Optimizer,
             extra: dict[str, Any] | None = None) -> Path:
        """Write checkpoint ``step-<state.step>`` and point ``latest`` at it; returns its directory."""
        self.root.mkdir(parents=True, exist_ok=True)
        for leftover in self.root.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        name = f"step-{state.step:06d}"
        tmp = self.root / f".tmp-{name}-{os.getpid()}"
        tmp.mkdir()
        save_adapter(tmp / "adapter")
        torch.save({"optimizer": optimizer.state_dict(), "torch_rng": torch.get_rng_state(),
                    "python_rng": random.getstate()}, tmp / "trainer.pt")
        payload = {"step": state.step, "cursor": state.cursor.as_dict(), "history": state.history, **(extra or {})}
        (tmp / "state.json").write_text(json.dumps(payload, indent=1))
        files = sorted(p for p in tmp.rglob("*") if p.is_file())
        for p in files:
            _fsync_file(p)
        manifest = {str(p.relative_to(tmp)): _sha256(p) for p in files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1))
        _fsync_file(tmp / MANIFEST)
        for d in {p.parent for p in files} | {tmp}:
            _fsync_dir(d)
        final = self.root / name
        if final.exists():  # completed by a killed run but never pointed to: ours replaces it
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(self.root)
        pointer = self.root / f".tmp-{LATEST}-{os.getpid()}"
        pointer.write_text(name)
        _fsync_file(pointer)
        os.replace(pointer, self.root / LATEST)
        _fsync_dir(self.root)
        self._prune(name)
        return final

    def latest(self) -> Path | None:
        """The newest complete checkpoint (``latest``, else the newest whose MANIFEST verifies), or None."""
        pointer = self.root / LATEST
        if pointer.is_file():
            named = self.root / pointer.read_text().strip()
            if verify(named):
                return named
        for candidate in sorted(self.root.glob("step-*"), reverse=True):
            if verify(candidate):
                return candidate
        return None

    def load(self, checkpoint: Path, load_adapter: Callable[[Path], None],
             optimizer: torch.optim.Optimizer) -> tuple[TrainState, dict[str, Any]]:
        """Restore adapter, optimizer and RNG states; returns the train state and the state.json payload."""
        load_adapter(checkpoint / "adapter")
        blob = torch.load(checkpoint / "trainer.pt", weights_only=False)
        optimizer.load_state_dict(blob["optimizer"])
        torch.set_rng_state(blob["torch_rng"])
        random.setstate(blob["python_rng"])
        payload = json.loads((checkpoint / "state.json").read_text())
        state = TrainState(payload["step"], DataCursor(**payload["cursor"]), payload["history"])
        return state, payload

    def _prune(self, current: str) -> None:
        done = sorted(p for p in self.root.glob("step-*") if p.name != current)
        for old in done[:max(0, len(done) - (self.keep - 1))]:
            shutil.rmtree(old, ignore_errors=True)


def verify(checkpoint: Path) -> bool:
    """Every file listed in the MANIFEST exists with the recorded sha256."""
    try:
        manifest = json.loads((checkpoint / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return all((checkpoint / rel).is_file() and _sha256(checkpoint / rel) == digest for rel, digest in manifest.items())

"""Opt-in, append-only log of accepted / rejected editor suggestions, readable later as a task source.

One JSON object per line (``AcceptanceEvent``). Appends take an exclusive ``flock`` and are fsynced, so
several editor processes can share one file; a torn last line (a process killed mid-write) is skipped by
readers and cut off before the next append. Nothing is logged unless the user enabled it (the caller
decides; this module never reads settings). The language server writes it (``lsp/acceptance.py``); the RL
loop reads it (``rl/acceptance.py``, ``evals/repo/accepted.py``), so the format lives here, below both.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from inference.catalog import cache_root

log = logging.getLogger(__name__)
KINDS = ("inline", "completion", "chat")
LOG_NAME = "acceptance.jsonl"


@dataclass(frozen=True)
class AcceptanceEvent:
    """What was suggested and whether the user kept it."""

    kind: str
    accepted: bool
    completion: str
    prefix: str = ""
    suffix: str = ""
    language: str = "python"
    path: str = ""
    model: str = ""
    adapter: str | None = None
    instruction: str = ""
    """Chat: the user's request."""
    tests: list[str] = field(default_factory=list)
    """Asserts the user attached (optional); events with tests can become RL tasks."""
    time: float = 0.0
    event_id: str = ""
    """The suggestion's id (the editor's accept command names it); one id may have a not-accepted event
    (superseded) and then an accepted one (the accept arrived late): ``final_events`` keeps the accepted."""
    uri: str = ""
    root: str | None = None
    """The repository root the document belongs to (the registered adapter's root, else the workspace)."""
    line: int | None = None
    """Cursor: 0-based line and column (in the client's position encoding) where the suggestion was shown."""
    character: int | None = None
    source: str = ""
    """engine | cache | typed_through (how the language server produced it)."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {self.kind!r}")
        if not isinstance(self.accepted, bool):
            raise ValueError("accepted must be a bool")


class AcceptanceLog:
    """Appends events to one JSONL file (created on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).expanduser()

    def record(self, event: AcceptanceEvent) -> None:
        if not event.time:
            event = AcceptanceEvent(**{**asdict(event), "time": time.time()})
        line = (json.dumps(asdict(event), ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+b") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.seek(0, os.SEEK_END)
                if f.tell():
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":  # a writer died mid-line: drop its fragment
                        f.seek(0)
                        data = f.read()
                        f.truncate(data.rfind(b"\n") + 1)
                f.seek(0, os.SEEK_END)
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def read(self) -> list[AcceptanceEvent]:
        """Every whole, valid event in order (torn or invalid lines are skipped and logged)."""
        if not self.path.is_file():
            return []
        events = []
        for num, line in enumerate(self.path.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                events.append(AcceptanceEvent(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                log.warning("%s:%d: skipped: %s", self.path, num, exc)
        return events

    def acceptance_rate(self) -> float:
        events = self.read()
        return sum(e.accepted for e in events) / len(events) if events else 0.0


def default_log_path(home: str | os.PathLike[str] | None = None) -> Path:
    """``$CODELOOP_HOME/acceptance.jsonl`` (``~/.cache/codeloop/acceptance.jsonl``)."""
    return cache_root(home) / LOG_NAME


def final_events(events: list[AcceptanceEvent]) -> list[AcceptanceEvent]:
    """One event per suggestion id, in order of first appearance: the accepted one if any, else the last
    (events without an id are kept as they are)."""
    chosen: dict[str, AcceptanceEvent] = {}
    out: list[AcceptanceEvent | str] = []
    for e in events:
        if not e.event_id:
            out.append(e)
            continue
        if e.event_id not in chosen:
            out.append(e.event_id)
        if e.event_id not in chosen or not chosen[e.event_id].accepted:
            chosen[e.event_id] = e
    return [chosen[x] if isinstance(x, str) else x for x in out]

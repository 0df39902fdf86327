"""Opt-in, append-only log of accepted / rejected editor suggestions, readable later as a task source.

One JSON object per line (``AcceptanceEvent``). Appends take an exclusive ``flock`` and are fsynced, so
several editor processes can share one file; a torn last line (a process killed mid-write) is skipped by
readers and cut off before the next append. Nothing is logged unless the user enabled it (the caller
decides; this module never reads settings).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rl.tasks import RLTask, guess_entry_point, instruction_with_example

log = logging.getLogger(__name__)
KINDS = ("inline", "completion", "chat")


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


def tasks_from_log(path: Path) -> list[RLTask]:
    """Accepted events that carry asserts, as RL tasks (validate them like any other source)."""
    tasks = []
    for i, e in enumerate(AcceptanceLog(path).read()):
        if not (e.accepted and e.tests and e.language == "python"):
            continue
        code = e.prefix + e.completion + e.suffix
        entry = guess_entry_point(code, e.tests)
        text = e.instruction or f"Complete the code in {e.path or 'the file'}."
        tasks.append(RLTask(task_id=f"accepted/{i}", instruction=instruction_with_example(text, e.tests[0]),
                            tests=tuple(e.tests), reference=code, entry_point=entry, source="acceptance"))
    return tasks

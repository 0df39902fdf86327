"""Rich progress bars for long runs (silent when disabled); safe to advance from a worker thread."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class Bars:
    """Named progress bars; a no-op when ``enabled`` is False."""

    def __init__(self, enabled: bool = True) -> None:
        self._progress = (
            Progress(TextColumn("{task.description:>9}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                     transient=False)
            if enabled else None
        )
        self._ids: dict[str, int] = {}

    def __enter__(self) -> Bars:
        if self._progress:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress:
            self._progress.stop()

    def add(self, name: str, total: int, done: int = 0) -> None:
        if self._progress:
            self._ids[name] = self._progress.add_task(name, total=total, completed=done)

    def advance(self, name: str, amount: int = 1) -> None:
        if self._progress and name in self._ids:
            self._progress.advance(self._ids[name], amount)

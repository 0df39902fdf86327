"""The acceptance log as an RL task source: accepted events that carry asserts become chat tasks.

The log's format and writer live in ``lsp/acceptance_log.py`` (the language server writes it and may not
import rl); accepted multi-line completions inside tested functions become repository FIM tasks through
``evals/repo/accepted.py``.
"""

from __future__ import annotations

from pathlib import Path

from lsp.acceptance_log import AcceptanceEvent, AcceptanceLog, default_log_path, final_events  # noqa: F401 - re-exported
from rl.tasks import RLTask, guess_entry_point, instruction_with_example


def tasks_from_log(path: Path) -> list[RLTask]:
    """Accepted events that carry asserts, as RL tasks (validate them like any other source)."""
    tasks = []
    for i, e in enumerate(final_events(AcceptanceLog(path).read())):
        if not (e.accepted and e.tests and e.language == "python"):
            continue
        code = e.prefix + e.completion + e.suffix
        entry = guess_entry_point(code, e.tests)
        text = e.instruction or f"Complete the code in {e.path or 'the file'}."
        tasks.append(RLTask(task_id=f"accepted/{i}", instruction=instruction_with_example(text, e.tests[0]),
                            tests=tuple(e.tests), reference=code, entry_point=entry, source="acceptance"))
    return tasks

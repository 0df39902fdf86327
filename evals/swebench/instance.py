"""`SweInstance`: one offline SWE-bench instance and the commands that build and test it."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SweInstance:
    """What the harness needs from an ``instances.jsonl`` row (grading fields included)."""

    instance_id: str
    repo: str
    problem_statement: str
    gold_patch: str
    test_patch: str
    fail_to_pass: tuple[str, ...]
    pass_to_pass: tuple[str, ...]
    python: str
    """Exact interpreter version used in validation, e.g. ``3.9.18``."""
    install_steps: tuple[str, ...]
    reinstall: str
    """``install.spec.install``: re-run after the model patch (empty when absent)."""
    env: dict[str, str]
    test_cmd: str
    test_directives: tuple[str, ...]
    log_parser: str
    archive: Path
    env_dir: Path | None

    @classmethod
    def from_row(cls, row: dict[str, Any], root: Path) -> SweInstance:
        def tests(key: str) -> tuple[str, ...]:
            value = row[key]
            return tuple(json.loads(value) if isinstance(value, str) else value)

        install = row["install"]
        env_dir = root / row["env_dir"] if row.get("env_dir") else None
        steps = tuple(s["cmd"].replace("{env_dir}", str(env_dir or "")) for s in install["steps"])
        return cls(
            instance_id=row["instance_id"], repo=row["repo"], problem_statement=row["problem_statement"],
            gold_patch=row["patch"], test_patch=row["test_patch"], fail_to_pass=tests("FAIL_TO_PASS"),
            pass_to_pass=tests("PASS_TO_PASS"),
            python=row.get("validation", {}).get("python_used") or row["python"], install_steps=steps,
            reinstall=install.get("spec", {}).get("install") or "", env=dict(install.get("env") or {}),
            test_cmd=row["test_cmd"], test_directives=tuple(row["test_directives"]), log_parser=row["log_parser"],
            archive=root / row["repo_archive"], env_dir=env_dir,
        )

    def test_files(self) -> list[str]:
        """Files the test patch touches (reset to base before it is applied)."""
        return sorted(set(re.findall(r"^diff --git a/(\S+) b/", self.test_patch, flags=re.M)))

"""``CoverageMap``: which of a repository's tests execute which of its lines, from one sandboxed suite run.

Expensive to build (the whole suite under coverage), so it is cached as JSON per repository content:
``<cache_dir>/<repo name>-<key>.json`` where the key hashes the repository's files and the environment's
identity (interpreter, variables, arguments). The repository task miner writes it; the repository reward
and the editor's checked suggestions read it (``tests_for_lines``: the tests that run a function or a span).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from sandbox.suite.environment import VENV_NAMES, SuiteEnv
from sandbox.suite.testrun import PASSING, SuiteRun, run_tests

FORMAT = 1
DEFAULT_CACHE_DIR = Path(os.path.expanduser("~/.cache/codeloop/coverage"))
SKIP_DIRS = {".git", "__pycache__", ".tox", ".nox", ".mypy_cache", ".pytest_cache", "node_modules", *VENV_NAMES}


@dataclass
class CoverageMap:
    """Invariant: every index in ``lines`` is a position in ``tests`` (and in ``outcomes``, ``durations``)."""

    root: str
    key: str
    """Hash of the repository's files and the environment identity (the cache key)."""
    commit: str | None
    env: dict[str, object]
    tests: list[str]
    outcomes: list[str]
    """Per test: passed | failed | error | skipped | xfailed (the whole-suite run)."""
    durations: list[float]
    lines: dict[str, dict[int, list[int]]]
    """Path relative to the root -> line number -> indexes of the tests that ran it."""
    collect_errors: dict[str, str] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    """Tests that did not pass or skip -> one-line message."""
    reason: str = ""
    """Why the suite run did not complete ("" when it did)."""
    seconds: float = 0.0
    created: float = field(default_factory=time.time)
    format: int = FORMAT

    @classmethod
    def from_run(cls, run: SuiteRun, env: SuiteEnv, key: str, commit: str | None) -> CoverageMap:
        ids = sorted(run.tests)
        index = {t: i for i, t in enumerate(ids)}
        lines = {path: {n: sorted(index[t] for t in tests if t in index) for n, tests in by_line.items()}
                 for path, by_line in (run.coverage or {}).items()}
        return cls(str(env.root), key, commit, env.identity(), ids, [run.tests[t].outcome for t in ids],
                   [run.tests[t].duration_s for t in ids], lines, dict(run.collect_errors),
                   {t: r.message for t, r in run.tests.items() if r.outcome in ("failed", "error")},
                   run.reason, run.duration_s)

    def tests_for_lines(self, path: str, lines: Iterable[int], passing_only: bool = True) -> list[str]:
        """Ids of the tests that execute any of ``lines`` of ``path`` (relative), fastest first."""
        by_line = self.lines.get(path, {})
        found = {i for n in lines for i in by_line.get(n, ())}
        if passing_only:
            found = {i for i in found if self.outcomes[i] in PASSING}
        return [self.tests[i] for i in sorted(found, key=lambda i: (self.durations[i], self.tests[i]))]

    def duration(self, test_id: str) -> float:
        return self.durations[self._positions[test_id]]

    @functools.cached_property
    def _positions(self) -> dict[str, int]:
        return {t: i for i, t in enumerate(self.tests)}

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)  # NOTE: readers never see a half-written map

    @classmethod
    def load(cls, path: Path) -> CoverageMap:
        raw = json.loads(Path(path).read_text())
        if raw.get("format") != FORMAT:
            raise ValueError(f"{path}: coverage map format {raw.get('format')}, expected {FORMAT}")
        raw["lines"] = {p: {int(n): ids for n, ids in by_line.items()} for p, by_line in raw["lines"].items()}
        return cls(**raw)


def repo_key(env: SuiteEnv) -> str:
    """Hash of every file under the root (virtual environments and caches left out) and the environment."""
    h = hashlib.sha256(json.dumps(env.identity(), sort_keys=True).encode())
    for dirpath, dirnames, filenames in os.walk(env.root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if path.suffix == ".pyc" or not path.is_file():
                continue
            h.update(str(path.relative_to(env.root)).encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:24]


def git_commit(root: Path) -> str | None:
    """HEAD of the repository at ``root`` (None when it is not a git checkout)."""
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def _root_tag(root: Path) -> str:
    """``<folder name>-<hash of the absolute path>``: the cache files of one checkout."""
    root = Path(root).resolve()
    return f"{root.name}-{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"


def cache_path(env: SuiteEnv, key: str, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    return Path(cache_dir) / f"{_root_tag(env.root)}-{key}.json"


def coverage_map(env: SuiteEnv, cache_dir: Path = DEFAULT_CACHE_DIR, refresh: bool = False) -> tuple[CoverageMap, bool]:
    """(the map of ``env``'s repository as it is now, whether it came from the cache). A run that did not
    complete is returned but not cached, so the next call tries again."""
    key = repo_key(env)
    path = cache_path(env, key, cache_dir)
    if path.is_file() and not refresh:
        try:
            return CoverageMap.load(path), True
        except (ValueError, KeyError, TypeError):
            pass  # an unreadable or older cache entry is rebuilt
    run = run_tests(env, coverage=True)
    cmap = CoverageMap.from_run(run, env, key, git_commit(env.root))
    if run.completed and run.coverage is not None:
        cmap.save(path)
    elif not cmap.reason:
        cmap.reason = "the suite finished without coverage data (is `coverage` importable by the interpreter?)"
    return cmap, False


def latest_for(root: Path, cache_dir: Path = DEFAULT_CACHE_DIR) -> CoverageMap | None:
    """The newest cached map of the repository at ``root``, whatever its content was then (an editor uses
    it to find the tests of a function while the files change; lines may have moved since)."""
    root = Path(root).resolve()
    best: CoverageMap | None = None
    for path in Path(cache_dir).glob(f"{_root_tag(root)}-*[0-9a-f].json"):
        try:
            cmap = CoverageMap.load(path)
        except (ValueError, KeyError, TypeError, OSError):
            continue
        if cmap.root == str(root) and (best is None or cmap.created > best.created):
            best = cmap
    return best

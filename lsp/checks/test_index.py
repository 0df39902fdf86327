"""A static index of the workspace's test functions and the names they call.

Built in a background process (``python -m lsp.checks.test_index ROOT``, niced, streaming one JSON line
per test file) so that a workspace with thousands of test files costs the language server neither a
core nor the GIL while the user types; refreshed per file on save. Queries never wait for the build:
they see the files indexed so far.

Invariant: the entries of one file are replaced together (a query sees a file's old or new tests, never
a mix); ``tests_calling`` reads a snapshot taken under the lock.
"""

from __future__ import annotations

import ast
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lsp.checks.site import parse_or_none
from lsp.sources import SKIP_DIRS

logger = logging.getLogger(__name__)
MAX_TEST_FILES = 20_000
MAX_FILE_BYTES = 1_000_000
WORKER_NICE = 10


@dataclass(frozen=True)
class TestRef:
    """One test function. ``calls``: names it calls (functions and methods); ``imports``: what its file
    imports: module path parts, imported names, and ``module.name`` for each ``from ... import``."""

    __test__ = False  # not a pytest test class
    path: str
    """Relative to the workspace root."""
    node: str
    """``test_x`` or ``TestClass::test_x``."""
    line: int
    calls: frozenset[str]
    imports: frozenset[str]


def is_test_file(name: str) -> bool:
    return name.endswith(".py") and (name.startswith("test_") or name.endswith("_test.py"))


def calls_name(node: ast.AST, name: str) -> bool:
    """True when ``node`` contains a call of ``name`` (``name(...)`` or ``x.name(...)``)."""
    return name in called_names(node)


def called_names(node: ast.AST) -> set[str]:
    out = set()
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call):
            func = sub.func
            if isinstance(func, ast.Name):
                out.add(func.id)
            elif isinstance(func, ast.Attribute):
                out.add(func.attr)
    return out


def scan_source(rel_path: str, text: str) -> list[TestRef]:
    """The test functions of one test file (empty when it does not parse)."""
    tree = parse_or_none(text)
    if tree is None:
        return []
    imports = frozenset(_imported(tree))
    out = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
            out.append(TestRef(rel_path, node.name, node.lineno, frozenset(called_names(node)), imports))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name.startswith("test"):
                    out.append(TestRef(rel_path, f"{node.name}::{item.name}", item.lineno,
                                       frozenset(called_names(item)), imports))
    return out


def _imported(tree: ast.Module) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield from alias.name.split(".")
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            yield from parts
            for alias in node.names:
                yield alias.name
                yield f"{parts[-1]}.{alias.name}"  # "primes.is_prime": which module a name comes from


def test_files(root: str, limit: int = MAX_TEST_FILES) -> Iterator[str]:
    """Paths of test files under ``root`` (skipping virtualenvs, VCS and build folders)."""
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            if is_test_file(name):
                yield os.path.join(dirpath, name)
                count += 1
                if count >= limit:
                    return


def read_refs(root: str, path: str) -> list[TestRef]:
    try:
        if os.path.getsize(path) > MAX_FILE_BYTES:
            return []
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return scan_source(os.path.relpath(path, root), text)


class TestIndex:
    """Test functions of one workspace, by the names they call."""

    __test__ = False

    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._files: dict[str, list[TestRef]] = {}
        self._by_name: dict[str, set[tuple[str, str]]] = {}
        self._process: subprocess.Popen[str] | None = None
        self._thread: threading.Thread | None = None
        self.ready = False
        """True once the background build has read every test file."""

    def start(self) -> None:
        """Begin the background build (returns at once; idempotent)."""
        if self._thread is not None or not os.path.isdir(self.root):
            return
        self._thread = threading.Thread(target=self._build, name="codeloop-test-index", daemon=True)
        self._thread.start()

    def _build(self) -> None:
        argv = [sys.executable, "-m", "lsp.checks.test_index", self.root]
        try:
            self._process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                             stdin=subprocess.DEVNULL, text=True, env=_worker_env(),
                                             preexec_fn=lambda: os.nice(WORKER_NICE))
            assert self._process.stdout is not None
            for row in self._process.stdout:
                self._put_row(row)
            self._process.wait()
            self.ready = self._process.returncode == 0
        except OSError as exc:
            logger.warning("test index of %s not built: %s", self.root, exc)

    def build_now(self) -> None:
        """Index every test file now, in this thread (for one-shot commands)."""
        for path in test_files(self.root):
            self._replace(os.path.relpath(path, self.root), read_refs(self.root, path))
        self.ready = True

    def _put_row(self, row: str) -> None:
        try:
            data = json.loads(row)
            refs = [TestRef(data["path"], t[0], t[1], frozenset(t[2]), frozenset(data["imports"]))
                    for t in data["tests"]]
        except (ValueError, KeyError, IndexError, TypeError):
            return
        self._replace(data["path"], refs)

    def update(self, path: str) -> None:
        """Re-read one saved file (blocking: call from a thread); a file that is no test file is ignored."""
        if not is_test_file(os.path.basename(path)) or not path.startswith(self.root.rstrip("/") + "/"):
            return
        self._replace(os.path.relpath(path, self.root), read_refs(self.root, path))

    def _replace(self, rel: str, refs: list[TestRef]) -> None:
        with self._lock:
            for old in self._files.pop(rel, []):
                for name in old.calls:
                    self._by_name.get(name, set()).discard((rel, old.node))
            if refs:
                self._files[rel] = refs
            for ref in refs:
                for name in ref.calls:
                    self._by_name.setdefault(name, set()).add((rel, ref.node))

    def tests_calling(self, name: str) -> list[TestRef]:
        with self._lock:
            keys = sorted(self._by_name.get(name, ()))
            by_node = {(r.path, r.node): r for rel, _ in keys for r in self._files.get(rel, [])}
        return [by_node[k] for k in keys if k in by_node]

    @property
    def num_files(self) -> int:
        with self._lock:
            return len(self._files)

    def close(self) -> None:
        """Stop a build still running."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[2])  # the checkout holding lsp/
    env["PYTHONPATH"] = here + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def main(argv: list[str]) -> int:
    """Worker: one JSON line per test file under ``argv[0]`` that holds tests."""
    root = argv[0]
    for path in test_files(root):
        refs = read_refs(root, path)
        if refs:
            row = {"path": refs[0].path, "imports": sorted(refs[0].imports),
                   "tests": [[r.node, r.line, sorted(r.calls)] for r in refs]}
            sys.stdout.write(json.dumps(row) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""One candidate document and its checks as one sandbox job.

The workspace is mounted read-only at WORKSPACE; the candidate is never written anywhere: its text
travels in the job and ``in_sandbox.CandidateFinder`` serves it under the module name of the file it
replaces. pytest and its dependencies come from this process's environment, mounted read-only at LIBS,
when a workspace test needs them.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

from lsp.checks.check import Check, CheckKind, FunctionChecks
from lsp.checks.site import parse_or_none, top_level_chunks
from lsp.checks.test_index import calls_name
from sandbox.types import Mount

WORKSPACE = "/mnt/workspace"
LIBS = "/mnt/pylib"
VENV_DIRS = (".venv", "venv", "env")
PYTEST_PACKAGES = ("pytest", "_pytest", "pluggy", "iniconfig", "packaging", "pygments", "py")
"""Top-level packages (and modules) pytest needs, taken from this process's environment."""
IN_SANDBOX = (Path(__file__).with_name("in_sandbox.py")).read_text(encoding="utf-8")
FALLBACK_MODULE = "_codeloop_candidate"


@dataclass(frozen=True)
class CheckJob:
    code: str
    tests: tuple[str, ...]
    mounts: tuple[Mount, ...]


@dataclass(frozen=True)
class ModuleName:
    """How the document is imported: ``module`` found on ``import_root`` (relative to the workspace)."""

    module: str
    import_root: str
    is_package: bool


def module_name(root: str | None, rel_path: str) -> ModuleName:
    """The dotted name of ``rel_path``: the longest chain of parent folders holding ``__init__.py``."""
    parts = rel_path[:-3].split("/") if rel_path.endswith(".py") else rel_path.split("/")
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    start = len(parts) - 1
    while root and start > 0 and os.path.isfile(os.path.join(root, *parts[:start], "__init__.py")):
        start -= 1
    chain = parts[start:]
    if not chain or not all(p.isidentifier() for p in chain):
        return ModuleName(FALLBACK_MODULE, "/".join(parts[:-1]), False)
    return ModuleName(".".join(chain), "/".join(parts[:start]), is_package and bool(chain))


def pytest_mounts() -> tuple[Mount, ...]:
    """pytest and what it imports, from this environment (empty when pytest is not installed here)."""
    if importlib.util.find_spec("pytest") is None:
        return ()
    out = []
    for name in PYTEST_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.origin:
            continue
        source = os.path.dirname(spec.origin) if spec.submodule_search_locations else spec.origin
        out.append(Mount(source, f"{LIBS}/{os.path.basename(source)}"))
    return tuple(out)


def workspace_mountable(root: str | None) -> bool:
    """A workspace is mounted unless it is missing, the file system root or the home folder."""
    if not root or not os.path.isdir(root):
        return False
    real = os.path.realpath(root)
    return real not in ("/", os.path.realpath(os.path.expanduser("~")))


def build_job(checks: FunctionChecks, candidate_text: str, path: str, root: str | None) -> CheckJob:
    """The job that runs ``checks`` (all but its SUITE checks) against ``candidate_text`` standing in for
    the file at ``path``."""
    mounted = workspace_mountable(root)
    rel = os.path.relpath(path, root) if mounted and root else os.path.basename(path)
    name = module_name(root if mounted else None, rel)
    needs_pytest = any(c.kind is CheckKind.TEST and c.path for c in checks.plain())
    mounts = ((Mount(os.path.realpath(root), WORKSPACE),) if mounted and root else ()) + (
        pytest_mounts() if needs_pytest else ())
    spec = {
        "module": name.module, "is_package": name.is_package, "origin": f"{WORKSPACE}/{rel}",
        "source": without_asserts(compilable(candidate_text, checks.def_line), checks.function.rsplit(".", 1)[-1]),
        "workspace": WORKSPACE, "venvs": list(VENV_DIRS) if mounted else [],
        "paths": [f"{WORKSPACE}/{name.import_root}".rstrip("/"), WORKSPACE] if mounted else [],
        "libs": [LIBS] if needs_pytest else [],
        "docstring": checks.docstring or "", "function": checks.function,
        "pytest_ids": sorted({c.pytest_id for c in checks.plain() if c.kind is CheckKind.TEST and c.path}),
    }
    code = (f"{IN_SANDBOX}\nimport json as codeloop_json\n"
            f"codeloop_setup, codeloop_doctest, codeloop_pytest = codeloop_runtime(codeloop_json.loads({json.dumps(spec)!r}))\n"
            "codeloop_setup(globals())\n")
    return CheckJob(code, tuple(snippet(c) for c in checks.plain()), mounts)


def snippet(check: Check) -> str:
    """The test snippet the sandbox runs for ``check`` (one test outcome each). Asserts run as written,
    so the sandbox harness judges them itself (outside the candidate's reach); so does a doctest example
    that is one expression with one line of expected output (``assert repr(EXPR) == 'WANT'``, the same
    comparison doctest makes); other examples go through doctest in the sandbox. The candidate's names,
    and the examples' shared state, are in the snippets' namespace."""
    if check.kind is CheckKind.DOCTEST:
        judged = doctest_assert(check.source, check.want)
        return judged if judged is not None else f"codeloop_doctest({check.example})"
    if check.kind is CheckKind.ASSERT:
        return check.source
    if check.path:
        return f"codeloop_pytest({check.pytest_id!r})"
    return f"{check.node}()"


def compilable(text: str, def_line: int) -> str:
    """``text`` with the top-level statements that do not parse blanked out (line numbers kept), except
    the one holding the checked function: the user is often half-way through another function, which
    must not fail every candidate alike. A candidate that breaks its own function still fails."""
    if parse_or_none(text) is not None:
        return text
    lines = text.split("\n")
    for start, chunk in top_level_chunks(text):
        end = start + chunk.count("\n") + 1
        if not start <= def_line < end and parse_or_none(chunk) is None:
            lines[start:end] = [""] * (end - start)
    return "\n".join(lines)


def doctest_assert(source: str, want: str) -> str | None:
    """``assert repr(EXPR) == 'WANT'`` for an example doctest compares that way: one expression that
    is not a ``print`` call, one line of expected output, no directives (``# doctest: +...``) and no
    expected exception. None for every other example."""
    tree = parse_or_none(source)
    want = want.rstrip("\n")
    if tree is None or len(tree.body) != 1 or not isinstance(tree.body[0], ast.Expr) or "doctest:" in source:
        return None
    if not want or "\n" in want or want.startswith("Traceback (most recent call last)"):
        return None
    value = tree.body[0].value
    if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print":
        return None
    return f"assert repr(({ast.unparse(value)})) == {want!r}"  # unparse: no comments; parentheses: tuples


def without_asserts(text: str, name: str) -> str:
    """``text`` with its top-level asserts that call ``name`` replaced by ``pass`` (same line numbers):
    they are checks of their own, and importing the candidate must not fail on them."""
    tree = parse_or_none(text)
    if tree is None:
        return text  # the import reports the syntax error
    lines = text.split("\n")
    for node in tree.body:
        if isinstance(node, ast.Assert) and calls_name(node, name):
            first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
            lines[first] = "pass"
            for i in range(first + 1, last + 1):
                lines[i] = ""
    return "\n".join(lines)

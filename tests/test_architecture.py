"""The layout is the architecture: imports only go down the layers, and no module imports itself back.

Layers, top to bottom: ``codeloop`` (the application: its ``bench`` subcommand drives ``bench``) ->
``bench`` -> ``rl`` -> ``evals`` -> ``lsp`` -> ``inference`` -> ``sandbox`` | ``security``. A package may
import from its own package and from any package on a lower floor; the two packages of the lowest floor
(``sandbox``, ``security``) import neither each other. Every import counts: module level, inside functions (lazy), under ``TYPE_CHECKING``, relative ones
resolved. The walk reads the source with ``ast`` and never imports it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

FLOORS: dict[str, int] = {
    "codeloop": 7,
    "bench": 6,
    "rl": 5,
    "evals": 4,
    "lsp": 3,
    "inference": 2,
    "sandbox": 1,
    "security": 1,
}
"""Each layered package's floor; an import must go to the same package or a strictly lower floor."""


@dataclass(frozen=True)
class Import:
    """One import statement of ``importer`` naming ``target`` (both dotted module names)."""

    importer: str
    target: str
    line: int

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.target}"


def module_files(root: Path, packages: list[str]) -> dict[str, Path]:
    """Dotted module name -> file for every .py under the given top-level packages (``pkg/__init__.py`` is ``pkg``)."""
    modules: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _package_of(module: str, path: Path) -> str:
    """The package a relative import in ``module`` is relative to."""
    return module if path.name == "__init__.py" else module.rpartition(".")[0]


def _resolve(base: str, level: int, name: str | None) -> str:
    """Absolute name of ``from <level dots><name>`` inside package ``base``."""
    if level == 0:
        return name or ""
    parts = base.split(".")
    anchor = parts[: len(parts) - (level - 1)]
    return ".".join(anchor + ([name] if name else []))


def imports_of(module: str, path: Path, known: set[str]) -> Iterator[Import]:
    """Every module ``module`` imports, wherever the statement sits in the file.

    ``from a import b`` names module ``a.b`` when that is a module of the tree, else module ``a``.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            source = _resolve(_package_of(module, path), node.level, node.module)
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield Import(module, submodule if submodule in known else source, node.lineno)


def import_graph(root: Path, packages: list[str]) -> list[Import]:
    """All imports of every module under ``packages``."""
    modules = module_files(root, packages)
    known = set(modules)
    found = {imp: None for module, path in modules.items() for imp in imports_of(module, path, known)}
    return list(found)  # one per (importer, target, line), in file order


def upward_imports(imports: list[Import], floors: dict[str, int]) -> list[Import]:
    """Imports that go to another layered package on the same or a higher floor."""
    bad = []
    for imp in imports:
        source, target = imp.importer.split(".")[0], imp.target.split(".")[0]
        if source == target or target not in floors:
            continue
        if floors[target] >= floors[source]:
            bad.append(imp)
    return bad


def find_cycle(imports: list[Import], known: set[str]) -> list[str] | None:
    """One import cycle between modules of the tree as a path ``[a, b, ..., a]``, or ``None`` when there is none."""
    edges: dict[str, set[str]] = {}
    for imp in imports:
        if imp.target in known and imp.target != imp.importer:
            edges.setdefault(imp.importer, set()).add(imp.target)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(known):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


# --- the real tree ---------------------------------------------------------------------------------------


def test_no_upward_imports() -> None:
    bad = upward_imports(import_graph(REPO, list(FLOORS)), FLOORS)
    assert not bad, "imports that go up or sideways a layer:\n" + "\n".join(map(str, bad))


def test_no_import_cycles() -> None:
    packages = list(FLOORS)
    cycle = find_cycle(import_graph(REPO, packages), set(module_files(REPO, packages)))
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_every_layered_package_is_walked() -> None:
    """A new top-level package must be given a floor, else the layer test would not see it."""
    packages = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    assert packages == set(FLOORS)


# --- the checker itself, on fake trees -------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FAKE_FLOORS = {"top": 2, "low": 1, "side": 1}


@pytest.mark.parametrize(
    "source",
    [
        "import top.a\n",
        "from top import a\n",
        "from top.a import f\n",
        "def f():\n    from top.a import g\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import top\n",
        "from side import s\n",
    ],
)
def test_checker_flags_upward_and_sideways_imports(tmp_path: Path, source: str) -> None:
    root = _tree(
        tmp_path,
        {
            "top/__init__.py": "",
            "top/a.py": "from low import b\n",
            "low/__init__.py": "",
            "low/b.py": source,
            "side/__init__.py": "",
            "side/s.py": "",
        },
    )
    bad = upward_imports(import_graph(root, list(FAKE_FLOORS)), FAKE_FLOORS)
    assert [imp.importer for imp in bad] == ["low.b"]


def test_checker_allows_downward_and_own_package_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "top/__init__.py": "from . import a\n",
            "top/a.py": "from low.b import f\nfrom .sub import c\nimport json\n",
            "top/sub/__init__.py": "",
            "top/sub/c.py": "from .. import a\nfrom ..a import x\n",
            "low/__init__.py": "",
            "low/b.py": "import os\n",
            "side/__init__.py": "",
        },
    )
    assert upward_imports(import_graph(root, list(FAKE_FLOORS)), FAKE_FLOORS) == []


def test_checker_resolves_relative_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "low/__init__.py": "from .pkg import m\n",
            "low/pkg/__init__.py": "from . import m\nfrom .m import f\n",
            "low/pkg/m.py": "from .. import other\nfrom ..other import g\ndef h():\n    from . import n\n",
            "low/pkg/n.py": "",
            "low/other.py": "",
        },
    )
    targets = {(imp.importer, imp.target) for imp in import_graph(root, ["low"])}
    assert targets == {
        ("low", "low.pkg.m"),
        ("low.pkg", "low.pkg.m"),
        ("low.pkg.m", "low.other"),
        ("low.pkg.m", "low.pkg.n"),
    }


def test_checker_reports_the_cycle_path_including_lazy_imports(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "low/__init__.py": "",
            "low/a.py": "from low.b import f\n",
            "low/b.py": "def f():\n    from .c import g\n",
            "low/c.py": "import low.a\n",
            "low/d.py": "import low.a\n",
        },
    )
    imports = import_graph(root, ["low"])
    assert find_cycle(imports, set(module_files(root, ["low"]))) == ["low.a", "low.b", "low.c", "low.a"]


def test_checker_finds_no_cycle_in_a_tree(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {"low/__init__.py": "from . import a\n", "low/a.py": "from low.b import f\n", "low/b.py": ""},
    )
    assert find_cycle(import_graph(root, ["low"]), set(module_files(root, ["low"]))) is None

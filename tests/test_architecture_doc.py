"""docs/ARCHITECTURE.md matches the tree: every repository path it names exists, and it names every module."""

from __future__ import annotations

import re

from tests.test_architecture import FLOORS, REPO

DOC = REPO / "docs" / "ARCHITECTURE.md"
TOP_LEVEL = {p.name for p in REPO.iterdir() if not p.name.startswith(".")}


def named_paths(text: str, top_level: set[str]) -> set[str]:
    """Code spans that are repository paths: ``pkg/mod.py``, ``inference/server/``, ``docs/X.md``.

    A span counts when it starts with a top-level entry of the repository and ends in a file name with an
    extension or in ``/`` (a folder), so URLs (``/v1/completions``), LSP methods (``codeloop/chat``),
    placeholders (``RUN_DIR/promoted``, ``tests/<package>/``) and shell words are not paths.
    """
    spans = re.findall(r"`([\w./-]+)`", text)
    return {
        s for s in spans
        if "/" in s and s.split("/")[0] in top_level and (s.endswith("/") or "." in s.rsplit("/", 1)[-1])
    }


def test_every_path_the_document_names_exists() -> None:
    paths = named_paths(DOC.read_text(encoding="utf-8"), TOP_LEVEL)
    missing = sorted(p for p in paths if not (REPO / p).exists())
    assert not missing, f"docs/ARCHITECTURE.md names paths that do not exist: {missing}"


def test_the_document_names_every_module() -> None:
    paths = named_paths(DOC.read_text(encoding="utf-8"), TOP_LEVEL)
    modules = {
        str(p.relative_to(REPO))
        for package in FLOORS
        for p in (REPO / package).rglob("*.py")
        if p.name != "__init__.py" or p.parent.name == "speculative"
    }
    unnamed = sorted(modules - paths)
    assert not unnamed, f"add a line for each to docs/ARCHITECTURE.md: {unnamed}"


def test_path_spans_are_told_from_other_code_spans() -> None:
    text = "see `lsp/context.py`, `inference/server/`, `/v1/completions`, `RUN_DIR/promoted`, "
    text += "`lsp/chat`, `lsp/<x>/` and `x = a/b`"
    assert named_paths(text, {"lsp", "inference"}) == {"lsp/context.py", "inference/server/"}

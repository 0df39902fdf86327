"""Permissive code the licence index must not mistake for copyleft: Python's standard library and the
installed packages whose metadata offers only permissive licences.

Copyleft sdists carry such code too (nose's copy of ``doctest``, ansible's vendored ``pty``, backports):
its k-grams are kept out of the index (``background_texts``), since matching it says nothing about
copyleft. Packages are split by name (``corpus.permissive_split``) into a third for tuning, a third kept
out of the index (the background) and a third for measuring, so that false positives are measured on
permissive packages the index never saw; the standard library is background as a whole.
"""

from __future__ import annotations

import importlib.metadata
import random
from collections.abc import Iterator
from pathlib import Path

from .corpus import permissive_split, stdlib_root
from .project_licence import is_permissive, metadata_licences

STDLIB_EXCLUDES = ("test", "tests", "site-packages", "idlelib", "lib2to3", "turtledemo", "__pycache__")
MAX_BACKGROUND_FILES_PER_PACKAGE = 200


def stdlib_modules() -> list[tuple[str, list[Path]]]:
    """``("stdlib:<module>", files)`` for each top-level module of the running Python's library."""
    root = stdlib_root()
    by_module: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        if not any(part in STDLIB_EXCLUDES for part in rel.parts):
            by_module.setdefault(rel.parts[0].removesuffix(".py"), []).append(path)
    return [(f"stdlib:{m}", paths) for m, paths in sorted(by_module.items())]


def permissive_sources(split: str, site_packages: Path | None = None) -> list[tuple[str, list[Path]]]:
    """``(name, files)`` of each standard-library module and permissive package in ``split``
    (``corpus.permissive_split``); codeloop itself is left out."""
    found = [(name, paths) for name, paths in stdlib_modules() if permissive_split(name.removeprefix("stdlib:")) == split]
    return found + [(name, paths) for name, paths in permissive_packages(site_packages)
                    if permissive_split(name) == split and name != "codeloop"]


def background_texts(site_packages: Path | None = None) -> Iterator[str]:
    """The whole standard library and the background third of permissive packages (at most
    ``MAX_BACKGROUND_FILES_PER_PACKAGE`` files each): their k-grams are not evidence of copying."""
    packages = [(n, p) for n, p in permissive_packages(site_packages) if permissive_split(n) == "background"]
    for _, paths in stdlib_modules() + packages:
        for path in random.Random(0).sample(paths, min(len(paths), MAX_BACKGROUND_FILES_PER_PACKAGE)):
            try:
                yield path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue


def permissive_packages(site_packages: Path | None = None) -> list[tuple[str, list[Path]]]:
    """Installed distributions whose metadata offers only permissive licences, with their ``*.py`` files."""
    found = []
    found_dists = importlib.metadata.distributions(**({"path": [str(site_packages)]} if site_packages else {}))
    for dist in sorted(found_dists, key=lambda d: d.metadata["Name"] or ""):
        ids, _ = metadata_licences(dist.read_text("METADATA") or dist.read_text("PKG-INFO") or "")
        if not is_permissive(ids) or not dist.files:
            continue
        files = [Path(dist.locate_file(f)) for f in dist.files if str(f).endswith(".py") and "tests" not in f.parts]
        found.append((dist.metadata["Name"], [f for f in files if f.is_file()]))
    return found



"""Where snippets come from: other open documents, recently edited ones, and workspace files on disk.

All of them feed one ``SnippetIndex``. Bounded: the index holds at most MAX_RECENT recently edited
documents beyond the workspace files, whose scan reads at most MAX_WORKSPACE_FILES files of at most
MAX_FILE_BYTES each and MAX_WORKSPACE_BYTES in all; the scan runs once, off the event loop.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from lsp.snippets import SnippetIndex

MAX_RECENT = 16
MAX_WORKSPACE_FILES = 200
MAX_FILE_BYTES = 100_000
MAX_WORKSPACE_BYTES = 2_000_000
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", "build", "dist", ".tox", ".mypy_cache"}
CODE_SUFFIXES = {".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rs", ".java", ".c", ".h", ".cpp", ".hpp",
                 ".rb", ".lua", ".sh", ".kt", ".swift", ".cs", ".php", ".scala", ".el", ".vim"}


class Sources:
    """Snippet sources other than the current document, indexed for retrieval."""

    def __init__(self) -> None:
        self.index = SnippetIndex()
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._workspace: set[str] = set()

    def remember(self, path: str, text: str) -> None:
        """Index a recently edited (or other open) document; the oldest non-workspace one is dropped."""
        self.index.update(path, text)
        self._recent[path] = None
        self._recent.move_to_end(path)
        while len(self._recent) > MAX_RECENT:
            old, _ = self._recent.popitem(last=False)
            if old not in self._workspace:
                self.index.remove(old)

    def sync_open(self, open_docs: dict[str, str]) -> None:
        """Index the other open documents (cheap when unchanged)."""
        for path, text in open_docs.items():
            self.remember(path, text)

    def scan_workspace(self, root: str | None) -> int:
        """Index code files under ``root`` (blocking: call from a thread). Returns the number indexed."""
        if not root or not os.path.isdir(root):
            return 0
        total = 0
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.startswith("."))
            for name in sorted(filenames):
                path = Path(dirpath, name)
                if path.suffix not in CODE_SUFFIXES:
                    continue
                try:
                    size = path.stat().st_size
                    if size > MAX_FILE_BYTES:
                        continue
                    text = path.read_text(encoding="utf-8", errors="replace")
                except OSError:
                    continue
                self.index.update(str(path), text)
                self._workspace.add(str(path))
                total += size
                if len(self._workspace) >= MAX_WORKSPACE_FILES or total >= MAX_WORKSPACE_BYTES:
                    return len(self._workspace)
        return len(self._workspace)

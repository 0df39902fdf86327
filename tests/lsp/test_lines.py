"""One definition of a line (defect 5): the LSP's (\\n, \\r\\n, \\r end a line; form feed, U+2028, U+001C do
not), for documents edited incrementally and for resolving a cursor. Random edits are replayed against a
reference written here from the specification."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from lsprotocol import types

from lsp.context import resolve
from lsp.lines import LspWorkspace

ALPHABET = ["a", "b", " ", "\n", "\r", "\r\n", "\x0c", "\u2028", "\x1c", "\x85", "é", "😀", "\t"]
_REFERENCE_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def reference_lines(text: str) -> list[str]:
    """Lines with their ends, per LSP 3.17 ("\\n", "\\r\\n" and "\\r" are the line breaks)."""
    return _REFERENCE_LINE.findall(text)


def reference_offset(text: str, line: int, character: int) -> int:
    """Python index of an LSP position (UTF-16 ``character``) in ``text``."""
    lines = reference_lines(text)
    start = sum(len(ln) for ln in lines[:line])
    content = re.sub(r"(\r\n|\r|\n)$", "", lines[line]) if line < len(lines) else ""
    units = 0
    for i, ch in enumerate(content):
        if units >= character:
            return start + i
        units += 2 if ord(ch) > 0xFFFF else 1
    return start + len(content)


texts = st.lists(st.sampled_from(ALPHABET), max_size=30).map("".join)


@st.composite
def positions(draw, text: str) -> tuple[int, int]:
    lines = reference_lines(text) or [""]
    line = draw(st.integers(0, len(lines) - 1))
    content = re.sub(r"(\r\n|\r|\n)$", "", lines[line])
    cut = draw(st.integers(0, len(content)))
    return line, sum(2 if ord(ch) > 0xFFFF else 1 for ch in content[:cut])


@st.composite
def edit_scripts(draw) -> tuple[str, list]:
    text = draw(texts)
    edits, current = [], text
    for _ in range(draw(st.integers(1, 6))):
        a, b = draw(positions(current)), draw(positions(current))
        start, end = min(a, b), max(a, b)
        new = draw(texts)
        edits.append((start, end, new))
        i, j = reference_offset(current, *start), reference_offset(current, *end)
        current = current[:i] + new + current[j:]
    return text, edits


@settings(max_examples=300, deadline=None)
@given(edit_scripts())
def test_incremental_edits_match_the_reference(script):
    text, edits = script
    workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    uri = "file:///x.py"
    workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    expected = text
    for version, (start, end, new) in enumerate(edits, 2):
        change = types.TextDocumentContentChangePartial(
            range=types.Range(types.Position(*start), types.Position(*end)), text=new)
        workspace.update_text_document(types.VersionedTextDocumentIdentifier(uri=uri, version=version), change)
        i, j = reference_offset(expected, *start), reference_offset(expected, *end)
        expected = expected[:i] + new + expected[j:]
        assert workspace.get_text_document(uri).source == expected


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_resolve_agrees_with_the_reference(data):
    text = data.draw(texts)
    line, character = data.draw(positions(text))
    assert resolve(text, line, character).offset == reference_offset(text, line, character)


def test_the_server_keeps_its_documents_in_an_lsp_workspace():
    """pygls assigns a plain Workspace at initialize; the server's protocol makes it an LspWorkspace."""
    from pygls.workspace import Workspace

    from lsp.server import build_server

    server = build_server()
    server.protocol._workspace = Workspace(None, types.TextDocumentSyncKind.Incremental)
    assert isinstance(server.protocol.workspace, LspWorkspace)
    workspace = server.protocol.workspace
    workspace.put_text_document(types.TextDocumentItem(uri="file:///y.py", language_id="python", version=1,
                                                       text="a\x0cb\nc\n"))
    change = types.TextDocumentContentChangePartial(
        range=types.Range(types.Position(1, 0), types.Position(1, 1)), text="X")
    workspace.update_text_document(types.VersionedTextDocumentIdentifier(uri="file:///y.py", version=2), change)
    assert workspace.get_text_document("file:///y.py").source == "a\x0cb\nX\n"

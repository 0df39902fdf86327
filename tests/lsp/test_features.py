"""Pure parts of the features: LSP item shapes, chat payloads, the snippet index."""

from __future__ import annotations

import pytest
from lsprotocol import types

from lsp.features.chat import ChatRequest, chat_messages, parse_request
from lsp.features.completion import to_completion_list
from lsp.features.inline_completion import to_inline_list
from lsp.snippets import SnippetIndex
from lsp.suggestion import Suggestion


def test_inline_item_range_after_code_is_empty_at_cursor():
    s = Suggestion("a + b", line=3, character=11, line_prefix="    return ", source="engine")
    (item,) = to_inline_list(s).items
    assert item.insert_text == "a + b"
    assert item.range == types.Range(types.Position(3, 11), types.Position(3, 11))


def test_inline_item_on_indentation_covers_it():
    s = Suggestion("x = 1\n    y = 2", line=3, character=4, line_prefix="    ", source="engine")
    (item,) = to_inline_list(s).items
    assert item.range.start == types.Position(3, 0) and item.insert_text.startswith("    x = 1")


def test_completion_item_replaces_the_word_being_typed():
    s = Suggestion("int(total)", line=0, character=11, line_prefix="result = pr", source="engine")
    (item,) = to_completion_list(s).items
    assert item.text_edit.range.start == types.Position(0, 9)
    assert item.text_edit.new_text == "print(total)" and item.label == "print(total)"
    assert to_completion_list(None).items == []


def test_completion_item_word_start_counts_utf16_units():
    s = Suggestion("x", line=0, character=6, line_prefix="😀 ab", source="engine")
    (item,) = to_completion_list(s, "utf-16").items
    assert item.text_edit.range.start.character == 4


def test_chat_payload_validation():
    req = parse_request({"messages": [{"role": "user", "content": "hi"}], "workDoneToken": "t",
                         "selection": {"start": {"line": 0, "character": 0}, "end": {"line": 1, "character": 0}}})
    assert req.token == "t" and req.selection == (0, 0, 1, 0)
    for bad in (None, {}, {"messages": []}, {"messages": [{"role": "robot", "content": "x"}]},
                {"messages": [{"role": "user", "content": 3}]},
                {"messages": [{"role": "user", "content": "x"}], "selection": {"start": 1}}):
        with pytest.raises(ValueError):
            parse_request(bad)


def test_chat_messages_include_selection():
    req = ChatRequest([{"role": "user", "content": "explain"}], "file:///a.py", (1, 0, 2, 0))
    msgs = chat_messages(req, "a.py", "line0\nline1\nline2\n")
    assert msgs[0]["role"] == "system" and "line1" in msgs[1]["content"] and "line0" not in msgs[1]["content"]
    assert msgs[-1] == {"role": "user", "content": "explain"}


def test_snippet_index_updates_and_removes():
    index = SnippetIndex()
    index.update("a.py", "def parse_config(path):\n    return path\n")
    index.update("b.py", "def render(page):\n    return page\n")
    assert [s.path for s in index.select("parse_config(", 1000)] == ["a.py"]
    index.update("a.py", "def other():\n    pass\n")  # changed text replaces the old windows
    assert index.select("parse_config(", 1000) == []
    assert [s.path for s in index.select("render page", 1000, exclude="a.py")] == ["b.py"]
    assert index.select("render page", 1000, exclude="b.py") == []
    index.remove("b.py")
    assert len(index) == 1 and index.select("render", 1000) == []

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


def test_chat_payload_seed():
    assert parse_request({"messages": [{"role": "user", "content": "hi"}], "seed": 7}).seed == 7
    assert parse_request({"messages": [{"role": "user", "content": "hi"}]}).seed is None
    for bad in ("7", True, 1.5):
        with pytest.raises(ValueError, match="seed"):
            parse_request({"messages": [{"role": "user", "content": "hi"}], "seed": bad})


def test_chat_messages_include_selection():
    req = ChatRequest([{"role": "user", "content": "explain"}], "file:///a.py", (1, 0, 2, 0))
    msgs = chat_messages(req, "a.py", "line0\nline1\nline2\n")
    assert [m["role"] for m in msgs] == ["system", "user"]
    assert "line1" in msgs[1]["content"] and "line0" not in msgs[1]["content"]
    assert msgs[-1]["content"].endswith("\n\nexplain")


def test_chat_messages_put_the_question_last_with_the_document_framed_as_context():
    question = "In two sentences: what does functools.lru_cache do?"
    req = ChatRequest([{"role": "user", "content": question}], "file:///p.py")
    msgs = chat_messages(req, "p.py", "def f():\n    pass\n")
    # one user turn: the file labelled as context, then the question; no made-up assistant turn between
    assert [m["role"] for m in msgs] == ["system", "user"]
    content = msgs[-1]["content"]
    assert content.startswith("The file open in my editor (p.py), for context:\n```\ndef f():\n    pass\n```")
    assert content.endswith("\n\n" + question)
    assert chat_messages(req, None, None)[1:] == [{"role": "user", "content": question}]


def test_chat_context_goes_with_the_last_question_and_leaves_the_history_alone():
    history = [{"role": "system", "content": "ignored"}, {"role": "user", "content": "first"},
               {"role": "assistant", "content": "answer"}, {"role": "user", "content": "second"}]
    req = ChatRequest(history, "file:///p.py")
    msgs = chat_messages(req, "p.py", "x = 1\n")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[1:3] == history[1:3] and msgs[-1]["content"].endswith("x = 1\n```\n\nsecond")
    assert req.messages == history  # the request's own messages are not changed


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

"""llama.vscode's /infill request and its display rules (evals/repo/llama_vscode.py), and the peer path that
uses them (evals/repo/infill.py). Pure functions; the one HTTP test answers in process."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from evals.repo import infill
from evals.repo.completions import EngineChoice
from evals.repo.infill import InfillClient, PeerOptions
from evals.repo.llama_vscode import (
    Cursor,
    InfillRequest,
    VscodeSettings,
    auto_trigger_refused,
    infill_request,
    remove_leading_spaces,
    remove_trailing_blank_lines,
    should_discard,
    shown,
    update_suggestion,
)
from inference.fim import ContextFile

TEXT = "import os\n\ndef f(x):\n    \n    return y\n"
BLANK = TEXT.index("    \n") + 4  # the cursor after the indentation of the empty line in f


def _cursor(text: str, marker: str = "|") -> Cursor:
    return Cursor.at(text.replace(marker, ""), text.index(marker))


def test_request_on_an_indented_blank_line():
    req = infill_request(Cursor.at(TEXT, BLANK), [{"filename": "b.py", "text": "def g(): pass\n"}])
    body = req.body
    assert body["input_prefix"] == "import os\n\ndef f(x):\n"
    assert body["prompt"] == "" and req.spaces_to_remove == 4 and body["n_indent"] == 4
    assert body["input_suffix"] == "\n    return y\n\n"
    assert body["input_extra"] == [{"filename": "b.py", "text": "def g(): pass\n"}]
    assert body["samplers"] == ["top_k", "top_p", "infill"] and body["top_k"] == 40 and body["top_p"] == 0.99
    assert body["n_predict"] == 128 and body["t_max_predict_ms"] == 500 and body["n_cmpl"] == 1
    assert body["id_slot"] == 0 and body["cache_prompt"] is True and "temperature" not in body


def test_request_inside_a_line_sends_the_line_indentation():
    req = infill_request(_cursor("def f(x):\n    y = g(|\n    return y\n"), [])
    assert req.body["prompt"] == "    y = g(" and req.spaces_to_remove == 0
    assert req.body["n_indent"] == 4  # the whole line's indentation, not only on a blank line
    assert req.body["input_suffix"] == "\n    return y\n\n"
    assert "n_indent" not in infill_request(_cursor("x = |\n"), []).body
    assert infill_request(_cursor("x = |\n"), [], VscodeSettings(t_max_predict_ms=0)).body["t_max_predict_ms"] == 0


def test_request_windows_are_256_lines_above_and_64_below():
    lines = [f"l{i}" for i in range(400)]
    text = "\n".join(lines)
    req = infill_request(Cursor.at(text, text.index("l300")), [])
    assert req.body["input_prefix"] == "\n".join(lines[44:300]) + "\n"
    assert req.body["input_suffix"] == "l300\n" + "\n".join(lines[301:365]) + "\n"


def test_cursor_reads_lines_as_vscode_does():
    c = Cursor.at("a\r\nbc\rd\n", 4)
    assert c.lines == ("a", "bc", "d", "") and (c.line, c.character) == (1, 1)
    assert c.line_prefix == "b" and c.line_suffix == "c"
    with pytest.raises(IndexError):
        c.line_at(4)


def test_auto_trigger_refused_past_eight_characters_right_of_the_cursor():
    assert not auto_trigger_refused(_cursor("x = f(|a, b)   \n"))  # 8 characters
    assert auto_trigger_refused(_cursor("x = f(|a, b)    \n"))


def test_trailing_blank_lines_go():
    assert remove_trailing_blank_lines(["a", "  ", "", "\t"]) == ["a"]
    assert remove_trailing_blank_lines(["", "a"]) == ["", "a"]
    assert remove_trailing_blank_lines(["  "]) == []


def test_discard_empty_suggestions():
    c = _cursor("def f():\n    |\n    return 1\n")
    assert should_discard([], c) and should_discard(["   "], c)
    assert not should_discard(["x = 1"], c)


def test_discard_a_repeat_of_the_next_non_empty_line():
    c = _cursor("def f():\n    |\n\n    return 1\n")
    assert should_discard(["return 1"], c)  # line prefix + suggestion == the next non-empty line
    assert not should_discard(["return 2"], c)


def test_nothing_is_discarded_on_the_last_line():
    c = _cursor("x = f(|)")
    assert not should_discard([")"], c)  # elsewhere a repeat of the line suffix is discarded
    assert not should_discard(["", "y"], c) and should_discard(["  "], c)


def test_discard_when_the_following_lines_repeat_the_document():
    c = _cursor("def f():\n    a = 1|\n    b = 2\n    c = 3\n")
    assert should_discard(["", "    b = 2", "    c = 3"], c)  # first line empty, the rest is what follows
    assert not should_discard(["", "    b = 2", "    c = 4"], c)


def test_discard_a_repeat_of_the_line_suffix():
    c = _cursor("x = f(|)\ny = 2\n")
    assert should_discard([")"], c) and not should_discard(["a)"], c)


def test_discard_two_lines_whose_second_starts_the_line_after():
    c = _cursor("def f():\n    |\n    a = 1\n    return a\n")
    assert should_discard(["a = 1", "    return"], c)
    assert not should_discard(["a = 1", "    yield"], c)


def test_discard_three_lines_that_repeat_the_lines_after():
    c = _cursor("def f():\n    |\n    a = 1\n    b = 2\n    return a\n")
    assert should_discard(["a = 1", "    b = 2", "    return a"], c)
    assert not should_discard(["a = 1", "    b = 2", "    return b"], c)


def test_text_right_of_the_cursor_keeps_the_first_line_only():
    assert update_suggestion(["a, b)", "z = 1"], ")") == "a, b"  # minus the suffix it ends with
    assert update_suggestion(["a, b", "z = 1"], ")") == "a, b"
    assert update_suggestion(["a, b"], ")") == "a, b"
    assert update_suggestion(["a = 1", "b = 2"], "  ") == "a = 1\nb = 2"  # only blanks right: all lines


def test_leading_spaces_up_to_n_but_tabs_without_limit():
    assert remove_leading_spaces("      x", 4) == "  x"
    assert remove_leading_spaces("  x", 4) == "x"
    assert remove_leading_spaces("\t\t\tx", 1) == "x"  # llama.vscode's operator precedence, kept
    assert remove_leading_spaces("    x", 0) == "    x"


def test_shown_is_the_first_candidate_not_discarded():
    req = infill_request(Cursor.at(TEXT, BLANK), [])
    assert shown({"content": "    y = x + 1\n\n\n"}, req).text == "y = x + 1"
    assert shown({"content": "    y = x\n    z = y\n"}, req).text == "y = x\n    z = y"
    dropped = shown([{"content": "return y"}, {"content": "return y"}, {"content": "    y = 2"}], req)
    assert dropped.text == "y = 2" and dropped.discarded == 1  # a repeated candidate counts once
    assert shown({"content": "return y"}, req).text == ""


def test_a_line_past_the_end_shows_nothing():
    c = _cursor("|\ny = 1")  # the next non-empty line is the document's last: lineAt(row + 1) throws
    got = shown({"content": "y = 1\nz"}, InfillRequest({}, c, 0))
    assert got.text == "" and got.error.startswith("lineAt")


def test_peer_raw_drops_the_server_side_stops_and_the_trimming():
    raw, vs = PeerOptions(client="raw"), PeerOptions()
    req = infill.request(TEXT, BLANK, (ContextFile("b.py", "pass\n"),), raw)
    assert not {"n_indent", "t_max_predict_ms", "t_max_prompt_ms"} & set(req.body)
    assert req.body["input_extra"] == [{"filename": "b.py", "text": "pass\n"}]
    reply = {"content": "    y = 1\n\n", "stop_type": "limit"}
    assert infill.read(reply, req, raw).completion == "    y = 1\n\n"
    vreq = infill.request(TEXT, BLANK, (), vs)
    got = infill.read(reply, vreq, vs)
    assert got.completion == "y = 1" and got.raw == "    y = 1\n\n" and got.notes["stop_type"] == "limit"
    with pytest.raises(ValueError):
        PeerOptions(client="vim")
    with pytest.raises(ValueError):
        EngineChoice(infill_url="http://x", engine_options={"client": "vim"})


def test_peer_answer_posts_llama_vscodes_body_and_skips_a_long_line_suffix():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={"content": "    y = x\n", "stop_type": "eos"})

    async def run() -> tuple:
        client = InfillClient("http://peer", transport=httpx.MockTransport(handler))
        try:
            first = await infill.answer(client, TEXT, BLANK, (), PeerOptions(t_max_predict_ms=250))
            long_suffix = "x = f(abcdefghij)\n"
            second = await infill.answer(client, long_suffix, 6, (), PeerOptions())
            return first, second
        finally:
            await client.aclose()

    first, second = asyncio.run(run())
    assert first.completion == "y = x" and first.notes["discarded"] == 0
    assert second.completion == "" and "not_triggered" in second.notes
    assert len(bodies) == 1 and bodies[0]["t_max_predict_ms"] == 250 and bodies[0]["n_indent"] == 4

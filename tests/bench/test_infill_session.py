"""`codeloop bench infill`: the typed document and the requests are llama.vscode's, and a short session
against a live server on the tiny model adds up."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from bench.editor_session import FUNCTION, typing_document
from bench.infill_session import keystrokes, llama_vscode_body, session
from tests.inference import client_shapes as shapes

TEXTWRAP = Path(textwrap.__file__)


def test_each_keystroke_types_one_character_and_sends_llama_vscodes_request() -> None:
    keys = list(keystrokes(TEXTWRAP, None))
    lines, insert_at = typing_document(TEXTWRAP)
    assert len(keys) == len(FUNCTION) + 1 and keys[0].lines == tuple(lines)
    last = keys[-1]
    assert "\n".join(last.lines[insert_at + 1: insert_at + 1 + FUNCTION.count("\n")]) + "\n" == FUNCTION
    assert (last.line, last.character) == (insert_at + 1 + FUNCTION.count("\n"), 0)
    for key in keys[::7]:
        ours = llama_vscode_body(key, 16)
        theirs = shapes.llama_vscode_fim(shapes.Cursor(list(key.lines), key.line, key.character), [], n_predict=16,
                                         n_cmpl=1).body
        for name in ("input_prefix", "input_suffix", "prompt", "n_predict", "input_extra", "cache_prompt"):
            assert ours[name] == theirs[name], name
        assert ours.get("n_indent") == theirs.get("n_indent")


@pytest.mark.slow
def test_a_session_against_a_live_server_reports_every_keystroke(tiny_qwen2_dir: Path, tmp_path: Path) -> None:
    from tests.inference.server_fixtures import live_server

    small = tmp_path / "small.py"  # fits the tiny model's context whole: nothing is cut from the prompt's top
    small.write_text("".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(8)))
    keys = list(keystrokes(small, 6))
    with live_server(tiny_qwen2_dir) as server:
        report = session(server.url, keys, 4)
    assert report["keystrokes"] == 6 and len(report["shown"]) == 6
    assert 0 < report["latency_ms"]["p50"] <= report["latency_ms"]["max"]
    # spm (the server's default): past the warm-up each keystroke computes about one block of the prompt again
    assert report["prompt_tokens_computed"]["max"] <= 2 * 16

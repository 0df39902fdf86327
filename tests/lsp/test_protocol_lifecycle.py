"""JSON-RPC lifecycle and params (defect 11), against `codeloop lsp` as a subprocess: before initialize,
after shutdown, exit codes, optional params, reversed ranges."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.lsp.test_malformed import _frame, _read_messages

INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
URI = "file:///tmp/x.py"


def _server() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "codeloop", "lsp", "--engine-url", "http://127.0.0.1:9"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)


def _send(proc: subprocess.Popen, *messages: dict) -> None:
    for message in messages:
        proc.stdin.write(_frame(json.dumps({"jsonrpc": "2.0", **message}).encode()))
    proc.stdin.flush()


def test_request_before_initialize_is_32002_without_a_traceback():
    proc = _server()
    try:
        _send(proc, {"id": 7, "method": "codeloop/stats", "params": {}})
        got = _read_messages(proc, {7})
        error = got[7]["error"]
        assert error["code"] == -32002
        assert "Traceback" not in json.dumps(error)
        _send(proc, INIT)
        assert "capabilities" in _read_messages(proc, {1})[1]["result"]
    finally:
        proc.kill()
        proc.wait()


def test_requests_after_shutdown_get_an_error_and_exit_codes():
    proc = _server()
    try:
        _send(proc, INIT, {"method": "initialized", "params": {}}, {"id": 2, "method": "shutdown"})  # no params
        got = _read_messages(proc, {1, 2})
        assert got[2].get("result") is None and "error" not in got[2]
        _send(proc, {"id": 3, "method": "codeloop/stats", "params": {}})
        got = _read_messages(proc, {3}, timeout_s=15)
        assert got[3]["error"]["code"] == -32600  # invalid request: the server is shutting down
        _send(proc, {"method": "exit"})
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()
    proc = _server()
    try:
        _send(proc, INIT, {"method": "exit"})  # exit without shutdown
        assert proc.wait(timeout=30) == 1
    finally:
        proc.kill()
        proc.wait()


def test_optional_params_may_be_left_out_and_reversed_ranges_are_refused():
    proc = _server()
    try:
        _send(proc, INIT, {"method": "initialized", "params": {}}, {"id": 2, "method": "codeloop/stats"},
              {"method": "textDocument/didOpen", "params": {"textDocument": {
                  "uri": URI, "languageId": "python", "version": 1, "text": "a = 1\nb = 2\n"}}},
              {"id": 3, "method": "textDocument/codeAction", "params": {
                  "textDocument": {"uri": URI}, "context": {"diagnostics": []},
                  "range": {"start": {"line": 1, "character": 0}, "end": {"line": 0, "character": 0}}}})
        got = _read_messages(proc, {1, 2, 3})
        assert "result" in got[2] and "error" not in got[2]
        assert got[3]["error"]["code"] == -32602 and "range" in got[3]["error"]["message"]
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()


def test_complete_names_the_line_it_was_given(tmp_path, capsys):
    """Defect 11: `codeloop complete f.py:99:1` on a 3-line file said "line 98 is past the end"."""
    from codeloop.cli import main

    source = tmp_path / "f.py"
    source.write_text("a = 1\nb = 2\nc = 3\n")
    assert main(["complete", f"{source}:99:1", "--engine-url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "line 99" in err and "98" not in err and err.count("\n") == 1


def test_lone_surrogates_from_the_client_become_replacement_characters():
    """Defect 6 (LSP): a lone surrogate in a document or chat message (legal JSON, not text) made every
    request on that document fail with -32603. Each becomes U+FFFD, which keeps UTF-16 positions."""
    from lsp.server import build_server

    protocol = build_server().protocol
    raw = json.loads('{"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": '
                     '{"uri": "file:///s.py", "languageId": "python", "version": 1, "text": "a\\ud800b\\udfff"}}}')
    message = protocol.structure_message(raw)
    assert message.params.text_document.text == "a\ufffdb\ufffd"
    fine = protocol.structure_message({**raw, "params": {"textDocument": {**raw["params"]["textDocument"],
                                                                          "text": "ok \U0001F600"}}})
    assert fine.params.text_document.text == "ok \U0001F600"


def test_an_engine_problem_is_shown_once_whatever_its_numbers(monkeypatch):
    """Defect 1 (part): `_tell_once` keyed on the whole message, which holds the token count, so an
    over-long prompt popped an error up on every keystroke."""
    from lsp.server import build_server

    server = build_server()
    shown = []
    monkeypatch.setattr(server, "window_show_message", lambda params: shown.append(params.message))
    for n in (540, 541, 902):
        server._tell_once(f"HTTP 400: prompt has {n} tokens, the context holds 512")
    server._tell_once("cannot reach http://127.0.0.1:9")
    assert len(shown) == 2

"""Garbage on stdin: the server answers what it can with proper JSON-RPC errors and stays up."""

from __future__ import annotations

import json
import subprocess
import sys
import threading


def _frame(body: bytes) -> bytes:
    return b"Content-Length: %d\r\n\r\n" % len(body) + body


def _read_messages(proc: subprocess.Popen, want_ids: set, timeout_s: float = 30) -> dict:
    """Responses by id, read in a thread so a silent server fails the test instead of hanging it."""
    out: dict = {}
    parse_errors: list = []

    def reader() -> None:
        while want_ids - out.keys():
            header = proc.stdout.readline()
            if not header:
                return
            if not header.lower().startswith(b"content-length"):
                continue
            length = int(header.split(b":")[1])
            while proc.stdout.readline() not in (b"\r\n", b"\n", b""):
                pass
            msg = json.loads(proc.stdout.read(length))
            if "method" in msg:
                continue
            if "id" in msg:
                out[msg["id"]] = msg
            else:
                parse_errors.append(msg)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(timeout_s)
    out["parse_errors"] = parse_errors
    return out


def test_malformed_messages_get_errors_and_server_survives():
    proc = subprocess.Popen([sys.executable, "-m", "codeloop", "lsp", "--engine-url", "http://127.0.0.1:9"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"capabilities": {}}}
        msgs = [
            _frame(b"{not json at all"),
            _frame(b'{"foo": 1}'),
            _frame(json.dumps(init).encode()),
            _frame(b'{"jsonrpc": "2.0", "method": "initialized", "params": {}}'),
            _frame(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "codeloop/unknown", "params": {}}).encode()),
            _frame(json.dumps({"jsonrpc": "2.0", "id": 3, "method": "textDocument/inlineCompletion",
                               "params": {"bogus": 1}}).encode()),
            _frame(json.dumps({"jsonrpc": "2.0", "id": 4, "method": "textDocument/inlineCompletion",
                               "params": {"textDocument": {"uri": "file:///x.py"},
                                          "position": {"line": -5, "character": "a"},
                                          "context": {"triggerKind": 1}}}).encode()),
            b"Content-Length: 5\r\n\r\n\xff\xfe\x00\x01\x02",
            _frame(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "codeloop/stats", "params": {}}).encode()),
        ]
        for m in msgs:
            proc.stdin.write(m)
        proc.stdin.flush()
        got = _read_messages(proc, {1, 2, 3, 4, 5})
        assert set(got) >= {1, 2, 3, 4, 5}, got
        assert "capabilities" in got[1]["result"]
        assert [e["error"]["code"] for e in got["parse_errors"]] == [-32700, -32700]
        assert got[2]["error"]["code"] == -32601  # method not found
        assert got[3]["error"]["code"] == -32602  # invalid params
        assert got[4]["error"]["code"] == -32602
        assert "completer" not in got[5]["result"] or got[5]["result"]["completer"]["num_requests"] == 0
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait()

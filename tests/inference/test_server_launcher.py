"""``ensure_shared_server``: first caller starts a detached server, later callers attach, stale records
are recovered; SIGTERM lets an in-flight stream finish and leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from inference.server.launcher import LaunchSpec, _recover, ensure_shared_server, read_server
from tests.inference.server_fixtures import dead_pid

pytestmark = pytest.mark.timeout(240)


def test_start_attach_recover_and_graceful_sigterm(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    spec = dict(state_dir=tmp_path, serve_args=("--dtype", "float32", "--served-model-name", "tiny"),
                start_timeout_s=180.0)
    record = LaunchSpec(model=str(tiny_qwen2_dir), **spec).path(".json")  # type: ignore[arg-type]
    stale_pid = dead_pid()
    record.write_text(json.dumps({"pid": stale_pid, "url": "http://127.0.0.1:9", "model": "x"}))
    assert read_server(str(tiny_qwen2_dir), **spec) is None

    urls: list[str] = []
    editors = [threading.Thread(target=lambda: urls.append(ensure_shared_server(str(tiny_qwen2_dir), **spec)))
               for _ in range(2)]  # two editors starting at once
    for t in editors:
        t.start()
    for t in editors:
        t.join(200)
    assert len(urls) == 2 and urls[0] == urls[1]
    assert ensure_shared_server(str(tiny_qwen2_dir), **spec) == urls[0]
    pid = json.loads(record.read_text())["pid"]
    assert pid != stale_pid and httpx.get(f"{urls[0]}/health").json()["pid"] == pid
    assert os.getsid(pid) == pid  # detached: leads its own session

    body = {"model": "tiny", "prompt": "def f():", "max_tokens": 300, "stream": True, "ignore_eos": True}
    with httpx.stream("POST", f"{urls[0]}/v1/completions", json=body, timeout=60) as response:
        lines = response.iter_lines()
        assert next(line for line in lines if line.startswith("data: {"))
        os.kill(pid, signal.SIGTERM)
        rest = [line for line in lines if line]
    assert rest[-1] == "data: [DONE]"  # the in-flight stream was allowed to finish
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        _reap(pid)
        time.sleep(0.1)
    assert not Path(f"/proc/{pid}").exists(), "server did not exit after SIGTERM"
    log = LaunchSpec(model=str(tiny_qwen2_dir), **spec).path(".log").read_text()  # type: ignore[arg-type]
    assert "Shutting down" in log


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)  # it is our child in this test; reap the zombie
    except ChildProcessError:
        pass


def test_recover_never_kills_a_live_process_that_is_not_our_server() -> None:
    bystander = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        _recover({"pid": bystander.pid, "url": "http://127.0.0.1:9"})
        _recover({"pid": os.getpid()})
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()

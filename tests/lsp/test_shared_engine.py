"""Several editors on one engine: two ``codeloop lsp`` subprocesses on one ``codeloop serve`` (tiny model)
are batched into the same engine steps, and ``--shared`` starts one background server, attaches the next
editor to it and recovers a stale record."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from inference.server.launcher import SERVE_ARGV, LaunchSpec, free_port, is_healthy
from tests.inference.server_fixtures import dead_pid, scrape, serve_subprocess, wait_idle

from .lsp_session import inline_params, lsp_process, open_doc, start, stats

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

URI = "file:///tmp/codeloop-test/main.py"
TEXT = "import math\n\n\ndef area(r):\n    return \n\n\ndef main():\n    \n"
NUM_NEW_TOKENS = 300
"""The tiny model never writes a newline, so each suggestion runs to this many tokens: long enough that
two requests sent together overlap in the engine whatever the machine's load."""
OPTIONS = {"debounceMs": 0, "maxTokens": NUM_NEW_TOKENS, "maxTokensMultiline": NUM_NEW_TOKENS, "maxLines": 1000}
BATCH = "codeloop_batch_size"
OK = "codeloop_requests_total{endpoint=completions,outcome=ok}"


def _delta(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


async def test_two_language_servers_share_engine_steps(tiny_qwen2_dir: Path) -> None:
    with serve_subprocess(tiny_qwen2_dir, "--dtype", "float32") as url:
        async with lsp_process("--engine-url", url) as a, lsp_process("--engine-url", url) as b:
            for client in (a, b):  # one at a time: loads each client's tokenizer and HTTP connection
                await start(client, OPTIONS)
                open_doc(client, URI, TEXT)
                await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
            before = wait_idle(url)
            assert before["codeloop_running_sequences"] == 0
            await asyncio.gather(*(c.text_document_inline_completion_async(inline_params(URI, 8, 4))
                                   for c in (a, b)))
            after = wait_idle(url)
            for client in (a, b):
                assert (await stats(client))["client"]["num_finished"] == 2
    assert _delta(before, after, OK) == 2
    # NOTE: each language server had one engine request in flight, so a step that advanced more than one
    # sequence advanced a sequence of each.
    num_steps = _delta(before, after, f"{BATCH}_count")
    num_single = _delta(before, after, f"{BATCH}_bucket{{le=1.0}}")
    assert num_steps >= NUM_NEW_TOKENS and num_steps - num_single >= 1, (num_steps, num_single)
    assert _delta(before, after, f"{BATCH}_sum") == 2 * NUM_NEW_TOKENS


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan's zombie waits for init, and runs nothing)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _stop_shared_server(record_path: Path) -> int | None:
    """SIGTERM the shared server named in the record (it leads its own process group); its pid."""
    with contextlib.suppress(OSError, ValueError):
        pid = json.loads(record_path.read_text())["pid"]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes() if _running(pid) else b""
        if "\0".join(SERVE_ARGV).encode() in cmdline:
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _running(pid):
            os.killpg(pid, signal.SIGKILL)
        return pid
    return None


async def test_shared_flag_starts_attaches_and_recovers(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    spec = LaunchSpec(model=str(tiny_qwen2_dir), state_dir=tmp_path)
    record_path = spec.path(".json")
    stale_pid = dead_pid()  # an editor's server that died and left its record and lock file behind
    record_path.write_text(json.dumps({"pid": stale_pid, "url": f"http://127.0.0.1:{free_port()}",
                                       "model": str(tiny_qwen2_dir)}))
    spec.path(".lock").touch()
    args = ("--shared", "--shared-dir", str(tmp_path), "--model", str(tiny_qwen2_dir))
    try:
        async with lsp_process(*args) as first:
            await start(first, {"debounceMs": 0})
            record = json.loads(record_path.read_text())
            url = (await stats(first))["settings"]["engine_url"]
            assert record["pid"] != stale_pid and _running(record["pid"]) and url == record["url"]
            assert httpx.get(f"{url}/health").json()["pid"] == record["pid"]
            async with lsp_process(*args) as second:
                await start(second, {"debounceMs": 0})
                assert (await stats(second))["settings"]["engine_url"] == url
                assert json.loads(record_path.read_text()) == record  # attached, did not start another
                before = scrape(url)
                for client in (first, second):
                    open_doc(client, URI, TEXT)
                    result = await client.text_document_inline_completion_async(inline_params(URI, 4, 11))
                    assert result is not None
                assert _delta(before, wait_idle(url), OK) == 2
        assert is_healthy(url, model_pid=record["pid"])  # outlives its editors, for the next one
    finally:
        pid = _stop_shared_server(record_path)
    assert pid is not None and not _running(pid), "shared server left running"


async def test_the_editor_starts_the_shared_server_again_after_it_exited(tmp_path: Path, tiny_qwen2_dir: Path) -> None:
    """Defect 2 of issue 22: the shared server exits after an hour idle, by design; the editor resolved its URL
    once and failed every request after. Now a refused connection restarts it through the launcher and the
    request is sent again; the user is told once."""
    record_path = LaunchSpec(model=str(tiny_qwen2_dir), state_dir=tmp_path).path(".json")
    args = ("--shared", "--shared-dir", str(tmp_path), "--model", str(tiny_qwen2_dir))
    try:
        async with lsp_process(*args) as client:
            await start(client, {"debounceMs": 0, "maxTokens": 8, "maxTokensMultiline": 8})
            open_doc(client, URI, TEXT)
            assert await client.text_document_inline_completion_async(inline_params(URI, 4, 11)) is not None
            gone = json.loads(record_path.read_text())
            os.killpg(gone["pid"], signal.SIGKILL)
            deadline = time.monotonic() + 30
            while _running(gone["pid"]) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _running(gone["pid"])
            for line, character in ((8, 4), (4, 4)):
                result = await client.text_document_inline_completion_async(inline_params(URI, line, character))
                assert result is not None
            record = json.loads(record_path.read_text())
            assert record["pid"] != gone["pid"] and is_healthy(record["url"], model_pid=record["pid"])
            told = [m.message for m in client.messages]
            assert len(told) == 1 and "started again" in told[0], told
    finally:
        _stop_shared_server(record_path)

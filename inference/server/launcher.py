"""One shared ``codeloop serve`` per machine and model, for ``codeloop lsp --shared``.

``ensure_shared_server(model)`` returns the URL of a healthy server for ``model``: the first caller
starts one in the background (detached: its own session, log in ``~/.cache/codeloop/serve/``), later
callers attach to it. Callers serialise on an ``flock``-ed lock file; a record file names the server's
pid and URL. A stale record (dead pid, or a live server that fails its /health check) is recovered.
Imports nothing heavy: the language server calls this at startup.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_STATE_DIR = Path("~/.cache/codeloop/serve")
API_KEY_ENV = "CODELOOP_API_KEY"
SERVE_ARGV = ("-m", "codeloop", "serve")
"""After the interpreter: runs ``codeloop serve`` (a subprocess, so nothing here imports the CLI)."""


class SharedServerError(RuntimeError):
    """The shared server could not be started or reached; the message ends with its log's tail."""


@dataclass(frozen=True)
class LaunchSpec:
    """How to start a shared server. ``serve_args`` are extra ``codeloop serve`` flags."""

    model: str
    state_dir: Path = DEFAULT_STATE_DIR
    api_key: str | None = None
    start_timeout_s: float = 600.0
    """Model load (first use may convert weights) plus startup."""
    idle_shutdown_s: float | None = 3600.0
    """The server exits after this long without requests, so no editor leaves it running forever."""
    serve_args: tuple[str, ...] = ()
    python: str = field(default_factory=lambda: sys.executable)

    @property
    def key(self) -> str:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(self.model).name or "model")[:40]
        digest = hashlib.sha256(f"{self.model}\0{' '.join(self.serve_args)}".encode()).hexdigest()[:10]
        return f"{slug}-{digest}"

    def path(self, suffix: str) -> Path:
        return self.state_dir.expanduser() / f"{self.key}{suffix}"


def ensure_shared_server(model: str, **kwargs: object) -> str:
    """URL (``http://127.0.0.1:PORT``) of a healthy shared server for ``model``; start one if needed.

    Keyword arguments are ``LaunchSpec`` fields. Raises ``SharedServerError`` if the server does not
    become healthy within ``start_timeout_s`` (its log tail is in the message).
    """
    spec = LaunchSpec(model=model, **kwargs)  # type: ignore[arg-type]
    spec.state_dir.expanduser().mkdir(parents=True, exist_ok=True)
    with _locked(spec.path(".lock"), spec.start_timeout_s):
        record = _read_record(spec.path(".json"))
        if record is not None and is_healthy(record.get("url", ""), model_pid=record.get("pid"), api_key=spec.api_key):
            return record["url"]
        if record is not None:
            _recover(record)
        return _start(spec)


def read_server(model: str, **kwargs: object) -> str | None:
    """URL of the running shared server for ``model`` if there is a healthy one, without starting one."""
    spec = LaunchSpec(model=model, **kwargs)  # type: ignore[arg-type]
    record = _read_record(spec.path(".json"))
    if record is not None and is_healthy(record.get("url", ""), model_pid=record.get("pid"), api_key=spec.api_key):
        return record["url"]
    return None


@contextlib.contextmanager
def _locked(path: Path, timeout_s: float) -> Iterator[None]:
    with open(path, "a+") as handle:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise SharedServerError(f"timed out waiting for {path} (another editor is starting "
                                            "the shared server)") from None
                time.sleep(0.1)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _read_record(path: Path) -> dict | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def is_healthy(url: str, model_pid: object = None, timeout_s: float = 2.0, api_key: str | None = None) -> bool:
    """The server at ``url`` answers /health with status ok (and, when given, the recorded pid; a
    server with an api key shows its pid only to a caller that sends the key)."""
    if not url.startswith("http://127.0.0.1:"):
        return False
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        request = urllib.request.Request(f"{url}/health", headers=headers)
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 - loopback
            body = json.loads(response.read())
    except (OSError, ValueError):
        return False
    return body.get("status") == "ok" and (model_pid is None or body.get("pid") == model_pid)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_our_server(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return "\0".join(SERVE_ARGV).encode() in cmdline


def _recover(record: dict) -> None:
    """Stale record: the pid is dead, or alive but unhealthy. Stop it only if it is really our server."""
    pid = record.get("pid")
    if isinstance(pid, int) and pid > 0 and _pid_alive(pid) and _is_our_server(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)  # it leads its own session and process group
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, grace_s: float) -> None:
    """SIGTERM ``proc``; SIGKILL it if it has not exited after ``grace_s``; reap it either way."""
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _start(spec: LaunchSpec) -> str:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [spec.python, *SERVE_ARGV, "--model", spec.model, "--host", "127.0.0.1",
           "--port", str(port), *spec.serve_args]
    if spec.idle_shutdown_s is not None:
        cmd += ["--idle-shutdown-s", str(spec.idle_shutdown_s)]
    env = dict(os.environ)
    if spec.api_key:
        env[API_KEY_ENV] = spec.api_key  # never on the command line, where `ps` shows it
    log_path = spec.path(".log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, close_fds=True)
    spec.path(".json").write_text(json.dumps({"pid": proc.pid, "url": url, "model": spec.model,
                                              "started": time.time()}))
    deadline = time.monotonic() + spec.start_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SharedServerError(f"shared server exited with code {proc.returncode}: {_tail(log_path)}")
        if is_healthy(url, model_pid=proc.pid, timeout_s=1.0, api_key=spec.api_key):
            return url
        time.sleep(0.2)
    _recover({"pid": proc.pid})
    raise SharedServerError(f"shared server not healthy after {spec.start_timeout_s:.0f} s: {_tail(log_path)}")


def _tail(path: Path, num_bytes: int = 2000) -> str:
    try:
        data = path.read_bytes()[-num_bytes:]
    except OSError:
        return f"(no log at {path})"
    return f"log {path}:\n" + data.decode(errors="replace")

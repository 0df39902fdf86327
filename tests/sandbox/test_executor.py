"""The executor seam without a cluster: the local default never imports Ray, and the Ray executor's
failures to start are one-line errors (Ray missing, an address that does not answer)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from sandbox.executor import ExecutorConfig, ExecutorError, LocalExecutor, make_executor

REPO = Path(__file__).resolve().parents[2]


def test_the_local_default_path_never_imports_ray():
    code = ("import sys\n"
            "import codeloop.cli, evals.benchmark_runner, evals.canonical\n"
            "from evals.execute import ExecConfig, judge\n"
            "from sandbox.executor import make_executor\n"
            "make_executor(ExecConfig().executor_config())\n"
            "assert judge([], ExecConfig()) == []\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr


def test_local_executor_is_the_default():
    assert isinstance(make_executor(ExecutorConfig()), LocalExecutor)


def test_executor_config_is_validated():
    with pytest.raises(ValueError, match="executor must be one of"):
        ExecutorConfig("spark")
    with pytest.raises(ValueError, match="--executor ray"):
        ExecutorConfig("local", ray_address="10.0.0.1:6379")


def test_ray_executor_without_ray_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError, as when not installed
    with pytest.raises(ExecutorError, match=r"pip install 'codeloop\[cluster\]'"):
        make_executor(ExecutorConfig("ray"))


def test_cli_without_ray_is_one_line(monkeypatch, capsys):
    from codeloop.cli import main

    monkeypatch.setitem(sys.modules, "ray", None)
    rc = main(["eval", "canonical", "humanevalplus", "--limit", "1", "--executor", "ray"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "codeloop[cluster]" in err[0], err


def _cli_error(address: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "codeloop.cli", "eval", "canonical", "humanevalplus", "--limit", "1",
                           "--executor", "ray", "--ray-address", address],
                          cwd=REPO, capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(REPO)})


@pytest.mark.slow
def test_an_address_nobody_listens_on_is_a_one_line_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again below: connecting is refused
    done = _cli_error(f"127.0.0.1:{port}")
    errors = [line for line in done.stderr.splitlines() if line.startswith("codeloop: error:")]
    assert done.returncode == 2 and len(errors) == 1 and "does not answer" in errors[0], done.stderr


@pytest.mark.slow
def test_an_address_that_accepts_but_never_speaks_ray_is_a_one_line_error():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:  # accept and stay silent, like a wrong service or a hung head
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    try:
        done = _cli_error(f"127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
        for conn in held:
            conn.close()
    errors = [line for line in done.stderr.splitlines() if line.startswith("codeloop: error:")]
    assert done.returncode == 2 and len(errors) == 1 and "Ray cluster at" in errors[0], done.stderr

"""`codeloop sandbox ...` and `codeloop bench sandbox` from the command line."""

from __future__ import annotations

import json

import pytest

from codeloop.cli import build_parser, main
from sandbox.bwrap import available

needs_bwrap = pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")


@needs_bwrap
def test_run_json(tmp_path, capsys):
    code, tests = tmp_path / "code.py", tmp_path / "tests.py"
    code.write_text("def double(x):\n    return 2 * x\n")
    tests.write_text("assert double(2) == 4\nassert double(3) == 7\n")
    rc = main(["sandbox", "run", str(code), "--tests", str(tests), "--backend", "bwrap", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["status"] == "failed" and out["backend"] == "bwrap"
    assert [t["status"] for t in out["tests"]] == ["passed", "failed"]


@needs_bwrap
def test_run_human_output(tmp_path, capsys):
    code = tmp_path / "ok.py"
    code.write_bytes(b"print('hello')\n")
    assert main(["sandbox", "run", str(code), "--backend", "bwrap"]) == 0
    assert "hello" in capsys.readouterr().out


def test_user_errors_are_one_line(tmp_path, capsys):
    assert main(["sandbox", "run", str(tmp_path / "missing.py"), "--backend", "bwrap"]) == 2
    assert "cannot read" in capsys.readouterr().err
    code = tmp_path / "c.py"
    code.write_text("x = 1\n")
    assert main(["sandbox", "run", str(code), "--timeout", "0"]) == 2
    assert "timeout_s must be > 0" in capsys.readouterr().err


def test_register_bench_adds_sandbox_subcommand():
    args = build_parser().parse_args(["bench", "sandbox", "--jobs", "3", "--backends", "bwrap", "--json"])
    assert args.jobs == 3 and callable(args.func)


@pytest.mark.slow
@needs_bwrap
def test_check_command_bwrap(capsys):
    assert main(["sandbox", "check", "--backend", "bwrap", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["contained"] and len(report["rows"]) >= 25


def test_bench_config_from_args():
    from bench.sandbox_throughput import config_from_args

    args = build_parser().parse_args(["bench", "sandbox", "--jobs", "5", "--backends", "bwrap, unsafe_subprocess"])
    config = config_from_args(args)
    assert config.jobs == 5 and config.backends == ("bwrap", "unsafe_subprocess") and config.concurrency == 2


@needs_bwrap
def test_bench_runs_small(capsys):
    from bench.sandbox_throughput import bench_sandbox

    out = bench_sandbox(build_parser().parse_args(["bench", "sandbox", "--jobs", "2", "--backends", "bwrap,unsafe_subprocess"]))
    assert out["backends"]["bwrap"]["passed"] == 2 and "bwrap_overhead_vs_unisolated" in out

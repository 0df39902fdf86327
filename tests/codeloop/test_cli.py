"""The `codeloop` entry point: `python -m codeloop` runs it, and a package's typed error is one line."""

from __future__ import annotations

import subprocess
import sys

from codeloop.cli import build_parser, main

COMMANDS = ["model", "bench", "demo", "serve", "lsp", "complete", "chat", "sandbox", "scan", "eval", "tasks", "train", "loop",
            "doctor"]


def test_python_dash_m_codeloop_prints_the_same_help():
    out = subprocess.run([sys.executable, "-m", "codeloop", "--help"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("usage: codeloop ")
    listed = [line.split()[0] for line in out.stdout.splitlines() if line.startswith("    ") and line[4] != " "]
    assert listed == COMMANDS


def test_every_subcommand_has_a_function():
    parser = build_parser()
    for argv in (["model", "list"], ["bench", "scan"], ["demo"], ["serve"], ["lsp"], ["complete", "f:1:1"],
                 ["chat", "q"], ["sandbox", "run", "f"], ["scan", "-"], ["eval", "mbpp"], ["tasks", "mine", "r"], ["train"],
                 ["loop"], ["doctor"], ["eval", "custom", "f.jsonl"], ["eval", "complete-samples", "s.jsonl",
                                                                         "--benchmark", "humaneval"]):
        assert callable(parser.parse_args(argv).func), argv


def test_no_command_prints_help_and_exits_2(capsys):
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_a_package_error_becomes_one_line(tmp_path, capsys):
    missing = tmp_path / "missing"
    assert main(["complete", f"{missing}:1:1"]) == 2
    err = capsys.readouterr().err
    assert err == f"codeloop: error: no such file: {missing}\n"


COUNT_FLAGS = [
    ["eval", "humaneval", "--limit"], ["eval", "canonical", "mbpp", "--limit"], ["eval", "humaneval", "--samples"],
    ["eval", "humaneval", "--max-tokens"], ["train", "--task-limit"],
    ["loop", "--eval-limit"], ["loop", "--task-limit"], ["train", "--steps"], ["loop", "--steps"], ["bench", "lsp", "--keystrokes"],
    ["bench", "serve", "--requests-per-client"], ["bench", "scan", "--per-project"], ["serve", "--max-num-seqs"],
]


def test_non_positive_counts_are_refused(capsys):
    """Defect 10: `eval --limit -3` ran 161 tasks (tasks[:-3]) and `--limit 0` ran all of them."""
    import pytest

    parser = build_parser()
    for argv in COUNT_FLAGS:
        for bad in ("0", "-3"):
            with pytest.raises(SystemExit) as info:
                parser.parse_args([*argv, bad])
            assert info.value.code == 2, argv
            assert "must be a positive integer" in capsys.readouterr().err, argv
        assert parser.parse_args([*argv, "2"]).func

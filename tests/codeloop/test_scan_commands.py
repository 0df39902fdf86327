"""`codeloop scan` from the command line."""

import json
from pathlib import Path

import pytest

from codeloop.cli import build_parser
from codeloop.errors import UserError


def run(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


def test_scan_json_output_and_exit_status(tmp_path: Path, capsys: pytest.CaptureFixture):
    risky = tmp_path / "risky.py"
    risky.write_text('import subprocess\nsubprocess.call(f"ls {d}", shell=True)\n')
    assert run(["scan", str(risky), "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["file"] == "risky.py"
    (finding,) = out["findings"]
    assert finding["rule_id"] == "B602" and finding["severity"] == "high" and finding["start_line"] == 1
    safe = tmp_path / "safe.py"
    safe.write_text("def add(a, b):\n    return a + b\n")
    assert run(["scan", str(safe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
    assert run(["scan", str(risky), "--fail-on", "never"]) == 0


def test_scan_missing_file_is_a_user_error(tmp_path: Path):
    with pytest.raises(UserError, match="cannot read"):
        run(["scan", str(tmp_path / "nope.py")])


def test_index_build_then_match(tmp_path: Path, capsys: pytest.CaptureFixture):
    project = tmp_path / "proj-0.1"
    project.mkdir()
    body = "".join(f"def f{i}(a, b):\n    total = a * {i} + b\n    for item in range(b):\n"
                   f"        total += item % (a + 1)\n    return [total, a, b]\n\n" for i in range(6))
    (project / "mod.py").write_text(body)
    out = tmp_path / "t.idx"
    assert run(["scan", "index", str(project), "--licence", "AGPL-3.0-only", "--out", str(out), "--json",
                "--k", "10", "--w", "3"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 1 and out.is_file()
    copied = tmp_path / "copied.py"
    copied.write_text(body)
    assert run(["scan", str(copied), "--json", "--index", str(out)]) == 1
    finding = json.loads(capsys.readouterr().out)["findings"][0]
    assert finding["related"]["source"] == "proj-0.1/mod.py" and finding["related"]["licence"] == "AGPL-3.0-only"
    with pytest.raises(UserError, match="--licence"):
        run(["scan", "index", str(project)])


READ_TARGET = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30));"
               "from codeloop.commands.scan import _read_target; text, _ = _read_target(sys.argv[1], None);"
               "print(len(text))")


def test_scan_reads_at_most_the_cap_from_an_endless_file():
    """Defect 4: `codeloop scan /dev/zero` read the whole (endless) input before cutting it."""
    import subprocess
    import sys

    from security.config import ScanConfig

    done = subprocess.run([sys.executable, "-c", READ_TARGET, "/dev/zero"], capture_output=True, text=True,
                          timeout=60, cwd=Path(__file__).parents[2])
    assert done.returncode == 0, done.stderr[-500:]
    assert int(done.stdout) == ScanConfig().max_chars + 1


def test_scan_reads_at_most_the_cap_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Defect 4, stdin: only the cap (plus one character, to know it was cut) is read."""
    import io

    from security.config import ScanConfig

    class Zeros(io.RawIOBase):
        def __init__(self, size: int):
            self.left, self.read_bytes = size, 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            n = min(len(buffer), self.left)
            buffer[:n] = b"a" * n
            self.left -= n
            self.read_bytes += n
            return n

    raw = Zeros(50_000_000)
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BufferedReader(raw), encoding="utf-8"))
    assert run(["scan", "-", "--json", "--fail-on", "never"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert any(f["rule_id"] == "scan.truncated" for f in out["findings"])
    assert raw.read_bytes < 4 * ScanConfig().max_chars + 65536

"""The in-sandbox harness program as shipped: one program from several files, booted from stdin."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from sandbox import harness_exchange as exchange
from sandbox.protocol import RecordScanner, parse_records, stdin_payload

SANDBOX = Path(exchange.__file__).parent


def test_the_parts_define_each_top_level_name_once():
    """The parts are concatenated: a name defined twice would silently replace the first definition."""
    seen: dict[str, str] = {}
    for part in exchange.HARNESS_PARTS:
        for node in ast.parse((SANDBOX / part).read_text()).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
                n.id for t in getattr(node, "targets", []) for n in ast.walk(t) if isinstance(n, ast.Name)]
            for name in names:
                assert seen.setdefault(name, part) == part, f"{name} is defined in {seen[name]} and {part}"


def run_boot(prologue: bytes, tmp_path) -> list[str]:
    nonce = b"ab" * 16
    payload = stdin_payload(nonce, "def f(x):\n    return x\n", ["assert f(1) == 1", "assert f(2) == 3"], str(tmp_path))
    out = subprocess.run([sys.executable, "-I", "-c", exchange.BOOT_PROGRAM], input=prologue + payload,
                         capture_output=True, timeout=60)
    scanner = RecordScanner(nonce, lambda text: None)
    scanner.feed(out.stdout)
    scanner.close()
    return [t["status"] for t in parse_records(scanner.records).tests]


def test_boot_loads_the_compiled_harness_or_compiles_the_source(tmp_path):
    assert run_boot(exchange.BOOT_PROLOGUE, tmp_path) == ["passed", "failed"]
    other_python = bytearray(exchange.BOOT_PROLOGUE)
    other_python[8:12] = b"\0\0\0\0"  # a bytecode magic no Python has: the boot compiles the source instead
    assert run_boot(bytes(other_python), tmp_path) == ["passed", "failed"]

"""`codeloop sandbox run|check|build-image`: untrusted code against tests in isolation (sandbox/)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from codeloop.errors import UserError

BACKEND_CHOICES = ("auto", "docker", "docker-exec", "docker-cold", "bwrap", "unsafe_subprocess")


def register(subparsers) -> None:
    parser = subparsers.add_parser("sandbox", help="run untrusted code against tests in isolation")
    sub = parser.add_subparsers(dest="sandbox_command", metavar="ACTION")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)

    run = sub.add_parser("run", help="run a Python file (and tests) in the sandbox")
    run.add_argument("file", type=Path, help="the code to run")
    run.add_argument("--tests", type=Path, help="assert code to run after the file")
    run.add_argument("--backend", choices=BACKEND_CHOICES, default="auto")
    run.add_argument("--timeout", type=float, default=10.0, help="wall clock, seconds")
    run.add_argument("--memory", type=int, default=512, help="memory limit, MB")
    run.add_argument("--json", action="store_true", help="print the RunResult as JSON")
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="run the hostile corpus and show what was contained")
    check.add_argument("--backend", choices=("auto", "docker", "docker-exec", "docker-cold", "bwrap"), default="auto")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=_check)

    res = sub.add_parser("resources", help="the Ray resources this machine advertises as a cluster node: "
                         "'{\"sandbox\": N}' when bwrap or Docker works here, else '{}'")
    res.add_argument("--slots", type=int, default=os.cpu_count() or 1, help="sandbox runs at once (default: cores)")
    res.set_defaults(func=_resources)

    build = sub.add_parser("build-image", help="build the sandbox rootfs and Docker image offline")
    build.add_argument("--if-missing", action="store_true", help="keep what already exists")
    build.add_argument("--no-extras", action="store_true", help="python3 only (no numpy/pandas)")
    build.set_defaults(func=_build)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from exc


def _run(args) -> int:
    from sandbox.job_runner import run
    from sandbox.types import Limits, RunStatus

    try:
        limits = Limits(timeout_s=args.timeout, memory_mb=args.memory)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    tests = _read(args.tests) if args.tests else ""
    result = run(_read(args.file), tests, limits, backend=args.backend)
    if args.json:
        print(json.dumps(asdict(result), default=lambda o: getattr(o, "value", str(o)), indent=2))
    else:
        _print_result(result)
    return 0 if result.status is RunStatus.PASSED else 1


def _print_result(result) -> None:
    from rich.console import Console

    console = Console()
    if result.stdout:
        sys.stdout.write(result.stdout if result.stdout.endswith("\n") else result.stdout + "\n")
    if result.stderr:
        sys.stderr.write(result.stderr if result.stderr.endswith("\n") else result.stderr + "\n")
    passed = sum(t.status.value == "passed" for t in result.tests)
    style = "green" if result.passed else "red"
    console.print(f"[{style}]{result.status.value}[/] backend={result.backend or '-'} "
                  f"tests={passed}/{len(result.tests)} {result.duration_s:.2f}s", highlight=False)
    if result.message:
        console.print(result.message, markup=False, highlight=False)


def _check(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from sandbox.check import run_check
    from sandbox.job_runner import resolve_backend

    name, why = resolve_backend(args.backend)
    if name is None:
        raise UserError(why)
    console = Console(stderr=args.json)
    with console.status(f"running the hostile corpus on {name}..."):
        report = run_check(name)
    if args.json:
        print(json.dumps({"backend": name, "contained": report.contained, "host_problems": report.host_problems,
                          "rows": [asdict(r) for r in report.rows]}, indent=2))
        return 0 if report.contained else 1
    table = Table(title=f"hostile corpus on {name}")
    for col in ("attack", "expected", "got", "contained", "note"):
        table.add_column(col)
    for r in report.rows:
        table.add_row(r.attack, ",".join(r.expected), r.got,
                      "[green]yes[/]" if r.contained else "[red]NO[/]", r.note)
    console.print(table)
    for problem in report.host_problems:
        console.print(f"[red]host changed:[/] {problem}")
    console.print("[green]all contained[/]" if report.contained else "[red]NOT all contained[/]")
    return 0 if report.contained else 1


def _resources(args) -> int:
    """For ``ray start --resources "$(codeloop sandbox resources)"``: a node without a sandbox backend
    advertises nothing, so the Ray executor never sends it sandbox jobs."""
    from sandbox.executor import node_resources
    from sandbox.job_runner import resolve_backend

    if args.slots < 1:
        raise UserError(f"--slots must be >= 1, got {args.slots}")
    resources = node_resources(args.slots)
    name, why = resolve_backend("auto")
    print(f"codeloop sandbox resources: {name or 'no sandbox backend'} ({why})", file=sys.stderr)
    print(json.dumps(resources))
    return 0


def _build(args) -> int:
    from sandbox.image import EXTRA_PACKAGES, ImageConfig, build

    config = ImageConfig(extras=() if args.no_extras else EXTRA_PACKAGES)
    try:
        build(config, if_missing=args.if_missing)
    except Exception as exc:  # OSError, RuntimeError, subprocess.CalledProcessError and friends
        raise UserError(f"build-image failed: {exc}") from exc
    return 0

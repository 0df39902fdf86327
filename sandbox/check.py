"""``sandbox check``: run the hostile corpus against one backend and verify the host is unchanged.

The corpus is the escape/exhaustion programs (sandbox/corpus.py) and the forgeries that try to make
wrong code pass by tampering with the checker (sandbox/tampering.py).

A row is contained when the status is one the attack expects and its side channel stayed shut
(no connection reached the loopback listener). After the corpus: no file the attacks tried to
create exists on the host, no process of ours outlives its run, no container we started is left
and no per-run cgroup of ours remains.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from sandbox.corpus import ATTACKS, Attack
from sandbox.job import make_job
from sandbox.job_runner import create_backend
from sandbox.tampering import FORGERIES
from sandbox.types import Limits, RunResult

CANARY_ENV = "CODELOOP_CHECK_CANARY"


@dataclass(frozen=True)
class CheckRow:
    attack: str
    expected: tuple[str, ...]
    got: str
    contained: bool
    note: str = ""


@dataclass
class CheckReport:
    backend: str
    rows: list[CheckRow] = field(default_factory=list)
    host_problems: list[str] = field(default_factory=list)

    @property
    def contained(self) -> bool:
        return bool(self.rows) and all(r.contained for r in self.rows) and not self.host_problems


class Listener:
    """A TCP listener on the host's loopback that counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


def _fill(attack: Attack, port: int, canary: str, checkout: Path, home: str) -> str:
    return (attack.code.replace("@PORT@", str(port)).replace("@CANARY@", canary)
            .replace("@CHECKOUT@", str(checkout)).replace("@HOME@", home))


def escape_paths(canary: str, home: str) -> list[Path]:
    """Host paths the write attacks aim at: none may exist afterwards."""
    return [Path("/etc/codeloop-escape"), Path("/usr/codeloop-escape"), Path("/codeloop-escape"),
            Path("/var/codeloop-escape"), Path(home) / f"codeloop-escape-{canary}",
            Path("/tmp") / f"planted-{canary}", Path("/dev/shm") / f"planted-{canary}"]


def descendants(pid: int) -> list[int]:
    """Live processes below ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(children.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def run_check(backend: str, base: Limits | None = None, checkout: Path | None = None,
              on_row: Callable[[CheckRow], None] | None = None) -> CheckReport:
    """Run every attack on a private instance of ``backend`` (then close it) and audit the host."""
    base = base or Limits(timeout_s=3.0)
    checkout = checkout or Path(__file__).resolve().parent.parent
    home = os.path.expanduser("~")
    canary = secrets.token_hex(8)
    report = CheckReport(backend=backend)
    instance = create_backend(backend)
    listener = Listener()
    old_env = os.environ.get(CANARY_ENV)
    os.environ[CANARY_ENV] = canary
    try:
        for attack in ATTACKS + FORGERIES:
            code = _fill(attack, listener.port, canary, checkout, home)
            job = make_job(code, list(attack.tests), replace(base, **attack.limits), reference=attack.reference)
            result = job if isinstance(job, RunResult) else instance.execute(job)
            row = _row(attack, result, listener)
            report.rows.append(row)
            if on_row:
                on_row(row)
    finally:
        if old_env is None:
            os.environ.pop(CANARY_ENV, None)
        else:
            os.environ[CANARY_ENV] = old_env
        listener.close()
        close = getattr(instance, "close", None)
        if close:
            close()
    report.host_problems = audit_host(backend, canary, home, getattr(instance, "pool_id", ""))
    return report


def _row(attack: Attack, result: RunResult, listener: Listener) -> CheckRow:
    expected = tuple(sorted(s.value for s in attack.expected))
    contained = result.status in attack.expected
    note = "" if contained else (result.message or result.stdout[-200:])[:200]
    if attack.name == "net_loopback" and listener.accepted:
        contained, note = False, f"the host listener accepted {listener.accepted} connection(s)"
    return CheckRow(attack.name, expected, result.status.value, contained, note)


def audit_host(backend: str, canary: str, home: str, pool_id: str = "") -> list[str]:
    """What the corpus left on the host (empty when nothing)."""
    problems = [f"file created on the host: {p}" for p in escape_paths(canary, home) if p.exists()]
    stray = descendants(os.getpid())
    if stray:
        problems.append(f"processes outlived their runs: {stray[:10]}")
    if backend == "bwrap":
        from sandbox.cgroup import CgroupParents

        problems += [f"cgroup left behind: {p}" for p in CgroupParents.discover().leftovers()]
    if backend.startswith("docker"):
        problems += [f"container left behind: {c}" for c in _containers_of(pool_id)]
    return problems


def _containers_of(pool_id: str) -> list[str]:
    from sandbox.container import LABEL, POOL_LABEL
    from sandbox.pool import client

    c = client()
    if c is None:
        return []
    found = c.containers.list(all=True, filters={"label": [LABEL, f"{POOL_LABEL}={pool_id}"]})
    return [x.short_id for x in found]

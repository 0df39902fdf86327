"""One run's conversation with the harness, independent of the backend that hosts the child.

A backend supplies the endpoints (pipes of a local process, or a Docker exec socket) and a way
to kill; ``Exchange`` feeds the nonce and job in, sorts output from records, and observes.
"""

from __future__ import annotations

import importlib.util
import marshal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from sandbox.job import Job
from sandbox.outcome import Observation, classify
from sandbox.protocol import RecordScanner, new_nonce, parse_records, stdin_payload
from sandbox.supervisor import Capture, Pump, StopReason, Stream
from sandbox.types import RunResult

FINAL_EVENTS = (b'"event": "done"', b'"event": "code_error"', b'"event": "tests_error"', b'"event": "dirty"')
HARNESS_PARTS = ("comparison.py", "worker.py", "mandatory_asserts.py", "asserts.py", "link.py", "judge_records.py",
                 "harness_request.py", "harness.py")
"""The in-sandbox harness program, in dependency order (stdlib-only files; see harness.py)."""
HARNESS_SOURCE = "\n".join(Path(__file__).with_name(part).read_text(encoding="utf-8") for part in HARNESS_PARTS)
ZYGOTE_PROGRAM = (
    "_harness = {}\n"
    f"exec(compile({HARNESS_SOURCE!r}, '<harness>', 'exec'), _harness)\n"
    "harness_main = _harness['main']\n"
    + (Path(__file__).with_name("job_server.py")).read_text(encoding="utf-8")
)


def harness_namespace() -> dict:
    """The harness program's functions, loaded here without running it (tests use this)."""
    namespace: dict = {"__name__": "codeloop_harness"}
    exec(compile(HARNESS_SOURCE, "<harness>", "exec"), namespace)
    return namespace


BOOT_PROGRAM = """
import marshal, os
from _frozen_importlib_external import MAGIC_NUMBER
def take(n):
    data = b""
    while len(data) < n:
        chunk = os.read(0, n - len(data))
        if not chunk:
            break
        data += chunk
    return data
head = take(8)
blob, source = take(int.from_bytes(head[:4], "big")), take(int.from_bytes(head[4:], "big"))
program = marshal.loads(blob[4:]) if blob[:4] == MAGIC_NUMBER else compile(source, "<harness>", "exec")
del head, blob, source, take
exec(program, {"__name__": "__main__"})
"""
"""The command line's program: read the harness ahead of the request on stdin, compiled (when the sandbox's
Python has our bytecode version: compiling the harness costs ~20 ms a run, loading it ~1 ms) or as source.
NOTE: it reads exactly the prologue, unbuffered: a buffered read would pull the start of the request (the
nonce, the tests) into memory that the worker, forked next, inherits."""


def _boot_prologue() -> bytes:
    blob = importlib.util.MAGIC_NUMBER + marshal.dumps(compile(HARNESS_SOURCE, "<harness>", "exec"))
    source = HARNESS_SOURCE.encode("utf-8")
    return len(blob).to_bytes(4, "big") + len(source).to_bytes(4, "big") + blob + source


BOOT_PROLOGUE = _boot_prologue()


def harness_argv(python: str, server: bool = False) -> list[str]:
    """The child's command line: isolated mode (no env vars, no user site, no cwd on sys.path). Its stdin
    must start with BOOT_PROLOGUE (see ``Exchange.stdin``). ``server`` gives the in-container job server
    (sandbox/job_server.py, the harness compiled once per container) instead of one harness."""
    return [python, "-I", "-c", ZYGOTE_PROGRAM if server else BOOT_PROGRAM]


class Exchange:
    """Per-run capture state. ``stdout_sink`` / ``stderr_sink`` take raw child bytes."""

    def __init__(self, job: Job, workdir: str, clean: tuple[str, ...] = ()) -> None:
        self.job = job
        nonce = new_nonce()
        self.payload = stdin_payload(nonce, job.code, job.tests, workdir, clean, job.reference)
        cap = job.limits.max_output_bytes
        self.out, self.err = Capture(cap), Capture(cap)
        self.scanner = RecordScanner(nonce, self.out.add)
        self.started = time.monotonic()
        self.deadline = self.started + job.limits.timeout_s

    @property
    def stdin(self) -> bytes:
        """What a child started with ``harness_argv(python)`` reads: the harness, then the request."""
        return BOOT_PROLOGUE + self.payload

    def stdout_sink(self, chunk: bytes) -> None:
        self.scanner.feed(chunk)

    def stderr_sink(self, chunk: bytes) -> None:
        self.err.add(chunk)

    def harness_finished(self) -> bool:
        """True once the harness sent its last record (it exits right after)."""
        records = self.scanner.records
        return bool(records) and any(tag in records[-1] for tag in FINAL_EVENTS)

    def pump(self, pump: Pump) -> StopReason:
        return pump.run(self.deadline, self.job.limits.kill_output_bytes,
                        lambda: self.out.total + self.err.total)

    def result(self, reason: StopReason, exit_code: int | None, backend: str,
               oom: bool | None = None) -> RunResult:
        self.scanner.close()
        obs = Observation(
            transcript=parse_records(self.scanner.records, self.scanner.malformed),
            declared_tests=self.job.declared_tests,
            stdout=self.out.text(), stderr=self.err.text(),
            duration_s=time.monotonic() - self.started, exit_code=exit_code,
            timed_out=reason is StopReason.TIMEOUT, output_exceeded=reason is StopReason.OUTPUT,
            oom=oom, parent_killed=reason is not StopReason.EOF, timeout_s=self.job.limits.timeout_s,
            output_limit=self.job.limits.kill_output_bytes, backend=backend,
        )
        return classify(obs)


def run_process(argv: list[str], job: Job, workdir: str, backend: str,
                kill: Callable[[subprocess.Popen], None], env: dict[str, str] | None = None,
                oom: Callable[[], bool | None] = lambda: None, cwd: str = "/") -> RunResult:
    """Run a local child process (its own session) through the harness protocol.

    ``kill`` must leave nothing of the child alive; it is called whenever the run did not end
    by itself with closed streams, and always before returning.
    """
    ex = Exchange(job, workdir)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True, env=env or {},
                            close_fds=True, cwd=cwd)
    assert proc.stdin and proc.stdout and proc.stderr
    reason = StopReason.TIMEOUT
    try:
        pump = Pump(proc.stdin.fileno(), ex.stdin, proc.stdin.close,
                    [Stream(proc.stdout.fileno(), ex.stdout_sink), Stream(proc.stderr.fileno(), ex.stderr_sink)],
                    alive=lambda: proc.poll() is None and not ex.harness_finished())
        reason = ex.pump(pump)
        if reason is StopReason.EOF:
            try:
                proc.wait(timeout=max(0.0, ex.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                reason = StopReason.TIMEOUT
    finally:
        kill(proc)
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()
    code = proc.returncode
    exit_code = 128 - code if code is not None and code < 0 else code
    return ex.result(reason, exit_code, backend, oom=oom())

"""The parent's side of the result protocol: per-run nonce, stdin payload, record extraction.

Trust boundary: everything the child writes is untrusted. Inside the sandbox the harness is two
processes (sandbox/harness.py): a judge that forks the worker before it reads the nonce from its
stdin, and the worker that runs the code under test. Only the judge writes records; it tags each
with a 128-bit random nonce that the parent sends over the child's stdin, which the judge reads to
EOF and replaces with /dev/null. The worker's memory never holds the nonce and it cannot read the
judge's (non-dumpable), so:

- printing fake markers (with any guessed nonce) is just output: it is never parsed as a result;
- exiting early (``os._exit`` after a fake "passed" line) leaves the remaining tests NOT_RUN;
- records must arrive in order (start, code_ok, test 0..n-1, done), each once; anything else
  that carries the nonce is reported as a protocol violation (status ERROR), never as a pass;
  so is a ``violation`` record, which the judge writes when the worker breaks their protocol.

Isolation (what the code can reach) never depends on the protocol: it comes from the backend.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

RECORD_PREFIX = b"\x1eCLR"
MAX_RECORD_BYTES = 64 * 1024


def new_nonce() -> bytes:
    return secrets.token_hex(16).encode("ascii")


def stdin_payload(nonce: bytes, code: str, tests: str | Sequence[str], workdir: str,
                  clean: Sequence[str] = (), reference: str = "") -> bytes:
    """What the parent writes to the harness's stdin (then closes it). The harness empties the
    ``clean`` dirs (default: the work dir) before running anything."""
    body = {"code": code, "tests": tests if isinstance(tests, str) else list(tests), "workdir": workdir,
            "clean": list(clean) or [workdir], "reference": reference}
    return nonce + b"\n" + json.dumps(body).encode("utf-8")


class RecordScanner:
    """Splits the child's stdout into user text and records carrying this run's nonce.

    Invariant: user text never contains the marker (it cannot know the nonce), so a record is
    exactly ``marker + json + "\\n"``; text between records is passed on unchanged.
    """

    def __init__(self, nonce: bytes, on_text) -> None:
        self.marker = RECORD_PREFIX + nonce + b":"
        self.on_text = on_text
        self.records: list[bytes] = []
        self.malformed = False
        self._buf = b""

    def feed(self, chunk: bytes) -> None:
        buf = self._buf + chunk
        while True:
            start = buf.find(self.marker)
            if start < 0:
                keep = min(len(buf), len(self.marker) - 1)
                self._emit(buf[: len(buf) - keep])
                self._buf = buf[len(buf) - keep:]
                return
            self._emit(buf[:start])
            end = buf.find(b"\n", start)
            if end < 0:
                self._buf = buf[start:]
                if len(self._buf) > MAX_RECORD_BYTES:
                    self.malformed = True
                    self._buf = b""
                return
            self.records.append(buf[start + len(self.marker): end])
            buf = buf[end + 1:]

    def close(self) -> None:
        if self._buf.startswith(self.marker):
            self.malformed = True  # a record cut off by the end of the stream
        else:
            self._emit(self._buf)
        self._buf = b""

    def _emit(self, data: bytes) -> None:
        if data:
            self.on_text(data)


@dataclass
class Transcript:
    """What the harness reported, validated for order. ``violation`` explains a bad sequence."""

    num_tests: int | None = None
    started: bool = False
    code_ok: bool = False
    code_error: dict | None = None
    tests_error: dict | None = None
    dirty: bool = False
    done: bool = False
    tests: list[dict] = field(default_factory=list)
    violation: str = ""


def parse_records(records: list[bytes], malformed: bool = False) -> Transcript:
    t = Transcript()
    if malformed:
        t.violation = "a result record was cut off or oversized"
    for raw in records:
        if t.violation:
            break
        try:
            event = json.loads(raw)
            _apply(t, event)
        except (ValueError, TypeError, KeyError) as exc:
            t.violation = f"bad result record: {exc}"
    return t


def _apply(t: Transcript, event: dict) -> None:
    kind = event["event"]
    if t.done or t.code_error or t.tests_error:
        raise ValueError(f"record {kind!r} after the end")
    if kind == "violation":
        t.violation = str(event.get("message", "the worker broke the harness protocol"))[:500]
    elif kind == "dirty" and not t.started:
        t.dirty = True
    elif kind == "tests_error" and not t.started:
        t.tests_error = event
    elif kind == "start" and not t.started:
        t.started, t.num_tests = True, int(event["n"])
    elif kind == "code_error" and t.started and not t.code_ok:
        t.code_error = event
    elif kind == "code_ok" and t.started and not t.code_ok:
        t.code_ok = True
    elif kind == "test" and t.code_ok and event["index"] == len(t.tests) < (t.num_tests or 0):
        if event["status"] not in ("passed", "failed", "error"):
            raise ValueError(f"unknown test status {event['status']!r}")
        t.tests.append(event)
    elif kind == "done" and t.code_ok and len(t.tests) == t.num_tests:
        t.done = True
    else:
        raise ValueError(f"unexpected record {kind!r}")

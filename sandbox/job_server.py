"""The in-container job server of a warm Docker container: one fork per job, no exec per job.

Executed INSIDE the container (stdlib only) as ``python3 -I -c <harness program + this source>``
through ONE long-lived ``docker exec``; it saves the ~100 ms that runc exec + interpreter start
cost per job. Framing on its stdin: 4-byte big-endian length + harness request
(``<nonce>\\n<json>``). On its stdout: 8-byte headers ``>BxxxL`` (kind, size) + data, kind 1/2 =
the job's stdout/stderr, 3 = JSON ``{"exit": code}`` once the job's process is gone.

Trust: per job the server forks a fresh harness (the judge, sandbox/harness.py) as soon as the
length header arrives, BEFORE it reads the request body, and feeds the body to the judge's stdin.
The judge forks its worker before it reads that stdin, so the code under test never shares memory
with a request. The server reads each body into one buffer that it zeroes after forwarding, so not
even earlier requests (the same task's tests, run for the previous sample) linger in what a later
worker inherits. The job runs with fresh pipes as fds 0/1/2, every other fd closed, in its own
session. The server makes itself non-dumpable first, so a job running under the same uid can
neither ptrace it nor open its /proc fds or memory; a job may still kill it, which the parent sees
as a lost worker (the container is then recycled, never reused).
"""

import ctypes
import json
import os
import select
import struct
import time

PR_SET_DUMPABLE = 4
ORPHAN_GRACE_S = 0.2


def _prctl_dumpable(flag):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)
    except Exception:
        pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _frame(fd, kind, data):
    _write_all(fd, struct.pack(">BxxxL", kind, len(data)))
    _write_all(fd, data)


def _read_into(fd, buf):
    """Fill ``buf`` from ``fd``; False at EOF. Reads in place: no copy of the request is left behind."""
    view, got = memoryview(buf), 0
    while got < len(buf):
        n = os.readv(fd, [view[got:]])
        if not n:
            return False
        got += n
    return True


def _spawn_judge():
    """Fork the job's harness now, before the request body is read: (pid, stdin w, stdout r, stderr r)."""
    r_in, w_in = os.pipe()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.dup2(r_in, 0)
            os.dup2(w_out, 1)
            os.dup2(w_err, 2)
            os.closerange(3, 4096)
            harness_main()  # noqa: F821 - from the harness program prepended to this source
        finally:
            os._exit(70)
    for fd in (r_in, w_out, w_err):
        os.close(fd)
    return pid, w_in, r_out, r_err


def _forward(ctl_in, w_in, size):
    """Copy one request body to the judge's stdin; False if the parent's stream ended first."""
    body = bytearray(size)
    try:
        complete = _read_into(ctl_in, body)
        if complete:
            _write_all(w_in, body)
    except OSError:
        pass  # the judge died early: its exit status says so
    finally:
        body[:] = bytes(size)  # zeroed before anything else is forked from this process
        os.close(w_in)
    return complete


def _serve_one(ctl_in, ctl_out, size, relay):
    """One job: fork its judge, feed it the request, relay its output through ``relay`` (one reused
    buffer, zeroed after the job: a run's output, which may name expected values, is not left in memory
    that the next run's processes inherit)."""
    pid, w_in, r_out, r_err = _spawn_judge()
    complete = _forward(ctl_in, w_in, size)
    streams = {r_out: 1, r_err: 2}
    status, exited_at = None, 0.0
    while streams:
        if status is not None and time.monotonic() - exited_at > ORPHAN_GRACE_S:
            break  # something the job left behind holds the pipes: report anyway
        ready, _, _ = select.select(list(streams), [], [], 0.05)
        for fd in ready:
            n = os.readv(fd, [relay])
            if n:
                _frame(ctl_out, streams[fd], memoryview(relay)[:n])
            else:
                os.close(fd)
                del streams[fd]
        if status is None:
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status, exited_at = st, time.monotonic()
    for fd in streams:
        os.close(fd)
    if status is None:
        _, status = os.waitpid(pid, 0)
    relay[:] = bytes(len(relay))
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    _frame(ctl_out, 3, json.dumps({"exit": code, "orphans": bool(streams)}).encode())
    return complete


def serve():
    _prctl_dumpable(0)
    ctl_in, ctl_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    relay = bytearray(65536)
    while True:
        header = os.read(ctl_in, 4)
        while header and len(header) < 4:
            more = os.read(ctl_in, 4 - len(header))
            header = header + more if more else b""
        if len(header) < 4 or not _serve_one(ctl_in, ctl_out, struct.unpack(">L", header)[0], relay):
            os._exit(0)


if __name__ == "__main__":
    serve()

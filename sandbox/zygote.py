"""The in-container job server of a warm Docker container: one fork per job, no exec per job.

Executed INSIDE the container (stdlib only) as ``python3 -I -c <harness source + this source>``
through ONE long-lived ``docker exec``; it saves the ~100 ms that runc exec + interpreter start
cost per job. Framing on its stdin: 4-byte big-endian length + harness request
(``<nonce>\\n<json>``). On its stdout: 8-byte headers ``>BxxxL`` (kind, size) + data, kind 1/2 =
the job's stdout/stderr, 3 = JSON ``{"exit": code}`` once the job's process is gone.

Trust: the job runs in a forked child with fresh pipes as fds 1/2, /dev/null as fd 0 and every
other fd closed, in its own session. The server makes itself non-dumpable first, so a job running
under the same uid can neither ptrace it nor open its /proc fds or memory; a job may still kill
it, which the parent sees as a lost worker (the container is then recycled, never reused).
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
    _write_all(fd, struct.pack(">BxxxL", kind, len(data)) + data)


def _read_exact(fd, n):
    chunks = []
    while n:
        chunk = os.read(fd, n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _child(nonce, job, w_out, w_err):
    try:
        os.setsid()
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.closerange(3, 4096)
        _prctl_dumpable(1)
        try:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write("1000")  # the OOM killer takes the job, not the server
        except OSError:
            pass
        run_job(nonce, job)  # noqa: F821 - defined by the harness source prepended to this one
    finally:
        os._exit(70)


def _serve_one(ctl_out, nonce, job):
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:
        _child(nonce, job, w_out, w_err)
    os.close(w_out)
    os.close(w_err)
    streams = {r_out: 1, r_err: 2}
    status, exited_at = None, 0.0
    while streams:
        if status is not None and time.monotonic() - exited_at > ORPHAN_GRACE_S:
            break  # something the job left behind holds the pipes: report anyway
        ready, _, _ = select.select(list(streams), [], [], 0.05)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                _frame(ctl_out, streams[fd], data)
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
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    _frame(ctl_out, 3, json.dumps({"exit": code, "orphans": bool(streams)}).encode())


def serve():
    _prctl_dumpable(0)
    ctl_in, ctl_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    while True:
        header = _read_exact(ctl_in, 4)
        if header is None:
            os._exit(0)
        request = _read_exact(ctl_in, struct.unpack(">L", header)[0])
        if request is None:
            os._exit(0)
        nonce, job = parse_request(request)  # noqa: F821 - from the harness source
        del request
        _serve_one(ctl_out, nonce, job)
        del nonce, job


if __name__ == "__main__":
    serve()

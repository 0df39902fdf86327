"""Judge side: one worker process and the two pipes to it (framing in worker.py's docstring).

Executed INSIDE the sandbox, in the judge process (stdlib only; part of the harness program, see
harness.py). ``WorkerLink.fork`` must be called before the judge holds anything the worker must not
see: the child is a copy of the judge's memory at that moment.
"""

import marshal
import os
import select
import signal

MAX_FRAME_BYTES = 64 * 2**20
EXIT_POLL_S = 0.05
PR_SET_DUMPABLE = 4


class BrokenProtocol(Exception):
    """The worker sent something an honest worker never sends."""


def set_dumpable(flag):
    """prctl(PR_SET_DUMPABLE): 0 keeps processes of the same uid out of ours (ptrace, /proc/PID/mem)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)


class WorkerLink:
    """A forked worker: ``send`` a message, ``receive`` its messages, notice when it is gone."""

    def __init__(self, pid, to_worker, from_worker):
        self.pid, self.to_worker, self.from_worker = pid, to_worker, from_worker
        self.buffer = bytearray()
        self.on_wait = lambda: None
        """Called each time the judge would wait for data from the worker."""
        self.status = None
        """The worker's wait status once it has exited."""

    @classmethod
    def fork(cls):
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            try:
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)  # the parent's stdin, nonce still unread, is never readable here
                os.close(null)
                os.close(to_worker_w)
                os.close(from_worker_r)
                set_dumpable(1)  # an ordinary process again: its own children may inspect it, as usual
                worker_main(from_worker_w, to_worker_r)  # noqa: F821 - defined by worker.py
            finally:
                os._exit(70)
        os.close(to_worker_r)
        os.close(from_worker_w)
        return cls(pid, to_worker_w, from_worker_r)

    def send(self, message):
        data = marshal.dumps(message)
        self.write(len(data).to_bytes(4, "big") + data)

    def write(self, data):
        view = memoryview(data)
        while view:
            view = view[os.write(self.to_worker, view):]

    def notify(self, data):
        """An answer or notice (a few bytes: atomic, never blocks); lost if the worker is gone already."""
        try:
            os.write(self.to_worker, data)
        except BrokenPipeError:
            pass

    def receive(self):
        """The worker's next message (a tuple whose first item is a str), or None once it is gone."""
        header = self.read_exact(4)
        if header is None:
            return None
        size = int.from_bytes(header, "big")
        if size > MAX_FRAME_BYTES:
            raise BrokenProtocol(f"a message of {size} bytes")
        body = self.read_exact(size)
        if body is None:
            return None  # the worker died mid-message
        try:
            msg = marshal.loads(body)
        except (TypeError, ValueError, EOFError):
            msg = None
        if type(msg) is not tuple or not msg or type(msg[0]) is not str:
            raise BrokenProtocol("a malformed message")
        return msg

    def read_exact(self, n):
        """``n`` bytes from the worker, or None once it is gone. Its children may hold the pipe open after
        it exited (orphans), so an exited worker with nothing left in the pipe counts as gone too.
        Reads ahead in big chunks: the worker batches its messages."""
        while len(self.buffer) < n:
            self.on_wait()
            if not select.select([self.from_worker], [], [], EXIT_POLL_S)[0]:
                if self.exited() and not select.select([self.from_worker], [], [], 0)[0]:
                    return None
                continue
            chunk = os.read(self.from_worker, max(n - len(self.buffer), 1 << 16))
            if not chunk:
                return None
            self.buffer += chunk
        data = bytes(self.buffer[:n])
        del self.buffer[:n]
        return data

    def exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            self.status = status if pid else None
        return self.status is not None

    def kill(self):
        """SIGKILL the worker (if still running) and reap it."""
        if not self.exited():
            os.kill(self.pid, signal.SIGKILL)
            self.status = os.waitpid(self.pid, 0)[1]
        os.close(self.to_worker)
        os.close(self.from_worker)

    def wait(self):
        """The worker's wait status, once it has exited."""
        if self.status is None:
            self.status = os.waitpid(self.pid, 0)[1]
        return self.status

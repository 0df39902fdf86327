"""The in-sandbox harness: a judge process that decides, a worker process that runs the code.

This program is executed INSIDE the sandbox as ``python3 -I -c <program>``, where the program is
sandbox/comparison.py + worker.py + asserts.py + this file (stdlib only, no codeloop imports; see
exchange.py). The parent's side of the protocol lives in sandbox/protocol.py.

Trust boundary (the harness rule: nothing the code under test can reach decides whether it passed):
- The *judge* (this process) makes itself non-dumpable, then forks the *worker* BEFORE it reads
  stdin. Only then does it read the run's nonce and the job. So the worker's memory never holds the
  nonce, and the worker (same uid, no capabilities) can neither ptrace the judge nor open its
  /proc/PID/{mem,fd,environ}. The judge writes every result record; records carry the nonce, so
  nothing the worker prints or writes to any fd it holds can be taken for one.
- The judge rewrites each test's asserts into *sites* (sandbox/asserts.py). The worker computes
  only a site's probes (the calls into the code under test) and sends their values as plain
  builtin data; the judge holds the comparison and the expected constants and decides with real
  builtins (sandbox/comparison.py). The code under test therefore cannot fake a comparison
  (``__eq__``, ``__bool__``, ``__sub__``, patched builtins, an ``int`` subclass), cannot read the
  expected value of a rewritten assert (it is not in its process), and cannot answer a site
  without producing the value the test expects.
- A test passes only if the worker reports that it ended without an exception, AND every binding
  site it observed held, AND every mandatory site (one that always runs when the test runs to the
  end) was observed as often as it must run (N times in a ``for`` over ``range(N)``). Killing, exiting, skipping code with a tracer or forging the worker's own
  messages (it can: it owns its process, its pipe fds, gc, frames and ctypes) therefore cannot pass
  a test whose asserts are mandatory sites: that is every top-level assert (MBPP, RL tasks) and the
  straight-line asserts of HumanEval's ``check``.

What remains in the worker's hands, by necessity: a test's verdict where its checks are not
rewritable sites (a ``unittest`` suite, a differential test that computes the expected value in
the same process, an assert under ``if``/``try``) rests on the worker's claim that the test ended
without an exception. Code that deliberately forges that claim (gc, frames, ctypes, its pipe) is
flagged by the static tamper scan (security/) rather than stopped here.

Protocol to the parent:
  stdin  <- b"<nonce hex>\\n" + JSON {"code", "tests": str | [str], "workdir", "clean": [dirs]}; EOF.
            Read to EOF, then fd 0 points at /dev/null.
  stdout -> the worker's output, interleaved with records ``RS "CLR" <nonce> ":" <json> "\\n"``,
            each one os.write of at most PIPE_BUF bytes (atomic on a pipe, so never torn by output
            the worker writes at the same time). Events, in order:
            start{n} · code_ok | code_error{kind,message} · test{index,status,kind,message}* · done;
            dirty or tests_error instead of start; violation{message} when the worker breaks the
            worker protocol. The judge exits as the worker did (same code, or same signal).
"""

import ast
import json
import marshal
import os
import select
import shutil
import signal
import sys

MAX_RECORD_BYTES = 4000
"""Below PIPE_BUF (4096), so one os.write of a record is atomic on the parent's pipe."""
MAX_FRAME_BYTES = 64 * 2**20
PR_SET_DUMPABLE = 4
EXIT_POLL_S = 0.05


def split_tests(tests):
    """A list stays as is; a string becomes one test per top-level assert (with the statements
    before it as its setup), or one single test when it has no top-level assert."""
    if isinstance(tests, list):
        return [str(t) for t in tests]
    tree = ast.parse(tests, "<tests>")
    if not any(isinstance(node, ast.Assert) for node in tree.body):
        return [tests] if tree.body else []
    lines = tests.splitlines(keepends=True)
    chunks, start = [], 0
    for node in tree.body:
        if isinstance(node, ast.Assert):
            chunks.append((start, node.end_lineno))
            start = node.end_lineno
    if start < len(lines) and "".join(lines[start:]).strip():
        chunks.append((start, len(lines)))
    # Keep line numbers true in tracebacks: pad each chunk with the newlines before it.
    return ["\n" * a + "".join(lines[a:b]) for a, b in chunks]


def clean_workdir(workdir):
    """Empty a writable dir (a warm container reuses it). Returns False if anything stays."""
    if not os.path.isdir(workdir):
        return True
    for name in os.listdir(workdir):
        path = os.path.join(workdir, name)
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                try:
                    os.chmod(os.path.join(root, d), 0o700)
                except OSError:
                    pass
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True)
        else:
            try:
                os.unlink(path)
            except OSError:
                pass
    return not os.listdir(workdir)


def set_dumpable(flag):
    """prctl(PR_SET_DUMPABLE): 0 keeps processes of the same uid out of ours (ptrace, /proc/PID/mem)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, flag, 0, 0, 0)


def parse_request(data):
    """b"<nonce>\\n<json>" -> (nonce, job)."""
    nonce, _, payload = data.partition(b"\n")
    return nonce, json.loads(payload.decode("utf-8"))


def fork_worker():
    """(pid, to_worker fd, from_worker fd). Call before reading anything secret: the child is a copy."""
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
    return pid, to_worker_w, from_worker_r


class Judge:
    """Runs one job through the worker and writes the records. ``run`` never returns."""

    def __init__(self, nonce, job, worker):
        self.mark = b"\x1eCLR" + nonce + b":"
        self.job = job
        self.pid, self.to_worker, self.from_worker = worker
        self.sites = {}
        self.status = None
        """The worker's wait status once it has exited."""

    def report(self, event, **fields):
        fields["event"] = event
        record = self.mark + json.dumps(fields).encode("utf-8") + b"\n"
        while len(record) > MAX_RECORD_BYTES and fields.get("message"):
            fields["message"] = fields["message"][: len(fields["message"]) // 2]
            record = self.mark + json.dumps(fields).encode("utf-8") + b"\n"
        os.write(1, record)

    def run(self):
        job = self.job
        if not all(clean_workdir(d) for d in job.get("clean", [job["workdir"]])):
            self.report("dirty")
            self.finish_early(3)
        try:
            tests = [self.rewrite(i, t) for i, t in enumerate(split_tests(job["tests"]))]
        except BaseException as exc:  # noqa: BLE001 - any failure to read the tests is reported
            self.report("tests_error", kind=type(exc).__name__, message=message(exc))  # noqa: F821
            self.finish_early(2)
        self.report("start", n=len(tests))
        self.send((job["workdir"], job["code"], tests))
        del self.job, job
        first = self.receive()
        if first is None or first[0] != "code_ok":
            if first is not None and first[0] == "code_error" and len(first) == 3:
                self.report("code_error", kind=str(first[1]), message=str(first[2]))
            elif first is not None:
                self.violation(f"expected code_ok, got {first[0]!r}")
            self.mirror_worker()
        self.report("code_ok")
        for index in range(len(tests)):
            if not self.run_test(index):
                self.mirror_worker()
        self.report("done")
        if not self.worker_exited():
            os.kill(self.pid, signal.SIGKILL)  # all is decided; nothing the worker does now counts
            os.waitpid(self.pid, 0)
        os._exit(0)

    def rewrite(self, index, source):
        code, sites = rewrite_test(source, f"<test {index}>", index, len(self.sites))  # noqa: F821
        self.sites.update((s.id, s) for s in sites)
        return code

    def run_test(self, index):
        """Answer the worker's sites until it ends test ``index``; report it. False if the worker is gone."""
        failure, observed = None, {}
        while True:
            msg = self.receive()
            if msg is None:
                return False
            kind, site = msg[0], self.sites.get(msg[1]) if len(msg) > 1 and type(msg[1]) is int else None
            if kind == "site" and len(msg) == 4 and site is not None and site.test == index:
                try:
                    values = self.decode(msg[2])
                    holds, status, detail = judge(site.template, site.bare, values, msg[3])  # noqa: F821
                except BadValue as exc:  # noqa: F821
                    self.violation(str(exc))
                    return False
                observed[site.id] = observed.get(site.id, 0) + 1
                if not holds and site.binding and failure is None:
                    failure = (site, status, detail, values)
                os.write(self.to_worker, b"1" if holds else b"0")
            elif kind == "end" and len(msg) == 5 and msg[1] == index and all(type(x) is str for x in msg[2:]):
                self.report("test", index=index, **self.verdict(index, msg, failure, observed))
                return True
            else:
                self.violation(f"unexpected message {kind[:40]!r} during test {index}")
                return False

    def verdict(self, index, end, failure, observed):
        _, _, status, kind, text = end
        if failure is not None:
            site, site_status, detail, values = failure
            if status == "failed" and site.message is None and text != "AssertionError":
                return {"status": "failed", "kind": "AssertionError", "message": str(text)}  # the assert's own message
            what = site.message if site.message is not None else f"{site.text} (got {describe(values)})"  # noqa: F821
            kind = "AssertionError" if site_status == "failed" else detail.partition(":")[0]
            line = f"{kind}: {what}" + (f"; {detail}" if detail else "")
            return {"status": site_status, "kind": kind, "message": line[:2000]}
        if status != "passed":
            return {"status": "error" if status != "failed" else "failed", "kind": str(kind), "message": str(text)}
        missing = sorted((s.line, observed.get(s.id, 0), s.mandatory) for s in self.sites.values()
                         if s.test == index and observed.get(s.id, 0) < s.mandatory)
        if missing:
            line, seen, needed = missing[0]
            return {"status": "failed", "kind": "AssertionError",
                    "message": f"AssertionError: the assert on line {line} ran {seen} of {needed} times"}
        return {"status": "passed"}

    @staticmethod
    def decode(values):
        """Probe values as plain data (or Opaque); BadValue for anything an honest worker never sends."""
        if type(values) is not tuple:
            raise BadValue("malformed probe values")  # noqa: F821
        out = []
        for item in values:
            if type(item) is not tuple or len(item) != 2:
                raise BadValue("malformed probe value")  # noqa: F821
            is_data, payload = item
            if is_data is True and type(payload) is bytes:
                try:
                    out.append(validate(marshal.loads(payload)))  # noqa: F821
                except (TypeError, ValueError, EOFError) as exc:
                    raise BadValue(f"unreadable probe value: {exc}") from None  # noqa: F821
            elif is_data is False and type(payload) is str:
                out.append(Opaque(payload[:100]))  # noqa: F821
            else:
                raise BadValue("malformed probe value")  # noqa: F821
        return out

    def send(self, message):
        data = marshal.dumps(message)
        os.write(self.to_worker, len(data).to_bytes(4, "big"))
        view = memoryview(data)
        while view:
            view = view[os.write(self.to_worker, view):]

    def receive(self):
        """The worker's next message (a tuple), or None once it is gone; a bad frame is a violation."""
        header = self.read_exact(4)
        if header is None:
            return None
        size = int.from_bytes(header, "big")
        if size > MAX_FRAME_BYTES:
            self.violation(f"a message of {size} bytes")
            self.mirror_worker()
        body = self.read_exact(size)
        if body is None:
            return None  # the worker died mid-message
        try:
            msg = marshal.loads(body)
        except (TypeError, ValueError, EOFError):
            msg = None
        if type(msg) is not tuple or not msg or type(msg[0]) is not str:
            self.violation("a malformed message")
            self.mirror_worker()
        return msg

    def read_exact(self, n):
        """``n`` bytes from the worker, or None once it is gone. Its children may hold the pipe open after
        it exited (orphans), so an exited worker with nothing left in the pipe counts as gone too."""
        chunks = []
        while n:
            if not select.select([self.from_worker], [], [], EXIT_POLL_S)[0]:
                if self.worker_exited() and not select.select([self.from_worker], [], [], 0)[0]:
                    return None
                continue
            chunk = os.read(self.from_worker, min(n, 1 << 20))
            if not chunk:
                return None
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    def worker_exited(self):
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            self.status = status if pid else None
        return self.status is not None

    def violation(self, text):
        self.report("violation", message=f"the code broke the worker protocol: {text}")
        if not self.worker_exited():
            os.kill(self.pid, signal.SIGKILL)

    def finish_early(self, code):
        self.send(None)
        if not self.worker_exited():
            os.waitpid(self.pid, 0)
        os._exit(code)

    def mirror_worker(self):
        """End this process as the worker ended: the parent reads exit codes and signals as before."""
        os.close(self.to_worker)
        status = self.status if self.status is not None else os.waitpid(self.pid, 0)[1]
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main():
    set_dumpable(0)
    worker = fork_worker()
    data = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    nonce, job = parse_request(data)
    del data
    Judge(nonce, job, worker).run()


if __name__ == "__main__":
    main()

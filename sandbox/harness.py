"""The in-sandbox harness: a judge process that decides, a worker process that runs the code.

This program runs INSIDE the sandbox: the stdlib-only files of harness_exchange.HARNESS_PARTS
(comparison.py, worker.py, mandatory_asserts.py, asserts.py, link.py, judge_records.py, harness_request.py
and this file, no codeloop imports), booted by ``python3 -I -c`` from its bytecode sent ahead of the request
on stdin, or compiled once per container by the docker job server (see harness_exchange.py and
job_server.py). The parent's side of the protocol lives in sandbox/protocol.py.

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
  end) was observed as often as it must run (N times in a ``for`` over ``range(N)``). Killing,
  exiting, skipping code with a tracer or forging the worker's own messages (it can: it owns its
  process, its pipe fds, gc, frames and ctypes) therefore cannot pass a test whose asserts are
  mandatory sites: every top-level assert (MBPP, RL tasks), the straight-line asserts of
  HumanEval's ``check`` and the per-input asserts of differential tests.
- Differential tests (HumanEval+, MBPP+): the job carries a trusted *reference* program. Before the
  code runs, the judge forks a second, fresh worker that runs the same tests against the reference;
  its values at ``__codeloop_same__(value)`` asserts (and per-input time limits it shares) are kept
  in the judge. The code's worker, forked before any of that, then has to produce the same values
  (comparison.same: EvalPlus's rule) at the same asserts, in the same order.

What remains in the worker's hands, by necessity: a test's verdict where its checks are not
rewritable sites (a ``unittest`` suite, an assert under ``if``/``try``, a value compared with
another value the test computed itself) rests on the worker's claim that the test ended without an
exception, or on values it computed. Code that deliberately forges that claim (gc, frames, ctypes,
its pipe) is flagged by the static tamper scan (security/tamper.py) rather than stopped here.

Protocol to the parent:
  stdin  <- (the boot prologue) b"<nonce hex>\\n" + JSON {"code", "tests": str | [str], "workdir",
            "clean": [dirs], "reference": str}; EOF.
            Read to EOF, then fd 0 points at /dev/null.
  stdout -> the worker's output, interleaved with records ``RS "CLR" <nonce> ":" <json> "\\n"``,
            each one os.write of at most PIPE_BUF bytes (atomic on a pipe, so never torn by output
            the worker writes at the same time). Events, in order:
            start{n} · code_ok | code_error{kind,message} · test{index,status,kind,message}* · done;
            dirty or tests_error instead of start; violation{message} when the worker breaks the
            worker protocol. The judge exits as the worker did (same code, or same signal).
"""

import marshal
import os
import shutil
import signal
import sys


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


class Judge:
    """Runs one job through the worker (after the reference, if any) and writes the records; ``run`` never
    returns. Per test it keeps the first binding site that failed and how often each site was observed."""

    def __init__(self, nonce, job, worker):
        self.job = job
        self.worker = worker
        self.sites = {}
        self.recorded = {}
        """site id -> [the reference run's same-values, one dict per observation]"""
        self.shared = {}
        self.reference_failures = {}
        self.out = JudgeRecords(nonce)  # noqa: F821 - defined by judge_records.py
        worker.on_wait = self.out.flush_if_due

    def run(self):
        job = self.job
        self.clean_or_quit()
        try:
            tests = [self.rewrite(i, t) for i, t in enumerate(split_tests(job["tests"]))]  # noqa: F821
        except BaseException as exc:  # noqa: BLE001 - any failure to read the tests is reported
            self.out.report("tests_error", kind=type(exc).__name__, message=message(exc))  # noqa: F821
            self.finish_early(2)
        if job.get("reference"):
            problem = self.run_reference(job["workdir"], job["reference"], tests)
            if problem:
                self.out.report("tests_error", kind="ReferenceError", message=problem[:2000])
                self.finish_early(2)
            self.clean_or_quit()
        self.out.report("start", n=len(tests))
        self.worker.send((job["workdir"], job["code"], tests, "code", self.shared))
        del self.job, job
        try:
            self.run_code(len(tests))
        except BrokenProtocol as exc:  # noqa: F821
            self.violation(str(exc))
            self.mirror_worker()
        self.out.report("done")
        self.out.flush()
        self.worker.kill()  # all is decided; nothing the worker does now counts
        os._exit(0)

    def run_code(self, num_tests):
        first = self.worker.receive()
        if first is None or first[0] != "code_ok":
            if first is not None and first[0] == "code_error" and len(first) == 3:
                self.out.report("code_error", kind=str(first[1]), message=str(first[2]))
            elif first is not None:
                raise BrokenProtocol(f"expected code_ok, got {first[0][:40]!r}")  # noqa: F821
            self.mirror_worker()
        self.out.report("code_ok")
        for index in range(num_tests):
            verdict = self.run_test(self.worker, index, reference=False)
            if verdict is None:
                self.mirror_worker()
            self.out.report("test", index=index, **verdict)

    def clean_or_quit(self):
        job = self.job
        if not all(clean_workdir(d) for d in job.get("clean", [job["workdir"]])):
            self.out.report("dirty")
            self.finish_early(3)

    def rewrite(self, index, source):
        code, sites = rewrite_test(source, f"<test {index}>", index, len(self.sites))  # noqa: F821
        self.sites.update((s.id, s) for s in sites)
        return code

    def run_reference(self, workdir, reference, tests):
        """Run ``tests`` against the trusted ``reference`` in a fresh worker, recording its values.
        None when it ran; else why not. (Forked now, after the nonce was read: it runs trusted code only,
        and it is gone before the code's worker, forked before the nonce, gets its job.)"""
        link = WorkerLink.fork()  # noqa: F821 - defined by link.py
        try:
            link.send((workdir, reference, tests, "reference", {}))
            first = link.receive()
            if first is None or first[0] != "code_ok":
                return f"the reference solution did not run: {first[2] if first and len(first) == 3 else first}"
            for index in range(len(tests)):
                verdict = self.run_test(link, index, reference=True)
                if verdict is None:
                    return f"the reference run ended during test {index} (wait status {link.wait()})"
                if verdict["status"] != "passed":
                    self.reference_failures[index] = verdict.get("message", "")
        except BrokenProtocol as exc:  # noqa: F821
            return f"the reference run broke the worker protocol: {exc}"
        finally:
            link.kill()
        return None

    def run_test(self, link, index, reference):
        """Answer the worker's sites until it ends test ``index``; its verdict, or None if the worker is gone.
        A reference run's sites record their same-values and shared values instead of being compared."""
        failure, observed = None, {}
        while True:
            msg = link.receive()
            if msg is None:
                return None
            kind, site = msg[0], self.sites.get(msg[1]) if len(msg) > 1 and type(msg[1]) is int else None
            if kind == "site" and len(msg) == 4 and site is not None and site.test == index:
                seen = observed.get(site.id, 0)
                observed[site.id] = seen + 1
                holds, status, detail, values = self.judge_site(site, msg, seen, reference)
                if not holds and site.binding and failure is None:
                    failure = (site, status, detail, values, seen)
                    link.notify(b"F" + index.to_bytes(4, "big"))  # stop the test at its next site
                if site.sync:
                    link.notify(b"1" if holds else b"0")
            elif kind == "share" and reference and len(msg) == 3:
                self.shared[msg[1]] = self.decode((msg[2],))[0]
            elif kind == "end" and len(msg) == 5 and msg[1] == index and all(type(x) is str for x in msg[2:]):
                return self.verdict(index, msg, failure, observed)
            else:
                raise BrokenProtocol(f"unexpected message {kind[:40]!r} during test {index}")  # noqa: F821

    def judge_site(self, site, msg, seen, reference):
        values = self.decode(msg[2])
        refs = None
        if site.same:
            if reference:
                self.recorded.setdefault(site.id, []).append(same_values(site.template, values))  # noqa: F821
            runs = self.recorded.get(site.id, [])
            if seen >= len(runs):
                return False, "failed", f"the reference ran this assert only {len(runs)} times", values
            refs = runs[seen]
        holds, status, detail = judge(site.template, site.bare, values, msg[3], refs)  # noqa: F821
        if refs is not None and not holds and not reference:
            detail = "; ".join(filter(None, [detail, "expected " + describe(list(refs.values()))]))  # noqa: F821
        return holds, status, detail, values

    def verdict(self, index, end, failure, observed):
        _, _, status, kind, text = end
        if index in self.reference_failures:
            return {"status": "error", "kind": "ReferenceError",
                    "message": f"the reference solution fails this test: {self.reference_failures[index]}"[:2000]}
        if failure is not None:
            site, site_status, detail, values, seen = failure
            if site.sync and site_status == "failed" and site.message is None and text not in ("", "AssertionError"):
                what = str(text).removeprefix("AssertionError: ")  # the assert's own message, from the worker
            else:
                what = site.message if site.message is not None else site.text
            if site.mandatory > 1:
                what += f" [run {seen + 1} of {site.mandatory}]"
            kind = "AssertionError" if site_status == "failed" else detail.partition(":")[0]
            line = f"{kind}: {what} (got {describe(values)})" + (f"; {detail}" if detail else "")  # noqa: F821
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
        """Probe values as plain data (or Opaque); BrokenProtocol for anything an honest worker never sends."""
        if type(values) is not tuple:
            raise BrokenProtocol("malformed probe values")  # noqa: F821
        out = []
        for item in values:
            if type(item) is not tuple or len(item) != 2:
                raise BrokenProtocol("malformed probe value")  # noqa: F821
            is_data, payload = item
            try:
                if is_data is True and type(payload) is bytes:
                    out.append(validate(marshal.loads(payload)))  # noqa: F821
                elif is_data is False and type(payload) is str:
                    out.append(Opaque(payload[:100]))  # noqa: F821
                else:
                    raise BrokenProtocol("malformed probe value")  # noqa: F821
            except (TypeError, ValueError, EOFError, BadValue) as exc:  # noqa: F821
                raise BrokenProtocol(f"unreadable probe value: {exc}") from None  # noqa: F821
        return out

    def violation(self, text):
        self.out.report("violation", message=f"the code broke the worker protocol: {text}")
        self.worker.kill()

    def finish_early(self, code):
        self.out.flush()
        self.worker.send(None)
        self.worker.wait()
        os._exit(code)

    def mirror_worker(self):
        """End this process as the worker ended: the parent reads exit codes and signals as before."""
        self.out.flush()
        status = self.worker.wait()
        if os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
            os._exit(128 + sig)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def main():
    set_dumpable(0)  # noqa: F821 - defined by link.py
    worker = WorkerLink.fork()  # noqa: F821 - before reading anything secret: the worker is a copy of us
    data = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    nonce, job = parse_request(data)  # noqa: F821 - defined by harness_request.py
    del data
    Judge(nonce, job, worker).run()


if __name__ == "__main__":
    main()

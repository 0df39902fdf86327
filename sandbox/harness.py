"""The in-sandbox harness: runs the untrusted code, then each test, and reports per-test results.

This file is executed INSIDE the sandbox as ``python3 -I -c <this source>`` (stdlib only, no
codeloop imports). The parent's side of the protocol lives in ``sandbox/protocol.py``.

Protocol (see protocol.py for the threat model):
  stdin  <- b"<nonce hex>\\n" + JSON {"code", "tests": str | [str], "workdir", "clean": [dirs]}; EOF.
            The harness reads it all, then points fd 0 at /dev/null before any untrusted code runs,
            so the nonce is never in argv, the environment or a file.
  stdout -> user output, interleaved with records ``RS "CLR" <nonce> ":" <json> "\\n"`` written in
            one os.write (atomic on a pipe) to a private dup of fd 1. Events, in order:
            start{n} · code_ok | code_error{kind,message} · test{index,status,message}* · done.
"""

import ast
import builtins
import json
import os
import shutil
import sys
import traceback
import types

MAX_MESSAGE = 2000


def _split_tests(tests):
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


def _message(exc):
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[:MAX_MESSAGE]


def _clean_workdir(workdir):
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


def _main_namespace():
    """Globals for the untrusted code: a fresh module registered as ``__main__``, as ``python file.py``
    does. Pickle (multiprocessing) finds its functions by reference and ``mock.patch(__name__ + ".f")``
    finds its names; a bare dict would leave ``sys.modules["__main__"]`` pointing at this harness."""
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    return module.__dict__


def run_job(nonce, job):
    """Run one job and report; always ends the process with os._exit."""
    out = os.dup(1)
    mark = b"\x1eCLR" + nonce + b":"
    del nonce

    def report(event, **fields):
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        fields["event"] = event
        os.write(out, mark + json.dumps(fields).encode("utf-8") + b"\n")

    if not all(_clean_workdir(d) for d in job.get("clean", [job["workdir"]])):
        report("dirty")
        os._exit(3)
    os.chdir(job["workdir"])
    try:
        tests = _split_tests(job["tests"])
    except BaseException as exc:  # noqa: BLE001 - any failure to read the tests is reported
        report("tests_error", kind=type(exc).__name__, message=_message(exc))
        os._exit(2)
    report("start", n=len(tests))
    env = _main_namespace()
    try:
        exec(compile(job["code"], "<solution>", "exec"), env)
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: the code must not end the run
        report("code_error", kind=type(exc).__name__, message=_message(exc))
        os._exit(1)
    del job
    report("code_ok")
    for index, test in enumerate(tests):
        try:
            exec(compile(test, f"<test {index}>", "exec"), env)
        except AssertionError as exc:
            report("test", index=index, status="failed", kind="AssertionError", message=_message(exc))
        except BaseException as exc:  # noqa: BLE001
            report("test", index=index, status="error", kind=type(exc).__name__, message=_message(exc))
        else:
            report("test", index=index, status="passed")
    report("done")
    os._exit(0)


def parse_request(data):
    """b"<nonce>\\n<json>" -> (nonce, job)."""
    nonce, _, payload = data.partition(b"\n")
    return nonce, json.loads(payload.decode("utf-8"))


def main():
    data = sys.stdin.buffer.read()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    nonce, job = parse_request(data)
    del data
    run_job(nonce, job)


if __name__ == "__main__":
    main()

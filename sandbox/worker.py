"""The untrusted side of a run: runs the code, then the tests, and reports data to the judge.

Executed INSIDE the sandbox (stdlib only; part of the harness program, see harness.py for the
process layout and the threat model). The judge forks the worker before it reads anything secret,
so this process never holds the run's nonce or the tests' expected values. What the worker sends
is a claim ("test 3 ended without an exception") or an observation (the value of a probe); the
judge decides what they are worth.

Channel (two pipes only the judge and the worker hold): frames of a 4-byte big-endian length +
marshal data.
  judge -> worker: once (workdir, code, [test code objects], mode, shared) or None (nothing to run);
                   then b"1" / b"0" (holds / does not) for each *synchronous* site, and b"F" + 4-byte
                   test index when a binding site of that test failed (a notice; see ``Channel``).
  worker -> judge: ("code_ok",) | ("code_error", kind, message)
                   ("site", site id, ((is_data, marshal blob | type name), ...), fallback)
                   ("end", test index, "passed" | "failed" | "error", kind, message)
                   ("share", key, (is_data, blob | type name))  (a reference run only: see harness.py)
"""

import builtins
import marshal
import operator
import os
import select
import sys
import time
import traceback
import types

SITE_SENTINEL = "\x00codeloop-site\x00"
"""The constant the judge compiles in place of the site function (tests cannot hold a NUL)."""
MAX_VALUE_BYTES = 16 * 2**20
MAX_DEPTH = 100
MAX_MESSAGE = 2000
_SCALARS = (type(None), bool, int, float, complex, str, bytes)
_BASES = (int, float, complex, str, bytes, list, tuple, dict, set, frozenset)
_complex, _complex_real, _complex_imag = complex, complex.real.__get__, complex.imag.__get__  # bound now
_bytes_item = bytes.__getitem__
_BASE_COPY = {int: int.__int__, float: float.__float__,
              complex: lambda v: _complex(_complex_real(v), _complex_imag(v)),  # complex.__complex__ is 3.11+
              str: str.__str__,
              bytes: lambda v: _bytes_item(v, slice(None)),  # bytes.__bytes__ is 3.11+
              list: list.copy, tuple: lambda v: tuple.__getitem__(v, slice(None)),
              dict: dict.copy, set: set.copy, frozenset: frozenset.copy}
_SAME_EQ = ("Counter.__eq__", "OrderedDict.__eq__")
"""Stdlib subclasses whose ``==`` against a plain dict is the dict's own (Counter, OrderedDict)."""
_OPS = {"Eq": operator.eq, "NotEq": operator.ne, "Lt": operator.lt, "LtE": operator.le, "Gt": operator.gt,
        "GtE": operator.ge, "Is": operator.is_, "IsNot": operator.is_not,
        "In": lambda a, b: operator.contains(b, a), "NotIn": lambda a, b: not operator.contains(b, a)}
# Bound before any untrusted code runs: rebinding os.write, marshal.dumps or builtins later changes nothing here.
_write, _read, _exit, _dumps, _loads = os.write, os.read, os._exit, marshal.dumps, marshal.loads
_exec, _compile, _type, _len, _bool = builtins.exec, builtins.compile, builtins.type, builtins.len, builtins.bool
_BaseException, _AssertionError, _Exception = BaseException, AssertionError, Exception
_format_exception = traceback.format_exception_only
_select, _monotonic = select.select, time.monotonic


def plain(value):
    """Builtin data equal to ``value`` by the builtin's own ``==``; TypeError names what is not."""
    return _plain(value, 0, set())


def _plain(v, depth, path):
    t = _type(v)
    if t in _SCALARS:
        return v
    if depth > MAX_DEPTH:
        raise TypeError("value nested too deeply")
    if t in (list, tuple, dict, set, frozenset):
        if id(v) in path:
            raise TypeError("recursive value")
        path.add(id(v))
        try:
            if t is dict:
                return {_plain(k, depth + 1, path): _plain(x, depth + 1, path) for k, x in v.items()}
            return t(_plain(x, depth + 1, path) for x in v)
        finally:
            path.discard(id(v))
    if t.__module__ == "numpy" and getattr(v, "ndim", None) == 0 and hasattr(v, "item"):
        return _plain(v.item(), depth + 1, path)  # numpy scalars: their Python value
    for base in _BASES:
        if issubclass(t, base):
            eq = t.__eq__
            if eq is base.__eq__ or getattr(eq, "__qualname__", "") in _SAME_EQ:
                return _plain(_BASE_COPY[base](v), depth + 1, path)
            break
    raise TypeError(t.__name__)


def message(exc):
    text = "".join(_format_exception(_type(exc), exc)).strip()
    return text[:MAX_MESSAGE]


def bind_sites(code, site):
    """``code`` with every SITE_SENTINEL constant (nested code included) replaced by ``site``."""
    consts = tuple(site if _type(c) is str and c == SITE_SENTINEL
                   else bind_sites(c, site) if _type(c) is types.CodeType else c for c in code.co_consts)
    return code.replace(co_consts=consts)


def main_namespace():
    """Globals for the untrusted code: a fresh module registered as ``__main__``, as ``python file.py``
    does. Pickle (multiprocessing) finds its functions by reference and ``mock.patch(__name__ + ".f")``
    finds its names; a bare dict would leave ``sys.modules["__main__"]`` pointing at this harness."""
    module = types.ModuleType("__main__")
    module.__builtins__ = builtins
    sys.modules["__main__"] = module
    return module.__dict__


class Channel:
    """The worker's end of the pipes to the judge.

    Sites are asynchronous unless the test needs the answer to go on: a binding assert (one whose failure
    fails the test) does not wait for the judge; the judge answers a failure with a notice, which the worker
    reads at its next site and turns into an AssertionError, so the test stops about where Python would
    have stopped it (the verdict never depends on it: the judge already holds the failure). A site in a
    ``try``/``with`` block, or with a computed message, waits for its answer (``sync``).

    Asynchronous messages are batched (every wake-up of the judge costs a context switch, which is most of
    a site's cost on a busy machine): they go out when ``FLUSH_S`` has passed since the last write, when the
    batch is large, before waiting for an answer, at the end of each test (a later hang must not hide
    earlier results) and before exiting.
    """

    FLUSH_S = 0.002
    FLUSH_BYTES = 1 << 15

    def __init__(self, to_judge, from_judge):
        self.out, self.inp = to_judge, from_judge
        self.test = -1
        self.failed = False
        """A notice said the current test failed."""
        self.batch, self.flushed_at = [], 0.0
        self.batch_bytes = 0

    def start_test(self, index):
        self.test, self.failed = index, False

    def send(self, message, flush=True):
        """Queue ``message``; write the queue now if ``flush`` (or if it is due)."""
        data = _dumps(message)
        self.batch.append(_len(data).to_bytes(4, "big") + data)
        self.batch_bytes += _len(data) + 4
        if flush or self.batch_bytes > self.FLUSH_BYTES or _monotonic() - self.flushed_at > self.FLUSH_S:
            self.flush()

    def flush(self):
        _flush_std()
        data = b"".join(self.batch)
        self.batch, self.batch_bytes, self.flushed_at = [], 0, _monotonic()
        while data:
            data = data[_write(self.out, data):]

    def receive(self):
        size = int.from_bytes(self.read_exact(4), "big")
        return _loads(self.read_exact(size))

    def answer(self):
        """Wait for the judge's answer to a synchronous site (reading any notice on the way)."""
        self.flush()
        while True:
            byte = self.read_exact(1)
            if byte in (b"1", b"0"):
                return byte == b"1"
            self.notice(byte)

    def poll(self):
        """Read the notices already waiting (never blocks); True if the current test has failed."""
        while _select([self.inp], [], [], 0)[0]:
            self.notice(self.read_exact(1))
        return self.failed

    def notice(self, byte):
        if byte != b"F":
            _exit(70)  # not the judge's language: give up rather than guess
        if int.from_bytes(self.read_exact(4), "big") == self.test:
            self.failed = True

    def read_exact(self, n):
        chunks = []
        while n:
            chunk = _read(self.inp, n)
            if not chunk:
                _exit(70)  # the judge is gone: nothing this process says can count any more
            chunks.append(chunk)
            n -= _len(chunk)
        return b"".join(chunks)


def _flush_std():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except _Exception:
            pass


def site_function(channel):
    """The function the rewritten asserts call: send the probe values, return the judge's answer."""

    def site(site_id, probes, bare_ops, sync):
        values = tuple(_encode(probe) for probe in probes)
        opaque = sum(not is_data for is_data, _ in values)
        fallback = None
        if bare_ops is not None and opaque == _len(probes):
            fallback = _python_verdict(probes, bare_ops)
        channel.send(("site", site_id, values, fallback), flush=False)
        if sync:
            return channel.answer() and not channel.failed
        return not channel.poll()

    return site


def share_function(channel):
    """In a reference run: hand the judge a value for the code's run (``__codeloop_shared__[key]``)."""

    def share(key, value):
        channel.send(("share", key, _encode(value)), flush=False)

    return share


def _encode(value):
    """(True, marshal blob) for plain data, else (False, what it is)."""
    try:
        blob = _dumps(plain(value))
        if _len(blob) > MAX_VALUE_BYTES:
            raise TypeError(f"value of {_len(blob)} bytes")
        return True, blob
    except _Exception as exc:  # noqa: BLE001 - not plain data: the judge sees its type only
        return False, str(exc.args[0]) if exc.args else _type(value).__name__


def _python_verdict(probes, ops):
    """What Python's own ``assert`` would say of a bare assert (values the judge cannot see)."""
    if ops == ("truth",):
        return _bool(probes[0])
    left = probes[0]
    for op, right in zip(ops, probes[1:], strict=True):
        if not _OPS[op](left, right):
            return False
        left = right
    return True


def worker_main(to_judge, from_judge):
    """Run the job the judge sends; report; always ends the process."""
    channel = Channel(to_judge, from_judge)
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")  # under memory pressure the kernel kills the code, not the judge
    except OSError:
        pass
    job = channel.receive()
    if job is None:
        _exit(0)
    workdir, code, tests, mode, shared = job
    os.chdir(workdir)
    env = main_namespace()
    try:
        _exec(_compile(code, "<solution>", "exec"), env)
    except _BaseException as exc:  # noqa: BLE001 - SystemExit too: the code must not end the run
        channel.send(("code_error", _type(exc).__name__, message(exc)))
        _exit(1)
    del job, code
    channel.send(("code_ok",), flush=False)
    env["__codeloop_reference__"] = mode == "reference"
    env["__codeloop_shared__"] = shared
    env["__codeloop_share__"] = share_function(channel) if mode == "reference" else lambda key, value: None
    site = site_function(channel)
    for index, test in enumerate(tests):
        channel.start_test(index)
        try:
            _exec(bind_sites(test, site), env)
        except _AssertionError as exc:
            channel.send(("end", index, "failed", "AssertionError", message(exc)))
        except _BaseException as exc:  # noqa: BLE001
            channel.send(("end", index, "error", _type(exc).__name__, message(exc)))
        else:
            channel.send(("end", index, "passed", "", ""))
    channel.flush()
    _exit(0)

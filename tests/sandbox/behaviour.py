"""Behaviour every backend must show, written once and run per backend by the test modules."""

from __future__ import annotations

import time

from sandbox.types import Limits, RunStatus, TestStatus

FAST = Limits(timeout_s=5.0)


def per_test_outcomes(run):
    r = run("def inc(x):\n    return x + 1\nprint('side output')\n",
            ["assert inc(1) == 2", "assert inc(1) == 3, 'wrong'", "inc(None)", "assert inc(0) == 1"], FAST)
    assert r.status is RunStatus.FAILED, r
    assert [t.status for t in r.tests] == [TestStatus.PASSED, TestStatus.FAILED, TestStatus.ERROR, TestStatus.PASSED], r
    assert "wrong" in r.tests[1].message and "TypeError" in r.tests[2].message, r
    assert r.fraction_passed == 0.5 and r.stdout == "side output\n" and r.exit_code == 0, r


def assert_string_is_split(run):
    r = run("x = 3", "assert x == 3\ny = x * 2\nassert y == 7\nassert y == 6\n", FAST)
    assert r.status is RunStatus.FAILED
    assert [t.status for t in r.tests] == [TestStatus.PASSED, TestStatus.FAILED, TestStatus.PASSED]


def all_pass(run):
    r = run("def f():\n    return 1\n", "def check(c):\n    assert c() == 1\n\ncheck(f)\n", FAST)
    assert r.status is RunStatus.PASSED and r.passed and r.fraction_passed == 1.0 and len(r.tests) == 1


def code_errors(run):
    syntax = run("def f(:\n", ["assert True"], FAST)
    assert syntax.status is RunStatus.ERROR and "SyntaxError" in syntax.message
    assert [t.status for t in syntax.tests] == [TestStatus.NOT_RUN]
    raised = run("raise ValueError('at import')", ["assert True"], FAST)
    assert raised.status is RunStatus.ERROR and "at import" in raised.message
    exited = run("import sys\nsys.exit(0)", ["assert True"], FAST)
    assert exited.status is RunStatus.ERROR and "SystemExit" in exited.message
    bad_tests = run("x = 1", "assert (", FAST)
    assert bad_tests.status is RunStatus.ERROR and "tests do not compile" in bad_tests.message


def empty_and_trivial(run):
    empty = run("", "", FAST)
    assert empty.status is RunStatus.PASSED and "no tests" in empty.message and empty.tests == []
    untouched = run("", ["assert True"], FAST)  # tests that never run the code still pass: stated
    assert untouched.status is RunStatus.PASSED
    missing = run("", ["assert solve(1) == 2"], FAST)
    assert missing.status is RunStatus.FAILED and "NameError" in missing.tests[0].message


def timeout_is_enforced_by_parent(run):
    start = time.monotonic()
    r = run("import time\ntime.sleep(60)", ["assert True"], Limits(timeout_s=1.0))
    assert r.status is RunStatus.TIMEOUT and "1 s" in r.message
    assert time.monotonic() - start < 8
    assert r.tests[0].status is TestStatus.NOT_RUN


def partial_results_survive_timeout(run):
    r = run("import time", ["assert 1", "time.sleep(60)", "assert 1"], Limits(timeout_s=3.0))
    assert r.status is RunStatus.TIMEOUT
    assert [t.status for t in r.tests] == [TestStatus.PASSED, TestStatus.NOT_RUN, TestStatus.NOT_RUN]


def output_is_capped_with_marker(run):
    r = run("print('y' * 200000)", "", Limits(timeout_s=5.0, max_output_bytes=1000))
    assert r.status is RunStatus.PASSED
    assert r.stdout.startswith("y" * 1000) and "truncated" in r.stdout and len(r.stdout) < 1200


def binary_output_is_text(run):
    r = run("import os\nos.write(1, b'\\xff\\xfeok\\x00')\nos.write(2, b'\\x80err')", "", FAST)
    assert r.status is RunStatus.PASSED and "ok" in r.stdout and "\ufffd" in r.stdout and "err" in r.stderr


def environment_is_cleared(run):
    r = run("import os\nprint(sorted(os.environ))", "", FAST)
    assert r.status is RunStatus.PASSED
    assert "CODELOOP" not in r.stdout and "HOME" in r.stdout


def code_is_the_main_module(run):
    """As under ``python file.py``: pickle finds the code's functions by reference (multiprocessing) and
    ``mock.patch(__name__ + '.name')`` finds its globals (BigCodeBench tests rely on both)."""
    code = "import pickle, sys\ndef helper():\n    return 1\ndef f():\n    return helper() + 1\n"
    r = run(code, ["assert sys.modules['__main__'].f is f and __name__ == '__main__'",
                   "assert pickle.loads(pickle.dumps(f)) is f",
                   "from unittest import mock\nwith mock.patch(__name__ + '.helper', return_value=41):\n"
                   "    assert f() == 42"], FAST)
    assert r.status is RunStatus.PASSED, r


def image_serves_localhost_and_python(run):
    """The image's /etc/hosts resolves ``localhost`` (servers on loopback) and ``python`` is on PATH."""
    code = ("import socket, subprocess\n"
            "srv = socket.create_server(('localhost', 0))\n"
            "cli = socket.create_connection(('localhost', srv.getsockname()[1]))\n")
    r = run(code, ["assert socket.gethostbyname('localhost') == '127.0.0.1'",
                   "assert subprocess.run(['python', '-c', 'print(6 * 7)'], capture_output=True).stdout == b'42\\n'"],
            FAST)
    assert r.status is RunStatus.PASSED, r


def scripts_in_tmp_run(run):
    """Code under test may write a script to /tmp or its work dir and run it (BigCodeBench does)."""
    code = ("import os, subprocess, tempfile\n"
            "def run_script(body):\n"
            "    fd, path = tempfile.mkstemp(suffix='.sh')\n"
            "    with os.fdopen(fd, 'w') as f:\n"
            "        f.write('#!/bin/sh\\n' + body)\n"
            "    os.chmod(path, 0o755)\n"
            "    return subprocess.run(path, capture_output=True, text=True).stdout\n")
    r = run(code, ["assert run_script('echo ok') == 'ok\\n'"], FAST)
    assert r.status is RunStatus.PASSED, r


def world_readable_dir():
    """A fresh host directory (removed on exit) the sandbox's unprivileged user may read: pytest's
    tmp_path sits under a 0700 directory."""
    import contextlib
    import os
    import shutil
    import tempfile

    @contextlib.contextmanager
    def made():
        path = tempfile.mkdtemp(prefix="codeloop-mount-", dir="/tmp")
        os.chmod(path, 0o755)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    return made()


def mounts_are_read_only(run):
    """A mounted directory and a file mounted over a path inside it are readable, never writable."""
    with world_readable_dir() as host_dir:
        _mounts_are_read_only(run, host_dir)


def _mounts_are_read_only(run, host_dir):
    from pathlib import Path

    from sandbox.types import Mount

    (Path(host_dir) / "pkg").mkdir()
    (Path(host_dir) / "pkg" / "mod.py").write_text("VALUE = 'original'\n")
    copy = Path(host_dir) / "copy.py"
    copy.write_text("VALUE = 'copy'\n")
    mounts = [Mount(str(host_dir), "/mnt/ws"), Mount(str(copy), "/mnt/ws/pkg/mod.py")]
    code = ("import sys\nsys.path.insert(0, '/mnt/ws')\nimport pkg.mod\n"
            "def writes(path):\n    try:\n        open(path, 'w').write('x')\n    except OSError:\n        return False\n"
            "    return True\n")
    r = run(code, ["assert pkg.mod.VALUE == 'copy'", "assert not writes('/mnt/ws/new.py')",
                   "assert not writes('/mnt/ws/pkg/mod.py')", "assert not writes('/mnt/ws/copy.py')"], FAST,
            mounts=mounts)
    assert r.status is RunStatus.PASSED, r
    assert sorted(p.name for p in Path(host_dir).iterdir()) == ["copy.py", "pkg"]
    assert (Path(host_dir) / "pkg" / "mod.py").read_text() == "VALUE = 'original'\n"


def values_are_judged_as_builtin_data(run):
    """``==`` against a builtin value: subclasses with the builtin's equality pass (Counter vs a dict, 2 vs 2.0,
    a namedtuple vs a tuple), objects with their own ``__eq__`` fail, and the message shows the value."""
    code = ("import collections\n"
            "P = collections.namedtuple('P', 'x y')\n"
            "class Eq:\n    def __eq__(self, other):\n        return True\n"
            "def counts(s):\n    return collections.Counter(s)\n")
    r = run(code, ["assert counts('aab') == {'a': 2, 'b': 1}", "assert P(1, 2) == (1, 2)", "assert 4 / 2 == 2",
                   "assert Eq() == 3", "assert counts('a') == {'a': 2}"], FAST)
    assert [t.status for t in r.tests] == [TestStatus.PASSED] * 3 + [TestStatus.FAILED] * 2, r
    assert "Eq" in r.tests[3].message and "got Counter({'a': 1})" not in r.tests[4].message, r
    assert "(got {'a': 1})" in r.tests[4].message, r


def caught_assertions_keep_python_semantics(run):
    """An assert the test itself expects to fail (in ``try``) does not fail the test; a skipped branch is fine."""
    code = "def f(x):\n    return x\n"
    tests = ["try:\n    assert f(1) == 2\nexcept AssertionError:\n    pass",
             "if f(0):\n    assert f(1) == 2",
             "def check(c):\n    assert c(3) == 3\n    assert abs(c(0.5) - 0.5) < 1e-9\n\ncheck(f)"]
    r = run(code, tests, FAST)
    assert r.status is RunStatus.PASSED, r

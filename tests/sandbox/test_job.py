"""Bad input is refused with a clear message before any backend sees it, never by raising."""

from __future__ import annotations

import pytest

from sandbox.harness_request import split_tests
from sandbox.job import Job, make_job
from sandbox.job_runner import resolve_backend, run
from sandbox.types import Limits, RunStatus


@pytest.mark.parametrize(
    ("code", "tests", "needle"),
    [
        (b"x = '\xff\xfe'", "", "not valid UTF-8"),
        ("x = 1", [b"\xc3\x28"], "test 0 is not valid UTF-8"),
        ("x = '\x00'", "", "NUL"),
        ("x = '\ud800'", "", "not encodable"),
        (42, "", "must be str or bytes"),
        ("x = 1", 3.5, "tests must be a string or a list"),
    ],
)
def test_bad_input_is_an_error_result(code, tests, needle):
    result = run(code, tests, backend="bwrap")
    assert result.status is RunStatus.ERROR and needle in result.message


def test_gigantic_input_is_refused():
    result = run("x = 1\n" * 10, "", Limits(max_input_bytes=50), backend="bwrap")
    assert result.status is RunStatus.ERROR and "exceeds max_input_bytes" in result.message


def test_list_tests_are_declared_and_string_tests_are_not():
    job = make_job("x = 1", ["assert x", "assert x"], None)
    assert isinstance(job, Job) and job.declared_tests == 2
    assert make_job("x = 1", "assert x", None).declared_tests is None


def test_split_string_tests_per_top_level_assert():
    tests = "import math\nassert math.pi > 3\ny = 2\nassert y == 2\nprint('tail')\n"
    chunks = split_tests(tests)
    assert len(chunks) == 3
    assert chunks[0].strip().endswith("assert math.pi > 3") and "import math" in chunks[0]
    assert chunks[1].count("\n") >= 3  # line numbers kept
    assert split_tests("def check(c):\n    assert c\ncheck(1)\n") == ["def check(c):\n    assert c\ncheck(1)\n"]
    assert split_tests("# nothing\n") == []


def test_unknown_backend_is_a_value_error_at_resolution_and_a_result_from_run():
    with pytest.raises(ValueError):
        resolve_backend("chroot")
    assert run("x = 1", "", backend="chroot").status is RunStatus.SANDBOX_ERROR


def test_limits_validate():
    with pytest.raises(ValueError):
        Limits(timeout_s=0)
    with pytest.raises(ValueError):
        Limits(kill_output_bytes=-1)


@pytest.mark.parametrize(("source", "target", "needle"), [
    ("relative/path", "/mnt/x", "not an existing absolute path"),
    ("/no/such/path/anywhere", "/mnt/x", "not an existing absolute path"),
    ("/usr", "/usr", "under /mnt/"),
    ("/usr", "/mnt/../etc", "under /mnt/"),
    ("/usr", "/mnt", "under /mnt/"),
])
def test_bad_mounts_are_refused(source, target, needle):
    from sandbox.types import Mount

    result = run("x = 1", "", backend="bwrap", mounts=[Mount(source, target)])
    assert result.status is RunStatus.ERROR and needle in result.message


def test_a_mount_target_used_twice_is_refused():
    from sandbox.types import Mount

    result = run("x = 1", "", backend="bwrap", mounts=[Mount("/usr", "/mnt/a"), Mount("/etc", "/mnt/a")])
    assert result.status is RunStatus.ERROR and "twice" in result.message

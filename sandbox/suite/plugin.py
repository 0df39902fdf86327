"""pytest plugin loaded inside the sandbox (``-p codeloop_suite_plugin``): per-test outcomes and coverage.

It runs under the repository's own interpreter (any Python from 3.6), so it uses only the standard library,
pytest's hooks and, when coverage is asked for, the ``coverage`` package of that interpreter.

Records go to ``$CODELOOP_SUITE_OUT/records.jsonl`` (opened when the plugin is imported, before any test
code), one per line, tagged ``@@<nonce> `` where the nonce comes from ``CODELOOP_SUITE_NONCE``; the variable
is removed before any test code is imported, so lines written by the code under test cannot pass for a
record (a hardening measure: code running in the same process could still find the nonce in memory). Records:
``{"event": "test", "id", "outcome", "duration_s", "message"}``, ``{"event": "collect_error", "path",
"message"}`` and a last ``{"event": "done", "exitstatus"}``.

With ``CODELOOP_SUITE_COVER=<folder>``, coverage measures the files under that folder with one dynamic
context per test (its node id: setup, call and teardown); lines run outside any test (imports, collection)
belong to no test. The map ``{"tests": [ids], "files": {path: {line: [test index]}}}`` is written as JSON
to ``$CODELOOP_SUITE_OUT/coverage.json``.
"""

import json
import os

_NONCE = os.environ.pop("CODELOOP_SUITE_NONCE", "")
_COVER = os.environ.pop("CODELOOP_SUITE_COVER", "")
_OUT = os.environ.pop("CODELOOP_SUITE_OUT", "")
if not _OUT:  # imported outside a suite run (a module walk, a stray `-p`): write nothing anywhere
    raise ImportError("codeloop's suite plugin runs only inside a sandboxed suite run (CODELOOP_SUITE_OUT unset)")
_RECORDS = os.open(os.path.join(_OUT, "records.jsonl"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
_state = {"cov": None, "phases": {}}


def _emit(record):
    line = "\n@@" + _NONCE + " " + json.dumps(record) + "\n"
    os.write(_RECORDS, line.encode("utf-8", "replace"))


def _short(text, limit=300):
    lines = [ln for ln in str(text).strip().splitlines() if ln.strip()]
    return (lines[-1] if lines else "")[:limit]


def pytest_configure(config):
    if not _COVER:
        return
    import coverage

    cov = coverage.Coverage(data_file=None, config_file=False, source=[_COVER],
                            omit=["*/site-packages/*", "*/.tox/*", "*/.venv/*", "*/venv/*"])
    cov.start()
    _state["cov"] = cov


def pytest_runtest_logstart(nodeid, location):
    cov = _state["cov"]
    if cov is not None:
        cov.switch_context(nodeid)


def pytest_runtest_logreport(report):
    phases = _state["phases"].setdefault(report.nodeid, [])
    phases.append(report)


def pytest_runtest_logfinish(nodeid, location):
    cov = _state["cov"]
    if cov is not None:
        cov.switch_context("")
    reports = _state["phases"].pop(nodeid, [])
    outcome, message = _outcome(reports)
    duration = sum(getattr(r, "duration", 0.0) for r in reports)
    _emit({"event": "test", "id": nodeid, "outcome": outcome, "duration_s": round(duration, 4),
           "message": message})


def _outcome(reports):
    """passed | failed | error (setup/teardown failed) | skipped | xfailed, and a one-line message."""
    for r in reports:
        if r.failed:
            kind = "failed" if r.when == "call" else "error"
            return kind, _short(getattr(r, "longreprtext", "") or r.longrepr)
    for r in reports:
        if hasattr(r, "wasxfail"):
            return "xfailed", _short(r.wasxfail)
        if r.skipped:
            return "skipped", _short(r.longrepr[-1] if isinstance(r.longrepr, tuple) else r.longrepr)
    if any(r.when == "call" and r.passed for r in reports):
        return "passed", ""
    return "error", "the test did not run"


def pytest_collectreport(report):
    if report.failed:
        _emit({"event": "collect_error", "path": report.nodeid or str(getattr(report, "fspath", "")),
               "message": _short(getattr(report, "longreprtext", "") or report.longrepr)})


def pytest_sessionfinish(session, exitstatus):
    cov = _state["cov"]
    if cov is not None:
        cov.stop()
        _write_coverage(cov)
    _emit({"event": "done", "exitstatus": int(exitstatus)})


def _write_coverage(cov):
    data = cov.get_data()
    tests, index, files = [], {}, {}
    for path in sorted(data.measured_files()):
        lines = {}
        for lineno, contexts in sorted(data.contexts_by_lineno(path).items()):
            ids = []
            for ctx in contexts:
                if not ctx:
                    continue
                if ctx not in index:
                    index[ctx] = len(tests)
                    tests.append(ctx)
                ids.append(index[ctx])
            if ids:
                lines[str(lineno)] = sorted(ids)
        if lines:
            files[path] = lines
    with open(os.path.join(_OUT, "coverage.json"), "w") as f:
        json.dump({"tests": tests, "files": files}, f)


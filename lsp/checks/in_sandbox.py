"""Runs INSIDE the sandbox (stdlib only; pytest only when a workspace test needs it), as the head of a
check job's code. The job builder appends ``SPEC = {...}``; the job's test snippets then call
``doctest_example``, ``run_assert``, ``call_test`` and ``pytest_test``, one check per snippet.

The candidate document never touches the workspace: the workspace is mounted read-only and a meta-path
finder serves the candidate's text under the module name of the file it replaces, so the workspace's
tests import the candidate instead of the file on disk.
"""

import doctest
import glob
import importlib
import importlib.abc
import importlib.util
import json  # noqa: F401 - the job's SPEC line uses it
import os
import sys

SPEC = {}


class CandidateFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves the candidate's source for exactly one module name."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != SPEC["module"]:
            return None
        origin = SPEC["origin"]
        locations = [os.path.dirname(origin)] if SPEC["is_package"] else None
        return importlib.util.spec_from_file_location(fullname, origin, loader=self,
                                                      submodule_search_locations=locations)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(compile(SPEC["source"], SPEC["origin"], "exec"), module.__dict__)

    def get_source(self, fullname):
        return SPEC["source"]


def setup():
    """sys.path: the candidate's import root, the workspace, its virtualenv's packages (same Python
    version only), then the libraries mounted for pytest; and the candidate finder first."""
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    venvs = [p for v in SPEC["venvs"] for p in glob.glob(os.path.join(SPEC["workspace"], v, "lib", version, "site-packages"))]
    sys.path[:0] = SPEC["paths"]
    sys.path.extend(venvs + SPEC["libs"])
    sys.meta_path.insert(0, CandidateFinder())


_state = {}


def module():
    return importlib.import_module(SPEC["module"])


class _ExampleRunner(doctest.DocTestRunner):
    def report_failure(self, out, test, example, got):
        _state["doctest_failure"] = ("failed", got)

    def report_unexpected_exception(self, out, test, example, exc_info):
        _state["doctest_failure"] = ("raised", exc_info[1])


def doctest_example(index):
    """Run example ``index`` of the function's docstring (examples share globals, as in doctest)."""
    examples = doctest.DocTestParser().get_examples(SPEC["docstring"])
    globs = _state.setdefault("doctest_globs", dict(vars(module())))
    example = examples[index]
    test = doctest.DocTest([example], globs, SPEC["function"], SPEC["origin"], 0, SPEC["docstring"])
    _state.pop("doctest_failure", None)
    _ExampleRunner(verbose=False).run(test, out=lambda text: None, clear_globs=False)
    failure = _state.pop("doctest_failure", None)
    if failure is None:
        return
    kind, detail = failure
    if kind == "raised":
        raise detail
    raise AssertionError(f"expected {example.want.strip()!r}, got {detail.strip()!r}")


def run_assert(source):
    """Run an assert (with its setup) in the namespace of the module run as ``__main__``."""
    namespace = _state.setdefault("main_namespace", dict(vars(module()), __name__="__main__"))
    exec(compile(source, SPEC["origin"], "exec"), namespace)


def call_test(name):
    getattr(module(), name)()


def pytest_test(node_id):
    """The outcome of one workspace test; the first call runs pytest once on every test of the job."""
    if "pytest" not in _state:
        _state["pytest"] = _run_pytest()
    outcomes = _state["pytest"]
    mine = [v for k, v in outcomes.items() if k == node_id or k.startswith(node_id + "[")]  # parametrized
    if not mine:
        raise RuntimeError(f"not collected: {outcomes.get('::collect', 'no such test')}")
    for outcome, detail in mine:
        if outcome == "failed":
            raise AssertionError(detail)
    for outcome, detail in mine:
        if outcome == "skipped":
            raise RuntimeError(f"skipped: {detail}")


def _run_pytest():
    import pytest

    class Collect:
        def __init__(self):
            self.outcomes = {}

        def pytest_collectreport(self, report):
            if report.failed:
                self.outcomes["::collect"] = _last_line(report.longreprtext)

        def pytest_runtest_logreport(self, report):
            if report.outcome == "passed" and report.when != "call":
                return
            if report.nodeid in self.outcomes and self.outcomes[report.nodeid][0] != "passed":
                return
            self.outcomes[report.nodeid] = (report.outcome, _last_line(report.longreprtext))

    collect = Collect()
    os.chdir(SPEC["workspace"])
    ids = [os.path.join(SPEC["workspace"], i) for i in SPEC["pytest_ids"]]
    pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "required_plugins=",
                 "--rootdir", SPEC["workspace"], *ids], plugins=[collect])
    return collect.outcomes


def _last_line(text):
    """pytest's error line ("E   assert not True"), else the report's last line."""
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    return (errors or lines or [""])[0 if errors else -1][:500]

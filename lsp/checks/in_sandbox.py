"""Runs INSIDE the sandbox (stdlib only; pytest only when a workspace test needs it), as the head of a
check job's code. The job builder appends one line that builds the runtime from its spec and imports the
candidate (``codeloop_setup(globals())``), which copies the candidate's names into this namespace. A test
snippet is then the check's own code (an assert, a call of a test function: the sandbox harness judges
those asserts itself) or a call of ``codeloop_doctest`` or ``codeloop_pytest``.

Everything lives inside ``codeloop_runtime`` and the only global names start with ``codeloop_``, so the
candidate's names (copied in) never shadow what the checks need.

The candidate document never touches the workspace: the workspace is mounted read-only and a meta-path
finder serves the candidate's text under the module name of the file it replaces, so the workspace's
tests import the candidate instead of the file on disk.
"""


def codeloop_runtime(spec):
    """(setup, doctest_example, pytest_test) bound to ``spec`` (see lsp/checks/job.py).

    NOTE: doctest is imported only by an example that needs it (it imports pdb and unittest: ~100 ms of a
    run that is otherwise ~30 ms); most examples are plain asserts (job.doctest_assert)."""
    import glob
    import importlib
    import importlib.machinery
    import os
    import sys

    state = {}

    class CandidateFinder:
        """Serves the candidate's source for exactly one module name (a meta-path finder and its loader;
        NOTE: not importlib.abc subclasses: importing importlib.abc costs ~60 ms of a ~30 ms run)."""

        def find_spec(self, fullname, path=None, target=None):
            if fullname != spec["module"]:
                return None
            found = importlib.machinery.ModuleSpec(fullname, self, origin=spec["origin"],
                                                   is_package=spec["is_package"])
            found.has_location = True  # sets __file__
            if spec["is_package"]:
                found.submodule_search_locations = [os.path.dirname(spec["origin"])]
            return found

        def create_module(self, module_spec):
            return None

        def exec_module(self, module):
            exec(compile(spec["source"], spec["origin"], "exec"), module.__dict__)

        def get_source(self, fullname):
            return spec["source"]

    def module():
        return importlib.import_module(spec["module"])

    def setup(namespace):
        """sys.path: the candidate's import root, the workspace, its virtualenv's packages (same Python
        version only), then the libraries mounted for pytest; the candidate finder first; then import
        the candidate and copy its names into ``namespace``."""
        version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
        venvs = [p for v in spec["venvs"]
                 for p in glob.glob(os.path.join(spec["workspace"], v, "lib", version, "site-packages"))]
        sys.path[:0] = spec["paths"]
        sys.path.extend(venvs + spec["libs"])
        sys.meta_path.insert(0, CandidateFinder())
        names = vars(module())
        namespace.update({k: v for k, v in names.items()
                          if k in ("__file__", "__path__") or not k.startswith(("__", "codeloop_"))})
        state["namespace"] = namespace

    def doctest_example(index):
        """Run example ``index`` of the function's docstring (examples share globals, as in doctest)."""
        import doctest

        class ExampleRunner(doctest.DocTestRunner):
            def report_failure(self, out, test, example, got):
                state["doctest_failure"] = ("failed", got)

            def report_unexpected_exception(self, out, test, example, exc_info):
                state["doctest_failure"] = ("raised", exc_info[1])

        examples = doctest.DocTestParser().get_examples(spec["docstring"])
        globs = state["namespace"]  # shared with the judged examples, which run there as snippets
        example = examples[index]
        test = doctest.DocTest([example], globs, spec["function"], spec["origin"], 0, spec["docstring"])
        state.pop("doctest_failure", None)
        ExampleRunner(verbose=False).run(test, out=lambda text: None, clear_globs=False)
        failure = state.pop("doctest_failure", None)
        if failure is None:
            return
        kind, detail = failure
        if kind == "raised":
            raise detail
        raise AssertionError(f"expected {example.want.strip()!r}, got {detail.strip()!r}")

    def pytest_test(node_id):
        """The outcome of one workspace test; the first call runs pytest once on every test of the job."""
        if "pytest" not in state:
            state["pytest"] = run_pytest()
        outcomes = state["pytest"]
        mine = [v for k, v in outcomes.items() if k == node_id or k.startswith(node_id + "[")]  # parametrized
        if not mine:
            raise RuntimeError(f"not collected: {outcomes.get('::collect', 'no such test')}")
        for outcome, detail in mine:
            if outcome == "failed":
                raise AssertionError(detail)
        for outcome, detail in mine:
            if outcome == "skipped":
                raise RuntimeError(f"skipped: {detail}")

    def run_pytest():
        import pytest

        class Collect:
            def __init__(self):
                self.outcomes = {}

            def pytest_collectreport(self, report):
                if report.failed:
                    self.outcomes["::collect"] = error_line(report.longreprtext)

            def pytest_runtest_logreport(self, report):
                if report.outcome == "passed" and report.when != "call":
                    return
                if report.nodeid in self.outcomes and self.outcomes[report.nodeid][0] != "passed":
                    return
                self.outcomes[report.nodeid] = (report.outcome, error_line(report.longreprtext))

        collect = Collect()
        os.chdir(spec["workspace"])
        ids = [os.path.join(spec["workspace"], i) for i in spec["pytest_ids"]]
        pytest.main(["-q", "-p", "no:cacheprovider", "-o", "addopts=", "-o", "required_plugins=",
                     "--rootdir", spec["workspace"], *ids], plugins=[collect])
        return collect.outcomes

    def error_line(text):
        """pytest's error line ("E   assert not True"), else the report's last line."""
        lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
        errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
        return (errors or lines or [""])[0 if errors else -1][:500]

    return setup, doctest_example, pytest_test

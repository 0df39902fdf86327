"""A repository's own test suite, run in the sandbox: per-test outcomes and per-test line coverage.

- ``isolation.py``: one command over read-only host folders (a repository, its virtual environment, the
  interpreter) under bubblewrap, with files replaced by copies (a candidate edit) and a wall clock.
- ``environment.py``: how a repository's tests run (interpreter, the folders it needs, variables).
- ``plugin.py``: the pytest plugin loaded inside the sandbox (reports outcomes, switches coverage contexts).
- ``testrun.py``: ``run_tests(env, select, coverage=..., files=...) -> SuiteRun``.
- ``coverage_map.py``: ``CoverageMap``, which tests execute which lines, cached per repository content.

The miner of repository tasks (evals/repo), the repository reward (rl) and the editor's checked suggestions
all run tests through here.
"""

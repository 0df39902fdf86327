"""A repository's test suite in the sandbox: isolation of the tree run, outcomes and coverage from the plugin.

Needs bubblewrap (skipped where the bwrap backend is unavailable); runs with this interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.bwrap import available
from sandbox.suite.coverage_map import CoverageMap, coverage_map, latest_for
from sandbox.suite.environment import EnvError, SuiteEnv
from sandbox.suite.isolation import OUT_DIR, TreeCommand, run_tree
from sandbox.suite.testrun import run_tests
from sandbox.types import Limits, RunStatus

pytestmark = pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")
FAST = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # this venv's pytest plugins only cost time here


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "repo"
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def _py(tmp_path: Path, code: str, **kw) -> tuple[SuiteEnv, object]:
    root = _repo(tmp_path, {"main.py": "VALUE = 'original'\n"})
    env = SuiteEnv.create(root)
    cmd = TreeCommand((str(env.python), "-c", code), str(root), (*env.folders, str(root)), kw.pop("files", {}),
                      env.environ(), kw.pop("limits", Limits(timeout_s=30)))
    return env, run_tree(cmd)


def test_tree_run_isolation(tmp_path):
    code = """
import os, socket, json
out = {"uid": os.getuid(), "root_listing": os.path.exists("/root/.bashrc") or os.path.exists("/root/.cache/codeloop/models")}
try:
    open("main.py", "a").write("x")
    out["repo_writable"] = True
except OSError:
    out["repo_writable"] = False
try:
    socket.create_connection(("198.51.100.7", 80), timeout=2)
    out["network"] = True
except OSError:
    out["network"] = False
open("/codeloop-out/result.json", "w").write(json.dumps(out))
print(open("main.py").read())
"""
    _, result = _py(tmp_path, code, files={str(tmp_path / "repo/main.py"): "VALUE = 'replaced'\n"})
    assert result.status is RunStatus.PASSED, result
    seen = json.loads(result.outputs["result.json"])
    assert seen == {"uid": seen["uid"], "root_listing": False, "repo_writable": False, "network": False}
    assert seen["uid"] != 0
    assert "replaced" in result.stdout
    assert (tmp_path / "repo/main.py").read_text() == "VALUE = 'original'\n"  # the copy, never the file


def test_tree_run_timeout_is_enforced(tmp_path):
    _, result = _py(tmp_path, "import time; time.sleep(60)", limits=Limits(timeout_s=1.5))
    assert result.status is RunStatus.TIMEOUT and result.duration_s < 10


def test_unreadable_repository_is_refused(tmp_path):
    root = _repo(tmp_path, {"a.py": ""})
    root.chmod(0o700)
    with pytest.raises(EnvError, match="other users cannot read"):
        SuiteEnv.create(root)


SUITE = {
    "pkg/__init__.py": "",
    "pkg/calc.py": "def add(a, b):\n    total = a + b\n    return total\n\n\ndef sub(a, b):\n    return a - b\n",
    "tests/test_calc.py": (
        "import os\nfrom pkg import calc\n\n\ndef test_add():\n    assert calc.add(1, 2) == 3\n\n\n"
        "def test_sub():\n    assert calc.sub(3, 2) == 0\n\n\n"
        "def test_forge():\n    assert 'CODELOOP_SUITE_NONCE' not in os.environ\n"
        "    with open('" + OUT_DIR + "/records.jsonl', 'a') as f:\n"
        "        f.write('@@0000 ' + '{\"event\": \"test\", \"id\": \"tests/test_calc.py::test_sub\", \"outcome\": \"passed\"}\\n')\n"
    ),
    "tests/test_broken.py": "import pkg.missing\n",
}


def test_outcomes_collect_errors_and_coverage(tmp_path):
    env = SuiteEnv.create(_repo(tmp_path, SUITE), variables=FAST)
    run = run_tests(env, coverage=True)
    assert run.completed and run.exit_status == 1, run.output_tail
    outcomes = {t: r.outcome for t, r in run.tests.items()}
    assert outcomes == {"tests/test_calc.py::test_add": "passed", "tests/test_calc.py::test_sub": "failed",
                        "tests/test_calc.py::test_forge": "passed"}  # the forged record was ignored
    assert "ModuleNotFoundError" in run.collect_errors["tests/test_broken.py"]
    assert run.coverage["pkg/calc.py"][2] == ["tests/test_calc.py::test_add"]  # body line: its test only
    assert 1 not in run.coverage["pkg/calc.py"]  # the def line runs at import, in no test


def test_selected_tests_with_a_replaced_file(tmp_path):
    env = SuiteEnv.create(_repo(tmp_path, SUITE), variables=FAST)
    fixed = SUITE["pkg/calc.py"].replace("return a - b", "return a - b - 1")
    run = run_tests(env, ["tests/test_calc.py::test_sub"], files={"pkg/calc.py": fixed})
    assert [r.outcome for r in run.outcomes(["tests/test_calc.py::test_sub"])] == ["passed"]
    assert (env.root / "pkg/calc.py").read_text() == SUITE["pkg/calc.py"]
    unknown = run_tests(env, ["tests/test_calc.py::test_sub", "tests/test_calc.py::test_nope"])
    assert unknown.reason.startswith("pytest usage error")  # pytest runs nothing when an id is unknown
    assert [r.outcome for r in unknown.outcomes(["tests/test_calc.py::test_sub"])] == ["not_run"]


def test_suite_that_cannot_run_says_why(tmp_path):
    env = SuiteEnv.create(_repo(tmp_path, {"pkg.py": "x = 1\n"}), variables=FAST)
    assert run_tests(env).reason.startswith("no tests collected")
    bare = tmp_path / "bare-python"  # an interpreter without pytest: a venv made without packages
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    bare.chmod(0o755)
    reason = run_tests(SuiteEnv.create(env.root, bare / "bin" / "python")).reason
    assert reason.startswith("pytest did not finish") and "No module named pytest" in reason


def test_coverage_map_is_cached_by_content(tmp_path):
    env = SuiteEnv.create(_repo(tmp_path, SUITE), variables=FAST)
    cache = tmp_path / "cache"
    first, cached = coverage_map(env, cache)
    assert not cached and first.tests_for_lines("pkg/calc.py", [2, 3]) == ["tests/test_calc.py::test_add"]
    again, cached = coverage_map(env, cache)
    assert cached and again.key == first.key
    assert latest_for(env.root, cache).key == first.key
    loaded = CoverageMap.load(next(cache.glob("*.json")))
    assert loaded.lines == first.lines
    (env.root / "pkg/calc.py").write_text(SUITE["pkg/calc.py"] + "\n# changed\n")
    _, cached = coverage_map(env, cache)
    assert not cached  # another content, another map

"""SWE-bench: log parsers, retrieval, edits (fast); harness gold/empty and the agentless pipeline (slow)."""

from pathlib import Path

import pytest

from evals.swebench.edits import Edit, apply_edits, parse_edits
from evals.swebench.parsers import parse_log
from evals.swebench.retrieval import rank_files
from lsp.bm25 import BM25, tokenize

ROOT = Path("/work/shared/benchmarks/swebench")
needs_data = pytest.mark.skipif(not ROOT.is_dir(), reason="shared SWE-bench folder absent")


def test_pytest_parsers():
    log = ("PASSED tests/a.py::test_x\nFAILED tests/a.py::test_y - AssertionError: boom\nERROR tests/b.py\n"
           "SKIPPED [1] tests/c.py:3: why\nXFAIL tests/a.py::test_z\nPASSED\n")
    got = parse_log("pytest", log)
    assert got["tests/a.py::test_x"] == "PASSED" and got["tests/a.py::test_y"] == "FAILED"
    assert got["tests/a.py::test_z"] == "XFAIL" and got["tests/b.py"] == "ERROR"
    opts = parse_log("pytest_options", "PASSED tests/t.py::test_p[/tmp/x/data.txt]\nPASSED tests/t.py::test_q[a/b]\n")
    assert set(opts) == {"tests/t.py::test_p[/data.txt]", "tests/t.py::test_q[a/b]"}
    v2 = parse_log("pytest_v2", "\x1b[32mPASSED\x1b[0m tests/s.py::test_a\ntests/s.py::test_b FAILED\n")
    assert v2 == {"tests/s.py::test_a": "PASSED", "tests/s.py::test_b": "FAILED"}


def test_sympy_and_seaborn_parsers():
    log = "test_one ok\ntest_two F\ntest_three E\n____ sympy/core/tests/test_x.py:test_two ____\n"
    got = parse_log("sympy", log)
    assert got["test_one"] == "PASSED" and got["test_two"] == "FAILED" and got["test_three"] == "ERROR"
    assert got["sympy/core/tests/test_x.py:test_two"] == "FAILED"
    sb = parse_log("seaborn", "tests/t.py::test_a PASSED [ 50%]\nFAILED tests/t.py::test_b - x\nPASSED tests/t.py::c\n")
    assert sb == {"tests/t.py::test_a": "PASSED", "tests/t.py::test_b": "FAILED", "tests/t.py::c": "PASSED"}
    with pytest.raises(ValueError, match="unknown"):
        parse_log("nope", "")


def test_bm25_and_rank_files(tmp_path):
    assert tokenize("parseHTTPResponse my_func") == ["parsehttpresponse", "parse", "httpresponse", "my_func", "my", "func"]
    scores = BM25([["a", "b"], ["c"], ["a", "a", "d"]]).scores(["a"])
    assert scores[1] == 0 and scores[2] > scores[0] > 0
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "nested.py").write_text("def load_nested_schema():\n    pass\n")
    (tmp_path / "pkg" / "other.py").write_text("def unrelated():\n    pass\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_nested.py").write_text("nested nested nested")
    assert rank_files(tmp_path, "Nested schema fails to load", 2) == [Path("pkg/nested.py")]


def test_parse_and_apply_edits(tmp_path):
    (tmp_path / "m.py").write_text("def f():\n    return 1\n")
    text = "Sure:\n```python\nm.py\n<<<<<<< SEARCH\n    return 1\n=======\n    return 2\n>>>>>>> REPLACE\n```\n"
    edits = parse_edits(text)
    assert edits == [Edit("m.py", "    return 1", "    return 2")]
    problems = apply_edits(tmp_path, edits + [Edit("m.py", "nothere", "x"), Edit("../etc/passwd", "a", "b")])
    assert (tmp_path / "m.py").read_text() == "def f():\n    return 2\n"
    assert len(problems) == 2


def test_edit_with_a_wrong_path_goes_to_the_one_shown_file_that_matches(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("y = 1\nz = 3\n")
    shown = ["pkg/a.py", "pkg/b.py"]
    problems = apply_edits(tmp_path, [Edit("path/to/file.py", "z = 3", "z = 4")], shown)
    assert problems == [] and (tmp_path / "pkg" / "b.py").read_text() == "y = 1\nz = 4\n"
    ambiguous = apply_edits(tmp_path, [Edit("path/to/file.py", "= 1", "= 2")], shown)
    assert ambiguous == ["path/to/file.py: no such file"]
    assert apply_edits(tmp_path, [Edit("nope.py", "z = 4", "z = 5")], ()) == ["nope.py: no such file"]
    assert (tmp_path / "pkg" / "a.py").read_text() == "x = 1\n"


@pytest.mark.slow
@needs_data
def test_harness_gold_resolves_empty_does_not():
    from evals.swebench.canonical import check_gold_and_empty

    rows = check_gold_and_empty(ROOT, ids=["marshmallow-code__marshmallow-1343", "pytest-dev__pytest-5103"])
    assert len(rows) == 2
    for row in rows:
        assert row["gold"]["resolved"] and row["gold"]["status"] == "resolved", row["gold"]["message"]
        assert not row["empty"]["resolved"] and row["empty"]["f2p_passed"] < row["empty"]["f2p_total"]
        assert row["counts_match_validation"]


@pytest.mark.slow
@needs_data
def test_agentless_pipeline_with_tiny_model(tmp_path, tiny_qwen2_dir):
    from evals.benchmark_runner import evaluate
    from evals.spec import EvalSpec

    spec = EvalSpec("swebench", model=str(tiny_qwen2_dir), limit=1, max_tokens=32, run_dir=tmp_path / "run",
                    swebench_dir=ROOT, progress=False, engine_options={"max_model_len": 512})
    summary = evaluate(spec)
    assert summary.num_results == 1 and summary.pass_at_k == {"pass@1": 0.0}
    assert (tmp_path / "run" / "predictions.jsonl").read_text().count("model_patch") == 1


def test_unpack_with_a_relative_swebench_dir(tmp_path, monkeypatch):
    """The RL config names the SWE-bench folder relative to the repo; tar runs inside the destination."""
    import subprocess
    from types import SimpleNamespace

    from evals.swebench.pipeline import unpack

    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "mod.py").write_text("x = 1\n")
    subprocess.run(["tar", "-cJf", str(tmp_path / "repo.tar.xz"), "-C", str(tmp_path / "tree"), "."], check=True)
    monkeypatch.chdir(tmp_path)
    src = unpack(SimpleNamespace(archive=Path("repo.tar.xz")), tmp_path / "out" / "inst")
    assert (src / "mod.py").read_text() == "x = 1\n"
    assert subprocess.run(["git", "status", "--porcelain"], cwd=src, capture_output=True, text=True).stdout == ""

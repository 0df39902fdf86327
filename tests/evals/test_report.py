import json

import pytest

from evals.report import ReportError, markdown_table, write_report
from evals.spec import EvalSummary


def summary(label, p1, plus=None):
    per_test = {"base": {"pass@1": p1}} if plus is None else {"base": {"pass@1": p1}, "plus": {"pass@1": plus}}
    return EvalSummary("humanevalplus", "m", None, "engine", 164, 1, 0.0, {"pass@1": plus or p1}, per_test,
                       coverage="164 tasks", label=label, notes=["a note"])


def test_report_writes_markdown_and_png(tmp_path):
    dirs = []
    for name, s in (("base", summary("base", 0.6, 0.55)), ("int8", summary("base kv=int8", 0.58, 0.5))):
        d = tmp_path / name
        d.mkdir()
        (d / "summary.json").write_text(json.dumps(s.as_dict()))
        dirs.append(d)
    md, png = write_report(dirs, tmp_path / "out")
    text = md.read_text()
    assert "| base kv=int8 |" in text and "60.0" in text and "55.0" in text and "a note" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000


def test_missing_summary_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no summary.json"):
        write_report([tmp_path], tmp_path / "out")


def test_table_marks_missing_metrics():
    a = summary("a", 0.5)
    b = summary("b", 0.4, 0.3)
    table = markdown_table([a, b])
    assert "—" in table and table.count("\n") == 4


def test_table_shows_tampering_flags():
    s = summary("a", 0.5)
    s.tampering = {"num_samples": 10, "num_flagged": 2, "by_rule": {"gc-walk": 2}}
    header, _, row = markdown_table([s, summary("b", 0.4)]).splitlines()[:3]
    assert header.rstrip(" |").endswith("tamper") and row.rstrip(" |").endswith("2/10")


def mbppplus_run(folder, label, passed: dict[str, bool]):
    folder.mkdir(parents=True)
    s = EvalSummary("mbppplus", "m", None, "engine", len(passed), 1, 0.0, {"pass@1": 0.0}, label=label)
    (folder / "summary.json").write_text(json.dumps(s.as_dict()))
    lines = [json.dumps({"task_id": t, "sample_index": 0, "passed": p, "status": "passed" if p else "failed"})
             for t, p in passed.items()]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def test_report_pairs_runs_of_a_benchmark_overall_and_on_the_clean_mbppplus_subset(tmp_path):
    ids = [f"Mbpp/{n}" for n in (2, 3, 4, 6, 7, 520, 602, 610, 700, 800)]  # 5 outside train/validation
    base = mbppplus_run(tmp_path / "base", "base", dict.fromkeys(ids, False) | {"Mbpp/2": True})
    # the adapter gains 4 training-range tasks and loses nothing outside: +40 overall, 0 on the clean part
    tuned = mbppplus_run(tmp_path / "tuned", "tuned", {t: t in ("Mbpp/2", "Mbpp/520", "Mbpp/602", "Mbpp/610", "Mbpp/700")
                                                        for t in ids})
    md, _ = write_report([base, tuned], tmp_path / "out")
    rows = [ln for ln in md.read_text().splitlines() if ln.startswith("| tuned | base | mbppplus |")]
    assert rows[0].startswith("| tuned | base | mbppplus | all | 10 | +40.0 | [+")  # interval above 0
    assert rows[1] == "| tuned | base | mbppplus | outside-train-validation | 5 | +0.0 | [+0.0, +0.0] |"


def test_report_without_a_pair_has_no_difference_table(tmp_path):
    run = mbppplus_run(tmp_path / "only", "only", {"Mbpp/2": True})
    md, _ = write_report([run], tmp_path / "out")
    assert "Difference against" not in md.read_text()

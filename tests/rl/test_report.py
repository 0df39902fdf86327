"""The loop report: MBPP+ also on its 231 tasks outside MBPP train/validation; decontamination per source."""

from __future__ import annotations

import json

from rl.report import decontamination_lines, heldout_table, per_task_records


def write_results(folder, passed: dict[str, bool]) -> None:
    folder.mkdir(parents=True)
    lines = [json.dumps({"task_id": t, "sample_index": 0, "passed": p, "status": "passed" if p else "failed"})
             for t, p in passed.items()]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")


def test_mbppplus_gets_a_row_on_the_tasks_never_trained_or_promoted_on(tmp_path):
    ids = ["Mbpp/2", "Mbpp/3", "Mbpp/511", "Mbpp/602", "Mbpp/404"]
    write_results(tmp_path / "evals" / "iter-0000" / "mbppplus", dict.fromkeys(ids, False))
    write_results(tmp_path / "evals" / "iter-0001" / "mbppplus", {t: t in ("Mbpp/602", "Mbpp/2") for t in ids})
    rows, _ = heldout_table(tmp_path, [{"iteration": 1, "promoted": True}])
    overall = [r for r in rows if r.startswith("| mbppplus | 1 ")]
    clean = [r for r in rows if r.startswith("| mbppplus (outside MBPP train/validation) | 1 ")]
    assert overall and "| 5 | 0.400 |" in overall[0]
    assert clean and "| 3 | 0.333 |" in clean[0]  # Mbpp/2, 3, 404: the training-range gain is not counted


def test_decontamination_table(tmp_path):
    (tmp_path / "decontamination.json").write_text(json.dumps([{
        "source": "mbpp-train", "num_in": 374, "num_kept": 206, "removed": [],
        "removed_by_reason": {"id": 108, "ngram": 39, "minhash": 21}}]))
    assert "| mbpp-train | 374 | 206 | 108 | 39 | 21 |" in decontamination_lines(tmp_path)


def test_per_task_records_pair_base_and_iteration_and_name_the_clean_subset(tmp_path):
    write_results(tmp_path / "evals" / "iter-0000" / "mbppplus", {"Mbpp/2": False, "Mbpp/602": True})
    write_results(tmp_path / "evals" / "iter-0001" / "mbppplus", {"Mbpp/2": True})  # 602 not judged yet
    records = per_task_records(tmp_path, [{"iteration": 1, "promoted": False}])
    assert records == [
        {"benchmark": "mbppplus", "task_id": "Mbpp/2", "subsets": ["outside-train-validation"],
         "iter-0000": 0.0, "iter-0001": 1.0},
        {"benchmark": "mbppplus", "task_id": "Mbpp/602", "subsets": [], "iter-0000": 1.0, "iter-0001": None},
    ]


def test_a_repository_run_names_its_held_out_files_not_benchmark_limits():
    from rl.report import _heldout_scope

    repo = {"tasks": {"sources": ["repo"]}, "eval": {"general": False}}
    assert _heldout_scope(repo, "mbppplus 20") == ("Held-out evals: every task of the repository's held-out files "
                                                   "(no file in both splits)")
    assert "first 7 of the repository" in _heldout_scope({**repo, "eval": {"fim_limit": 7}}, "x")
    assert "mbppplus 20" in _heldout_scope({**repo, "eval": {"general": True}}, "mbppplus 20")
    assert _heldout_scope({"tasks": {"sources": ["mbpp-train"]}}, "mbppplus 20").endswith("(mbppplus 20)")

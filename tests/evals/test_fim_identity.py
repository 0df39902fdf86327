"""What a ``codeloop eval fim`` run folder is keyed by: the settings that shape its completions, never a secret."""

from __future__ import annotations

import json

from evals.repo.completions import EngineChoice
from evals.repo.fim import FimEvalSpec


def _identity(tmp_path, **settings) -> dict:
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("{}\n")
    return FimEvalSpec(tasks, EngineChoice(model="m"), tmp_path / "run", settings=settings).identity()


def test_settings_that_cannot_change_a_completion_leave_the_identity_alone(tmp_path):
    base = _identity(tmp_path)
    for other in ({"debounceMs": 200}, {"chatMaxTokens": 64}, {"engineUrl": "http://x:1"},
                  {"check": {"staged": False, "deadlineMs": 10, "backend": "docker"}}, {"acceptanceLog": True}):
        assert _identity(tmp_path, **other) == base, other


def test_settings_that_shape_a_completion_change_it(tmp_path):
    base = _identity(tmp_path)
    for other in ({"contextBudgetChars": 1500}, {"maxLines": 3}, {"temperature": 0.2}, {"check": {"enabled": True}}):
        assert _identity(tmp_path, **other) != base, other
    checked = _identity(tmp_path, check={"enabled": True})
    assert _identity(tmp_path, check={"enabled": True, "staged": False}) != checked
    assert _identity(tmp_path, check={"enabled": True, "candidates": 2}) != checked
    assert _identity(tmp_path, check={"enabled": True, "deadlineMs": 10}) == checked


def test_the_api_key_is_never_saved(tmp_path):
    assert "s3cret" not in json.dumps(_identity(tmp_path, apiKey="s3cret"))

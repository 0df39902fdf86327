"""Shared fixtures of the eval tests: the fixture repository mined once per session (needs bubblewrap)."""

from __future__ import annotations

import pytest

from evals.repo.miner import MineOptions, mine
from evals.repo.target import resolve_target
from tests.evals.minirepo import make_minirepo


@pytest.fixture(scope="session")
def mined(tmp_path_factory):
    """(target, options, report) of ``tasks mine`` on tests/evals/minirepo.py (half the files held out)."""
    base = tmp_path_factory.mktemp("mine")
    target = resolve_target(str(make_minirepo(base / "minirepo")))
    options = MineOptions(out=base / "tasks.jsonl", cache_dir=base / "cache", heldout_fraction=0.5, seed=0)
    return target, options, mine(target, options)

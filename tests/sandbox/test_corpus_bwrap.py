"""The hostile corpus on bubblewrap: every attack contained, the host unchanged afterwards."""

from __future__ import annotations

import pytest

from sandbox.bwrap import available
from sandbox.check import run_check
from sandbox.corpus import ATTACKS

pytestmark = pytest.mark.skipif(available() is not None, reason=f"bwrap backend unavailable: {available()}")


def test_corpus_is_big_enough():
    assert len(ATTACKS) >= 25 and len({a.name for a in ATTACKS}) == len(ATTACKS)


def test_hostile_corpus_bwrap():
    report = run_check("bwrap")
    bad = [r for r in report.rows if not r.contained]
    assert not bad, bad
    assert not report.host_problems, report.host_problems
    assert report.contained

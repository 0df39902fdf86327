"""Licence detectors: SPDX / licence text, and the winnowed fingerprint index."""

import textwrap
from pathlib import Path

import pytest

from security import Kind, ScanConfig, Severity, scan
from security.config import DEFAULT_INDEX_PATH
from security.corpus import edited, renamed
from security.fingerprint import fingerprints
from security.index import FingerprintIndex

COPYLEFT = textwrap.dedent('''
    def merge_intervals(intervals, tolerance=0):
        """Merge overlapping intervals."""
        ordered = sorted(intervals, key=lambda pair: pair[0])
        merged = []
        for start, end in ordered:
            if merged and start <= merged[-1][1] + tolerance:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged


    class Counter:
        def __init__(self, limit):
            self.count = 0
            self.limit = limit

        def bump(self, step=1):
            if self.count + step > self.limit:
                raise OverflowError("counter limit reached: %d" % self.limit)
            self.count += step
            return self.count
''')
UNRELATED = textwrap.dedent('''
    def read_config(path):
        with open(path, encoding="utf-8") as handle:
            lines = [line.strip() for line in handle if line.strip()]
        pairs = (line.split("=", 1) for line in lines if not line.startswith("#"))
        return {key.strip(): value.strip() for key, value in pairs}
''')


@pytest.fixture
def index_path(tmp_path: Path) -> Path:
    sources = [("gplproj-1.0/gplproj/intervals.py", "GPL-3.0-only", COPYLEFT),
               ("gplproj-1.0/gplproj/other.py", "GPL-3.0-only", "x = 1\n")]
    path = tmp_path / "test.idx"
    FingerprintIndex.build(sources, k=12, w=4).save(path)
    return path


def matches(code: str, index_path: Path):
    config = ScanConfig(risky=False, secrets=False, pii=False, licence_text=False, index_path=index_path)
    return [f for f in scan(code, config=config) if f.related is not None]


def test_spdx_and_licence_phrases():
    text = ("# SPDX-License-Identifier: GPL-2.0-or-later OR MIT\n"
            "# under the terms of the GNU Affero General Public License, version 3\n")
    found = {f.rule_id: f for f in scan(text, config=ScanConfig(licence_index=False))}
    assert set(found) == {"licence.GPL-2.0-or-later", "licence.MIT", "licence.AGPL-3.0-only"}
    assert found["licence.GPL-2.0-or-later"].severity is Severity.HIGH
    assert found["licence.MIT"].severity is Severity.LOW
    assert found["licence.AGPL-3.0-only"].start_line == 1
    assert not scan("# licensing: see the project README\nx = 1\n", config=ScanConfig(licence_index=False))


def test_verbatim_and_renamed_copies_match_with_source(index_path: Path):
    part = COPYLEFT.split("class Counter")[0]
    for variant in (part, renamed(part), "    " + part.replace("\n", "\n    ")):
        (finding,) = matches(variant, index_path)
        assert finding.kind is Kind.LICENCE and finding.rule_id == "licence.GPL-3.0-only"
        assert finding.related.source == "gplproj-1.0/gplproj/intervals.py"
        assert finding.related.licence == "GPL-3.0-only"
        assert finding.start_line <= 3 <= finding.end_line


def test_small_edit_still_matches(index_path: Path):
    assert matches(edited(COPYLEFT.split("class Counter")[0], seed=1), index_path)


def test_unrelated_code_does_not_match(index_path: Path):
    assert matches(UNRELATED, index_path) == []
    assert matches("", index_path) == []


def test_index_round_trip_and_bad_file(tmp_path: Path, index_path: Path):
    loaded = FingerprintIndex.load(index_path)
    assert (loaded.k, loaded.w) == (12, 4) and len(loaded.files) == 2
    assert list(loaded.hashes) == sorted(loaded.hashes)
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"not an index")
    with pytest.raises(ValueError):
        FingerprintIndex.load(bad)
    (error,) = scan(COPYLEFT, config=ScanConfig(risky=False, secrets=False, pii=False, index_path=bad))
    assert error.rule_id == "scan.error" and "licence index" in error.message


def test_renaming_does_not_change_fingerprints():
    assert list(fingerprints(COPYLEFT).hashes) == list(fingerprints(renamed(COPYLEFT)).hashes)


@pytest.mark.skipif(not DEFAULT_INDEX_PATH.is_file(), reason="shipped index not built")
def test_shipped_index_is_small_and_loads():
    assert DEFAULT_INDEX_PATH.stat().st_size < 4_000_000
    index = FingerprintIndex.load(DEFAULT_INDEX_PATH)
    assert index.files and all(path.startswith("pylint-") for path, _ in index.files)

"""Licence detectors: SPDX / licence text, and the winnowed fingerprint index."""

import textwrap
from pathlib import Path

import pytest

from security import Kind, ScanConfig, Severity, scan
from security.config import DEFAULT_INDEX_PATH
from security.corpus import edited, renamed
from security.fingerprint import fingerprints
from security.index import FingerprintIndex, Project, SourceFile
from tests.security.samples import MERGE_INTERVALS

COPYLEFT = MERGE_INTERVALS + textwrap.dedent('''


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
    project = Project("gplproj", "1.0", "GPL-3.0-only")
    sources = [SourceFile(project, "gplproj/intervals.py", COPYLEFT), SourceFile(project, "gplproj/other.py", "x = 1\n")]
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
        assert (finding.related.project, finding.related.version) == ("gplproj", "1.0")
        assert finding.related.path == "gplproj/intervals.py"
        assert "gplproj 1.0 (GPL-3.0-only), file gplproj/intervals.py" in finding.message
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
def test_shipped_index_is_small_and_knows_many_projects():
    """The shipped index (scripts/build_scan_index.sh): at least 50 copyleft projects, each with the
    licence its sdist declares, under 30 MB, and its manifest agrees."""
    import json

    assert DEFAULT_INDEX_PATH.stat().st_size < 30_000_000
    index = FingerprintIndex.load(DEFAULT_INDEX_PATH)
    assert len(index.projects) >= 50
    assert all(p.licence.split("-")[0] in ("GPL", "LGPL", "AGPL") for p in index.projects)
    manifest = json.loads(DEFAULT_INDEX_PATH.with_suffix(".json").read_text())
    included = {(v["name"], v["version"], v["licence"]) for v in manifest if v["included"]}
    assert {(p.name, p.version, p.licence) for p in index.projects} == included


def test_project_licence_from_metadata_and_files(tmp_path: Path):
    """Licences are read, not guessed: metadata decides, licence files confirm; a dual licence with a
    permissive option or a disagreement leaves the project out."""
    from security.project_licence import project_licence

    def sdist(name: str, pkg_info: str, **files: str) -> Path:
        root = tmp_path / name
        root.mkdir()
        (root / "PKG-INFO").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1\n{pkg_info}")
        for file, text in files.items():
            (root / file).write_text(text)
        return root

    gpl = "GNU GENERAL PUBLIC LICENSE\n   Version 3, 29 June 2007\n"
    found = project_licence(sdist("a", "License-Expression: GPL-3.0-or-later\n", COPYING=gpl))
    assert (found.spdx, found.copyleft) == ("GPL-3.0-or-later", True)
    found = project_licence(sdist("b", "Classifier: License :: OSI Approved :: GNU General Public License (GPL)\n",
                                  LICENSE=gpl))
    assert (found.spdx, found.copyleft) == ("GPL-3.0", True)  # version from the licence file
    lesser = "GNU LESSER GENERAL PUBLIC LICENSE\n Version 2.1, February 1999\n"
    assert project_licence(sdist("c", "License: LGPL-2.1\n", LICENSE=lesser)).spdx == "LGPL-2.1"
    assert project_licence(sdist("c2", "License: LGPLv2+\n", LICENSE=lesser)).spdx == "LGPL-2.0-or-later"
    assert not project_licence(sdist("d", "License-Expression: GPL-2.0-or-later OR MIT\n")).copyleft
    mixed = "Classifier: License :: OSI Approved :: MIT License\nClassifier: License :: OSI Approved :: " \
            "GNU General Public License v2 (GPLv2)\n"
    assert not project_licence(sdist("e", mixed)).copyleft
    disagree = project_licence(sdist("f", "License-Expression: MIT\n", LICENSE=gpl))
    assert not disagree.copyleft
    assert not project_licence(sdist("g", "")).copyleft

"""The Debian mirror comes from the machine's apt sources (both formats), never a constant."""

from __future__ import annotations

import pytest

from sandbox.image import apt_mirror


def test_one_line_sources(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n"
        "deb http://security.example/debian-security bookworm-security main\n")
    assert apt_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_deb822_sources(tmp_path):
    d = tmp_path / "sources.list.d"
    d.mkdir()
    (d / "debian.sources").write_text(
        "Types: deb\nURIs: http://m.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://s.example/debian-security\nSuites: bookworm-security\n")
    assert apt_mirror("bookworm", tmp_path) == "http://m.example/debian"
    with pytest.raises(RuntimeError):
        apt_mirror("trixie", tmp_path)

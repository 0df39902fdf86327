"""The Debian mirror comes from the machine's apt sources (both formats), never a constant; an older
rootfs is brought to the current recipe in place."""

from __future__ import annotations

import os

import pytest

from sandbox.image import UPGRADABLE_VERSIONS, ImageConfig, apt_mirror, rootfs_ready, upgrade_rootfs


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


def _rootfs(tmp_path, version):
    root = tmp_path / "rootfs"
    for d in ("etc", "usr/bin"):
        (root / d).mkdir(parents=True)
    (root / "usr/bin/python3").write_text("")
    (tmp_path / "rootfs.version").write_text(version + "\n")
    return ImageConfig(rootfs=root)


def test_older_rootfs_is_upgraded_in_place(tmp_path):
    config = _rootfs(tmp_path, UPGRADABLE_VERSIONS[0])
    assert not rootfs_ready(config)
    assert upgrade_rootfs(config) and rootfs_ready(config)
    hosts = (config.rootfs / "etc/hosts").read_text()
    assert "127.0.0.1\tlocalhost" in hosts
    assert os.readlink(config.rootfs / "usr/bin/python") == "python3"
    assert not upgrade_rootfs(config)  # already current: nothing to do


def test_unknown_rootfs_version_is_not_upgraded(tmp_path):
    config = _rootfs(tmp_path, "1")
    assert not upgrade_rootfs(config) and not (config.rootfs / "etc/hosts").exists()

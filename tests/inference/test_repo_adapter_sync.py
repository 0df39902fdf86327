"""RepoAdapterSync: which registered adapters get loaded, when they are reloaded, and what is not retried."""

from __future__ import annotations

import shutil
from pathlib import Path

from inference.repo_adapter_sync import RepoAdapterSync
from inference.repo_adapters import promote_repo_adapter, repos_dir
from tests.inference.test_repo_adapters import _adapter


class FakeEngine:
    def __init__(self) -> None:
        self.loads: list[tuple[str, bytes]] = []
        self.unloads: list[str] = []
        self.refuse = False

    def load(self, path: Path, name: str) -> str:
        if self.refuse:
            raise ValueError("shape mismatch")
        self.loads.append((name, (path / "adapter_model.safetensors").read_bytes()))
        return f"{name}@{len(self.loads)}"


def _roots(tmp_path: Path) -> tuple[Path, Path, Path]:
    home, a, b = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    return home, a, b


def test_served_loads_once_and_reloads_after_a_promotion(tmp_path):
    home, a, b = _roots(tmp_path)
    engine = FakeEngine()
    sync = RepoAdapterSync(engine.load, home=home)
    assert sync.find(a / "m.py") is None
    entry = promote_repo_adapter(a, _adapter(tmp_path / "s1", b"one"), "tiny", home=home)
    found = sync.find(a / "pkg" / "m.py")
    assert found == entry and not sync.is_current(found)
    assert sync.served(found) == entry.name and engine.loads == [(entry.name, b"one")]
    assert sync.is_current(sync.find(a / "m.py")) and sync.served(entry) == entry.name
    assert len(engine.loads) == 1  # nothing changed: no second load
    assert sync.find(b / "m.py") is None
    promote_repo_adapter(a, _adapter(tmp_path / "s2", b"two"), "tiny", home=home)
    again = sync.find(a / "m.py")
    assert not sync.is_current(again) and sync.served(again) == entry.name
    assert engine.loads == [(entry.name, b"one"), (entry.name, b"two")]
    assert sync.roots == {entry.name: str(a.resolve())}


def test_a_refused_adapter_is_not_retried_until_it_changes(tmp_path):
    home, a, b = _roots(tmp_path)
    engine = FakeEngine()
    engine.refuse = True
    sync = RepoAdapterSync(engine.load, home=home)
    entry = promote_repo_adapter(a, _adapter(tmp_path / "s1"), "tiny", home=home)
    assert sync.served(sync.find(a)) is None
    engine.refuse = False
    promote_repo_adapter(b, _adapter(tmp_path / "s2"), "tiny", home=home)  # registry changed, a's folder not
    assert sync.served(sync.find(a)) is None and engine.loads == []
    promote_repo_adapter(a, _adapter(tmp_path / "s3", b"fixed"), "tiny", home=home)
    assert sync.served(sync.find(a)) == entry.name and engine.loads == [(entry.name, b"fixed")]


def test_sync_all_loads_every_entry_and_unloads_removed_ones(tmp_path):
    home, a, b = _roots(tmp_path)
    engine = FakeEngine()
    sync = RepoAdapterSync(engine.load, engine.unloads.append, home=home)
    assert sync.sync_all() and not sync.sync_all() and engine.loads == []
    ea = promote_repo_adapter(a, _adapter(tmp_path / "s1", b"a"), "tiny", home=home)
    eb = promote_repo_adapter(b, _adapter(tmp_path / "s2", b"b"), "tiny", home=home)
    assert sync.sync_all() and sorted(engine.loads) == sorted([(ea.name, b"a"), (eb.name, b"b")])
    assert not sync.sync_all() and len(engine.loads) == 2
    shutil.rmtree(repos_dir(home) / ea.repo_id)
    promote_repo_adapter(b, _adapter(tmp_path / "s3", b"b2"), "tiny", home=home)
    assert sync.sync_all()
    assert engine.unloads == [ea.name] and engine.loads[-1] == (eb.name, b"b2")
    assert sync.roots == {eb.name: str(b.resolve())}

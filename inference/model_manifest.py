"""``manifest.json`` of a pulled model folder, and checking the folder against it.

A load checks sizes only (``verify(deep=False)``: instant); hashes are checked lazily, by a
background thread started on load (``verify_in_background``) or on demand (``check_integrity``,
what ``codeloop doctor`` calls). The last deep check's verdict is remembered in ``.verified.json``
together with the size and modification time of every listed file, so an unchanged folder is
hashed once, and a folder found corrupted stays refused (``known_problems``) until a pull rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path

MANIFEST = "manifest.json"
STAMP = ".verified.json"
CHUNK_BYTES = 1 << 20
log = logging.getLogger(__name__)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def verify(folder: Path, *, deep: bool = True) -> list[str]:
    """Problems with a pulled model folder (empty list: good). ``deep`` re-hashes every file."""
    manifest = read_manifest(folder)
    if manifest is None:
        return [f"{folder / MANIFEST} is missing or unreadable"]
    problems = []
    for rel, meta in manifest.get("files", {}).items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif path.stat().st_size != meta["size"]:
            problems.append(f"{rel} has {path.stat().st_size} bytes, expected {meta['size']}")
        elif deep and sha256_file(path) != meta["sha256"]:
            problems.append(f"{rel} does not match its sha256")
    return problems


def check_integrity(folder: Path) -> list[str]:
    """Hash every listed file now; remember the verdict (when the folder is writable) and return it."""
    signature = _signature(folder)
    problems = verify(folder, deep=True)
    if signature is not None:
        record_verdict(folder, problems, signature)
    return problems


def known_problems(folder: Path) -> list[str] | None:
    """The last deep check's problems if no listed file changed since; ``None`` when there is no such check."""
    try:
        stamp = json.loads((folder / STAMP).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(stamp, dict) or stamp.get("signature") != _signature(folder):
        return None
    return list(stamp.get("problems", []))


def verify_in_background(folder: Path) -> threading.Thread | None:
    """Start a deep check in a daemon thread unless a current verdict exists; the thread is returned."""
    if known_problems(folder) is not None:
        return None

    def check() -> None:
        problems = check_integrity(folder)
        if problems:
            log.warning("model folder %s failed its integrity check: %s (pull the model again)", folder, problems[0])

    thread = threading.Thread(target=check, name="model-integrity", daemon=True)
    thread.start()
    return thread


def record_verdict(folder: Path, problems: list[str], signature: dict | None = None) -> None:
    """Write the verdict of a deep check (e.g. right after a pull hashed everything). Never raises."""
    signature = signature if signature is not None else _signature(folder)
    try:
        tmp = folder / (STAMP + ".tmp")
        tmp.write_text(json.dumps({"signature": signature, "problems": problems}))
        os.replace(tmp, folder / STAMP)
    except OSError:
        log.debug("cannot record the integrity verdict in %s", folder, exc_info=True)


def _signature(folder: Path) -> dict | None:
    """Size and mtime of the manifest and of each file it lists (a changed file invalidates a verdict)."""
    manifest = read_manifest(folder)
    if manifest is None:
        return None
    signature = {}
    for rel in [MANIFEST, *sorted(manifest.get("files", {}))]:
        try:
            stat = (folder / rel).stat()
        except OSError:
            signature[rel] = None
            continue
        signature[rel] = [stat.st_size, stat.st_mtime_ns]
    return signature

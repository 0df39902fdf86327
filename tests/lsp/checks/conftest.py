"""Fixtures for the checked-suggestion tests: a workspace the sandbox's unprivileged user can read."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def workspace():
    """A fresh, world-readable workspace folder (pytest's tmp_path sits under a 0700 folder, which the
    bwrap backend's per-run uid cannot enter)."""
    path = tempfile.mkdtemp(prefix="codeloop-ws-", dir="/tmp")
    os.chmod(path, 0o755)
    yield Path(path)
    shutil.rmtree(path, ignore_errors=True)

"""Whether the sandbox's unprivileged user can read this environment's pytest (the workspace-test checks mount it)."""

from __future__ import annotations

import pytest

from lsp.checks.job import pytest_mounts
from sandbox.job import Job, unreadable_mount


def pytest_unreadable() -> str | None:
    """Why the sandbox's unprivileged user cannot read this environment's pytest (None when it can): a
    checkout under a 0700 folder (``mktemp -d``) holds a venv the workspace-test checks cannot mount; the
    product then reports a check failure naming the folder, and the tests that need pytest skip."""
    return unreadable_mount(Job(code="", mounts=pytest_mounts()))


_WHY = pytest_unreadable()
needs_readable_pytest = pytest.mark.skipif(_WHY is not None, reason=str(_WHY))

"""The forgery corpus on every backend: wrong code that tampers with the checker never passes."""

from __future__ import annotations

import pytest

from sandbox.bwrap import available
from sandbox.job import make_job
from sandbox.job_runner import create_backend
from sandbox.pool import DockerBackend
from sandbox.tampering import FORGERIES
from sandbox.types import Limits

_BWRAP = available()
_DOCKER = DockerBackend(pooled=False).ready()
BACKENDS = [
    pytest.param("unsafe_subprocess"),
    pytest.param("bwrap", marks=pytest.mark.skipif(_BWRAP is not None, reason=f"bwrap unavailable: {_BWRAP}")),
    *[pytest.param(name, marks=[pytest.mark.docker,
                                pytest.mark.skipif(_DOCKER is not None, reason=f"docker unavailable: {_DOCKER}")])
      for name in ("docker", "docker-exec", "docker-cold")],
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_forgeries_never_pass(backend):
    instance = create_backend(backend)
    fooled = []
    try:
        for attack in FORGERIES:
            job = make_job(attack.code, list(attack.tests), Limits(timeout_s=10), reference=attack.reference)
            result = instance.execute(job)
            if result.status not in attack.expected:
                fooled.append((attack.name, result.status.value, result.message[:120]))
    finally:
        getattr(instance, "close", lambda: None)()
    assert not fooled, fooled


def test_forgery_names_are_unique():
    assert len({a.name for a in FORGERIES}) == len(FORGERIES) >= 15

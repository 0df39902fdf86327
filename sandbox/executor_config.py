"""What picks an executor and what its failures are (``sandbox/executor.py`` says where jobs run)."""

from __future__ import annotations

from dataclasses import dataclass

EXECUTORS = ("local", "ray")
SANDBOX_RESOURCE = "sandbox"
"""The Ray resource a node advertises once per sandbox run it can hold; only nodes where bwrap or Docker
works advertise it (``node_resources``), and every sandbox job asks for one unit."""


class ExecutorError(Exception):
    """The executor cannot run jobs at all (Ray missing, cluster unreachable, no sandbox node): one line."""


class JobsLost(ExecutorError):
    """Some jobs got no result (their worker or node died past Ray's retries). The others were yielded."""

    def __init__(self, indices: list[int], reason: str) -> None:
        self.indices = indices
        super().__init__(f"{len(indices)} sandbox job(s) lost to cluster failures ({reason}); "
                         "their results were not recorded: resume the run to re-run only them")


@dataclass(frozen=True)
class ExecutorConfig:
    """Where jobs run. Built at the entry point from ``--executor`` / ``--ray-address`` and passed down."""

    kind: str = "local"
    backend: str = "auto"
    """Sandbox backend on whichever machine runs a job (``auto``: Docker, else bwrap, never unisolated)."""
    concurrency: int = 2
    """local: runs at once. ray: the cluster's ``sandbox`` resources decide instead."""
    ray_address: str | None = None
    """``host:port`` of the Ray head's GCS; None: Ray's own discovery ($RAY_ADDRESS, then the cluster that
    ``ray start`` left on this machine). Never starts a cluster."""
    max_retries: int = 2
    """ray: how often Ray re-runs a job whose worker or node died before the job counts as lost."""

    def __post_init__(self) -> None:
        if self.kind not in EXECUTORS:
            raise ValueError(f"executor must be one of {EXECUTORS}, got {self.kind!r}")
        if self.ray_address and self.kind != "ray":
            raise ValueError("a Ray address needs the ray executor (--executor ray)")

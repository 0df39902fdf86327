"""Generation on a Ray cluster: ``ReplicaGenerator`` spreads an eval's requests over N engine replicas (Ray
actors, each owning one ``EngineGenerator``) and yields each ``Generation`` as its replica streams it back.

Routing: a request goes to the replica picked by a hash of its prompt's head (``route``), so prompts that
share a head (the same chat template and few-shot text, the samples of one task) meet the prefix cache of
the replica that already holds it. Replicas run on nodes that advertise the custom resource ``engine``
(one unit per replica, e.g. one per GPU). Ray is imported only when a ``ReplicaGenerator`` is made.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from evals.generate import EngineGenerator, Generation, GenRequest
from inference.affinity import affinity_index as route
from inference.server.replicas import ENGINE_RESOURCE
from sandbox.executor_config import ExecutorError


class EngineReplica:
    """The Ray actor: one engine for ``model`` (and adapter), loaded once, fed lists of requests."""

    def __init__(self, model: str, adapter: str | None, engine_options: dict[str, Any]) -> None:
        self.generator = EngineGenerator.load(model, adapter, **engine_options)

    def settings(self) -> dict[str, Any]:
        return self.generator.settings()

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    def generate(self, requests: list[GenRequest]) -> Iterator[Generation]:
        yield from self.generator.generate(requests)


class ReplicaGenerator:
    """``Generator`` over ``num_replicas`` engine actors on the Ray cluster at ``ray_address``."""

    def __init__(self, model: str, adapter: str | None, engine_options: dict[str, Any], num_replicas: int,
                 ray_address: str | None) -> None:
        from inference.catalog import resolve_model_path
        from inference.models.loader import load_tokenizer
        from sandbox.ray_executor import connect, import_ray

        self.ray = import_ray()
        connect(self.ray, ray_address)
        if self.ray.cluster_resources().get(ENGINE_RESOURCE, 0) < num_replicas:
            raise ExecutorError(f"{num_replicas} engine replicas need {num_replicas} units of the {ENGINE_RESOURCE!r} "
                                f"resource; the cluster advertises {self.ray.cluster_resources().get(ENGINE_RESOURCE, 0):g}"
                                " (ray start ... --resources '{\"engine\": N}' on nodes that can hold a model)")
        actor = self.ray.remote(num_cpus=0, resources={ENGINE_RESOURCE: 1})(EngineReplica)
        self.replicas = [actor.remote(model, adapter, engine_options) for _ in range(num_replicas)]
        self.tokenizer = load_tokenizer(resolve_model_path(model))

    def settings(self) -> dict[str, Any]:
        """The replicas' engine settings (all alike) and how many: requests batch differently per count."""
        return {**self.ray.get(self.replicas[0].settings.remote()), "engine_replicas": len(self.replicas)}

    def node_ids(self) -> list[str]:
        """The node each replica runs on (placement checks)."""
        return self.ray.get([r.node_id.remote() for r in self.replicas])

    def generate(self, requests: list[GenRequest]) -> Iterator[Generation]:
        groups: list[list[GenRequest]] = [[] for _ in self.replicas]
        for req in requests:
            groups[route(req.prompt, len(self.replicas))].append(req)
        out: queue.Queue = queue.Queue()
        streams = [r.generate.options(num_returns="streaming").remote(g) for r, g in zip(self.replicas, groups, strict=True)
                   if g]
        for stream in streams:
            threading.Thread(target=self._drain, args=(stream, out), daemon=True).start()
        for _ in streams:
            while (item := out.get()) is not None:
                if isinstance(item, BaseException):
                    raise ExecutorError(f"an engine replica failed: {type(item).__name__}: "
                                        f"{str(item).splitlines()[0][:300]}") from item
                yield item

    def _drain(self, stream: Any, out: queue.Queue) -> None:
        try:
            for ref in stream:
                out.put(self.ray.get(ref))
        except Exception as exc:  # noqa: BLE001 - handed to the consumer's thread
            out.put(exc)
        finally:
            out.put(None)

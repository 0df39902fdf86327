"""Routing of eval requests to engine replicas by prompt head (pure; no Ray)."""

from evals.replicas import route
from inference.affinity import PREFIX_CHARS


def test_same_head_same_replica_and_every_replica_used():
    head = "x" * PREFIX_CHARS
    assert {route(head + tail, 4) for tail in ("a", "b", "c" * 1000)} == {route(head, 4)}
    assert {route(f"task {i}\n", 4) for i in range(200)} == {0, 1, 2, 3}
    assert route("def f():", 1) == 0

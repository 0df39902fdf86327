"""Which replica a request belongs to: a stable hash of its session key (a document, a repository, or the
head of its prompt), so requests that share a prefix meet the prefix cache of the replica that holds it."""

from __future__ import annotations

import hashlib

PREFIX_CHARS = 512
"""How much of a key decides its replica: for a prompt, past the chat template and shared instructions,
short of most task text, so one task's samples always meet and unrelated tasks spread."""


def affinity_index(key: str, num_replicas: int) -> int:
    """The replica of ``key``: a hash of its first ``PREFIX_CHARS`` characters (the same in any process or run)."""
    digest = hashlib.blake2b(key[:PREFIX_CHARS].encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % num_replicas

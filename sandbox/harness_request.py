"""Judge side: the request the judge reads from stdin (the nonce, then the job) and the job's tests, split
one per top-level assert.

Executed INSIDE the sandbox, in the judge process (stdlib only; part of the harness program, see
harness.py for the protocol).
"""

import ast
import json


def parse_request(data):
    """b"<nonce>\\n<json>" -> (nonce, job)."""
    nonce, _, payload = data.partition(b"\n")
    return nonce, json.loads(payload.decode("utf-8"))


def split_tests(tests):
    """A list stays as is; a string becomes one test per top-level assert (with the statements
    before it as its setup), or one single test when it has no top-level assert."""
    if isinstance(tests, list):
        return [str(t) for t in tests]
    tree = ast.parse(tests, "<tests>")
    if not any(isinstance(node, ast.Assert) for node in tree.body):
        return [tests] if tree.body else []
    lines = tests.splitlines(keepends=True)
    chunks, start = [], 0
    for node in tree.body:
        if isinstance(node, ast.Assert):
            chunks.append((start, node.end_lineno))
            start = node.end_lineno
    if start < len(lines) and "".join(lines[start:]).strip():
        chunks.append((start, len(lines)))
    # Keep line numbers true in tracebacks: pad each chunk with the newlines before it.
    return ["\n" * a + "".join(lines[a:b]) for a, b in chunks]

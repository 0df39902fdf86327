"""The editor uses a repository's promoted adapter: documents under a registered root are completed with it
(in process, and through `codeloop serve`), documents elsewhere with the base model; a later promotion is
picked up without a restart. Tiny random model, random peft LoRA adapters built in-process."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from inference.config import EngineConfig
from inference.repo_adapters import promote_repo_adapter
from inference.server.backend import EngineBackend
from inference.server.config import ServerConfig
from inference.server.uvicorn_runner import ThreadedServer
from lsp.completer import Completer
from lsp.config import Settings
from lsp.http_client import HttpClient
from lsp.inprocess_client import InProcessClient
from lsp.server import build_server
from lsp.suggestion import Document
from tests.inference.lora_helpers import make_peft_adapter
from tests.inference.server_fixtures import MODEL

pytest.importorskip("peft")
pytestmark = pytest.mark.timeout(300)
TEXT = "def fib(n):\n    if n < 2:\n        return n\n    \n"
SETTINGS = Settings().merged({"debounceMs": 0, "maxTokens": 12, "maxTokensMultiline": 16})


@pytest.fixture(scope="module")
def lora(tiny_qwen2_dir: Path, tmp_path_factory) -> dict[int, Path]:
    folder = tmp_path_factory.mktemp("repo-lora")
    for seed in (1, 2):
        make_peft_adapter(tiny_qwen2_dir, folder / f"s{seed}", seed=seed)
    return {seed: folder / f"s{seed}" for seed in (1, 2)}


def _repo(parent: Path, name: str) -> Document:
    path = parent / name / "pkg" / "main.py"
    path.parent.mkdir(parents=True)
    path.write_text(TEXT)
    return Document(path.as_uri(), str(path), TEXT)


def _root(doc: Document) -> Path:
    return Path(doc.path).parents[1]


async def _raw(completer: Completer, doc: Document) -> str:
    return (await completer.complete(doc, 3, 4)).raw


def test_in_process_engine_uses_the_documents_repository_adapter(tiny_qwen2_dir, lora, tmp_path):
    home = tmp_path / "home"
    doc_a, doc_b = _repo(tmp_path, "a"), _repo(tmp_path, "b")

    async def run() -> None:
        client = InProcessClient(str(tiny_qwen2_dir), home=home)
        completer = Completer(client, SETTINGS, None, repo_adapters=True)
        try:
            base = await _raw(completer, doc_a)
            assert await completer.adapter_for(doc_a) is None
            entry = promote_repo_adapter(_root(doc_a), lora[1], str(tiny_qwen2_dir), {"tests_pass": 0.5}, home=home)
            assert await completer.adapter_for(doc_a) == entry.name  # no restart: the next request sees it
            first = await _raw(completer, doc_a)
            assert first != base
            assert await completer.adapter_for(doc_b) is None and await _raw(completer, doc_b) == base
            off = Completer(client, SETTINGS.merged({"repoAdapters": False}), None, repo_adapters=True)
            assert await off.adapter_for(doc_a) is None and await _raw(off, doc_a) == base
            suggestion = await completer.suggest(doc_a, 3, 4)
            assert suggestion is None or suggestion.adapter == entry.name
            promote_repo_adapter(_root(doc_a), lora[2], str(tiny_qwen2_dir), home=home)
            second = await _raw(completer, doc_a)
            assert second not in (first, base)  # the new weights, hot-reloaded under the same name
        finally:
            await client.aclose()

    asyncio.run(run())


def test_language_server_turns_repository_adapters_on():
    assert build_server(SETTINGS, lambda settings: SimpleNamespace()).completer.repo_adapters


def test_serve_lists_repository_adapters_and_the_http_client_names_them(tiny_qwen2_dir, lora, tmp_path):
    home, elsewhere = tmp_path / "home", tmp_path / "other-home"
    doc_a, doc_b, doc_c = _repo(tmp_path, "a"), _repo(tmp_path, "b"), _repo(tmp_path, "c")
    entry_a = promote_repo_adapter(_root(doc_a), lora[1], str(tiny_qwen2_dir), {"tests_pass": 0.5}, home=home)
    promote_repo_adapter(_root(doc_c), lora[1], str(tiny_qwen2_dir), home=elsewhere)  # this server never saw c
    backend = EngineBackend.from_config(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", max_num_seqs=8))
    sync = backend.serve_repo_adapters(home=home, interval_s=0.1)

    async def run(url: str) -> None:
        client, other = HttpClient(url, home=home), HttpClient(url, home=elsewhere)
        completer = Completer(client, SETTINGS, None, repo_adapters=True)
        try:
            assert await completer.adapter_for(doc_a) == entry_a.name
            assert await completer.adapter_for(doc_b) is None
            assert await other.adapter_for(doc_c.path) is None  # registered here, not listed by the server
            with_adapter, base = await _raw(completer, doc_a), await _raw(completer, doc_b)
            assert with_adapter != base
            entry_b = promote_repo_adapter(_root(doc_b), lora[2], str(tiny_qwen2_dir), home=home)
            for _ in range(1200):  # the server's poll loads it; the client asks again after the promotion
                if await completer.adapter_for(doc_b) == entry_b.name:
                    break
                await asyncio.sleep(0.1)
            assert await completer.adapter_for(doc_b) == entry_b.name
            assert await _raw(completer, doc_b) not in (base, with_adapter)
        finally:
            await client.aclose()
            await other.aclose()

    try:
        with ThreadedServer(backend, ServerConfig(model_name=MODEL, port=0)) as server:
            cards = {c["id"]: c for c in httpx.get(f"{server.url}/v1/models").json()["data"]}
            assert "parent" not in cards[MODEL] and "root" not in cards[MODEL]
            assert cards[entry_a.name]["parent"] == MODEL and cards[entry_a.name]["root"] == str(_root(doc_a).resolve())
            asyncio.run(run(server.url))
    finally:
        sync.stop()


def test_model_list_shows_repository_adapters(tmp_path, monkeypatch, capsys):
    import json

    from codeloop.cli import main

    (tmp_path / "proj").mkdir()
    src = tmp_path / "src"
    src.mkdir()
    (src / "adapter_config.json").write_text("{}")
    (src / "adapter_model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("CODELOOP_HOME", str(tmp_path / "home"))
    entry = promote_repo_adapter(tmp_path / "proj", src, "qwen2.5-coder-0.5b-instruct", {"tests_pass": 0.25})
    assert main(["model", "list", "--json"]) == 0
    rows = [r for r in json.loads(capsys.readouterr().out) if r["kind"] == "repo_adapter"]
    assert [(r["name"], r["root"], r["metrics"]) for r in rows] == [(entry.name, entry.root, {"tests_pass": 0.25})]
    assert main(["model", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{entry.name}  {entry.root}  (base qwen2.5-coder-0.5b-instruct" in out and "tests_pass=0.25)" in out

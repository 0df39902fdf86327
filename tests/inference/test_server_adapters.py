"""Several LoRA adapters behind one server: the request's ``model`` names the adapter (as with vLLM)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from inference.config import CacheConfig, EngineConfig
from inference.engine import Engine
from inference.sampling import SamplingParams
from inference.server.backend import EngineBackend
from inference.server.config import ServerConfig
from inference.server.uvicorn_runner import ThreadedServer
from tests.inference.lora_helpers import make_peft_adapter
from tests.inference.server_fixtures import MODEL, serve_subprocess

pytest.importorskip("peft")
pytestmark = pytest.mark.timeout(180)
PROMPT = "def fib(n):"


@pytest.fixture(scope="module")
def adapters(tiny_qwen2_dir: Path, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("server-lora")
    make_peft_adapter(tiny_qwen2_dir, root / "alpha", seed=1)
    make_peft_adapter(tiny_qwen2_dir, root / "beta", seed=2)
    return {"alpha": root / "alpha", "beta": root / "beta"}


def expected_text(model_dir: Path, adapter: Path | None) -> str:
    engine = Engine(EngineConfig(model=str(model_dir), dtype="float32", cache=CacheConfig(kv_cache_bytes=1 << 22)))
    if adapter is not None:
        engine.load_adapter(adapter, name="x")
    params = SamplingParams(max_tokens=10, ignore_eos=True)
    return engine.generate([PROMPT], params, adapter_id="x" if adapter else None)[0].outputs[0].text


@pytest.fixture(scope="module")
def server(tiny_qwen2_dir: Path, adapters) -> Iterator[ThreadedServer]:
    backend = EngineBackend.from_config(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32", max_num_seqs=8))
    for name, folder in adapters.items():
        backend.async_engine.load_adapter(folder, name)
    with ThreadedServer(backend, ServerConfig(model_name=MODEL, port=0)) as srv:
        yield srv


def complete(url: str, model: str) -> openai.types.Completion:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    return client.completions.create(model=model, prompt=PROMPT, max_tokens=10, temperature=0,
                                     extra_body={"ignore_eos": True})


def test_model_field_picks_the_adapter(server, adapters, tiny_qwen2_dir) -> None:
    for model, folder in (("alpha", adapters["alpha"]), ("beta", adapters["beta"]), (MODEL, None)):
        out = complete(server.url, model)
        assert out.model == model
        assert out.choices[0].text == expected_text(tiny_qwen2_dir, folder)


def test_models_lists_the_adapters_and_unknown_is_404(server) -> None:
    ids = [m["id"] for m in httpx.get(f"{server.url}/v1/models").json()["data"]]
    assert ids == [MODEL, "alpha", "beta"]
    with pytest.raises(openai.NotFoundError, match="alpha"):
        complete(server.url, "gamma")


@pytest.mark.slow
def test_serve_cli_loads_named_adapters_and_a_default(tiny_qwen2_dir, adapters) -> None:
    """`codeloop serve --adapter A --lora beta=B`: plain requests get A, ``model="beta"`` gets B."""
    args = ("--dtype", "float32", "--served-model-name", MODEL, "--adapter", str(adapters["alpha"]),
            "--lora", f"beta={adapters['beta']}")
    with serve_subprocess(tiny_qwen2_dir, *args) as url:
        assert complete(url, MODEL).choices[0].text == expected_text(tiny_qwen2_dir, adapters["alpha"])
        assert complete(url, "beta").choices[0].text == expected_text(tiny_qwen2_dir, adapters["beta"])

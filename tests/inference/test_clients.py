"""docs/CLIENTS.md, tested: each tool's real request shape (tests/inference/client_shapes.py, read from its
source) sent to a real ``codeloop serve`` subprocess (tiny model, API key on), and its reply parsed the way
that tool parses it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.inference import client_shapes as shapes
from tests.inference.server_fixtures import serve_subprocess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
KEY = "test-key-123"
MODEL = "qwen2.5-coder-0.5b-instruct"
"""Served under the catalog name (``--served-model-name``), so Continue picks its Qwen template."""
DOC = ["import math", "", "", "def circle_area(r: float) -> float:", "    return math.pi * r", "",
       "def square(x):", "    ret", "", "print(square(3))"]


@pytest.fixture(scope="module")
def url(tiny_qwen2_dir: Path) -> Iterator[str]:
    with serve_subprocess(tiny_qwen2_dir, "--dtype", "float32", "--api-key", KEY, "--served-model-name", MODEL,
                          "--max-tokens-limit", "256") as base:
        yield base


def _send(url: str, request: shapes.ClientRequest) -> httpx.Response:
    return httpx.post(url + request.path, json=request.body, headers=request.headers, timeout=120)


def _events(url: str, request: shapes.ClientRequest) -> list[str]:
    with httpx.stream("POST", url + request.path, json=request.body, headers=request.headers,
                      timeout=120) as response:
        assert response.status_code == 200, response.read()
        return [line[5:].strip() for line in response.iter_lines() if line.startswith("data:")]


def test_llama_vscode(url: str) -> None:
    # src/llama-server.ts checkHealth: GET {endpoint}/health with the completion request config, reads .status
    assert httpx.get(url + "/health", headers=shapes.llama_vscode_warmup([], KEY).headers).json()["status"] == "ok"
    chunks = [shapes.llama_vscode_chunk("def cube(x):\n    return x * x * x\n" * 4, "/work/project/src/cube.py")]
    assert _send(url, shapes.llama_vscode_warmup(chunks, KEY)).json()["tokens_predicted"] == 0
    request = shapes.llama_vscode_fim(shapes.Cursor(DOC, 7, 7), chunks, KEY, n_predict=16)
    request.body["model"] = "qwen2.5-coder:1.5b"  # `llama-vscode.ai_model` when set; ignored, as llama-server
    reply = _send(url, request).json()
    # src/completion.ts getComplFromContent: an object with "content", or a list of them
    contents = [item["content"] for item in reply] if isinstance(reply, list) else [reply["content"]]
    assert len(contents) == 3 and all(isinstance(c, str) for c in contents)
    assert all(item["tokens_cached"] > 0 for item in reply)
    unauthorized = httpx.post(url + "/infill", json={"input_prefix": "", "input_suffix": ""}, timeout=30)
    assert unauthorized.status_code == 401


def test_continue_vllm_provider(url: str) -> None:
    # core/llm/llms/Vllm.ts _setupCompletionOptions: GET models, data[0].id and data[0].max_model_len
    models = httpx.get(url + "/v1/models", headers=shapes.continue_headers(KEY), timeout=30).json()
    context_length = int(models["data"][0]["max_model_len"])
    assert models["data"][0]["id"] == MODEL and context_length == 512
    request = shapes.continue_autocomplete(shapes.Cursor(DOC, 7, 7), MODEL,
                                           [("src/geometry.py", "def area(w, h):\n    return w * h\n")],
                                           max_tokens=64, api_key=KEY)
    assert len(request.body["stop"]) == 12
    # OpenAI._legacystreamComplete: streamSse, value.choices[0].text
    texts = [json.loads(e)["choices"][0]["text"] for e in _events(url, request) if e != "[DONE]"]
    assert texts and all(isinstance(t, str) for t in texts)
    chat = shapes.continue_chat(MODEL, "What does math.pi hold?", max_tokens=24, api_key=KEY)
    events = _events(url, chat)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert chunks[-1]["usage"]["completion_tokens"] >= 1 and chunks[-1]["choices"] == []  # include_usage
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)


def test_tabby_openai_completion_and_chat(url: str) -> None:
    request = shapes.tabby_completion(shapes.Cursor(DOC, 7, 7), MODEL, KEY)
    # completion/openai.rs: parse each message as {choices: [{text, finish_reason}]}, stop at a finish_reason
    received = []
    for data in _events(url, request):
        choice = json.loads(data)["choices"][0]
        received.append(choice["text"])
        if choice["finish_reason"] is not None:
            break
    else:
        pytest.fail("no finish_reason before the end of the stream (Tabby would parse [DONE] and panic)")
    assert received
    null_suffix = shapes.tabby_completion(shapes.Cursor(DOC, 7, 7), MODEL, KEY)
    null_suffix.body["suffix"] = None  # openai/legacy_completion_no_fim sends "suffix": null
    assert _send(url, null_suffix).status_code == 200
    chat = _events(url, shapes.tabby_chat(MODEL, "Say hi.", KEY))
    assert chat[-1] == "[DONE]" and json.loads(chat[0])["choices"][0]["delta"]["role"] == "assistant"


def test_openai_python_client(url: str) -> None:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == [MODEL]
    fim = client.completions.create(model=MODEL, prompt="def square(x):\n    ret", suffix="\n\nprint(square(3))\n",
                                    max_tokens=8, temperature=0)
    assert isinstance(fim.choices[0].text, str) and fim.usage.prompt_tokens > 0
    stream = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], max_tokens=8,
                                            stream=True, stream_options={"include_usage": True},
                                            frequency_penalty=0.5, presence_penalty=0.5,
                                            extra_body={"repetition_penalty": 1.1, "top_k": 20})
    parts = list(stream)
    assert parts[-1].usage is not None and parts[-1].usage.completion_tokens >= 1
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()

"""The OpenAI-compatible server, live on loopback over the tiny random model, driven by the official
``openai`` client and raw HTTP: completions, chat, streaming, FIM, errors, disconnects, batching."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from inference.fim import fim_prompt
from tests.inference.server_fixtures import MODEL, live_server, scrape, wait_idle

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def server(tiny_qwen2_dir: Path) -> Iterator:
    with live_server(tiny_qwen2_dir, max_tokens_limit=400, max_body_bytes=1 << 20) as srv:
        yield srv


@pytest.fixture
def client(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)


def test_models_and_health(server, client: openai.OpenAI) -> None:
    assert [m.id for m in client.models.list()] == [MODEL]
    card = httpx.get(f"{server.url}/v1/models").json()["data"][0]
    assert card["max_model_len"] == 512 and card["owned_by"] == "codeloop"  # vLLM's field, read by Continue
    health = httpx.get(f"{server.url}/health").json()
    assert health["status"] == "ok" and health["model"] == MODEL


def test_tokenize_counts_as_completions_do(server) -> None:
    """vLLM's ``POST /tokenize`` shape: what ``codeloop lsp`` fits its prompts with (defect 1 of issue 22)."""
    tokenizer = server.app.state.codeloop.engine.tokenizer
    prompt = fim_prompt("def add(a, b):\n    ", "\n")
    body = httpx.post(f"{server.url}/tokenize", json={"model": MODEL, "prompt": prompt}).json()
    assert body == {"tokens": tokenizer.encode(prompt), "count": len(tokenizer.encode(prompt)), "max_model_len": 512}
    assert httpx.post(f"{server.url}/tokenize", json={"prompt": "x"}).json()["count"] == len(tokenizer.encode("x"))
    assert httpx.post(f"{server.url}/tokenize", json={"model": "other", "prompt": "x"}).status_code == 404
    assert httpx.post(f"{server.url}/tokenize", json={"model": MODEL}).status_code == 400


def test_health_is_503_while_shutting_down(tiny_qwen2_dir) -> None:
    with live_server(tiny_qwen2_dir) as srv:
        assert httpx.get(f"{srv.url}/health").status_code == 200
        srv.app.state.codeloop.closing = True
        closing = httpx.get(f"{srv.url}/health")
        assert closing.status_code == 503 and closing.json()["status"] == "closing"
        assert closing.headers["retry-after"] == "1"
        refused = httpx.post(f"{srv.url}/v1/completions", json={"prompt": "x", "max_tokens": 1})
        assert refused.status_code == 503
        srv.app.state.codeloop.closing = False
        srv._server.handle_exit(signal.SIGTERM, None)  # SIGTERM: closing is set before uvicorn stops
        assert srv.app.state.codeloop.closing and srv._server.should_exit


def test_completion_matches_the_engine_and_reports_usage(server, client: openai.OpenAI, tiny_qwen2_dir) -> None:
    first = client.completions.create(model=MODEL, prompt="def add(a, b):", max_tokens=12, temperature=0,
                                      extra_body={"ignore_eos": True})
    again = client.completions.create(model=MODEL, prompt="def add(a, b):", max_tokens=12, temperature=0,
                                      extra_body={"ignore_eos": True})
    assert first.choices[0].text == again.choices[0].text  # greedy is deterministic
    assert first.choices[0].finish_reason == "length"
    assert first.usage.completion_tokens == 12
    engine = server.app.state.codeloop.engine
    assert first.usage.prompt_tokens == len(engine.tokenizer.encode("def add(a, b):"))


def test_fim_via_suffix_uses_the_fim_layout(server, client: openai.OpenAI) -> None:
    tokenizer = server.app.state.codeloop.engine.tokenizer
    prefix, suffix = "def add(a, b):\n    ", "\n\nprint(add(1, 2))\n"
    response = client.completions.create(model=MODEL, prompt=prefix, suffix=suffix, max_tokens=8, temperature=0)
    expected = tokenizer.encode(fim_prompt(prefix, suffix, order="spm"))  # the server's default, healed
    assert response.usage.prompt_tokens == len(expected)
    by_ids = client.completions.create(model=MODEL, prompt=expected, max_tokens=8, temperature=0,
                                       extra_body={"heal": True})
    assert by_ids.choices[0].text == response.choices[0].text


def test_streaming_completion_concatenates_to_the_full_text(client: openai.OpenAI) -> None:
    kwargs = dict(model=MODEL, prompt="for i in range(10):", max_tokens=16, temperature=0,
                  extra_body={"ignore_eos": True})
    full = client.completions.create(**kwargs).choices[0].text
    chunks = list(client.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    assert "".join(c.choices[0].text for c in chunks if c.choices) == full
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].usage.completion_tokens == 16


def test_n_samples_with_seed(client: openai.OpenAI) -> None:
    kwargs = dict(model=MODEL, prompt="import os", max_tokens=6, temperature=1.0, n=3, seed=7)
    a = client.completions.create(**kwargs)
    b = client.completions.create(**kwargs)
    assert sorted(c.index for c in a.choices) == [0, 1, 2]
    assert [c.text for c in a.choices] == [c.text for c in b.choices]


def test_greedy_first_extension(client: openai.OpenAI) -> None:
    """codeloop's ``greedy_first``: choice 0 is the greedy answer, the others sample."""
    kwargs = dict(model=MODEL, prompt="import os", max_tokens=6, n=3, seed=7, extra_body={"ignore_eos": True})
    greedy = client.completions.create(model=MODEL, prompt="import os", max_tokens=6, temperature=0,
                                       extra_body={"ignore_eos": True})
    mixed = client.completions.create(temperature=1.0, **{**kwargs, "extra_body": {"ignore_eos": True,
                                                                                    "greedy_first": True}})
    plain = client.completions.create(temperature=1.0, **kwargs)
    by_index = {c.index: c.text for c in mixed.choices}
    assert by_index[0] == greedy.choices[0].text
    assert [by_index[i] for i in (1, 2)] == [c.text for c in sorted(plain.choices, key=lambda c: c.index)][1:]


def test_heal_extension(client: openai.OpenAI) -> None:
    """codeloop's ``heal`` (token healing, tested on the engine in test_token_healing.py) is taken; usage still
    counts the prompt as sent; a non-boolean is a 400."""
    prompt = "counts = {}\nfor word in words:\n    counts[wo"
    healed = client.completions.create(model=MODEL, prompt=prompt, max_tokens=6, temperature=0,
                                       extra_body={"ignore_eos": True, "heal": True})
    plain = client.completions.create(model=MODEL, prompt=prompt, max_tokens=6, temperature=0,
                                      extra_body={"ignore_eos": True})
    assert healed.usage.prompt_tokens == plain.usage.prompt_tokens
    assert healed.usage.completion_tokens == 6 and isinstance(healed.choices[0].text, str)
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt=prompt, max_tokens=2, extra_body={"heal": "yes"})


def test_chat_and_streaming_chat(client: openai.OpenAI) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "write fib"}]
    full = client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10, temperature=0,
                                          extra_body={"ignore_eos": True})
    assert full.choices[0].message.role == "assistant"
    assert full.usage.completion_tokens == 10
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, max_tokens=10, temperature=0,
                                                 stream=True, extra_body={"ignore_eos": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == full.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "length"


def test_errors_through_the_openai_client(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="gpt-4", prompt="x", max_tokens=2)
    assert info.value.body["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as info:
        client.completions.create(model=MODEL, prompt="x", max_tokens=-1)
    assert info.value.body["param"] == "max_tokens"
    with pytest.raises(openai.BadRequestError):
        client.completions.create(model=MODEL, prompt="x", max_tokens=10**9)
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "x" * 3000}])
    assert info.value.body["code"] == "context_length_exceeded"


@pytest.mark.parametrize("body,status,param", [
    (b"{not json", 400, None),
    (b"[]", 400, None),
    (b'{"prompt": 12}', 400, "prompt"),
    (b'{"prompt": "x", "max_tokens": "5"}', 400, "max_tokens"),
    (b'{"prompt": "x", "temperature": null, "max_tokens": 2}', 400, "temperature"),
    (b'{"max_tokens": 2}', 400, "prompt"),
    (b'{"prompt": "x", "n": 17}', 400, "n"),
    (b'{"prompt": "x", "max_tokens": 2, "surprise": {"deep": [1]}}', 200, None),
])
def test_bad_input_gets_openai_error_json(server, body: bytes, status: int, param: str | None) -> None:
    response = httpx.post(f"{server.url}/v1/completions", content=body,
                          headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    if status != 200:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
        assert error["param"] == param


def test_huge_prompt_is_413_before_it_is_read(server) -> None:
    body = json.dumps({"model": MODEL, "prompt": "x" * (10 * 1024 * 1024)}).encode()
    response = httpx.post(f"{server.url}/v1/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"prompt": "'
        for _ in range(20):
            yield b"y" * (1 << 19)
        yield b'"}'

    response = httpx.post(f"{server.url}/v1/completions", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def _delta(before: dict[str, float], after: dict[str, float], key: str) -> float:
    return after.get(key, 0.0) - before.get(key, 0.0)


def test_streaming_client_disconnect_aborts_and_frees_kv(server) -> None:
    before = wait_idle(server.url)
    body = {"model": MODEL, "prompt": "while True:", "max_tokens": 400, "temperature": 0, "stream": True,
            "ignore_eos": True}
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                break  # got a token: hang up
    after = wait_idle(server.url)
    assert after["codeloop_kv_blocks_used"] == 0 and after["codeloop_running_sequences"] == 0
    assert _delta(before, after, "codeloop_requests_total{endpoint=completions,outcome=disconnected}") == 1
    assert _delta(before, after, "codeloop_generation_tokens_total") < 400


def _raw_request(url: str, body: dict) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(body).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
    return sock


def test_non_streaming_client_disconnect_aborts(server) -> None:
    before = wait_idle(server.url)
    sock = _raw_request(server.url, {"model": MODEL, "prompt": "class A:", "max_tokens": 400, "ignore_eos": True})
    deadline_metrics = None
    for _ in range(200):  # wait until the engine is working on it, then hang up
        deadline_metrics = scrape(server.url)
        if deadline_metrics["codeloop_requests_in_flight"] >= 1:
            break
    sock.close()
    after = wait_idle(server.url)
    assert after["codeloop_kv_blocks_used"] == 0
    assert _delta(before, after, "codeloop_requests_total{endpoint=completions,outcome=disconnected}") == 1
    assert _delta(before, after, "codeloop_generation_tokens_total") < 400


def test_abrupt_disconnects_under_load_leak_nothing(server, client: openai.OpenAI) -> None:
    wait_idle(server.url)

    def hang_up_repeatedly(seed: int) -> None:
        for i in range(4):
            sock = _raw_request(server.url, {"model": MODEL, "prompt": f"x = {seed * 10 + i}", "max_tokens": 300,
                                             "stream": i % 2 == 0, "ignore_eos": True})
            if i % 2 == 0:
                sock.recv(64)  # headers (sent once the first token exists), then vanish
            sock.close()

    threads = [threading.Thread(target=hang_up_repeatedly, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    ok = client.completions.create(model=MODEL, prompt="still alive?", max_tokens=5, temperature=0)
    for t in threads:
        t.join(60)
    assert ok.choices[0].text is not None
    after = wait_idle(server.url)
    assert after["codeloop_kv_blocks_used"] == 0 and after["codeloop_requests_in_flight"] == 0
    assert httpx.get(f"{server.url}/health").json()["status"] == "ok"


def test_two_concurrent_clients_are_batched_together(server) -> None:
    before = wait_idle(server.url)
    barrier = threading.Barrier(2)
    results: list[int] = []

    def one_client(prompt: str) -> None:
        c = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        barrier.wait()
        r = c.completions.create(model=MODEL, prompt=prompt, max_tokens=200, temperature=0,
                                 extra_body={"ignore_eos": True})
        results.append(r.usage.completion_tokens)

    threads = [threading.Thread(target=one_client, args=(p,)) for p in ("def f(x):", "import sys\n")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [200, 200]
    after = wait_idle(server.url)
    steps = _delta(before, after, "codeloop_batch_size_count")
    single = _delta(before, after, "codeloop_batch_size_bucket{le=1.0}")
    assert steps > 0 and steps - single > 0, "no engine step advanced both requests"
    assert after["codeloop_kv_blocks_used"] == 0


def test_health_shows_only_status_without_the_key(tiny_qwen2_dir: Path) -> None:
    """Defect 9: with --api-key set, /health told anyone the model and the pid. Only the status now;
    the full record for a caller that sends the key (the launcher does)."""
    from inference.server.launcher import is_healthy

    with live_server(tiny_qwen2_dir, api_key="s3cret") as keyed:
        assert httpx.get(f"{keyed.url}/health").json() == {"status": "ok"}
        full = httpx.get(f"{keyed.url}/health", headers={"Authorization": "Bearer s3cret"}).json()
        assert full["model"] == MODEL and "pid" in full
        assert is_healthy(keyed.url, model_pid=full["pid"], api_key="s3cret")
        assert not is_healthy(keyed.url, model_pid=full["pid"])


def test_empty_api_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 9: `serve --api-key ""` silently turned auth off."""
    import argparse

    from codeloop.commands.serve import API_KEY_ENV, register, server_config
    from codeloop.errors import UserError

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    with pytest.raises(UserError, match="api-key"):
        server_config(parser.parse_args(["serve", "--api-key", ""]))
    monkeypatch.setenv(API_KEY_ENV, "")
    with pytest.raises(UserError, match=API_KEY_ENV):
        server_config(parser.parse_args(["serve"]))
    monkeypatch.setenv(API_KEY_ENV, "k")
    assert server_config(parser.parse_args(["serve"])).api_key == "k"
    assert server_config(parser.parse_args(["serve", "--api-key", "x"])).api_key == "x"


@pytest.mark.parametrize("route,body,param", [
    ("/v1/completions", b'{"prompt": "def f():\\ud800", "max_tokens": 2}', "prompt"),
    ("/v1/completions", b'{"prompt": ["ok", "x\\udfff"], "max_tokens": 2}', "prompt.1"),
    ("/v1/completions", b'{"prompt": "x", "suffix": "\\udc00y", "max_tokens": 2}', "suffix"),
    ("/v1/completions", b'{"prompt": "x", "stop": ["\\ud83d"], "max_tokens": 2}', "stop.0"),
    ("/v1/chat/completions", b'{"messages": [{"role": "user", "content": "hi \\ud800"}], "max_tokens": 2}',
     "messages.0.content"),
    ("/infill", b'{"input_prefix": "a", "input_suffix": "\\ud800", "n_predict": 2}', "input_suffix"),
])
def test_lone_surrogates_are_a_400_naming_the_field(server, route: str, body: bytes, param: str) -> None:
    """Defect 6: a lone surrogate (valid JSON escape, not encodable text) gave HTTP 500 and a reset connection."""
    response = httpx.post(f"{server.url}{route}", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and "surrogate" in error["message"]
    ok = httpx.post(f"{server.url}/v1/completions", json={"prompt": "fine \U0001F600", "max_tokens": 2})
    assert ok.status_code == 200

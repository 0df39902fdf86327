"""llama.cpp's /infill: layout and fitting, early stops, reply format, and llama.vscode / llama.vim replays."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from inference.fim import ContextFile, fim_prompt
from inference.request import CompletionOutput, FinishReason, Priority, RequestOutput
from inference.sampling import SamplingParams
from inference.server.config import ServerConfig
from inference.server.errors import APIError
from inference.server.generation import Job
from inference.server.infill import InfillRequest, infill_prompt, max_new_tokens
from inference.server.infill_reply import InfillRun, indent_cut, pick
from inference.server.metrics import ServerMetrics
from inference.server.prompts import PreparedRequest
from tests.inference import client_shapes as shapes
from tests.inference.server_fixtures import live_server, wait_idle

pytestmark = pytest.mark.timeout(120)
DOC = ["import os", "", "def area(w: int, h: int) -> int:", "    return w * h", "", "def perimeter(w, h):",
       "    ret", "", "print(area(2, 3))"]


@pytest.fixture(scope="module")
def server(tiny_qwen2_dir: Path) -> Iterator:
    with live_server(tiny_qwen2_dir) as srv:
        yield srv


@pytest.fixture(scope="module")
def tokenizer(tiny_qwen2_dir: Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_qwen2_dir)


def _body(**fields: object) -> InfillRequest:
    return InfillRequest.model_validate({"input_prefix": "def f(x):\n", "input_suffix": "\n", **fields})


def test_layout_is_the_repository_fim_prompt_when_it_fits(tokenizer) -> None:
    body = _body(prompt="    return", input_extra=[{"filename": "a.py", "text": "A = 1\n"},
                                                     {"filename": "b.py", "text": "B = 2", "time": 5}])
    got = infill_prompt(body, 500, tokenizer)
    text = fim_prompt("def f(x):\n    return", "\n", context=[ContextFile("a.py", "A = 1\n"), ContextFile("b.py", "B = 2")],
                      repo_name="myproject")
    assert got.ids == tokenizer.encode(text, add_special_tokens=False) and not got.truncated
    plain = infill_prompt(_body(), 500, tokenizer)
    assert plain.ids == tokenizer.encode(fim_prompt("def f(x):\n", "\n"), add_special_tokens=False)
    spm = infill_prompt(body, 500, tokenizer, order="spm")  # the server's default: the cursor ends the prompt
    text = fim_prompt("def f(x):\n    return", "\n", context=[ContextFile("a.py", "A = 1\n"), ContextFile("b.py", "B = 2")],
                      repo_name="myproject", order="spm")
    assert spm.ids == tokenizer.encode(text, add_special_tokens=False) and text.endswith("    return")


def test_fitting_drops_oldest_chunks_then_cuts_prefix_top_and_suffix_bottom(tokenizer) -> None:
    chunks = [{"filename": f"f{i}.py", "text": f"value_{i} = {i} * 7\n" * 4} for i in range(6)]
    body = _body(input_prefix="# top line\n" + "x = 1\n" * 40, input_suffix="y = 2\n" * 40 + "# last line\n",
                 input_extra=chunks)
    full = infill_prompt(body, 10_000, tokenizer)
    for budget in (len(full.ids) - 5, 150, 60):
        fitted = infill_prompt(body, budget, tokenizer)
        assert len(fitted.ids) <= budget and fitted.truncated
        text = tokenizer.decode(fitted.ids)
        assert text.endswith("<|fim_middle|>") and "<|fim_prefix|>" in text and "<|fim_suffix|>" in text
        if "value_0" in text:
            assert "value_5" in text  # never an old chunk without the newer ones
    small = tokenizer.decode(infill_prompt(body, 60, tokenizer).ids)
    assert "value_" not in small and "# top line" not in small and "# last line" not in small
    assert "x = 1\n<|fim_suffix|>y = 2" in small  # the text next to the cursor survives
    small = tokenizer.decode(infill_prompt(body, 60, tokenizer, order="spm").ids)
    assert small.endswith("x = 1\n") and "<|fim_suffix|>y = 2" in small and "# top line" not in small


def test_model_without_fim_tokens_gets_501() -> None:
    class NoFim:
        unk_token_id = 0

        def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
            return [ord(c) for c in text]

    with pytest.raises(APIError) as info:
        infill_prompt(_body(), 100, NoFim())
    assert info.value.status == 501 and "<|fim_prefix|>" in info.value.body.message


def test_n_predict_minus_one_zero_and_limits() -> None:
    config = ServerConfig(default_max_tokens=64, max_tokens_limit=200)
    assert max_new_tokens(_body(), config, 512) == 64
    assert max_new_tokens(_body(n_predict=0), config, 512) == 1  # warm-up: one step, token discarded
    assert max_new_tokens(_body(n_predict=100), config, 60) == 44  # room for the prompt is kept
    with pytest.raises(APIError, match="n_predict"):
        max_new_tokens(_body(n_predict=201), config, 512)


def test_indent_cut_follows_llama_cpp() -> None:
    assert indent_cut("x = 1\n    y = 2\n", 4) is None
    assert indent_cut(" + 1\n    y = 2\nz = 3", 4) == len(" + 1\n    y = 2\n")  # the less indented line goes
    assert indent_cut("a\n  b", 4) == len("a\n  ")  # the indentation itself is kept, as llama.cpp does
    assert indent_cut("x\n", 4) is None and indent_cut("\n\n  ", 4) is None  # blank lines do not count
    assert indent_cut("a\nb", 0) is None


def test_response_fields_pick_nested_values_flat() -> None:
    result = {"content": "x", "timings": {"prompt_n": 3}, "truncated": False}
    assert pick(result, ["content", "timings/prompt_n", "timings/nope", "missing"]) == {
        "content": "x", "timings/prompt_n": 3}
    assert pick(result, [""]) == {}
    assert pick(result, None) is result


def _run(body: InfillRequest, n: int = 1) -> InfillRun:
    prepared = PreparedRequest([1, 2, 3], SamplingParams(n=n, max_tokens=50), Priority.INTERACTIVE)
    job = Job("r", "m", prepared, ServerMetrics().track("infill"), chat=False)
    return InfillRun(body, job, truncated=False, context_len=512, special_ids=frozenset({99}))


def _out(*samples: tuple[int, str, str, list[int], FinishReason | None]) -> RequestOutput:
    return RequestOutput("r", [CompletionOutput(i, text, delta, ids, None, reason)
                               for i, text, delta, ids, reason in samples], num_prompt_tokens=3)


def test_time_budget_stops_at_the_next_new_line(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([10.0, 10.5, 12.0, 12.1])
    monkeypatch.setattr("inference.server.infill_reply.time.perf_counter", lambda: next(clock))
    run = _run(_body(t_max_predict_ms=1000))
    run.update(_out((0, "a", "a", [5], None)))  # first token at t=10.0
    run.update(_out((0, "a\nb", "\nb", [5, 6], None)))  # a new line within budget: go on
    assert not run.done
    run.update(_out((0, "a\nbc", "c", [5, 6, 7], None)))  # past budget, no new line yet
    assert not run.done
    run.update(_out((0, "a\nbc\n", "\n", [5, 6, 7, 8], None)))
    assert run.done and run.samples[0].stop_type == "limit" and run.reply()["content"] == "a\nbc\n"


def test_indent_limit_cuts_and_stop_types_per_sample() -> None:
    run = _run(_body(n_indent=4, n_cmpl=3), n=3)
    run.update(_out((0, "x\n    y\nz", "x\n    y\nz", [1, 2, 3], None),
                    (1, "done", "done", [4, 99], FinishReason.STOP),
                    (2, "word", "word", [4, 5], FinishReason.STOP)))
    reply = run.reply()
    assert isinstance(reply, list) and [r["index"] for r in reply] == [0, 1, 2]
    assert reply[0]["content"] == "x\n    y\n" and reply[0]["stop_type"] == "limit"
    assert reply[1]["stop_type"] == "eos" and reply[2]["stop_type"] == "word"
    assert run.done


def test_llama_vscode_requests_replayed(server) -> None:
    """Warm-up with the ring of chunks, then the completion request with the same chunks: 3 completions,
    the chunks served from the prefix cache, llama.cpp's fields where llama.vscode reads them."""
    chunks = [shapes.llama_vscode_chunk("def helper(a):\n    return a + 1\n" * 6, "/work/project/src/util.py"),
              shapes.llama_vscode_chunk("CONSTANT = 42\n" * 8, "/work/project/src/const.py")]
    warm = shapes.llama_vscode_warmup(chunks)
    answer = httpx.post(server.url + warm.path, json=warm.body, headers=warm.headers, timeout=60)
    assert answer.status_code == 200
    assert answer.json()["content"] == "" and answer.json()["tokens_predicted"] == 0
    request = shapes.llama_vscode_fim(shapes.Cursor(DOC, 6, 7), chunks, n_predict=24)
    assert request.body["input_suffix"] == "\n\nprint(area(2, 3))\n" and request.body["n_indent"] == 4
    answer = httpx.post(server.url + request.path, json=request.body, headers=request.headers, timeout=60)
    assert answer.status_code == 200
    completions = answer.json()
    assert isinstance(completions, list) and len(completions) == 3  # n_cmpl 3: an array, as llama-server
    for item in completions:
        assert isinstance(item["content"], str) and item["stop"] is True
        assert item["tokens_cached"] > 0  # the warm-up put the chunks in the prefix cache
        assert item["generation_settings"]["n_ctx"] == 512
        assert set(item["timings"]) >= {"prompt_n", "prompt_ms", "prompt_per_second", "predicted_n",
                                        "predicted_ms", "predicted_per_second"}
    wait_idle(server.url)


def test_a_keystroke_recomputes_only_the_current_line(server) -> None:
    """llama.vscode sends up to 64 lines below the cursor: under spm (the server's default) they come before
    the line being typed, so the next keystroke finds all but the prompt's last block in the prefix cache;
    the reply still starts at the cursor (the prompt's last token is healed, not repeated)."""
    below = "".join(f"    total_{i} = compute(value_{i}, {i})\n" for i in range(40))
    body = {"input_prefix": "def run(values):\n", "input_suffix": "\n" + below, "n_predict": 4,
            "temperature": 0.0}
    first = httpx.post(server.url + "/infill", json={**body, "prompt": "    res"}, timeout=60).json()
    second = httpx.post(server.url + "/infill", json={**body, "prompt": "    resu"}, timeout=60).json()
    block = server.app.state.codeloop.engine.async_engine.engine.block_size
    assert first["tokens_evaluated"] > 300 and second["tokens_cached"] >= second["tokens_evaluated"] - 2 * block
    assert not second["content"].startswith("resu")
    wait_idle(server.url)


def test_llama_vim_requests_replayed(server) -> None:
    extra = [{"text": "import sys\n" * 10, "time": 1767000000, "filename": "main.py"}]
    warm = shapes.llama_vim_warmup(extra)
    assert httpx.post(server.url + warm.path, json=warm.body, timeout=60).json() == {}  # response_fields [""]
    request = shapes.llama_vim_fim("def f():\n", "    return", "\n", extra, indent=4)
    answer = httpx.post(server.url + request.path, json=request.body, timeout=60).json()
    assert set(answer) == set(shapes.LLAMA_VIM_FIELDS)
    assert answer["tokens_cached"] > 0 and answer["timings/prompt_n"] >= 1 and isinstance(answer["content"], str)


def test_stream_sends_partials_then_a_final_object_without_done(server) -> None:
    body = {"input_prefix": "def f(x):\n", "input_suffix": "\n", "prompt": "    ", "n_predict": 8,
            "temperature": 0.0, "stream": True}
    with httpx.stream("POST", server.url + "/infill", json=body, timeout=60) as response:
        events = [json.loads(line[5:]) for line in response.iter_lines() if line.startswith("data:")]
    *partials, final = events
    assert all(e["stop"] is False for e in partials) and final["stop"] is True and final["content"] == ""
    whole = httpx.post(server.url + "/infill", json={**body, "stream": False}, timeout=60).json()
    assert "".join(e["content"] for e in partials) == whole["content"]  # greedy: the same text


def test_bad_infill_requests_get_clear_errors(server) -> None:
    missing = httpx.post(server.url + "/infill", json={"input_suffix": ""}, timeout=10)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "input_prefix"
    bad_extra = httpx.post(server.url + "/infill", json={"input_prefix": "", "input_suffix": "",
                                                        "input_extra": [{"filename": "a"}]}, timeout=10)
    assert bad_extra.status_code == 400 and "input_extra" in bad_extra.json()["error"]["param"]
    too_many = httpx.post(server.url + "/infill", json={"input_prefix": "", "input_suffix": "", "n_cmpl": 99},
                          timeout=10)
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "n_cmpl"

"""Pure parts of the server: request schemas, error shapes, auth, limits, metrics registry."""

from __future__ import annotations

import pytest
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from inference.request import CompletionOutput, FinishReason, Priority, RequestOutput
from inference.sampling import SamplingDefaults
from inference.server.auth import check_bearer
from inference.server.config import ServerConfig
from inference.server.errors import APIError, validation_error
from inference.server.metrics import ServerMetrics
from inference.server.prompts import check_model, completion_prompt_ids, prepare
from inference.server.schemas import ChatCompletionRequest, CompletionRequest


class CharTokenizer:
    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        return [ord(c) for c in text]


def test_unknown_fields_are_ignored_and_stop_string_becomes_list() -> None:
    body = CompletionRequest.model_validate({"prompt": "x", "frobnicate": 3, "stop": "\n", "logit_bias": {}})
    assert body.stop_list() == ["\n"]
    assert not hasattr(body, "frobnicate")


@pytest.mark.parametrize("field,value", [
    ("max_tokens", "10"), ("max_tokens", 1.5), ("max_tokens", True), ("max_tokens", 0), ("max_tokens", -3),
    ("temperature", "hot"), ("temperature", -0.1), ("temperature", 2.5), ("top_p", 0), ("n", 0),
    ("stream", "yes"), ("stop", ""), ("stop", [1]), ("priority", "urgent"), ("seed", 1.5),
])
def test_bad_values_are_rejected_with_the_field_named(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as info:
        CompletionRequest.model_validate({"prompt": "x", field: value})
    error = validation_error(RequestValidationError(
        [{**e, "loc": ("body", *e["loc"])} for e in info.value.errors()]))
    assert error.status == 400
    assert error.body.param == field


def test_chat_messages_need_a_known_role_and_at_least_one_message() -> None:
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": []})
    with pytest.raises(ValidationError):
        ChatCompletionRequest.model_validate({"messages": [{"role": "wizard", "content": "hi"}]})
    body = ChatCompletionRequest.model_validate(
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
         "max_completion_tokens": 7})
    assert body.messages[0].text() == "ab"
    assert body.requested_max_tokens() == 7


def test_bearer_check_accepts_only_the_exact_key() -> None:
    check_bearer(None, None)  # auth off
    check_bearer("Bearer s3cret", "s3cret")
    check_bearer("bearer s3cret", "s3cret")
    for header in (None, "", "s3cret", "Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "Bearer "):
        with pytest.raises(APIError) as info:
            check_bearer(header, "s3cret")
        assert info.value.status == 401
        assert info.value.body.code == "invalid_api_key"


def test_unknown_model_is_404_and_configured_model_passes() -> None:
    config = ServerConfig(model_name="m")
    check_model("m", config)
    check_model(None, config)
    with pytest.raises(APIError) as info:
        check_model("gpt-4", config)
    assert info.value.status == 404 and info.value.body.code == "model_not_found"


def test_suffix_builds_a_fim_prompt() -> None:
    body = CompletionRequest.model_validate({"prompt": "def f(", "suffix": ")\n"})
    ids = completion_prompt_ids(body, CharTokenizer())
    assert "".join(map(chr, ids)) == "<|fim_prefix|>def f(<|fim_suffix|>)\n<|fim_middle|>"
    ids = completion_prompt_ids(body, CharTokenizer(), order="spm")
    assert "".join(map(chr, ids)) == "<|fim_prefix|><|fim_suffix|>)\n<|fim_middle|>def f("


def test_a_suffix_prompt_laid_out_spm_is_healed_unless_the_request_says() -> None:
    def heal(fields: dict, order: str = "spm") -> bool:
        body = CompletionRequest.model_validate({"prompt": "def f(", **fields})
        return prepare(body, [1] * 10, ServerConfig(fim_order=order), max_model_len=100).params.heal

    assert heal({"suffix": ")"}) and not heal({"suffix": ")"}, "psm") and not heal({})
    assert not heal({"suffix": ")", "heal": False}) and heal({"heal": True}, "psm")
    with pytest.raises(ValueError, match="fim_order"):
        ServerConfig(fim_order="pms")


def test_limits_on_max_tokens_n_and_context() -> None:
    config = ServerConfig(max_tokens_limit=100, default_max_tokens=50, max_n=4)
    body = CompletionRequest.model_validate({"prompt": "x"})
    prepared = prepare(body, [1] * 10, config, max_model_len=40)
    assert prepared.params.max_tokens == 30  # default clipped to the context left
    assert prepared.priority is Priority.INTERACTIVE
    cases = [({"max_tokens": 101}, 64, "max_tokens"), ({"max_tokens": 31}, 40, "max_tokens"),
             ({"n": 5}, 64, "n"), ({}, 10, "prompt")]
    for extra, max_model_len, param in cases:
        with pytest.raises(APIError) as info:
            prepare(CompletionRequest.model_validate({"prompt": "x", **extra}), [1] * 10, config, max_model_len)
        assert info.value.status == 400 and info.value.body.param == param
    chat = ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}],
                                                 "priority": "batch", "seed": 3, "stop": ["a", "b"]})
    prepared = prepare(chat, [1] * 10, config, max_model_len=1000)
    assert prepared.priority is Priority.BATCH and prepared.params.seed == 3 and prepared.params.stop == ["a", "b"]


def test_stop_lists_up_to_64_strings() -> None:
    stops = [f"<stop{i}>" for i in range(64)]
    assert CompletionRequest.model_validate({"prompt": "x", "stop": stops}).stop_list() == stops
    with pytest.raises(ValidationError) as info:
        CompletionRequest.model_validate({"prompt": "x", "stop": [*stops, "one more"]})
    assert info.value.errors()[0]["loc"][0] == "stop"


@pytest.mark.parametrize("field,value", [("frequency_penalty", 2.5), ("presence_penalty", -2.1),
                                         ("repetition_penalty", 0), ("top_k", -2)])
def test_penalties_out_of_range_are_400_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValidationError) as info:
        ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "q"}], field: value})
    assert info.value.errors()[0]["loc"][0] == field


def test_penalties_reach_the_engine_and_chat_takes_the_model_defaults_for_what_it_leaves_out() -> None:
    defaults = SamplingDefaults(temperature=0.7, top_p=0.8, top_k=20, repetition_penalty=1.05)
    config = ServerConfig(chat_defaults=defaults)
    messages = [{"role": "user", "content": "q"}]
    plain = prepare(ChatCompletionRequest.model_validate({"messages": messages}), [1], config, 100).params
    assert (plain.temperature, plain.top_p, plain.top_k, plain.repetition_penalty) == (0.7, 0.8, 20, 1.05)
    chosen = prepare(ChatCompletionRequest.model_validate(
        {"messages": messages, "temperature": 0, "top_k": -1, "frequency_penalty": 0.5, "presence_penalty": 0.25}),
        [1], config, 100).params
    assert (chosen.temperature, chosen.top_k, chosen.top_p, chosen.repetition_penalty) == (0.0, 0, 0.8, 1.05)
    assert (chosen.frequency_penalty, chosen.presence_penalty) == (0.5, 0.25)
    completion = prepare(CompletionRequest.model_validate({"prompt": "x", "repetition_penalty": 1.2}), [1], config,
                         100).params
    assert (completion.temperature, completion.top_k, completion.repetition_penalty) == (1.0, 0, 1.2)  # no chat defaults


def test_each_app_has_its_own_registry_and_tracker_counts_tokens() -> None:
    first, second = ServerMetrics(), ServerMetrics()
    tracker = first.track("completions")
    out = RequestOutput("r", [CompletionOutput(0, "ab", "ab", [5, 6])], num_prompt_tokens=3)
    assert tracker.on_output(out) == 2
    out = RequestOutput("r", [CompletionOutput(0, "abc", "c", [5, 6, 7], finish_reason=FinishReason.STOP)], 3, 0, True)
    assert tracker.on_output(out) == 1
    tracker.done("ok")
    tracker.done("ok")  # idempotent
    text = first.render().decode()
    assert "codeloop_generation_tokens_total 3.0" in text
    assert 'codeloop_requests_total{endpoint="completions",outcome="ok"} 1.0' in text
    assert "codeloop_time_to_first_token_seconds_count 1.0" in text
    assert "codeloop_generation_tokens_total 0.0" in second.render().decode()

"""Settings from initializationOptions / didChangeConfiguration."""

from __future__ import annotations

from lsp.config import Settings


def test_nested_camel_and_snake_keys():
    s = Settings().merged({"codeloop": {"maxTokens": 16, "engine_url": "http://x", "enable": False}})
    assert (s.max_tokens, s.engine_url, s.enable) == (16, "http://x", False)


def test_bad_values_are_ignored_not_fatal():
    s = Settings().merged({"maxTokens": "lots", "temperature": 9, "enable": "yes", "unknown": 1, "debounceMs": 0})
    assert s.max_tokens == Settings().max_tokens and s.temperature == 0.0 and s.enable is True
    assert s.debounce_ms == 0
    assert Settings().merged(None) == Settings() and Settings().merged([1, 2]) == Settings()


def test_security_settings():
    s = Settings().merged({"security": {"copyleft": "block", "secrets": "bogus"}})
    assert s.security.copyleft == "block" and s.security.secrets == "warn"


def test_null_means_unset():
    s = Settings(engine_url="http://x", model="m").merged({"engineUrl": None, "model": None, "maxTokens": None})
    assert (s.engine_url, s.model, s.max_tokens) == ("http://x", "m", Settings().max_tokens)


def test_weight_quant_setting_accepts_only_known_values():
    assert Settings().weight_quant == "hybrid_int8x8"
    assert Settings().merged({"weightQuant": "int4"}).weight_quant == "int4"
    assert Settings().merged({"weightQuant": "int3"}).weight_quant == "hybrid_int8x8"


def test_check_settings_nested_or_dotted_with_bad_values_ignored():
    assert Settings().check.enabled is None and Settings().check.candidates == 4
    s = Settings().merged({"check": {"enabled": False, "candidates": 6, "deadlineMs": 800, "backend": "bwrap",
                                     "staged": False}})
    assert (s.check.enabled, s.check.candidates, s.check.deadline_ms, s.check.backend) == (False, 6, 800, "bwrap")
    assert not s.check.staged and Settings().check.staged
    d = Settings().merged({"codeloop": {"check.candidates": 2, "check.deadline_ms": 0}})
    assert (d.check.candidates, d.check.deadline_ms) == (2, 0)
    bad = Settings().merged({"check": {"candidates": 0, "deadlineMs": -1, "backend": "unsafe_subprocess",
                                       "enabled": "yes", "staged": "no"}})
    assert bad.check == Settings().check
    assert Settings().merged({"check": 3}).check == Settings().check


def test_kv_dtype_and_pool_settings_reach_the_in_process_engine():
    """Defect 12: `codeloop lsp` could not turn on the engine's INT8 KV cache, nor size its pool."""
    from lsp.server import engine_options

    settings = Settings().merged({"kvDtype": "int8", "kvCacheTokens": 4096})
    assert (settings.kv_dtype, settings.kv_cache_tokens) == ("int8", 4096)
    assert Settings().merged({"kvDtype": "fp4"}).kv_dtype == "auto"  # unknown values ignored
    cache = engine_options(settings)["cache"]
    assert (cache.kv_cache_dtype, cache.kv_cache_tokens) == ("int8", 4096)
    from codeloop.cli import build_parser

    args = build_parser().parse_args(["lsp", "--kv-dtype", "int8"])
    assert args.kv_dtype == "int8"
    serve = build_parser().parse_args(["serve", "--kv-dtype", "int8", "--sessions", "2", "--max-model-len", "8192"])
    from codeloop.commands.serve import engine_config

    config = engine_config(serve)
    assert (config.cache.kv_cache_dtype, config.cache.expected_sessions, config.max_model_len) == ("int8", 2, 8192)


def test_speculative_and_hybrid_settings_reach_the_in_process_engine():
    from lsp.server import engine_options

    settings = Settings().merged({"speculative": "ngram", "weightQuant": "auto"})
    options = engine_options(settings)
    assert options["weight_quant"] == "auto" and options["speculative"].method == "ngram"
    assert options["compile_decode"] == "off"  # the editor's engine decodes eagerly unless asked
    assert engine_options(settings.merged({"compileDecode": True}))["compile_decode"] == "auto"
    assert Settings().merged({"compileDecode": "yes"}).compile_decode is False  # wrong type: ignored
    assert Settings().merged({"speculative": "medusa"}).speculative == "ngram"  # unknown values ignored: the default
    draft = engine_options(Settings().merged({"speculative": "draft", "draftModel": "qwen2.5-coder-0.5b-instruct"}))
    assert draft["speculative"].draft_model == "qwen2.5-coder-0.5b-instruct"
    assert engine_options(Settings().merged({"speculative": "draft"}))["speculative"].method == "none"
    from codeloop.cli import build_parser
    from codeloop.commands.serve import engine_config

    args = build_parser().parse_args(["serve", "--weight-quant", "hybrid_int4", "--speculative", "ngram",
                                      "--num-speculative-tokens", "6"])
    config = engine_config(args)
    assert config.weight_quant == "hybrid_int4" and config.speculative.num_tokens == 6
    # the server's weights default to the editor's on a CPU (a `--shared` editor gets what it would in-process)
    assert engine_config(build_parser().parse_args(["serve"])).weight_quant == Settings().weight_quant
    assert engine_config(build_parser().parse_args(["serve", "--device", "cuda"])).weight_quant == "none"


def test_fim_order_takes_psm_or_spm_and_ignores_anything_else():
    from lsp.config import Settings

    assert Settings().merged({"fimOrder": "spm"}).fim_order == "spm"
    assert Settings().merged({"codeloop": {"fim_order": "psm"}}).fim_order == "psm"
    assert Settings().merged({"fimOrder": "SPM"}).fim_order == Settings().fim_order
    assert Settings().merged({"fimOrder": 3}).fim_order == Settings().fim_order

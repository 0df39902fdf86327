"""`codeloop serve`: the OpenAI-compatible HTTP engine (inference/server/), one engine shared by every client."""

from __future__ import annotations

import argparse
import functools
import logging
import os
from pathlib import Path

from codeloop.arguments import positive_int
from codeloop.errors import UserError
from inference.config import (
    CPU_WEIGHT_QUANT,
    DTYPES,
    PREFILL_QUANTS,
    PROMPT_ATTENTIONS,
    SPECULATIVE_METHODS,
    WEIGHT_QUANTS,
)
from inference.fim import FIM_ORDERS
from inference.server.launcher import API_KEY_ENV


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="OpenAI-compatible HTTP server: one engine shared by every client")
    p.add_argument("--model", default=None, help="catalog name, HF folder or .gguf file (default: catalog default)")
    p.add_argument("--adapter", default=None, help="peft LoRA adapter folder (or the RL loop's `promoted` link) "
                   "applied to requests that name the served model; reloaded when it changes")
    p.add_argument("--lora", action="append", default=[], metavar="NAME=PATH",
                   help="also serve the adapter at PATH to requests with model=NAME (repeatable; reloaded on change)")
    p.add_argument("--repo-adapters", action=argparse.BooleanOptionalAction, default=True,
                   help="serve every promoted per-repository adapter ($CODELOOP_HOME/adapters/repos) as "
                        "model=repo:<id>, listed with its root in /v1/models; new promotions are picked up "
                        "without a restart (default on)")
    p.add_argument("--served-model-name", default=None, help="model id in the API (default: --model)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=None, help=f"require 'Authorization: Bearer KEY' (or set ${API_KEY_ENV})")
    p.add_argument("--max-tokens-limit", type=positive_int, default=4096, help="largest max_tokens a request may ask")
    p.add_argument("--max-body-mb", type=float, default=4.0, help="largest request body (413 above)")
    p.add_argument("--max-pending", type=int, default=256, help="requests in flight before 503")
    p.add_argument("--idle-shutdown-s", type=float, default=None, help="exit after this long without requests")
    p.add_argument("--replicas", type=positive_int, default=1,
                   help="N > 1: N servers as Ray actors on nodes advertising an 'engine' resource behind one "
                   "router with session affinity (X-Codeloop-Session header, else the request's user, else the "
                   "prompt head); needs codeloop[cluster] and a Ray cluster")
    p.add_argument("--ray-address", default=None, help="the Ray head's host:port with --replicas (default: "
                   "$RAY_ADDRESS, else the cluster `ray start` left on this machine)")
    _add_engine_args(p)
    p.set_defaults(func=_serve)


def _add_engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", default="auto", choices=DTYPES,
                   help="auto: bf16 where the CPU/GPU computes it (AVX-512-BF16, AMX, CUDA), else float32")
    p.add_argument("--device", default="cpu")
    p.add_argument("--kv-dtype", "--kv-cache-dtype", dest="kv_cache_dtype", default="auto", choices=("auto", "int8"),
                   help="KV cache storage: auto (the model dtype) or int8 (half the memory, per-token scales)")
    p.add_argument("--sessions", type=positive_int, default=4,
                   help="sequences of full context the KV pool is sized for (default 4)")
    p.add_argument("--kv-cache-tokens", type=positive_int, default=None,
                   help="KV pool size in tokens (all sequences together) instead of --sessions x context")
    p.add_argument("--kv-cache-gib", type=float, default=None, help="KV pool size in GiB (overrides the above)")
    p.add_argument("--max-num-seqs", type=positive_int, default=64)
    p.add_argument("--max-model-len", type=positive_int, default=None)
    p.add_argument("--num-threads", type=int, default=None)
    p.add_argument("--weight-quant", default=None, choices=WEIGHT_QUANTS,
                   help="weights: none (model dtype; under --dtype auto without hardware bf16, fp16-stored), int8/int4, fp16, hybrid_int8/hybrid_int4/hybrid_int4x8 (dense for prompts, "
                        "packed for decoding), hybrid_int8x8 (one int8 copy for both through our int8 kernel: the "
                        f"editor's), auto (measured per CPU, cached); default {CPU_WEIGHT_QUANT} on a CPU, none on a GPU")
    p.add_argument("--prefill-quant", default="auto", choices=PREFILL_QUANTS,
                   help="prompt rows under --weight-quant auto/hybrid_*: dense, int8x8 (int8 weights x int8 "
                        "activations, our integer GEMM) or auto (the autotune's choice under --weight-quant auto)")
    p.add_argument("--prompt-attention", default="auto", choices=PROMPT_ATTENTIONS,
                   help="prompt rows' attention on CPU: native (our AVX-512 BF16 kernel), sdpa (torch's) or auto "
                        "(the faster, measured once per CPU)")
    p.add_argument("--decode-attention", default="auto", choices=PROMPT_ATTENTIONS,
                   help="generated rows' attention on CPU: native (our kernel over the paged KV cache), sdpa "
                        "(torch's over gathered K/V) or auto (the faster, measured once per CPU)")
    p.add_argument("--fim-order", default="spm", choices=FIM_ORDERS,
                   help="layout of the FIM prompts the server builds (/infill, completions with a suffix): spm "
                        "(the code after the cursor first; a keystroke recomputes only the prompt's end; "
                        "token-healed) or psm (llama-server's default)")
    p.add_argument("--speculative", default="none", choices=SPECULATIVE_METHODS,
                   help="speculative decoding: ngram (prompt lookup) or draft (--draft-model)")
    p.add_argument("--draft-model", default=None, help="draft model for --speculative draft (same tokenizer)")
    p.add_argument("--num-speculative-tokens", type=positive_int, default=4, help="most drafts per step")


def engine_config(args: argparse.Namespace):
    """EngineConfig from CLI flags (raises UserError for bad values)."""
    from inference.config import CacheConfig, EngineConfig, SpeculativeConfig
    from inference.model_specs import DEFAULT_MODEL

    weight_quant = args.weight_quant or (CPU_WEIGHT_QUANT if args.device == "cpu" else "none")
    try:
        spec = SpeculativeConfig(method=args.speculative, num_tokens=args.num_speculative_tokens,
                                 draft_model=args.draft_model, draft_weight_quant=weight_quant)
        return EngineConfig(model=args.model or DEFAULT_MODEL, dtype=args.dtype, device=args.device,
                            cache=CacheConfig(kv_cache_dtype=args.kv_cache_dtype, expected_sessions=args.sessions,
                                              kv_cache_tokens=args.kv_cache_tokens,
                                              kv_cache_bytes=int(args.kv_cache_gib * 2**30) if args.kv_cache_gib else None),
                            max_num_seqs=args.max_num_seqs,
                            max_model_len=args.max_model_len, num_threads=args.num_threads,
                            weight_quant=weight_quant, prefill_quant=args.prefill_quant,
                            prompt_attention=args.prompt_attention, decode_attention=args.decode_attention,
                            speculative=spec)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def server_config(args: argparse.Namespace):
    from inference.catalog import chat_defaults
    from inference.model_specs import DEFAULT_MODEL
    from inference.server.config import ServerConfig

    model = args.model or DEFAULT_MODEL
    name = args.served_model_name or (Path(model).name if os.sep in model else model)
    try:
        return ServerConfig(model_name=name, host=args.host, port=args.port, api_key=_api_key(args.api_key),
                            max_tokens_limit=args.max_tokens_limit, max_body_bytes=int(args.max_body_mb * 2**20),
                            max_pending_requests=args.max_pending, chat_defaults=chat_defaults(model),
                            fim_order=args.fim_order)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _api_key(flag: str | None) -> str | None:
    """The key from ``--api-key`` or ``$CODELOOP_API_KEY``; an empty one is refused, never read as "no auth"."""
    if flag is not None:
        if not flag.strip():
            raise UserError("--api-key must not be empty (leave the flag out to serve without a key)")
        return flag
    from_env = os.environ.get(API_KEY_ENV)
    if from_env is not None and not from_env.strip():
        raise UserError(f"${API_KEY_ENV} is set but empty: unset it to serve without a key")
    return from_env


def _serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = server_config(args)
    if config.host not in ("127.0.0.1", "localhost", "::1") and config.api_key is None:
        logging.warning("binding %s without --api-key: anyone who can reach this port can use the model",
                        config.host)
    if args.replicas > 1:
        return _serve_replicas(args, config)
    from inference.model_specs import DEFAULT_MODEL
    from inference.server.backend import EngineBackend
    from inference.server.uvicorn_runner import serve

    try:
        backend = EngineBackend.from_config(engine_config(args))
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot load model {args.model or DEFAULT_MODEL!r}: {exc}") from None
    backend.async_engine.engine.prepare_healing()  # editors' prompts are healed: not on their first request
    watchers = []
    try:
        if args.adapter:
            watchers.append(_watch_adapter(backend.async_engine.set_adapter, args.adapter, "--adapter"))
        for spec in args.lora:
            name, sep, path = spec.partition("=")
            if not (sep and name and path):
                raise UserError(f"--lora {spec!r}: expected NAME=PATH")
            load = functools.partial(_load_named, backend.async_engine, name)
            watchers.append(_watch_adapter(load, path, f"--lora {name}"))
        if args.repo_adapters:
            watchers.append(backend.serve_repo_adapters())
        serve(backend, config, idle_shutdown_s=args.idle_shutdown_s)
    finally:
        for watcher in watchers:
            watcher.stop()
    return 0


def _load_named(async_engine, name: str, path: Path) -> str:
    return async_engine.load_adapter(path, name)


def _watch_adapter(load, adapter: str, option: str):
    """Load ``adapter`` now with ``load(path)`` and again whenever it changes (e.g. the RL loop's ``promoted``
    link); requests in flight finish with the weights they started with."""
    from inference.adapter_watch import AdapterWatcher
    from inference.lora import AdapterError

    path = Path(adapter)
    try:
        key = load(path)
    except (AdapterError, OSError) as exc:
        raise UserError(f"{option} {adapter}: {exc}") from None
    logging.info("serving adapter %s as %s", path, key)
    return AdapterWatcher(path, load).start()


def _serve_replicas(args: argparse.Namespace, config) -> int:
    """The router on ``--host:--port`` in front of ``--replicas`` Ray actors, each serving one engine."""
    import uvicorn

    from inference.server.replicas import ReplicaSet
    from inference.server.router import create_router
    from sandbox.executor_config import ExecutorError

    if args.adapter or args.lora:
        raise UserError("--replicas serves the base model only for now: leave out --adapter and --lora")
    try:
        replicas = ReplicaSet(engine_config(args), config, args.replicas, args.ray_address)
    except ExecutorError as exc:
        raise UserError(str(exc)) from None
    logging.info("router on %s:%d in front of %d replicas (base model only, no adapters): %s", config.host,
                 config.port, args.replicas, replicas.urls)
    uvicorn.run(create_router(replicas), host=config.host, port=config.port, log_level="warning")
    return 0


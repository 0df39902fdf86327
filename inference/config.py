"""Validated configuration for the engine, built once at the entry point and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field

DTYPES = ("auto", "bfloat16", "float16", "float32")
"""Model dtypes; "auto" is bf16 where the hardware computes it, else float32 (inference/compute_dtype.py)."""
KV_CACHE_DTYPES = ("auto", "int8")
WEIGHT_QUANTS = ("none", "int8", "int4", "fp16", "bnb_int8", "hybrid_int8", "hybrid_int4", "hybrid_fp16", "hybrid_int4x8", "hybrid_int8x8", "auto")
CPU_WEIGHT_QUANT = "hybrid_int8x8"
"""The editor's and ``codeloop serve``'s weights on a CPU: one int8 copy for prompts and decoding through our
int8 x int8 kernel (the model dtype where the CPU has neither AVX-512 VNNI nor AVX2); bf16's suggestions, 1.7-2x faster."""
PREFILL_QUANTS = ("auto", "dense", "int8x8")
PROMPT_ATTENTIONS = ("auto", "native", "sdpa")
SPECULATIVE_METHODS = ("none", "ngram", "draft")
ATTENTION_BACKENDS = ("sdpa", "triton", "flash_attn")
COMPILE_DECODE = ("auto", "on", "off")


@dataclass
class CacheConfig:
    """Paged KV cache layout and budget."""

    block_size: int = 16
    """Tokens per KV block."""
    kv_cache_dtype: str = "auto"
    """"auto" stores K/V in the model dtype; "int8" stores int8 with per-token-per-head scales."""
    kv_cache_bytes: int | None = None
    """KV budget in bytes; None: from ``kv_cache_tokens``, else ``expected_sessions`` full contexts."""
    kv_cache_tokens: int | None = None
    """KV budget in tokens (all sequences together); used when ``kv_cache_bytes`` is None."""
    expected_sessions: int = 4
    """Without a budget, the pool holds this many sequences at the model's full context length."""
    kv_cache_fraction: float = 0.25
    """Cap: the pool never takes more than this fraction of free memory (RAM on CPU, HBM on GPU), unless
    ``kv_cache_bytes`` says so explicitly. On CPU the pool's pages are committed only as blocks are first
    written, so resident memory grows with use up to the pool's size."""
    enable_prefix_caching: bool = True
    """Reuse full KV blocks across requests by chained block hash."""

    def __post_init__(self) -> None:
        if self.block_size < 1 or self.block_size & (self.block_size - 1):
            raise ValueError(f"block_size must be a power of two >= 1, got {self.block_size}")
        if self.kv_cache_dtype not in KV_CACHE_DTYPES:
            raise ValueError(f"kv_cache_dtype must be one of {KV_CACHE_DTYPES}, got {self.kv_cache_dtype!r}")
        if self.kv_cache_bytes is not None and self.kv_cache_bytes <= 0:
            raise ValueError(f"kv_cache_bytes must be > 0, got {self.kv_cache_bytes}")
        if self.kv_cache_tokens is not None and self.kv_cache_tokens <= 0:
            raise ValueError(f"kv_cache_tokens must be > 0, got {self.kv_cache_tokens}")
        if self.expected_sessions < 1:
            raise ValueError(f"expected_sessions must be >= 1, got {self.expected_sessions}")
        if not 0 < self.kv_cache_fraction <= 0.95:
            raise ValueError(f"kv_cache_fraction must be in (0, 0.95], got {self.kv_cache_fraction}")


@dataclass
class SpeculativeConfig:
    """Speculative decoding: cheap drafts of the next tokens, verified by the model in one forward."""

    method: str = "none"
    """"none"; "ngram": prompt lookup (the tokens that followed the latest earlier occurrence of the last
    n tokens in the prompt or output); "draft": a smaller model with the same tokenizer."""
    num_tokens: int = 4
    """Most drafts per sequence per step."""
    max_batch: int = 4
    """Speculate only while at most this many sequences decode (verification rows grow with the batch)."""
    adaptive: bool = True
    """Choose each step's draft length from the measured acceptance and row costs (False: always
    ``num_tokens``)."""
    ngram_max: int = 4
    """Longest suffix looked up first (ngram)."""
    ngram_min: int = 2
    """Shortest suffix tried before giving up (ngram)."""
    draft_model: str | None = None
    """Catalog name, HF folder or GGUF of the draft model (method "draft")."""
    draft_weight_quant: str = "none"
    """weight_quant of the draft model ("auto": its own autotune)."""

    def __post_init__(self) -> None:
        if self.method not in SPECULATIVE_METHODS:
            raise ValueError(f"speculative method must be one of {SPECULATIVE_METHODS}, got {self.method!r}")
        if not 1 <= self.num_tokens <= 16:
            raise ValueError(f"speculative num_tokens must be in [1, 16], got {self.num_tokens}")
        if self.max_batch < 1:
            raise ValueError(f"speculative max_batch must be >= 1, got {self.max_batch}")
        if not 1 <= self.ngram_min <= self.ngram_max:
            raise ValueError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min}, {self.ngram_max}")
        if self.method == "draft" and not self.draft_model:
            raise ValueError("speculative method 'draft' needs draft_model")
        if self.draft_weight_quant not in WEIGHT_QUANTS:
            raise ValueError(f"draft_weight_quant must be one of {WEIGHT_QUANTS}, got {self.draft_weight_quant!r}")


@dataclass
class EngineConfig:
    """Everything the engine needs to start."""

    model: str = "qwen2.5-coder-0.5b-instruct"
    """Catalog name, local HF/safetensors folder, or GGUF file path."""
    device: str = "cpu"
    dtype: str = "auto"
    """Activation and weight dtype (weights before weight_quant); "auto": bf16 on CUDA and on CPUs with
    AVX-512-BF16 or AMX, float32 elsewhere (bf16 GEMMs there are tens of times slower), where weight_quant
    "none" then stores linear weights in fp16 (``compute_dtype.resolve_weight_quant``)."""
    weight_quant: str = "none"
    """Weight-only quantization of linear layers: none, int8 or int4 (CPU kernels, prefill dequantizes),
    fp16 (float32 model, fp16 weights through fbgemm's fp16 GEMM: x86 CPU),
    bnb_int8 (bitsandbytes LLM.int8(), CUDA only), hybrid_int8 / hybrid_int4 / hybrid_fp16 / hybrid_int4x8 / hybrid_int8x8 (CPU: dense weights for prompt
    rows and packed int8/int4/fp16 copies for generated rows, both resident; int4x8: int4 weights times
    int8 activations through our AVX-512 VNNI / AVX2 kernel; int8x8: one int8 copy for prompt and generated rows, int8
    activations, no bf16 weights), or auto (CPU: a short measured
    autotune, cached per CPU model and torch version, picks the paths and thread counts; elsewhere none)."""
    prefill_quant: str = "auto"
    """Weights of prompt rows under weight_quant auto / hybrid_*: "dense" (the model dtype), "int8x8" (int8
    weights times int8 activations through our AVX-512 VNNI / AVX2 GEMM: faster prefill on CPUs without AMX, a
    resident int8 copy), or "auto" (the autotune's choice under weight_quant auto, else dense)."""
    prompt_attention: str = "auto"
    """Prompt rows' attention on the CPU sdpa backend: "native" (our AVX-512 BF16 kernel, bf16 models),
    "sdpa" (torch's), or "auto" (the faster, measured once per CPU and head shape and cached). Where the
    kernel cannot run, SDPA with a log line."""
    decode_attention: str = "auto"
    """Generated rows' attention on the CPU sdpa backend: "native" (our kernel over the paged cache, any CPU the
    native library builds on), "sdpa" (gathered K/V through torch's), or "auto" (the faster, measured once per
    CPU, head shape and cache dtype and cached). Where the kernel cannot run, SDPA with a log line."""
    attention_backend: str = "sdpa"
    """Chosen by config, never by sniffing what is installed."""
    cache: CacheConfig = field(default_factory=CacheConfig)
    max_num_seqs: int = 64
    """Most sequences running at once."""
    max_num_batched_tokens: int = 512
    """Token budget per step (prefill chunks + decodes)."""
    max_model_len: int | None = None
    """Context limit; None means the model's own."""
    enable_cuda_graphs: bool = True
    """Capture decode steps as CUDA graphs per batch-size bucket (CUDA + triton backend only)."""
    num_threads: int | None = None
    """torch CPU threads; None leaves torch's default (or the autotune's choice with weight_quant auto)."""
    compile_decode: str = "auto"
    """CPU decode steps through the model's forward ``torch.compile``'d as one graph (``inference/compiled_decode.py``):
    "auto" where generated rows take packed weights (weight_quant auto / hybrid_*) on the sdpa backend, "on"
    for any CPU model on sdpa, "off" never. Compiled at load; eager when the compiler is unavailable."""
    speculative: SpeculativeConfig = field(default_factory=SpeculativeConfig)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.weight_quant not in WEIGHT_QUANTS:
            raise ValueError(f"weight_quant must be one of {WEIGHT_QUANTS}, got {self.weight_quant!r}")
        if self.prefill_quant not in PREFILL_QUANTS:
            raise ValueError(f"prefill_quant must be one of {PREFILL_QUANTS}, got {self.prefill_quant!r}")
        if self.prefill_quant == "int8x8" and not (self.weight_quant == "auto" or self.weight_quant.startswith("hybrid_")):
            raise ValueError("prefill_quant int8x8 needs weight_quant auto or hybrid_* (it is a hybrid copy for "
                             f"prompt rows), got weight_quant {self.weight_quant!r}")
        if self.prompt_attention not in PROMPT_ATTENTIONS:
            raise ValueError(f"prompt_attention must be one of {PROMPT_ATTENTIONS}, got {self.prompt_attention!r}")
        if self.decode_attention not in PROMPT_ATTENTIONS:
            raise ValueError(f"decode_attention must be one of {PROMPT_ATTENTIONS}, got {self.decode_attention!r}")
        if self.compile_decode not in COMPILE_DECODE:
            raise ValueError(f"compile_decode must be one of {COMPILE_DECODE}, got {self.compile_decode!r}")
        if self.attention_backend not in ATTENTION_BACKENDS:
            raise ValueError(
                f"attention_backend must be one of {ATTENTION_BACKENDS}, got {self.attention_backend!r}"
            )
        if self.weight_quant == "bnb_int8" and not self.device.startswith("cuda"):
            raise ValueError("weight_quant='bnb_int8' needs a CUDA device (bitsandbytes LLM.int8())")
        if self.max_num_seqs < 1:
            raise ValueError(f"max_num_seqs must be >= 1, got {self.max_num_seqs}")
        if self.max_num_batched_tokens < 1:
            raise ValueError(f"max_num_batched_tokens must be >= 1, got {self.max_num_batched_tokens}")
        if self.max_model_len is not None and self.max_model_len < 1:
            raise ValueError(f"max_model_len must be >= 1, got {self.max_model_len}")

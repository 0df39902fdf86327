"""Random-weight tiny Qwen2 / Llama models built in-process, for tests that need a real HF folder.

``make_tiny_model(dir)`` trains a small byte-level BPE tokenizer with Qwen's special tokens and a ChatML
chat template, builds an HF transformers model from a seeded random init and saves both, so transformers
and our loader read the very same weights.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|fim_prefix|>", "<|fim_middle|>",
    "<|fim_suffix|>", "<|fim_pad|>", "<|file_sep|>", "<|repo_name|>",
]
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{% endif %}"
)
_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, x):\n        self.items.append(x)\n",
    "for i in range(10):\n    print(i * i)\n",
    "import os\nimport sys\n\nif __name__ == '__main__':\n    main(sys.argv[1:])\n",
    "The quick brown fox jumps over the lazy dog. Write a function that sorts a list.\n",
    "while True:\n    line = input()\n    if not line:\n        break\n",
    "x = [n for n in numbers if n % 2 == 0]\nreturn sorted(x, reverse=True)\n",
]
TINY_SHAPES = {
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 512,
}


def make_tokenizer(vocab_size: int = 384):
    """A byte-level BPE ``PreTrainedTokenizerFast`` with Qwen-style special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 4, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=SPECIAL_TOKENS[1:],
        chat_template=CHATML_TEMPLATE,
    )


def make_word_tokenizer(vocab_size: int):
    """A word-level fast tokenizer with exactly one token per id (``t0`` ... ``t<vocab_size - 1>``), for
    models built in memory with random weights: the engine detokenizes whatever id they sample."""
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    vocab = {f"t{i}": i for i in range(vocab_size)}
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel(vocab, unk_token="t0")))


def make_tiny_model(
    out_dir: Path,
    arch: str = "qwen2",
    seed: int = 0,
    tie_word_embeddings: bool | None = None,
    init_std: float = 0.1,
    **overrides: object,
) -> Path:
    """Write an HF folder (config.json, model.safetensors, tokenizer) for a random tiny model; return it.

    ``init_std`` is larger than HF's default so greedy decoding has clear margins between logits.
    Re-uses ``out_dir`` if it already holds a model.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    out_dir = Path(out_dir)
    if (out_dir / "config.json").exists() and (out_dir / "model.safetensors").exists():
        return out_dir
    if arch not in ("qwen2", "llama"):
        raise ValueError(f"arch must be qwen2 or llama, got {arch!r}")
    tokenizer = make_tokenizer()
    special = {t: tokenizer.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_end|>")}
    fields = dict(TINY_SHAPES)
    fields.update(
        vocab_size=len(tokenizer),
        rope_theta=1_000_000.0 if arch == "qwen2" else 10_000.0,
        rms_norm_eps=1e-6 if arch == "qwen2" else 1e-5,
        tie_word_embeddings=(arch == "qwen2") if tie_word_embeddings is None else tie_word_embeddings,
        initializer_range=init_std,
        bos_token_id=special["<|endoftext|>"],
        eos_token_id=special["<|im_end|>"],
        pad_token_id=special["<|endoftext|>"],
    )
    fields.update(overrides)
    config = AutoConfig.for_model(arch, **fields)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    with torch.no_grad():  # HF inits norms to 1 and biases to 0; perturb them so they are tested too
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.add_(torch.randn_like(p) * 0.1)
            elif name.endswith("bias"):
                p.normal_(0, init_std)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    _write_generation_config(out_dir, [special["<|im_end|>"], special["<|endoftext|>"]])
    return out_dir


def _write_generation_config(out_dir: Path, eos_ids: list[int]) -> None:
    path = out_dir / "generation_config.json"
    cfg = json.loads(path.read_text()) if path.exists() else {}
    cfg["eos_token_id"] = eos_ids
    path.write_text(json.dumps(cfg, indent=2))

"""Loading weights and config: safetensors folders, GGUF files (F32/F16/Q8_0/Q4_0), llama3 RoPE, errors."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from inference import kernels
from inference.batch import SeqChunk, StepBatch
from inference.config import EngineConfig
from inference.engine import Engine
from inference.model_runner import ModelRunner
from inference.models.config import ModelConfig
from inference.models.loader import ModelLoadError, map_embedding_table, read_gguf, read_safetensors
from inference.sampling import SamplingParams
from tests.inference.gguf_writer import write_gguf

QUANTS = {"attn_q": "Q8_0", "attn_k": "Q8_0", "ffn_up": "Q4_0", "ffn_gate": "F16", "token_embd": "F16"}
STEP_TOL = {"Q8_0": 0.02, "Q4_0": 0.35, "F16": 1e-3}  # max |diff| / max |w| per GGUF type


@pytest.fixture(scope="module")
def gguf_files(tiny_qwen2_dir, tiny_llama_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return {
        arch: write_gguf(d, out / f"{arch}.gguf", QUANTS)
        for arch, d in (("qwen2", tiny_qwen2_dir), ("llama", tiny_llama_dir))
    }


def logits_of(runner: ModelRunner, ids: list[int]) -> torch.Tensor:
    runner.allocate_kv(32)
    return runner.forward_logits(StepBatch([SeqChunk(0, ids, 0, list(range(31, 31 - len(ids) // 4 - 2, -1)), False)]))


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_gguf_weights_match_safetensors(arch, gguf_files, tiny_qwen2_dir, tiny_llama_dir):
    hf_dir = tiny_qwen2_dir if arch == "qwen2" else tiny_llama_dir
    config, weights = read_gguf(gguf_files[arch])
    assert config == ModelConfig.from_json(hf_dir / "config.json") or _same_shape(config, hf_dir)
    ref = read_safetensors(hf_dir)
    if config.tie_word_embeddings:
        ref.pop("lm_head.weight", None)
    assert set(weights) == set(ref)
    for name, w in weights.items():
        kind = next((k for sub, k in QUANTS.items() if sub in name_to_gguf(name)), None)
        err = float((w - ref[name]).abs().max() / ref[name].abs().max())
        assert err <= (STEP_TOL[kind] if kind else 0.0), f"{name}: {err}"


def _same_shape(config: ModelConfig, hf_dir: Path) -> bool:
    hf = ModelConfig.from_json(hf_dir / "config.json")
    hf.rms_norm_eps = config.rms_norm_eps  # stored as float32 in GGUF
    hf.eos_token_ids = config.eos_token_ids  # GGUF has one EOS
    return hf == config


def name_to_gguf(hf_name: str) -> str:
    from tests.inference.gguf_writer import gguf_name

    return gguf_name(hf_name)


@pytest.mark.parametrize("arch", ["qwen2", "llama"])
def test_gguf_logits_match_transformers_gguf_loading(arch, gguf_files):
    """Our loader and transformers' own GGUF loader read the same file into the same model (Q/K layout)."""
    from transformers import AutoModelForCausalLM

    path = gguf_files[arch]
    runner = ModelRunner(EngineConfig(model=str(path), dtype="float32"))
    ids = runner.tokenizer("def fib(n):\n    return fib(n - 1) + fib(n - 2)").input_ids
    ours = logits_of(runner, ids)
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)
    assert runner.model_config.arch == arch


def test_gguf_close_to_source_model(gguf_files, tiny_llama_dir):
    a = ModelRunner(EngineConfig(model=str(gguf_files["llama"]), dtype="float32"))
    b = ModelRunner(EngineConfig(model=str(tiny_llama_dir), dtype="float32"))
    ids = b.tokenizer("class Stack:\n    def push(self, x):").input_ids
    assert a.tokenizer("class Stack:").input_ids == b.tokenizer("class Stack:").input_ids
    la, lb = logits_of(a, ids), logits_of(b, ids)
    assert float((la - lb).norm() / lb.norm()) < 0.2  # Q4_0 / Q8_0 quantization error only


def test_llama3_rope_scaling_matches_hf(tmp_path):
    from transformers import AutoModelForCausalLM

    from inference.models.tiny import make_tiny_model

    rope = {"rope_type": "llama3", "rope_theta": 10000.0, "factor": 8.0, "low_freq_factor": 1.0,
            "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
    d = make_tiny_model(tmp_path / "l3", arch="llama", seed=2, rope_parameters=rope)
    runner = ModelRunner(EngineConfig(model=str(d), dtype="float32"))
    assert runner.model_config.rope_scaling is not None
    ids = (runner.tokenizer("for i in range(10):\n    print(i * i)\n").input_ids * 6)[:90]
    runner.allocate_kv(64)
    ours = runner.forward_logits(StepBatch([SeqChunk(0, ids, 0, list(range(30)), False)]))
    hf = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
    with torch.no_grad():
        ref = hf(torch.tensor([ids])).logits[0]
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_bad_model_inputs_raise_clear_errors(tmp_path, tiny_qwen2_dir):
    cases = []
    missing = tmp_path / "nope"
    cases.append((missing, "unknown model"))
    garbage = tmp_path / "x.gguf"
    garbage.write_bytes(b"not a gguf at all" * 10)
    cases.append((garbage, "GGUF"))
    bad_type = tmp_path / "bad_type"
    shutil.copytree(tiny_qwen2_dir, bad_type)
    cfg = json.loads((bad_type / "config.json").read_text())
    (bad_type / "config.json").write_text(json.dumps({**cfg, "model_type": "gpt_neox"}))
    cases.append((bad_type, "unsupported model_type"))
    no_weights = tmp_path / "no_weights"
    shutil.copytree(tiny_qwen2_dir, no_weights)
    os.remove(no_weights / "model.safetensors")
    cases.append((no_weights, "safetensors"))
    for path, msg in cases:
        with pytest.raises(ModelLoadError, match=msg):
            ModelRunner(EngineConfig(model=str(path)))


def test_missing_tensor_is_named(tmp_path, tiny_llama_dir):
    from safetensors.torch import save_file

    d = tmp_path / "partial"
    shutil.copytree(tiny_llama_dir, d)
    weights = read_safetensors(d)
    del weights["model.layers.1.mlp.down_proj.weight"]
    save_file(weights, d / "model.safetensors")
    with pytest.raises(ModelLoadError, match="layers.1.mlp.down_proj"):
        ModelRunner(EngineConfig(model=str(d)))


def _file_mapping_of(tensor: torch.Tensor) -> str | None:
    """The file whose mapping in this process holds ``tensor``'s data, None for anonymous memory."""
    ptr = tensor.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        fields = line.split(maxsplit=5)
        lo, hi = (int(x, 16) for x in fields[0].split("-"))
        if lo <= ptr < hi:
            return fields[5] if len(fields) > 5 and fields[5].startswith("/") else None
    return None


def test_untied_embedding_is_read_from_the_file_not_copied(tmp_path, tiny_llama_dir, monkeypatch):
    """Only the rows of tokens seen may become resident: the table stays a copy-on-write file mapping, and
    loading never reads it into a copy first."""
    from safetensors.torch import load_file

    from inference.models.loader import SafetensorsFolder

    read = []
    get = SafetensorsFolder.__getitem__
    monkeypatch.setattr(SafetensorsFolder, "__getitem__", lambda self, name: read.append(name) or get(self, name))
    d = tmp_path / "llama"
    shutil.copytree(tiny_llama_dir, d)
    runner = ModelRunner(EngineConfig(model=str(d), dtype="float32"))  # the tiny model's file is float32
    assert "model.embed_tokens.weight" not in read and "model.layers.0.mlp.down_proj.weight" in read
    emb = runner.model.embed_tokens.weight
    assert _file_mapping_of(emb) == str(d / "model.safetensors")
    ref = load_file(d / "model.safetensors")
    assert torch.equal(emb, ref["model.embed_tokens.weight"])
    assert runner.model.lm_head.weight.data_ptr() != emb.data_ptr()
    before = (d / "model.safetensors").read_bytes()
    with torch.no_grad():
        emb[0].zero_()  # a private page: the file is never written
    assert (d / "model.safetensors").read_bytes() == before
    cast = ModelRunner(EngineConfig(model=str(d), dtype="bfloat16"))  # not the file's dtype: a loaded copy
    assert _file_mapping_of(cast.model.embed_tokens.weight) is None


def test_tied_embedding_is_loaded(tiny_qwen2_dir):
    runner = ModelRunner(EngineConfig(model=str(tiny_qwen2_dir), dtype="float32"))
    assert _file_mapping_of(runner.model.embed_tokens.weight) is None
    assert runner.model.lm_head.weight is runner.model.embed_tokens.weight


@pytest.mark.skipif(not kernels.available(), reason="needs our int8x8 kernel (AVX-512 VNNI or AVX2)")
def test_tied_table_is_mapped_once_the_lm_head_has_packed_copies(tmp_path, tiny_qwen2_dir, monkeypatch):
    """Under hybrid weights with an int8x8 prompt copy, the lm_head reads packed copies for every row count, so a
    tied table is only looked up by row: it is served from the file, and the loaded copy is gone."""
    from safetensors.torch import load_file

    d = tmp_path / "qwen2"
    shutil.copytree(tiny_qwen2_dir, d)
    config = EngineConfig(model=str(d), dtype="float32", weight_quant="hybrid_int8x8", compile_decode="off")
    runner = ModelRunner(config)
    model = runner.model
    assert model.lm_head.weight is None and model.lm_head.prompt is not None
    emb = model.embed_tokens.weight
    assert _file_mapping_of(emb) == str(d / "model.safetensors")
    assert torch.equal(emb, load_file(d / "model.safetensors")["model.embed_tokens.weight"])
    assert not map_embedding_table(model, None)  # weights built in memory (the GPU benchmark's): nothing to map
    many = torch.randn(runner.kernels.packed_max_rows + 3, model.config.hidden_size)
    wide = model.compute_logits(many)  # more sampled rows than the packed copy serves: the prompt copy
    ref = many @ emb.T
    assert (wide - ref).norm() / ref.norm() < 0.05
    params = SamplingParams(max_tokens=8, temperature=0.0, ignore_eos=True)
    mapped = Engine(config).generate([[1, 2, 3, 4]], params)[0].outputs[0].token_ids
    monkeypatch.setattr("inference.model_runner.map_embedding_table", lambda model, source: False)
    loaded = Engine(config)
    assert loaded.runner.model.embed_tokens.weight.dtype == torch.float32
    assert _file_mapping_of(loaded.runner.model.embed_tokens.weight) is None
    assert loaded.generate([[1, 2, 3, 4]], params)[0].outputs[0].token_ids == mapped  # the same numbers


@pytest.mark.skipif(not kernels.available(), reason="needs our int8x8 kernel (AVX-512 VNNI or AVX2)")
def test_untied_lm_head_drops_its_dense_weight_under_packed_prompt_copies(tiny_llama_dir):
    """The lm_head's dense weight served only more than ``packed_max_rows`` sampled rows; its prompt copy does."""
    runner = ModelRunner(EngineConfig(model=str(tiny_llama_dir), dtype="float32", weight_quant="hybrid_int8x8",
                                      compile_decode="off"))
    head = runner.model.lm_head
    assert head.weight is None and head.prompt is head.packed  # one int8x8 copy serves both roles
    assert not [name for name, _ in runner.model.named_parameters() if name.startswith("lm_head")]


def test_loading_a_model_does_not_import_dynamo(tiny_llama_dir):
    """Building on the meta device must not run torch's init kernels (they import torch._dynamo and triton)."""
    import subprocess
    import sys

    code = ("import sys; from inference.config import EngineConfig; from inference.model_runner import ModelRunner;"
            f"ModelRunner(EngineConfig(model={str(tiny_llama_dir)!r})); print(sorted(m for m in sys.modules"
            " if m.startswith(('torch._dynamo', 'triton'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_weights_are_read_one_group_at_a_time(tiny_llama_dir):
    """Fusing reads a tensor when it is copied, not all up front (a whole model's copies at once)."""
    from collections.abc import Mapping

    from inference.models.llama import hf_to_fused
    from inference.models.loader import SafetensorsFolder

    class Recording(Mapping):
        def __init__(self, inner):
            self.inner, self.read = inner, []

        def __getitem__(self, name):
            self.read.append(name)
            return self.inner[name]

        def __iter__(self):
            return iter(self.inner)

        def __len__(self):
            return len(self.inner)

    weights = Recording(SafetensorsFolder(tiny_llama_dir))
    fused = hf_to_fused(weights, ModelConfig.from_json(tiny_llama_dir / "config.json"))
    name, tensor = next(fused)
    assert name == "layers.0.self_attn.qkv_proj.weight"
    assert sorted(weights.read) == [f"model.layers.0.self_attn.{p}_proj.weight" for p in "kqv"]
    ref = read_safetensors(tiny_llama_dir)
    torch.testing.assert_close(tensor, torch.cat([ref[f"model.layers.0.self_attn.{p}_proj.weight"] for p in "qkv"]))
    rest = dict(fused)
    assert len(weights.read) == len(ref) and len(rest) + 1 < len(ref)


def test_a_16_bit_table_serves_a_float32_model_from_its_file(tmp_path, tiny_llama_dir):
    """On a CPU without hardware bf16 the model runs in float32 (dtype auto): its bf16 table stays the file's
    mapping (rows widened as read, exactly), not a float32 copy, and the logits are those of the copy."""
    from safetensors.torch import load_file, save_file

    d = tmp_path / "llama-bf16"
    shutil.copytree(tiny_llama_dir, d)
    tensors = load_file(d / "model.safetensors")
    save_file({k: v.to(torch.bfloat16).contiguous() for k, v in tensors.items()}, d / "model.safetensors")
    runner = ModelRunner(EngineConfig(model=str(d), dtype="float32"))
    emb = runner.model.embed_tokens.weight
    assert _file_mapping_of(emb) == str(d / "model.safetensors") and emb.dtype == torch.bfloat16
    copy = ModelRunner(EngineConfig(model=str(d), dtype="float32"))
    copy.model.embed_tokens.weight = torch.nn.Parameter(emb.float(), requires_grad=False)
    ids = [1, 5, 9, 2, 7]
    torch.testing.assert_close(logits_of(runner, ids), logits_of(copy, ids), rtol=0, atol=0)

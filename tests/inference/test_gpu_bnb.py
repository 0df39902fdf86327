"""On a CUDA GPU with bitsandbytes: LLM.int8() linears track the bf16 model's logits."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.gpu
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)
pytest.importorskip("bitsandbytes")


def test_bnb_int8_model_logits_close_to_fp16():
    from inference.attention import get_backend
    from inference.bnb_quant import quantize_linears_bnb_int8
    from inference.models.config import ModelConfig
    from inference.models.llama import LlamaModel

    cfg = ModelConfig(arch="llama", num_layers=2, hidden_size=256, intermediate_size=512, num_heads=4,
                      num_kv_heads=2, head_dim=64, vocab_size=500, max_position_embeddings=256)
    torch.manual_seed(0)
    ref = LlamaModel(cfg, get_backend("sdpa")).half()
    quant = LlamaModel(cfg, get_backend("sdpa")).half()
    quant.load_state_dict(ref.state_dict())
    assert quantize_linears_bnb_int8(quant) == 4 * cfg.num_layers  # qkv, o, gate_up, down per layer
    ref, quant = ref.cuda(), quant.cuda()
    x = torch.randn(8, cfg.hidden_size, device="cuda", dtype=torch.float16)
    with torch.no_grad():
        a = ref.layers[0].self_attn.qkv_proj(x)
        b = quant.layers[0].self_attn.qkv_proj(x)
    assert type(quant.layers[0].mlp.down_proj).__name__ == "Linear8bitLt"
    assert (a - b).abs().max() / a.abs().max() < 0.05

"""model.liger_kernels swaps module instances: same parameters and names, equal outputs and gradients.

Liger-Kernel's RMSNorm and SwiGLU kernels cast scalar arguments with `.to()` inside the kernel,
which the Triton 3.7 interpreter cannot run on CPU, so the numerical check needs a GPU (it runs in
`make gpu-check`); the swap itself is checked everywhere.
"""

import copy

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.liger import use_liger_kernels
from videorft.engine.models.tiny import build_tiny_model

LAYERS = 2


def _models(tok, family, device="cpu"):
    model = build_tiny_model(TinyModelConfig(family=family, hidden_size=32, num_layers=LAYERS, intermediate_size=64),
                             tok, seed=3).to(device)
    fused = copy.deepcopy(model)
    return model, fused, use_liger_kernels(fused)


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_swap_keeps_every_parameter_and_name(bpe_tokenizer, family):
    model, fused, swapped = _models(bpe_tokenizer, family)
    qk_norms = 2 * LAYERS if family == "qwen3_vl" else 0            # Qwen3 normalises queries and keys too
    assert swapped == {"rms_norm": 2 * LAYERS + 1 + qk_norms, "swiglu": LAYERS}
    layer = fused.model.language_model.layers[0]
    assert type(layer.mlp).__name__ == "LigerSwiGLUMLP" and type(layer.input_layernorm).__name__ == "LigerRMSNorm"
    assert list(fused.state_dict()) == list(model.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(fused.state_dict().values(), model.state_dict().values()))
    assert not any(p.is_meta for p in fused.parameters())


@pytest.mark.gpu
@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_swapped_modules_compute_what_the_originals_compute(bpe_tokenizer, family):
    model, fused, _ = _models(bpe_tokenizer, family, "cuda")
    ids = torch.randint(10, 300, (2, 9), generator=torch.Generator().manual_seed(0)).cuda()
    outs = []
    for m in (model, fused):
        m.zero_grad()
        hidden = m.model(input_ids=ids, mm_token_type_ids=torch.zeros_like(ids), use_cache=False).last_hidden_state
        (hidden * torch.linspace(-1, 1, hidden.shape[-1], device="cuda")).sum().backward()
        outs.append((hidden.detach(), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}))
    (want, want_grads), (got, got_grads) = outs
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    assert got_grads.keys() == want_grads.keys()
    for name, grad in want_grads.items():
        torch.testing.assert_close(got_grads[name], grad, rtol=1e-4, atol=1e-5, msg=name)

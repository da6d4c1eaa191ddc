"""Model FLOPs of a step: the matmul parameters come from the model itself; sharing counts a prompt once."""

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.trainers.flops import ModelShape, attention_pairs, grpo_step_flops, utilisation


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_layer_and_head_parameters_match_the_model(bpe_tokenizer, family):
    model = build_tiny_model(TinyModelConfig(family=family, hidden_size=64, num_layers=2), bpe_tokenizer)
    shape = ModelShape.of(model.config)
    layer = model.model.language_model.layers[0]
    linear = sum(m.weight.numel() for m in layer.modules() if isinstance(m, torch.nn.Linear))
    assert shape.layer_params == linear and shape.layers == 2
    assert shape.head_params == model.lm_head.weight.numel()


def test_a_shared_prompt_is_counted_once():
    assert attention_pairs(4, [2, 3], shared=True) == (4 + 5, 10 + (4 * 2 + 3) + (4 * 3 + 6))
    assert attention_pairs(4, [2, 3], shared=False) == (2 * 4 + 5, 2 * 10 + (4 * 2 + 3) + (4 * 3 + 6))
    shape = ModelShape(layer_params=1000, layers=2, attention_width=64, head_params=5000, vision_params_per_patch=0)
    shared = grpo_step_flops(shape, [1000], [[100] * 8], [0], shared=True, passes_forward=1, updates=1)
    per_row = grpo_step_flops(shape, [1000], [[100] * 8], [0], shared=False, passes_forward=1, updates=1)
    tokens, pairs = 1000 + 800, 1000 * 1001 // 2 + 8 * (1000 * 100 + 100 * 101 // 2)
    one_forward = 2 * 2 * 1000 * tokens + 4 * 2 * 64 * pairs + 2 * 5000 * 800
    assert shared == pytest.approx(4 * one_forward)            # reference forward + (forward + backward)
    assert per_row > 3 * shared


def test_mfu_is_reported_against_a_known_peak_only():
    assert utilisation(2e12, 2.0, torch.device("cpu")) == {"model_tflops_per_s": 1.0}
    assert utilisation(1.0, 0.0, torch.device("cpu")) == {}

"""AdamW parameter groups and the learning-rate schedule span."""

import pytest
import torch

from videorft.engine.config import OptimConfig, TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.trainers.optim import build_optimizer, build_scheduler, lr_multiplier


def test_weight_decay_skips_biases_and_norm_weights(bpe_tokenizer):
    model = build_tiny_model(TinyModelConfig(hidden_size=32, num_layers=1, intermediate_size=64), bpe_tokenizer)
    optimizer = build_optimizer(model.named_parameters(), OptimConfig(weight_decay=0.01))
    decay_of = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    named = dict(model.named_parameters())
    assert decay_of[id(named["model.language_model.layers.0.self_attn.q_proj.weight"])] == 0.01
    assert decay_of[id(named["model.language_model.layers.0.self_attn.q_proj.bias"])] == 0.0
    assert decay_of[id(named["model.language_model.norm.weight"])] == 0.0
    assert decay_of[id(named["lm_head.weight"])] == 0.01
    assert len(decay_of) == sum(1 for p in model.parameters() if p.requires_grad)


def test_schedule_steps_spans_the_decay_beyond_the_run():
    """The released GRPO run: cosine over an epoch of ~38.8K steps, stopped after 1K: lr ~ constant."""
    cfg = OptimConfig(lr=1e-6, scheduler="cosine", schedule_steps=38_750)
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(2))], lr=cfg.lr)
    scheduler = build_scheduler(optimizer, total_steps=1000, cfg=cfg)
    for _ in range(999):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-6 * lr_multiplier(999, 38_750, cfg))
    assert optimizer.param_groups[0]["lr"] > 0.998e-6
    run_span = OptimConfig(lr=1e-6, scheduler="cosine")
    assert lr_multiplier(999, 1000, run_span) < 1e-5               # decays to ~0 over the run itself

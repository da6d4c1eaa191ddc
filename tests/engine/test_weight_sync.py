"""The weight stream behind vLLM's sync: whole tensors, transformers names, one module at a time."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from videorft.engine.config import TinyModelConfig
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.rollout.weight_sync import module_weight_chunks

ZERO3_CHILD = r"""
import json, os, torch
from deepspeed.runtime.zero.partition_parameters import ZeroParamStatus
from videorft.engine.config import DistributedConfig, OptimConfig, TinyModelConfig
from videorft.engine.models.policy import PolicyModel
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.tokenizer import build_tokenizer
from videorft.engine.rollout.weight_sync import module_weight_chunks
from videorft.engine.trainers.distributed import init_distributed
from videorft.engine.trainers.train_engine import TrainEngine

dist_cfg = DistributedConfig(zero_stage=3, backend="gloo")
info = init_distributed(dist_cfg, torch.device("cpu"))
model = build_tiny_model(TinyModelConfig(), build_tokenizer("bpe"), seed=3)
unsharded = {n: p.detach().clone() for n, p in model.named_parameters()}
engine = TrainEngine(PolicyModel(model, "torch"), OptimConfig(), dist_cfg, info, total_steps=1)
live = engine.policy.model
out = {"empty_before": sum(p.numel() == 0 for p in live.parameters()), "names": [], "mismatched": [],
       "gathered_beyond_chunk": [], "max_chunk": 0}
for chunk in module_weight_chunks(live):
    names = {n for n, _ in chunk}
    whole = {n for n, p in live.named_parameters() if p.ds_status == ZeroParamStatus.AVAILABLE}
    out["gathered_beyond_chunk"] += sorted(whole - names)
    out["max_chunk"] = max(out["max_chunk"], len(chunk))
    for name, tensor in chunk:
        out["names"].append(name)
        if tensor.requires_grad or not torch.equal(tensor, unsharded[name]):
            out["mismatched"].append(name)
out["available_after"] = sum(p.ds_status == ZeroParamStatus.AVAILABLE for p in live.parameters())
print("RESULT " + json.dumps(out))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_plain_parameters_stream_module_by_module_under_their_names(bpe_tokenizer):
    model = build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=3)
    chunks = list(module_weight_chunks(model))
    names = [n for chunk in chunks for n, _ in chunk]
    params = dict(model.named_parameters())
    assert names == list(params)
    for chunk in chunks:
        owners = {n.rsplit(".", 1)[0] for n, _ in chunk}
        assert len(owners) == 1                                                  # one module per chunk
        for name, tensor in chunk:
            assert tensor.data_ptr() == params[name].data_ptr() and not tensor.requires_grad


def test_a_shared_parameter_is_sent_once_under_its_first_name():
    embed, head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 10, bias=False)
    head.weight = embed.weight
    model = torch.nn.ModuleDict({"embed": embed, "head": head})
    assert [n for chunk in module_weight_chunks(model) for n, _ in chunk] == ["embed.weight"]


@pytest.mark.slow
def test_zero3_shards_are_gathered_whole_one_module_at_a_time(bpe_tokenizer):
    """A real DeepSpeed ZeRO-3 engine (one rank over gloo) around the tiny Qwen2.5-VL."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": "1", "RANK": "0",
           "LOCAL_RANK": "0"}
    proc = subprocess.run([sys.executable, "-c", ZERO3_CHILD], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.split("RESULT ", 1)[1])
    expected = [n for n, _ in build_tiny_model(TinyModelConfig(), bpe_tokenizer, seed=3).named_parameters()]
    assert out["empty_before"] == len(expected)                 # every parameter was a (0,) shard
    assert out["names"] == expected
    assert out["mismatched"] == []                              # whole, equal to the unsharded copy, detached
    assert out["gathered_beyond_chunk"] == [] and out["available_after"] == 0
    assert out["max_chunk"] <= 2                                # a module's weight and bias

"""The GRPO step in process, on real rollouts of tiny models of every family.

Checks what the trainer-level runs cannot isolate: a rollout and a step for Qwen2-VL, Qwen2.5-VL
and Qwen3-VL; micro-batching (with a prompt lost from the batch) gives the update of the whole
batch at once; several inner updates are that many optimizer steps against one behaviour
policy; and a non-finite loss in the middle of a micro-batched step (plain, ZeRO-2, ZeRO-3)
leaves nothing behind: the next step's update equals that of an engine that never saw it.
"""

import copy
import os

import pytest
import torch

from videorft.engine.backends import resolve_backends
from videorft.engine.config import TinyModelConfig, load_config
from videorft.engine.models.attention import VARLEN_ATTENTION, apply_attention
from videorft.engine.models.policy import PolicyModel
from videorft.engine.models.tiny import build_tiny_model
from videorft.engine.models.tokenizer import build_tokenizer
from videorft.engine.rewards import GroupScorer
from videorft.engine.rollout.hf import HFRollout
from videorft.engine.trainers.data import build_prompt_loader
from videorft.engine.trainers.distributed import DistInfo, init_distributed
from videorft.engine.trainers.grpo_step import (StepContext, forward_logprobs, grpo_step, loss_options,
                                                prepare_chunks, update)
from videorft.engine.trainers.phases import PhaseTimer
from videorft.engine.trainers.reference import ReferencePolicy
from videorft.engine.trainers.sequences import build_sequences, micro_batches
from videorft.engine.trainers.train_engine import TrainEngine
from videorft.loaders.collate import SpecialIds
from videorft.loaders.family import FAMILY_NAMES

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
SINGLE = DistInfo(rank=0, world_size=1, local_rank=0, device=CPU)
TINY = dict(hidden_size=32, num_layers=1, num_heads=4, num_kv_heads=2, intermediate_size=64, vision_depth=1,
            vision_hidden_size=32)


@pytest.fixture(scope="module", autouse=True)
def _leave_no_process_group():
    """The ZeRO engines here join a one-rank gloo group in this process (and set its MASTER_* and
    RANK variables); the tests after this module start without it."""
    before = dict(os.environ)
    yield
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK"):
        if name not in before:
            os.environ.pop(name, None)


def _cfg(world, *extra: str):
    return load_config(None, [
        f"data.train_file={world / 'train.jsonl'}", f"data.media_root={world}", "run.device=cpu",
        "video.backend=pyav", "video.preprocess=torch", "video.min_frames=4", "video.max_frames=4",
        "video.min_pixels=3136", "video.max_pixels=3136", "rollout.group_size=3", "rollout.max_new_tokens=6",
        "rollout.top_p=1.0", "grpo.prompts_per_step=3", "rewards.functions=[accuracy,format]",
        "rewards.length_bonus.enabled=false", "kernels.backend=torch", "grpo.optim.weight_decay=0.0",
        # Adam with eps 1 moves each weight by lr * g / (|g| + 1), about lr * g for small gradients: the
        # updates compare like gradients (a sign-like Adam step would blow up rounding differences), and
        # lr 1e3 lifts them far above the fp32 spacing of the weights they are added to
        "grpo.optim.lr=1000.0", "grpo.optim.eps=1.0", "grpo.optim.scheduler=constant", *extra])


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer("bpe")


def _engine(model, cfg, zero_stage: int = 0) -> TrainEngine:
    from videorft.engine.config import DistributedConfig

    dist = DistributedConfig(zero_stage=zero_stage, backend="gloo")
    info = init_distributed(dist, CPU) if zero_stage else SINGLE
    return TrainEngine(PolicyModel(copy.deepcopy(model), "torch"), cfg.grpo.optim, dist, info, total_steps=10)


def _deltas(engine: TrainEngine, model) -> dict[str, torch.Tensor]:
    """How far each weight moved from `model`'s."""
    start = dict(model.named_parameters())
    return {name: w - start[name].detach() for name, w in _weights(engine).items()}


def _assert_same_updates(got: dict[str, torch.Tensor], want: dict[str, torch.Tensor]) -> None:
    """Equal weight updates up to fp32 rounding of their sums: 1e-4 of each tensor's largest move, plus
    1e-6 of the largest move of all (a tensor whose gradient nearly cancels moves little, but its sum
    rounds at the scale of its parts)."""
    assert got.keys() == want.keys() and any(d.abs().max() > 1e-6 for d in want.values())
    overall = max(float(d.abs().max()) for d in want.values())
    for name, expected in want.items():
        scale = float(expected.abs().max())
        torch.testing.assert_close(got[name], expected, rtol=0, atol=1e-4 * scale + 1e-6 * overall, msg=name)


def _weights(engine: TrainEngine) -> dict[str, torch.Tensor]:
    from videorft.engine.trainers.digest import _gathered

    named = list(engine.policy.model.named_parameters())
    with _gathered(engine, [p for _, p in named]):
        return {name: p.detach().clone() for name, p in named}


def _chunks(seq, micro_rows: int, policy=None):
    """The step's chunks, per row, or sharing each group's prompt when `policy` is given."""
    rope = policy.family.rope_index(policy.model) if policy is not None else None
    return prepare_chunks(seq, micro_batches(seq.rows, micro_rows, whole=3 if policy is not None else 1), 3, rope)


def _rollout_batch(world, tokenizer, family="qwen2_5_vl", drop_last_prompt=False, *extra):
    """A model, a prompt batch of the world and G real rollouts of it."""
    cfg = _cfg(world, *extra)
    model = build_tiny_model(TinyModelConfig(family=family, **TINY), tokenizer, seed=1)
    apply_attention(model, VARLEN_ATTENTION)          # as the trainer does for prefix sharing
    batch = next(build_prompt_loader(cfg, resolve_backends(cfg), tokenizer, model.config, SINGLE))
    if drop_last_prompt:                            # what the data stream hands on when a clip is unreadable
        from videorft.loaders.collate import collate_prompts, SpecialIds
        batch = collate_prompts(batch.samples[:-1], SpecialIds.from_tokenizer(tokenizer))
    torch.manual_seed(0)
    rollouts = HFRollout(model, tokenizer, cfg.rollout).generate(batch)
    return cfg, model, batch, rollouts


@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_rollout_and_step_run_for_every_family(world, tokenizer, family):
    cfg, model, batch, rollouts = _rollout_batch(world, tokenizer, family)
    assert rollouts.completion_ids.shape[0] == 9 and rollouts.lengths.min() >= 1
    engine = _engine(model, cfg)
    reference = ReferencePolicy(PolicyModel(copy.deepcopy(model), "torch").requires_grad_(False), CPU)
    ctx = StepContext(cfg=cfg, engine=engine, rollout=HFRollout(engine.policy.model, tokenizer, cfg.rollout),
                      scorer=GroupScorer.from_config(cfg.rewards), reference=reference, timer=PhaseTimer(CPU),
                      device=CPU, special_ids=SpecialIds.from_tokenizer(tokenizer))
    metrics = grpo_step(ctx, iter([batch]))
    assert {"loss", "kl", "grad_norm", "reward", "completion_length"} <= set(metrics)
    assert metrics["kl"] == pytest.approx(0.0, abs=1e-6)          # the policy starts as the reference

    # with rewards that differ inside each group the gradient reaches the vision tower
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    visual = [p.detach().clone() for p in engine.policy.model.model.visual.parameters()]
    update(engine, seq, _chunks(seq, 0), torch.tensor([1.0, -1.0, 0.5] * 3), None, None,
           loss_options(cfg), inner_updates=1)
    moved = [not torch.equal(a, b) for a, b in zip(visual, engine.policy.model.model.visual.parameters())]
    assert any(moved), f"{family}: the vision tower got no gradient"


@pytest.mark.parametrize("drop_last_prompt", [False, True])
def test_micro_batches_update_like_the_whole_batch(world, tokenizer, drop_last_prompt):
    """micro_rows 2 over 3 (or 2, a prompt lost) prompts x 3 completions = one step on all rows."""
    cfg, model, batch, rollouts = _rollout_batch(world, tokenizer, drop_last_prompt=drop_last_prompt)
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    advantages = torch.linspace(-1.0, 1.0, seq.rows)
    reference = PolicyModel(copy.deepcopy(model), "torch")
    ref = forward_logprobs(reference, seq, _chunks(seq, 0), 1.0)
    results = []
    for micro_rows in (0, 2):
        engine = _engine(model, cfg)
        metrics = update(engine, seq, _chunks(seq, micro_rows), advantages, None, ref,
                         loss_options(cfg), inner_updates=1)
        results.append((_deltas(engine, model), metrics))
        steps = {int(s["step"]) for s in engine.optimizer.state.values()}
        assert steps == {1}, "one step of rows must be exactly one optimizer step"
    (whole, m_whole), (micro, m_micro) = results
    _assert_same_updates(micro, whole)
    assert m_micro["loss"] == pytest.approx(m_whole["loss"], rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("micro_rows", [0, 4])
def test_a_shared_prefix_update_equals_the_per_row_update(world, tokenizer, micro_rows):
    """Each group's prompt once (micro-batches of whole groups) or G times: the same step."""
    cfg, model, batch, rollouts = _rollout_batch(world, tokenizer)
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    advantages = torch.linspace(-1.0, 1.0, seq.rows)
    reference = PolicyModel(copy.deepcopy(model), "torch")
    per_row_ref = forward_logprobs(reference, seq, _chunks(seq, micro_rows), 1.0)
    shared_ref = forward_logprobs(reference, seq, _chunks(seq, micro_rows, reference), 1.0)
    torch.testing.assert_close(shared_ref, per_row_ref, rtol=1e-5, atol=1e-5)
    deltas = []
    for shared in (False, True):
        engine = _engine(model, cfg)
        chunks = _chunks(seq, micro_rows, engine.policy if shared else None)
        assert not shared or all(len(c.batch.rows) % 3 == 0 for c in chunks)    # whole groups
        update(engine, seq, chunks, advantages, None, per_row_ref, loss_options(cfg), inner_updates=1)
        deltas.append(_deltas(engine, model))
    _assert_same_updates(deltas[1], deltas[0])


def test_inner_updates_step_the_optimizer_against_one_behaviour_policy(world, tokenizer):
    cfg, model, batch, rollouts = _rollout_batch(world, tokenizer)
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    advantages = torch.linspace(-1.0, 1.0, seq.rows)
    chunks = _chunks(seq, 4)
    twice = _engine(model, cfg)
    old = forward_logprobs(twice, seq, chunks, 1.0)
    metrics = update(twice, seq, chunks, advantages, old, None, loss_options(cfg), inner_updates=2)
    assert {int(s["step"]) for s in twice.optimizer.state.values()} == {2}
    assert metrics["ratio_mean"] != pytest.approx(1.0, abs=1e-7)   # the second pass is off-policy
    stepwise = _engine(model, cfg)
    update(stepwise, seq, chunks, advantages, old, None, loss_options(cfg), inner_updates=1)
    update(stepwise, seq, chunks, advantages, old, None, loss_options(cfg), inner_updates=1)
    _assert_same_updates(_deltas(twice, model), _deltas(stepwise, model))


@pytest.mark.parametrize("zero_stage", [0, 2, 3])
def test_a_nan_mid_step_leaves_no_gradient_behind(world, tokenizer, zero_stage):
    """NaN advantages in the second of three micro-batches: the step is dropped on every engine
    kind, and the next step updates exactly like an engine that never saw the bad one."""
    cfg, model, batch, rollouts = _rollout_batch(world, tokenizer)
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    chunks = _chunks(seq, 3)
    good = torch.linspace(-1.0, 1.0, seq.rows)
    bad = good.clone()
    bad[chunks[1].batch.rows] = float("nan")
    hit = _engine(model, cfg, zero_stage)
    with pytest.raises(FloatingPointError, match="non-finite loss"):
        update(hit, seq, chunks, bad, None, None, loss_options(cfg), inner_updates=1)
    update(hit, seq, chunks, good, None, None, loss_options(cfg), inner_updates=1)
    clean = _engine(model, cfg, zero_stage)
    update(clean, seq, chunks, good, None, None, loss_options(cfg), inner_updates=1)
    a, b = _weights(hit), _weights(clean)
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0, msg=name)


def test_reference_is_partitioned_under_zero3(world, tokenizer):
    """The frozen reference of a ZeRO-3 run holds a shard per rank, not a full copy, and gives the
    log-probs of the unsharded model."""
    from videorft.engine.trainers.reference import build_reference

    widths = [f"model.tiny.{k}={v}" for k, v in TINY.items()]
    cfg = _cfg(world, "model.source=tiny", "model.dtype=float32", "distributed.zero_stage=3",
               "distributed.backend=gloo", *widths)
    info = init_distributed(cfg.distributed, CPU)
    reference = build_reference(cfg, info, "sdpa", "torch")
    policy = reference.module.module
    assert all(p.numel() == 0 and p.ds_numel > 0 for p in policy.parameters()), "reference not partitioned"
    model = build_tiny_model(cfg.model.tiny, tokenizer, seed=cfg.run.seed)
    batch = next(build_prompt_loader(cfg, resolve_backends(cfg), tokenizer, model.config, SINGLE))
    torch.manual_seed(0)
    rollouts = HFRollout(model, tokenizer, cfg.rollout).generate(batch)
    seq = build_sequences(batch.model_inputs(), rollouts, CPU)
    chunks = _chunks(seq, 4)
    torch.testing.assert_close(forward_logprobs(reference, seq, chunks, 1.0),
                               forward_logprobs(PolicyModel(model, "torch"), seq, chunks, 1.0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("zero_stage, extra", [
    (0, []), (3, []),
    (0, ["grpo.prefix_sharing=false", "grpo.dynamic_sampling=true", "grpo.dynamic_sampling_draws=2",
         "grpo.prompts_per_step=2"])])
def test_a_frozen_vision_tower_encodes_once_per_draw_and_stays_put(world, tokenizer, zero_stage, extra):
    """grpo.freeze_vision: one tower pass per drawn batch (before its rollout) serves the rollout,
    the reference and the update; the optimizer holds the language model only and the tower's
    weights do not move (test_prefix_sharing checks the language model's gradients)."""
    from videorft.engine.models.frozen_vision import freeze_vision_tower

    cfg = _cfg(world, "grpo.freeze_vision=true", "grpo.beta=0.04", *extra)
    model = build_tiny_model(TinyModelConfig(**TINY), tokenizer, seed=1)
    apply_attention(model, VARLEN_ATTENTION)
    freeze_vision_tower(model)
    engine = _engine(model, cfg, zero_stage)
    reference = ReferencePolicy(PolicyModel(copy.deepcopy(model), "torch").requires_grad_(False), CPU)
    ctx = StepContext(cfg=cfg, engine=engine, rollout=HFRollout(engine.policy.model, tokenizer, cfg.rollout),
                      scorer=GroupScorer.from_config(cfg.rewards), reference=reference, timer=PhaseTimer(CPU),
                      device=CPU, special_ids=SpecialIds.from_tokenizer(tokenizer))
    calls = []
    for tower in (engine.policy.model.model.visual, reference.module.model.model.visual):
        tower.register_forward_hook(lambda *_: calls.append(1))
    before = _weights(engine)
    torch.manual_seed(0)
    metrics = grpo_step(ctx, iter(build_prompt_loader(cfg, resolve_backends(cfg), tokenizer, model.config, SINGLE)))
    assert len(calls) == metrics.get("dynamic/draws", 1.0), "the tower ran more than once per drawn batch"
    assert all(torch.equal(_weights(engine)[n], w) for n, w in before.items() if ".visual." in n)
    if zero_stage == 0:                                # DeepSpeed's groups hold flat partitions instead
        after = dict(engine.policy.model.named_parameters())
        optimized = {id(p) for group in engine.optimizer.param_groups for p in group["params"]}
        assert {n for n, p in after.items() if id(p) in optimized} == {n for n in after if ".visual." not in n}

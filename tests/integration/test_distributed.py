"""Two ranks over gloo with DeepSpeed ZeRO-2 and ZeRO-3, launched by torchrun and by DeepSpeed's launcher.

Each rank writes SHA-256 digests of its own parameters at the end (VIDEORFT_PARAM_DIGEST=1):
data-parallel ranks must end with identical weights, equal to the saved final model. ZeRO-2 and
ZeRO-3 runs of the same SFT job must agree, which shows ZeRO-3 gathers (and trains) lm_head.weight
that the fused loss head shares.
"""

import json
import shutil

import pytest
import torch

pytestmark = pytest.mark.slow

DIST_STEPS = 3


def _run_two_ranks(stage: str, config: dict, work, kit, launcher=None) -> dict:
    return kit.run_stage(stage, config, work, launcher=launcher or kit.TWO_RANKS,
                         env=kit.stage_env(VIDEORFT_PARAM_DIGEST="1"))


def _rank_digests(run_dir) -> list[dict[str, str]]:
    return [json.loads((run_dir / f"param-digest-rank{r}.json").read_text()) for r in (0, 1)]


def _assert_ranks_agree_with_the_saved_model(run_dir, stage: str, steps: int, kit) -> None:
    from transformers import AutoModelForImageTextToText

    from videorft.engine.trainers.digest import tensor_digest

    rank0, rank1 = _rank_digests(run_dir)
    assert "lm_head.weight" in rank0 and len(rank0) > 40
    assert rank0 == rank1, [k for k in rank0 if rank0[k] != rank1.get(k)]
    saved = AutoModelForImageTextToText.from_pretrained(run_dir / "final", dtype=torch.float32)
    assert {n: tensor_digest(p) for n, p in saved.named_parameters()} == rank0
    assert [r["step"] for r in kit.read_rows(run_dir)] == list(range(1, steps + 1))   # logged once
    assert (run_dir / "run.log").read_text().count(f"{stage} run ") == 1


@pytest.fixture(scope="module")
def sft_zero(integration_root, world, base_model, kit):
    """The same 2-rank SFT job under ZeRO-2 and ZeRO-3: {stage: run dir}."""
    runs = {}
    for zero in (2, 3):
        out = integration_root / f"sft-zero{zero}"
        config = kit.sft_config(world, base_model, out, name=f"sft-zero{zero}")
        config["sft"].update(max_steps=DIST_STEPS, save_every=1)
        config["distributed"] = {"zero_stage": zero, "backend": "gloo"}
        assert _run_two_ranks("sft", config, integration_root, kit)["steps"] == DIST_STEPS
        runs[zero] = out
    return runs


@pytest.mark.parametrize("zero", [2, 3])
def test_sft_ranks_end_identical(sft_zero, zero, kit):
    _assert_ranks_agree_with_the_saved_model(sft_zero[zero], "sft", DIST_STEPS, kit)


def test_zero3_trains_the_shared_lm_head_like_zero2(sft_zero, base_model, kit):
    z2, z3 = kit.load_weights(sft_zero[2] / "final"), kit.load_weights(sft_zero[3] / "final")
    base = kit.load_weights(base_model)
    assert z2.keys() == z3.keys()
    assert not torch.equal(z3["lm_head.weight"], base["lm_head.weight"])
    for name in z2:
        torch.testing.assert_close(z3[name], z2[name], rtol=0, atol=1e-5, msg=name)
    loss2 = [r["loss"] for r in kit.read_rows(sft_zero[2])]
    loss3 = [r["loss"] for r in kit.read_rows(sft_zero[3])]
    assert loss3 == pytest.approx(loss2, rel=1e-5)


def _world_losing_a_sample(world, out, rank: int, world_size: int):
    """A copy of the world in which the first sample `rank` draws has an unreadable video."""
    from videorft.engine.trainers.sampler import ResumableSampler
    from videorft.loaders.records import read_records

    copy = out / "world"
    shutil.copytree(world, copy)
    records = read_records(copy / "train.jsonl").records
    first = next(iter(ResumableSampler(len(records), seed=0, rank=rank, world_size=world_size)))
    records[first].media_path(copy).write_bytes(b"not a video")
    return copy


def test_grpo_zero3_ranks_end_identical(integration_root, world, sft_run, kit):
    """Micro-batched ZeRO-3 GRPO where rank 0's first batch loses a sample to an unreadable clip:
    the ranks run different numbers of real micro-batches, stay in step (no collective hangs),
    and end with identical weights."""
    out = integration_root / "grpo-zero3"
    out.mkdir()
    lossy = _world_losing_a_sample(world, out, rank=0, world_size=2)
    config = kit.grpo_config(lossy, sft_run / "final", out, encoder=None, name="grpo-zero3")
    config["grpo"].update(steps=2, save_every=2, micro_rows=2)
    config["distributed"] = {"zero_stage": 3, "backend": "gloo"}
    assert _run_two_ranks("grpo", config, integration_root, kit)["steps"] == 2
    _assert_ranks_agree_with_the_saved_model(out, "grpo", 2, kit)
    assert "skipped sample" in (out / "run.log").read_text()
    before, after = kit.load_weights(sft_run / "final"), kit.load_weights(out / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before), "no weight moved in 2 GRPO steps"


def test_zero3_sft_resumed_from_a_checkpoint_ends_identical(sft_zero, integration_root, world, base_model, kit):
    """What a kill after checkpoint 2 leaves behind (latest -> step 2, later rows logged) resumes exactly.

    Launched as the README documents multi-GPU runs: `deepspeed --num_gpus N --module videorft.engine.cli`."""
    done, out = sft_zero[3], integration_root / "sft-zero3-resumed"
    shutil.copytree(done, out)
    (out / "checkpoints" / "latest").write_text("step-000002\n")
    for later in (out / "checkpoints" / f"step-{DIST_STEPS:06d}", out / "final"):
        shutil.rmtree(later)
    for digest in out.glob("param-digest-rank*.json"):
        digest.unlink()
    config = kit.sft_config(world, base_model, out, name="sft-zero3")
    config["sft"].update(max_steps=DIST_STEPS, save_every=1)
    config["distributed"] = {"zero_stage": 3, "backend": "gloo"}
    _run_two_ranks("sft", config, integration_root, kit, launcher=kit.deepspeed_two_ranks())
    assert "resumed from" in (out / "run.log").read_text()
    assert _rank_digests(out) == _rank_digests(done)
    assert kit.training_rows(out) == kit.training_rows(done)

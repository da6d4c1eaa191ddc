"""The loss menu against the installed Liger-Kernel 0.8.5 (LigerFusedLinearGRPOLoss), option by option.

Only where Liger has the same option and convention:
  loss_type grpo / bnpo / dapo (num_items_in_batch) / dr_grpo (max_completion_length) map to our
  seq-mean-token-mean / token-mean / token-mean (num_tokens) / seq-mean-token-sum-norm
  (max_completion_length); importance_sampling_level and delta are the same options; Liger's cispo
  truncates the IS weight at epsilon_high itself, ours at 1 + clip_high; Liger multiplies each
  token's policy term by `vllm_is_ratio`, which we feed with the TIS / MIS weights written here from
  their definition. The batches have no empty sequence (Liger's grpo divides by B, ours by the
  non-empty sequences) and reference log-probs well inside our +-10 KL clamp (Liger has none).
"""

import pytest
import torch
from liger_kernel.chunked_loss import LigerFusedLinearGRPOLoss

from videorft.kernels import fused_linear_grpo_loss
from videorft.kernels.testing import check_close, loss_menu_batch

LOSS_TYPES = {"grpo": "seq-mean-token-mean", "bnpo": "token-mean", "dapo": "token-mean",
              "dr_grpo": "seq-mean-token-sum-norm", "cispo": "token-mean"}


def sampler_weights(old, rollout, mask, mode, level, threshold=2.0):
    """TIS / MIS weights from their definition: rho = exp(old - rollout) per token, or exp of the
    sequence's masked sum; TIS min(rho, threshold), MIS 1 inside [1/threshold, threshold], else 0."""
    gap = (old - rollout) * mask
    rho = torch.exp(gap) if level == "token" else torch.exp(gap.sum(1, keepdim=True))
    if mode == "tis":
        return rho.clamp(max=threshold)
    return ((rho >= 1 / threshold) & (rho <= threshold)).float()


CASES = {
    "gspo-grpo": dict(loss_type="grpo", level="sequence", old="sequence"),
    "gspo-bnpo-on-policy": dict(loss_type="bnpo", level="sequence", old=None, temperature=0.7),
    "gspo-dapo-global": dict(loss_type="dapo", level="sequence", old="sequence", num_items=71),
    "gspo-dr-grpo": dict(loss_type="dr_grpo", level="sequence", old="sequence", max_len=16, beta=0.0),
    "delta-token": dict(loss_type="grpo", old="token", delta=1.3),
    "delta-sequence": dict(loss_type="bnpo", level="sequence", old="sequence", delta=1.3),
    "cispo": dict(loss_type="cispo", old="token", clip_high=0.28, num_items=60),
    "cispo-on-policy": dict(loss_type="cispo", old=None, clip_high=2.0, beta=0.0, num_items=45),
    "tis-token": dict(loss_type="grpo", old="token", rollout=("tis", "token")),
    "tis-sequence-gspo": dict(loss_type="bnpo", level="sequence", old="sequence", rollout=("tis", "sequence")),
    "mis-token-dapo": dict(loss_type="dapo", old="token", rollout=("mis", "token"), num_items=50),
    "mis-sequence-dr-grpo": dict(loss_type="dr_grpo", old=None, rollout=("mis", "sequence"), max_len=12),
}


def _run_liger(batch, case):
    beta, clip_high = case.get("beta", 0.04), case.get("clip_high", 0.2)
    loss_fn = LigerFusedLinearGRPOLoss(
        beta=beta, compiled=False, use_ref_model=beta != 0, chunk_size=1, epsilon_low=0.2,
        epsilon_high=1 + clip_high if case["loss_type"] == "cispo" else clip_high, loss_type=case["loss_type"],
        max_completion_length=case.get("max_len"), importance_sampling_level=case.get("level", "token"),
        temperature=case.get("temperature", 1.0), delta=case.get("delta"))
    h = batch["hidden"].clone().requires_grad_()
    w = batch["weight"].clone().requires_grad_()
    old, mask = batch["old"][case["old"]], batch["mask"].float()
    is_ratio = None
    if "rollout" in case:
        behaviour = old if old is not None else batch["logp"]
        is_ratio = sampler_weights(behaviour, batch["rollout"][(case["old"], case["rollout"][1])], mask,
                                   *case["rollout"])
    loss, metrics = loss_fn(h, w, batch["targets"], mask, batch["advantages"],
                            ref_per_token_logps=batch["ref"] if beta != 0 else None, old_per_token_logps=old,
                            vllm_is_ratio=is_ratio, num_items_in_batch=case.get("num_items"))
    loss.backward()
    return loss.detach(), h.grad, w.grad, [float(m) for m in metrics]


def _run_ours(batch, case):
    h = batch["hidden"].clone().requires_grad_()
    w = batch["weight"].clone().requires_grad_()
    mode, level = case.get("rollout", (None, "token"))
    loss, metrics = fused_linear_grpo_loss(
        h, w, batch["targets"], batch["mask"], batch["advantages"], batch["old"][case["old"]], batch["ref"],
        beta=case.get("beta", 0.04), clip_high=case.get("clip_high", 0.2), temperature=case.get("temperature", 1.0),
        loss_agg=LOSS_TYPES[case["loss_type"]], importance_sampling_level=case.get("level", "token"),
        rollout_logp=batch["rollout"][(case["old"], level)] if mode else None, rollout_is=mode,
        rollout_is_level=level, num_tokens=case.get("num_items"), max_completion_length=case.get("max_len"),
        delta=case.get("delta"), policy_loss="cispo" if case["loss_type"] == "cispo" else "ppo",
        backend="torch", token_chunk=16, vocab_chunk=32)
    loss.backward()
    return loss.detach(), h.grad, w.grad, metrics


@pytest.fixture(scope="module")
def batch():
    return loss_menu_batch(seed=3, empty_row=False)


@pytest.mark.parametrize("name", list(CASES))
def test_matches_liger(name, batch):
    case = CASES[name]
    ours, liger = _run_ours(batch, case), _run_liger(batch, case)
    for label, o, t in zip(("loss", "d_hidden", "d_weight"), ours, liger):
        check_close(f"{name} {label} vs liger", o, t, None, torch.float32)
    beta = case.get("beta", 0.04)
    if beta != 0:  # Liger's metrics: [kl, clip fraction]
        assert ours[3]["kl"] == pytest.approx(liger[3][0], rel=1e-4, abs=1e-6)
    if case["loss_type"] != "cispo":  # Liger counts CISPO truncation only where A > 0
        assert ours[3]["clip_fraction"] == pytest.approx(liger[3][-1], abs=1e-6)


def test_the_cases_exercise_clipping_and_the_sampler_weights(batch):
    """Clipping binds in the GSPO case, and the sampler weights are not all 1 (so a dropped
    correction would fail the comparison)."""
    assert _run_ours(batch, CASES["gspo-grpo"])[3]["clip_fraction"] > 0.1
    for name in ("tis-token", "mis-sequence-dr-grpo"):
        assert 0 < _run_ours(batch, CASES[name])[3]["rollout_is_cut_fraction"] < 1

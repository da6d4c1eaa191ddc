"""The closed-form per-token GRPO derivative and the aggregation weights, against autograd.

grpo_math.dterm must equal what autograd gives for the reference formula everywhere,
including the non-smooth points: ratio exactly on a clip bound, ratio == 1 (on-policy ties),
zero advantages, and the KL log-ratio exactly on its +-10 clamp.
"""

import pytest
import torch

from videorft.kernels import reference
from videorft.kernels.grpo_math import grpo_loss_coef_stats, grpo_token_terms, stat_names, token_weights
from videorft.kernels.loss_options import LossOptions


def _logp_hitting(old: float, bound: float) -> float:
    """An fp32 logp with exp(logp - old) == fp32(bound) exactly (walks ulps near the solution)."""
    target = torch.tensor(bound, dtype=torch.float32)
    base = torch.tensor(old, dtype=torch.float32)
    logp = base + torch.log(target)
    for _ in range(256):
        r = torch.exp(logp - base)
        if r == target:
            return float(logp)
        logp = torch.nextafter(logp, torch.tensor(float("inf") if r < target else float("-inf")))
    raise AssertionError(f"no fp32 logp puts the ratio exactly on {bound}")


def _cases(clip_low: float, clip_high: float):
    """(logp, old, ref, adv) rows covering the kinks of the objective, fp32 [N]."""
    old = 0.0  # fine fp32 spacing near 0 lets a logp put the ratio exactly on a bound
    logps = [old, _logp_hitting(old, 1 - clip_low), _logp_hitting(old, 1 + clip_high),
             -0.7, -0.1, 0.1, 0.7, -2.0, -3.0]  # -2, -3: ref - logp is exactly +-10 below
    kl_gaps = [10.0, -10.0, 12.0, -12.0, 0.3, 0.0]
    rows = []
    for logp in logps:
        for gap in kl_gaps:
            for adv in (-1.3, 0.0, 0.8):
                rows.append((logp, old, logp + gap, adv))
    return [torch.tensor(col, dtype=torch.float32) for col in zip(*rows)]


@pytest.mark.parametrize("with_old, with_ref, beta", [(True, True, 0.04), (True, False, 0.0),
                                                       (False, True, 0.5), (True, True, 0.0)])
def test_closed_form_derivative_equals_autograd(with_old, with_ref, beta):
    clip_low, clip_high = 0.2, 0.28
    logp, old, ref, adv = _cases(clip_low, clip_high)
    old, ref = (old if with_old else None), (ref if with_ref else None)
    active = torch.ones_like(logp, dtype=torch.bool)
    ours = grpo_token_terms(logp, active, adv, old, ref, beta, clip_low, clip_high)
    x = logp.clone().requires_grad_()
    term, ratio, kl = reference.grpo_token_term(x, active, adv, old, ref, beta, clip_low, clip_high)
    term.sum().backward()
    torch.testing.assert_close(ours.term, term.detach(), rtol=0, atol=0)
    torch.testing.assert_close(ours.dterm, x.grad, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours.kl, kl.detach(), rtol=0, atol=0)
    torch.testing.assert_close(ours.ratio, ratio.detach(), rtol=0, atol=0)


def test_the_boundary_cases_are_really_on_the_bounds():
    logp, old, _, _ = _cases(0.2, 0.28)
    ratio = torch.exp(logp - old)
    assert bool((ratio == torch.tensor(0.8)).any()) and bool((ratio == torch.tensor(1.28)).any())


@pytest.mark.parametrize("agg", reference.LOSS_AGGREGATIONS)
@pytest.mark.parametrize("mask_kind", ["bool", "float", "empty_row", "all_empty"])
def test_token_weights_reproduce_the_reference_aggregation(agg, mask_kind):
    gen = torch.Generator().manual_seed(3)
    term = torch.randn(4, 9, generator=gen, dtype=torch.float64)
    mask = (torch.rand(4, 9, generator=gen) > 0.4).to(torch.float64)
    if mask_kind == "float":
        mask = mask * torch.rand(4, 9, generator=gen, dtype=torch.float64)
    if mask_kind == "empty_row":
        mask[2] = 0
    if mask_kind == "all_empty":
        mask.zero_()
    weights = token_weights(mask, agg).double()
    expected = reference._aggregate(term, mask, agg)
    assert float((weights * term).sum()) == pytest.approx(float(expected), rel=1e-6, abs=1e-12)
    assert bool((weights[mask == 0] == 0).all())


def test_unknown_aggregation_is_rejected():
    with pytest.raises(ValueError, match="loss_agg must be one of"):
        token_weights(torch.ones(2, 3), "mean")


# ---------------------------------------------------------------- the [B, T] loss with every option

POLICIES = {"ppo": {}, "ppo-delta": dict(delta=1.5), "cispo": dict(policy_loss="cispo")}
ROLLOUTS = {"none": {}, "tis-token": dict(rollout_is="tis"),
            "mis-sequence": dict(rollout_is="mis", rollout_is_level="sequence", rollout_is_threshold=3.0)}
AGGREGATIONS = {"seq-mean": {}, "token-mean-global": dict(loss_agg="token-mean", num_tokens=17.0),
                "dr-grpo": dict(loss_agg="seq-mean-token-sum-norm", max_completion_length=7)}


def _kinked_batch():
    """[8, 5] log-probs where rows 0-2 hold one token whose ratio sits exactly on 1 - clip_low,
    1 + clip_high and delta (so the sequence ratio does too), row 3 is empty, rows 4-7 are ragged;
    sampler ratios include the MIS band edges 1/3 and 3 and sampler garbage in the padding."""
    gen = torch.Generator().manual_seed(5)
    logp = -torch.rand(8, 5, generator=gen) * 3 - 0.5
    old = logp - 0.4 * torch.randn(8, 5, generator=gen)
    mask = torch.rand(8, 5, generator=gen) > 0.3
    mask[:4] = False
    mask[4:, 0] = True
    for row, bound in enumerate((0.8, 1.28, 1.5)):
        mask[row, 2] = True
        old[row, 2] = 0.0
        logp[row, 2] = _logp_hitting(0.0, bound)
    adv = torch.tensor([-1.3, 0.8, -0.6, 0.5, 0.0, 1.2, -0.9, 0.7])
    ref = logp + torch.randn(8, 5, generator=gen)
    gaps = torch.log(torch.tensor([1 / 3, 0.6, 1.0, 2.0, 3.0, 4.5]))
    rollout = old - gaps[torch.arange(40) % 6].view(8, 5)
    rollout[~mask] = float("nan")
    return logp, mask, adv, old, ref, rollout


@pytest.mark.parametrize("agg", list(AGGREGATIONS))
@pytest.mark.parametrize("rollout", list(ROLLOUTS))
@pytest.mark.parametrize("policy", list(POLICIES))
@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("with_old", [True, False])
def test_loss_coefficients_equal_autograd_for_every_option(level, policy, rollout, agg, with_old):
    """coef = d loss / d logp in closed form (through GSPO's sequence mean included) equals
    autograd of the reference objective, at the clip / delta kinks too; loss and metrics agree."""
    logp, mask, adv, old, ref, rollout_logp = _kinked_batch()
    options = dict(importance_sampling_level=level, clip_low=0.2, clip_high=0.28, beta=0.05,
                   **POLICIES[policy], **ROLLOUTS[rollout], **AGGREGATIONS[agg])
    old = old if with_old else None
    rollout_logp = rollout_logp if "rollout_is" in options else None
    num_tokens = options.pop("num_tokens", None)
    entropy = torch.rand(8, 5)
    opts = LossOptions(**options)
    opts.check(has_rollout_logp=rollout_logp is not None, has_num_tokens=num_tokens is not None)
    count = None if num_tokens is None else torch.tensor(num_tokens)
    loss, coef, stats = grpo_loss_coef_stats(logp, entropy, mask, adv, old, ref, rollout_logp, count, opts)
    x = logp.clone().requires_grad_()
    ref_loss, metrics = reference.grpo_objective(x, entropy, mask, adv, old, ref, rollout_logp=rollout_logp,
                                                 num_tokens=num_tokens, **options)
    ref_loss.backward()
    torch.testing.assert_close(loss, ref_loss.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(coef, x.grad, rtol=1e-5, atol=1e-7)
    assert bool((coef[~mask] == 0).all())
    values = dict(zip(stat_names(opts.rollout_is), stats.tolist()))
    assert values.keys() == metrics.keys() - {"loss"}
    for key, value in values.items():
        assert value == pytest.approx(metrics[key], rel=1e-6, abs=1e-7), key


def test_sequence_level_gradient_flows_through_the_mean():
    """GSPO: one token's log-prob moves every token's ratio of its sequence, so its coefficient is
    the sequence's summed weight times d pg / d x over the sequence length, not its own weight."""
    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]])
    old = logp - torch.tensor([[0.1, -0.05, 0.02, 0.0]])
    mask = torch.tensor([[True, True, True, False]])
    adv = torch.tensor([1.0])
    opts = LossOptions(loss_agg="token-mean", importance_sampling_level="sequence", beta=0.0)
    _, coef, _ = grpo_loss_coef_stats(logp, torch.zeros_like(logp), mask, adv, old, None, None, None, opts)
    ratio = torch.exp(torch.tensor((0.1 - 0.05 + 0.02) / 3))
    expected = -ratio * 1.0 / 3  # sum of weights (1) * d(-r A)/dx (-r) * 1/len (1/3), per token
    torch.testing.assert_close(coef, torch.tensor([[expected, expected, expected, 0.0]]))

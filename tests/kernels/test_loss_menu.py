"""The loss menu of fused_linear_grpo_loss: every option against the independent reference.

Options: GSPO's sequence-level ratio, CISPO, the delta cap, sampler TIS/MIS at token and sequence
level, the global token-mean divisor and Dr. GRPO's fixed divisor. A focused matrix of
combinations runs on the torch backend (loss, both gradients, metrics against the fp64
reference with the fp32 reference as the error baseline); the triton kernels, under the
interpreter on CPU, run a covering subset.
"""

import pytest
import torch

from videorft.kernels import ROLLOUT_STAT_NAMES, STAT_NAMES, fused_linear_grpo_loss, reference
from videorft.kernels.testing import check_close, loss_menu_batch

B, T = 5, 11


def loss_and_grads(backend, batch, case, dtype=torch.float32, **extra):
    """(loss, d_hidden, d_weight, metrics) of one case on one backend ("naive": the reference)."""
    h = batch["hidden"].to(dtype).detach().clone().requires_grad_()
    w = batch["weight"].to(dtype).detach().clone().requires_grad_()
    options = dict(case)
    old_kind = options.pop("old", None)
    with_ref = options.pop("ref", True)
    if options.get("rollout_is"):
        options["rollout_logp"] = batch["rollout"][(old_kind, options.get("rollout_is_level", "token"))]
    kwargs = dict(old_logp=batch["old"][old_kind], ref_logp=batch["ref"] if with_ref else None, **options)
    if backend == "naive":
        fn = reference.fused_linear_grpo_loss
    else:
        fn, kwargs["backend"] = fused_linear_grpo_loss, backend
    loss, metrics = fn(h, w, batch["targets"], batch["mask"], batch["advantages"], **kwargs, **extra)
    loss.backward()
    return loss.detach(), h.grad, w.grad, metrics


def assert_matches_reference(backend, case, batch, **chunks):
    ours = loss_and_grads(backend, batch, case, **chunks)
    truth = loss_and_grads("naive", batch, case, torch.float64)
    base = loss_and_grads("naive", batch, case)
    for name, o, t, b in zip(("loss", "d_hidden", "d_weight"), ours, truth, base):
        check_close(f"{backend} {name}", o, t, b, torch.float32)
    expected_keys = {"loss", *STAT_NAMES} | (set(ROLLOUT_STAT_NAMES) if case.get("rollout_is") else set())
    assert ours[3].keys() == truth[3].keys() == expected_keys
    for key, value in truth[3].items():
        assert ours[3][key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    return ours


CASES = {
    "gspo": dict(importance_sampling_level="sequence", old="sequence"),
    "gspo-on-policy-token-mean": dict(importance_sampling_level="sequence", loss_agg="token-mean", beta=0.1),
    "gspo-dr-grpo": dict(importance_sampling_level="sequence", old="sequence", ref=False,
                         loss_agg="seq-mean-token-sum-norm", max_completion_length=16),
    "gspo-delta-global-tokens": dict(importance_sampling_level="sequence", old="sequence", delta=1.3,
                                     loss_agg="token-mean", num_tokens=57.0),
    "delta": dict(old="token", delta=1.3, clip_high=0.28),
    "cispo": dict(policy_loss="cispo", old="token", loss_agg="token-mean"),
    "cispo-sequence": dict(policy_loss="cispo", importance_sampling_level="sequence", old="sequence"),
    "cispo-on-policy-dr-grpo": dict(policy_loss="cispo", loss_agg="seq-mean-token-sum-norm"),
    "tis": dict(rollout_is="tis", old="token"),
    "tis-sequence-on-policy": dict(rollout_is="tis", rollout_is_level="sequence", loss_agg="token-mean"),
    "mis-global-tokens": dict(rollout_is="mis", old="token", loss_agg="token-mean", num_tokens=40),
    "mis-sequence-gspo": dict(rollout_is="mis", rollout_is_level="sequence", old="sequence",
                              importance_sampling_level="sequence", loss_agg="seq-mean-token-sum-norm",
                              max_completion_length=12, rollout_is_threshold=2.5),
    "cispo-tis-sequence": dict(policy_loss="cispo", rollout_is="tis", rollout_is_level="sequence", old="token",
                               loss_agg="token-mean", num_tokens=torch.tensor(61.0), clip_high=2.0),
    "gspo-delta-mis-hot": dict(importance_sampling_level="sequence", old="sequence", delta=1.4,
                               rollout_is="mis", temperature=0.7),
}


@pytest.fixture(scope="module")
def batch():
    return loss_menu_batch()


@pytest.mark.parametrize("name", list(CASES))
def test_torch_backend_matches_reference(name, batch):
    ours = assert_matches_reference("torch", CASES[name], batch, token_chunk=16, vocab_chunk=32)
    assert bool((ours[1][2] == 0).all()), "a fully masked sequence must get zero gradient"


@pytest.mark.parametrize("name", ["gspo", "cispo-sequence", "tis-sequence-on-policy", "mis-sequence-gspo",
                                  "gspo-delta-global-tokens"])
def test_triton_kernels_match_reference(name, batch):
    assert_matches_reference("triton", CASES[name], batch, token_chunk=16, vocab_chunk=64)


@pytest.mark.parametrize("name", ["gspo-delta-mis-hot", "cispo-tis-sequence"])
def test_reference_backend_routes_every_option(name, batch):
    """backend="reference" of the public entry point is the oracle itself, options included."""
    ours = loss_and_grads("reference", batch, CASES[name])
    truth = loss_and_grads("naive", batch, CASES[name])
    for o, t in zip(ours[:3], truth[:3]):
        assert torch.equal(o, t)
    assert ours[3] == truth[3]


def test_the_matrix_exercises_every_branch(batch):
    """Clipping, the delta cap, truncation and masking are all active in the shared inputs."""
    delta = loss_and_grads("torch", batch, CASES["delta"])
    no_delta = loss_and_grads("torch", batch, {k: v for k, v in CASES["delta"].items() if k != "delta"})
    assert not torch.allclose(delta[1], no_delta[1]), "delta must bind on some token"
    gspo = loss_and_grads("torch", batch, CASES["gspo"])[3]
    assert 0.1 < gspo["clip_fraction"] < 0.9
    gspo_delta = loss_and_grads("torch", batch, dict(CASES["gspo"], delta=1.3))
    assert not torch.allclose(gspo_delta[1], loss_and_grads("torch", batch, CASES["gspo"])[1])
    tis = loss_and_grads("torch", batch, CASES["tis"])[3]
    mis = loss_and_grads("torch", batch, CASES["mis-sequence-gspo"])[3]
    assert 0.05 < tis["rollout_is_cut_fraction"] < 0.95 and tis["rollout_is_max"] == pytest.approx(2.0)
    assert 0.05 < mis["rollout_is_cut_fraction"] < 0.95 and mis["rollout_is_max"] == 1.0
    assert tis["rollout_kl"] > 0.05


def test_sequence_ratio_is_one_value_per_sequence(batch):
    """GSPO's ratio is exp(masked mean log-ratio): on-policy it is exactly 1, and its loss is then
    the same as the token-level one while the gradients spread over the sequence differently."""
    token = loss_and_grads("torch", batch, dict(old=None))
    sequence = loss_and_grads("torch", batch, dict(old=None, importance_sampling_level="sequence"))
    assert sequence[3]["ratio_mean"] == 1.0 and float(sequence[0]) == pytest.approx(float(token[0]), rel=1e-6)
    check_close("on-policy d_hidden", sequence[1], token[1], None, torch.float32)


def test_mis_cuts_more_than_tis(batch):
    """Both modes see the same sampler ratios: TIS truncates those above the threshold, MIS also
    drops those below 1 / threshold, so it cuts more; the sampler KL does not depend on the mode."""
    tis = loss_and_grads("torch", batch, dict(rollout_is="tis", old="token"))[3]
    mis = loss_and_grads("torch", batch, dict(rollout_is="mis", old="token"))[3]
    assert mis["rollout_is_cut_fraction"] > tis["rollout_is_cut_fraction"] > 0
    assert tis["rollout_kl"] == mis["rollout_kl"]


def test_num_tokens_scales_token_mean_exactly(batch):
    local = loss_and_grads("torch", batch, dict(old="token", loss_agg="token-mean"))
    count = float(batch["mask"].sum())
    doubled = loss_and_grads("torch", batch, dict(old="token", loss_agg="token-mean", num_tokens=2 * count))
    torch.testing.assert_close(doubled[0], local[0] / 2)
    torch.testing.assert_close(doubled[2], local[2] / 2)


def test_max_completion_length_is_the_dr_grpo_divisor(batch):
    padded = loss_and_grads("torch", batch, dict(old="token", loss_agg="seq-mean-token-sum-norm"))
    fixed = loss_and_grads("torch", batch, dict(old="token", loss_agg="seq-mean-token-sum-norm",
                                                max_completion_length=4 * T))
    torch.testing.assert_close(fixed[0], padded[0] / 4)
    torch.testing.assert_close(fixed[1], padded[1] / 4)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_garbage_in_sampler_padding_does_not_leak(backend, batch):
    case = dict(old="sequence", importance_sampling_level="sequence", rollout_is="tis",
                rollout_is_level="sequence", loss_agg="token-mean")
    rollout = batch["rollout"][("sequence", "sequence")]
    dirty = dict(batch, rollout={("sequence", "sequence"): torch.where(batch["mask"], rollout, float("nan"))},
                 old={"sequence": torch.where(batch["mask"], batch["old"]["sequence"], float("-inf"))})
    ours = loss_and_grads(backend, dirty, case)
    truth = loss_and_grads("naive", batch, case, torch.float64)
    for name, o, t in zip(("loss", "d_hidden", "d_weight"), ours, truth):
        assert bool(torch.isfinite(o).all()), name
        check_close(name, o, t, None, torch.float32)
    assert all(v == v for v in ours[3].values()), "metrics must not be NaN"


@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_fully_masked_batch_with_every_option(backend, batch):
    case = dict(old="sequence", importance_sampling_level="sequence", rollout_is="mis", delta=1.3,
                loss_agg="token-mean", num_tokens=10)
    empty = dict(batch, mask=torch.zeros_like(batch["mask"]))
    loss, d_hidden, d_weight, metrics = loss_and_grads(backend, empty, case)
    assert float(loss) == 0.0 and torch.count_nonzero(d_hidden) == 0 and torch.count_nonzero(d_weight) == 0
    assert metrics["tokens"] == 0.0 and metrics["rollout_is_max"] == 0.0


@pytest.mark.parametrize("options, message", [
    (dict(importance_sampling_level="seq"), "importance_sampling_level must be one of"),
    (dict(policy_loss="grpo"), "policy_loss must be one of"),
    (dict(delta=1.1), r"delta must be >= 1 \+ clip_high"),
    (dict(delta=2.0, policy_loss="cispo"), "delta caps the PPO ratio"),
    (dict(rollout_is="tis"), "needs rollout_logp"),
    (dict(rollout_logp=torch.zeros(B, T)), "rollout_is is None"),
    (dict(rollout_is="icepop", rollout_logp=torch.zeros(B, T)), "rollout_is must be one of"),
    (dict(rollout_is="mis", rollout_logp=torch.zeros(B, T), rollout_is_level="group"), "rollout_is_level must be"),
    (dict(rollout_is="tis", rollout_logp=torch.zeros(B, T), rollout_is_threshold=0.5), "rollout_is_threshold"),
    (dict(rollout_is="tis", rollout_logp=torch.zeros(B, T + 1)), r"rollout_logp must be \[B, T\]"),
    (dict(num_tokens=100), "num_tokens divides loss_agg='token-mean' only"),
    (dict(num_tokens=0, loss_agg="token-mean"), "num_tokens must be a positive number"),
    (dict(num_tokens=torch.ones(2), loss_agg="token-mean"), "one-element tensor"),
    (dict(max_completion_length=64), "max_completion_length is the divisor"),
    (dict(max_completion_length=0, loss_agg="seq-mean-token-sum-norm"), "max_completion_length must be a positive"),
])
@pytest.mark.parametrize("backend", ["torch", "reference"])
def test_bad_options_name_the_argument(options, message, backend, batch):
    with pytest.raises(ValueError, match=message):
        fused_linear_grpo_loss(batch["hidden"], batch["weight"], batch["targets"], batch["mask"],
                               batch["advantages"], backend=backend, **options)


# ---------------------------------------------------------------- CUDA, real shapes

@pytest.mark.gpu
@pytest.mark.parametrize("case", [
    dict(importance_sampling_level="sequence", old="sequence", delta=1.3, rollout_is="tis",
         rollout_is_level="sequence", loss_agg="token-mean", num_tokens="global"),
    dict(policy_loss="cispo", old="token", rollout_is="mis", loss_agg="seq-mean-token-sum-norm",
         max_completion_length=640),
])
def test_cuda_triton_real_shapes_bf16_with_options(case):
    from videorft.kernels.testing import (make_head, old_logp_with_ratios, old_logp_with_sequence_ratios,
                                          rollout_logp_with_ratios)

    bsz, seq = 4, 500
    hidden, weight, targets = make_head((bsz, seq), 3584, 151936, torch.bfloat16, device="cuda")
    lengths = torch.tensor([500, 377, 120, 431])
    mask = (torch.arange(seq)[None, :] < lengths[:, None]).cuda()
    with torch.no_grad():
        logp = reference.linear_logprob(hidden.float(), weight.float(), targets)
    old = {"token": old_logp_with_ratios(logp), "sequence": old_logp_with_sequence_ratios(logp, mask)}[case["old"]]
    level = case.get("rollout_is_level", "token")
    batch = dict(hidden=hidden, weight=weight, targets=targets, mask=mask,
                 advantages=torch.tensor([0.9, -1.3, 0.4, -0.7], device="cuda"), old={case["old"]: old},
                 rollout={(case["old"], level): rollout_logp_with_ratios(old, mask, level)},
                 ref=logp + 0.1 * torch.randn_like(logp))
    case = dict(case)
    if case.get("num_tokens") == "global":
        case["num_tokens"] = mask.sum() * 2  # as if another rank held as many tokens
    ours = loss_and_grads("triton", batch, case, torch.bfloat16)
    truth = loss_and_grads("naive", batch, case, torch.float32)
    base = loss_and_grads("naive", batch, case, torch.bfloat16, upcast=False)
    for name, o, t, b in zip(("loss", "d_hidden", "d_weight"), ours, truth, base):
        check_close(f"cuda bf16 {name}", o, t, b, torch.bfloat16)

"""The custom ops: schema/fake/autograd registration (opcheck) and torch.compile without breaks."""

import pytest
import torch

from videorft.kernels import STAT_NAMES, fused_linear_grpo_loss, grpo_loss_with_stats, linear_logprob, ops
from videorft.kernels.testing import make_head

OPCHECK_TESTS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")


def _flat_inputs(n=23, hidden_size=16, vocab=57):
    hidden, weight, targets = make_head((n,), hidden_size, vocab)
    return hidden.requires_grad_(), weight.requires_grad_(), targets


@pytest.mark.parametrize("backend, with_entropy", [("torch", True), ("torch", False), ("triton", True)])
def test_opcheck_linear_logprob(backend, with_entropy):
    hidden, weight, targets = _flat_inputs()
    args = (hidden, weight, targets, 0.8, with_entropy, backend, 8, 16)
    torch.library.opcheck(ops.linear_logprob_op, args, test_utils=OPCHECK_TESTS)


@pytest.mark.parametrize("need", [(True, True), (True, False), (False, True)])
def test_opcheck_backward_op(need):
    hidden, weight, targets = _flat_inputs()
    lse = torch.logsumexp(hidden.detach() @ weight.detach().T, dim=1)
    grad = torch.randn(hidden.shape[0])
    args = (hidden.detach(), weight.detach(), targets, lse, grad, 1.0, *need, "torch", 0, 0)
    torch.library.opcheck(ops.linear_logprob_backward_op, args, test_utils=OPCHECK_TESTS)


GRPO_OP_DEFAULTS = dict(beta=0.04, clip_low=0.2, clip_high=0.28, delta=None, loss_agg="seq-mean-token-mean",
                        importance_sampling_level="token", policy_loss="ppo", rollout_is=None,
                        rollout_is_level="token", rollout_is_threshold=2.0, max_completion_length=None)


@pytest.mark.parametrize("with_old, with_ref, options", [
    (True, True, {}),
    (False, False, {}),
    (True, True, dict(importance_sampling_level="sequence", rollout_is="tis", rollout_is_level="sequence",
                      loss_agg="token-mean", delta=1.5)),
    (False, False, dict(policy_loss="cispo", rollout_is="mis", loss_agg="seq-mean-token-sum-norm",
                        max_completion_length=9)),
])
def test_opcheck_grpo_loss(with_old, with_ref, options):
    hidden, weight, targets = _flat_inputs(n=24)
    mask = (torch.rand(4, 6) > 0.3).float()
    adv = torch.randn(4)
    old = torch.randn(4, 6) - 4 if with_old else None
    ref = torch.randn(4, 6) - 4 if with_ref else None
    opts = GRPO_OP_DEFAULTS | options
    rollout = torch.randn(4, 6) - 4 if opts["rollout_is"] else None
    num_tokens = mask.sum() + 3 if opts["loss_agg"] == "token-mean" else None
    args = (hidden, weight, targets, mask, adv, old, ref, rollout, num_tokens, *opts.values(), 1.0, "torch", 8, 16)
    torch.library.opcheck(ops.grpo_loss_op, args, test_utils=OPCHECK_TESTS)


def _grads_of(fn, *tensors):
    leaves = [t.detach().clone().requires_grad_() for t in tensors]
    out = fn(*leaves)
    out.backward()
    return out.detach(), [leaf.grad for leaf in leaves]


@pytest.mark.parametrize("compile_backend", ["eager", "aot_eager"])
def test_linear_logprob_compiles_fullgraph(compile_backend):
    hidden, weight, targets = make_head((2, 7), 16, 45)

    def loss_fn(h, w):
        logp, entropy = linear_logprob(h, w, targets, 0.9, "torch", return_entropy=True)
        return -(logp * torch.linspace(0.5, 1.5, 7)).mean() + 0.0 * entropy.sum()

    compiled = torch.compile(loss_fn, backend=compile_backend, fullgraph=True)
    eager_out, eager_grads = _grads_of(loss_fn, hidden, weight)
    out, grads = _grads_of(compiled, hidden, weight)
    torch.testing.assert_close(out, eager_out)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)


@pytest.mark.parametrize("options", [
    dict(loss_agg="token-mean"),
    dict(loss_agg="token-mean", importance_sampling_level="sequence", rollout_is="tis", rollout_is_level="sequence",
         delta=1.5, num_tokens="tensor"),
    dict(policy_loss="cispo", rollout_is="mis", loss_agg="seq-mean-token-sum-norm", max_completion_length=11),
])
def test_grpo_loss_with_stats_compiles_fullgraph(options):
    hidden, weight, targets = make_head((3, 8), 16, 45)
    mask = torch.rand(3, 8) > 0.2
    adv, old, ref = torch.randn(3), torch.randn(3, 8) - 4, torch.randn(3, 8) - 4
    options = dict(options)
    if options.get("num_tokens") == "tensor":  # an all-reduced count stays on the device
        options["num_tokens"] = mask.sum() + 5
    if options.get("rollout_is"):
        options["rollout_logp"] = old + 0.3 * torch.randn(3, 8)

    def loss_fn(h, w):
        loss, stats = grpo_loss_with_stats(h, w, targets, mask, adv, old, ref, backend="torch", **options)
        return loss + 0.0 * stats.sum()

    compiled = torch.compile(loss_fn, backend="aot_eager", fullgraph=True)
    eager_out, eager_grads = _grads_of(loss_fn, hidden, weight)
    out, grads = _grads_of(compiled, hidden, weight)
    torch.testing.assert_close(out, eager_out)
    for g, e in zip(grads, eager_grads):
        torch.testing.assert_close(g, e)


def test_metrics_wrapper_breaks_the_graph_only_for_the_host_copy():
    hidden, weight, targets = make_head((2, 5), 16, 45)
    mask, adv = torch.ones(2, 5, dtype=torch.bool), torch.tensor([1.0, -1.0])

    def loss_fn(h, w):
        return fused_linear_grpo_loss(h, w, targets, mask, adv, backend="torch")

    explanation = torch._dynamo.explain(loss_fn)(hidden, weight)
    assert explanation.graph_break_count <= 1
    assert all("tolist" in str(b.reason) for b in explanation.break_reasons)
    loss, metrics = torch.compile(loss_fn, backend="aot_eager")(hidden, weight)
    assert set(metrics) == {"loss", *STAT_NAMES} and all(isinstance(v, float) for v in metrics.values())
    assert metrics["loss"] == pytest.approx(float(loss))

"""DAPO's token-mean across data-parallel ranks: with num_tokens = the all-reduced token count, the
per-rank losses and gradients add up to the one-process loss on the concatenated batch.

Two ranks over gloo on loopback (torch.multiprocessing.spawn, file rendezvous); the ranks hold
sequences of very different lengths, so the local token count would give a different answer.
"""

import torch
import torch.multiprocessing as mp

from videorft.kernels import fused_linear_grpo_loss, reference
from videorft.kernels.testing import (check_close, make_head, old_logp_with_ratios, rollout_logp_with_ratios,
                                      token_mean_rank_worker)

B, T, H, V = 6, 9, 24, 61
OPTIONS = dict(beta=0.04, delta=1.3, rollout_is="tis", clip_high=0.28)


def _batch():
    hidden, weight, targets = make_head((B, T), H, V, seed=11)
    lengths = torch.tensor([9, 8, 9, 2, 3, 1])  # rank 0 holds 26 tokens, rank 1 holds 6
    mask = torch.arange(T)[None, :] < lengths[:, None]
    with torch.no_grad():
        logp = reference.linear_logprob(hidden, weight, targets)
    old = old_logp_with_ratios(logp)
    return dict(hidden=hidden, weight=weight, targets=targets, mask=mask,
                advantages=torch.tensor([0.8, -1.1, 0.3, 1.4, -0.6, 0.9]), old_logp=old,
                ref_logp=logp + 0.3 * torch.randn(B, T, generator=torch.Generator().manual_seed(2)),
                rollout_logp=rollout_logp_with_ratios(old, mask, "token"), rows=[[0, 1, 2], [3, 4, 5]],
                options=OPTIONS)


def test_two_ranks_with_the_global_count_equal_one_process(tmp_path):
    batch = _batch()
    torch.save(batch, tmp_path / "batch.pt")
    mp.spawn(token_mean_rank_worker, nprocs=2, join=True,
             args=(2, f"file://{tmp_path}/rendezvous", str(tmp_path / "batch.pt"), str(tmp_path)))
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]

    hidden = batch["hidden"].clone().requires_grad_()
    weight = batch["weight"].clone().requires_grad_()
    loss, _ = fused_linear_grpo_loss(hidden, weight, batch["targets"], batch["mask"], batch["advantages"],
                                     batch["old_logp"], batch["ref_logp"], rollout_logp=batch["rollout_logp"],
                                     loss_agg="token-mean", backend="torch", **OPTIONS)
    loss.backward()
    loss = loss.detach()

    assert [float(r["num_tokens"]) for r in ranks] == [float(batch["mask"].sum())] * 2
    for r in ranks:
        check_close("loss summed over ranks", r["global"]["loss"], loss, None, torch.float32)
        check_close("d_weight summed over ranks", r["global"]["d_weight"], weight.grad, None, torch.float32)
        check_close("d_hidden of the rank's rows", r["global"]["d_hidden"], hidden.grad[r["rows"]], None,
                    torch.float32)
    local = ranks[0]["local"]  # the local count weighs the short sequences of rank 1 far more
    assert abs(float(local["loss"]) - float(loss)) > 0.05 * abs(float(loss))
    assert not torch.allclose(local["d_weight"], weight.grad, rtol=0.05)

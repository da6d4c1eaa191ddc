"""Fused lm_head + GRPO loss throughput and memory: ours vs naive torch vs Liger.

Providers, side by side in one run, all with the same batch (sequences of 512 tokens, ragged
masks, old and reference log-probs given, beta 0.04, sequence-mean-token-mean aggregation):
  ours   videorft.kernels.fused_linear_grpo_loss, backend "auto" (triton on CUDA, torch on CPU)
  naive  reference.fused_linear_grpo_loss with upcast=False (full logits in the input dtype)
  liger  Liger-Kernel 0.8.5 LigerFusedLinearGRPOLoss(loss_type="grpo"); compiled=True on CUDA
         (its default), compiled=False on CPU (no C compiler dependency in the bench)
Liger computes gradients inside its forward, so its "forward" mode includes that work.
"""

import pytest
import torch
from liger_kernel.chunked_loss import LigerFusedLinearGRPOLoss

from bench.conftest import HAS_CUDA
from bench.guard import fastest_round
from bench.lm_head_cases import MODES, HeadCase, head_cases, measure, skip_if_cpu_only
from videorft.kernels import fused_linear_grpo_loss, reference
from videorft.kernels.testing import make_head

SEQ = 512
BETA, CLIP = 0.04, 0.2
LIGER = LigerFusedLinearGRPOLoss(beta=BETA, compiled=HAS_CUDA, use_ref_model=True, loss_type="grpo",
                                 epsilon_low=CLIP, epsilon_high=CLIP)


def _ours(h, w, t, mask, adv, old, ref):
    return fused_linear_grpo_loss(h, w, t, mask, adv, old, ref, BETA, CLIP, CLIP)[0]


def _naive(h, w, t, mask, adv, old, ref):
    return reference.fused_linear_grpo_loss(h, w, t, mask, adv, old, ref, BETA, CLIP, CLIP, upcast=False)[0]


def _liger(h, w, t, mask, adv, old, ref):
    return LIGER(h, w, t, mask.to(h.dtype), adv, ref_per_token_logps=ref, old_per_token_logps=old)[0]


PROVIDERS = {"ours": _ours, "naive": _naive, "liger": _liger}


def _batch_factory(case: HeadCase, backward: bool):
    bsz = case.n_tokens // SEQ
    hidden, weight, targets = make_head((bsz, SEQ), case.hidden, case.vocab, case.dtype, device=case.device)
    gen = torch.Generator().manual_seed(7)
    lengths = torch.randint(SEQ // 2, SEQ + 1, (bsz,), generator=gen)
    mask = (torch.arange(SEQ)[None, :] < lengths[:, None]).to(case.device)
    adv = torch.randn(bsz, generator=gen).to(case.device)
    old = (-10 * torch.rand(bsz, SEQ, generator=gen)).to(case.device)
    ref = (old + 0.1 * torch.randn(bsz, SEQ, generator=gen).to(case.device))

    def make_args():
        return (hidden.clone().requires_grad_(backward), weight.clone().requires_grad_(backward),
                targets, mask, adv, old, ref)
    return make_args


@pytest.mark.bench
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("case", head_cases())
def test_grpo_loss(benchmark, guard, case, provider, mode):
    skip_if_cpu_only(case)
    fn = PROVIDERS[provider]
    benchmark.group = f"grpo_loss {mode} N={case.n_tokens} H={case.hidden} V={case.vocab}"

    def call(*args):
        if mode == "forward":
            with torch.no_grad():
                return fn(*args)
        fn(*args).backward()

    measure(benchmark, case, provider, mode, _batch_factory(case, mode != "forward"), call)
    guard.measured(f"grpo_loss/{case.name}/{mode}", provider, fastest_round(benchmark))


@pytest.mark.bench
def test_guarded_ratios(guard):
    """Guarded: naive torch's and Liger's time over ours, per case and mode (runs after the providers)."""
    guard.ratios("grpo_loss", [("naive", "ours"), ("liger", "ours")])

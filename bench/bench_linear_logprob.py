"""linear_logprob throughput and memory: ours vs naive torch vs Liger's chunked log-prob.

Providers, side by side in one run:
  ours   videorft.kernels.linear_logprob, backend "auto" (triton on CUDA, torch on CPU)
  naive  full logits in the input dtype, fp32 log_softmax, gather (reference, upcast=False)
  liger  Liger-Kernel 0.8.5's vocab-chunked selective log-prob (the log-prob stage of
         LigerFusedLinearGRPOLoss: LigerFusedLinearPPOBase.chunk_forward)
Modes: "forward" under torch.no_grad (old-policy / reference log-probs) and
"forward+backward" (sum(g * logp) backward into hidden and weight).
"""

import pytest
import torch
from liger_kernel.chunked_loss.fused_linear_ppo import LigerFusedLinearPPOBase

from bench.guard import fastest_round
from bench.lm_head_cases import MODES, HeadCase, head_cases, measure, skip_if_cpu_only
from videorft.kernels import linear_logprob, reference
from videorft.kernels.testing import make_head

PROVIDERS = {
    "ours": lambda h, w, t: linear_logprob(h, w, t),
    "naive": lambda h, w, t: reference.linear_logprob(h, w, t, upcast=False),
    "liger": lambda h, w, t: LigerFusedLinearPPOBase.chunk_forward(h.unsqueeze(0), w, t.unsqueeze(0)).squeeze(0),
}


def _args_factory(case: HeadCase, backward: bool):
    hidden, weight, targets = make_head((case.n_tokens,), case.hidden, case.vocab, case.dtype, device=case.device)
    upstream = torch.randn(case.n_tokens, device=case.device)

    def make_args():
        return (hidden.clone().requires_grad_(backward), weight.clone().requires_grad_(backward),
                targets, upstream)
    return make_args


@pytest.mark.bench
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("provider", list(PROVIDERS))
@pytest.mark.parametrize("case", head_cases())
def test_linear_logprob(benchmark, guard, case, provider, mode):
    skip_if_cpu_only(case)
    fn = PROVIDERS[provider]
    benchmark.group = f"linear_logprob {mode} N={case.n_tokens} H={case.hidden} V={case.vocab}"

    def call(h, w, t, g):
        if mode == "forward":
            with torch.no_grad():
                return fn(h, w, t)
        (fn(h, w, t) * g).sum().backward()

    measure(benchmark, case, provider, mode, _args_factory(case, mode != "forward"), call)
    guard.measured(f"linear_logprob/{case.name}/{mode}", provider, fastest_round(benchmark))


@pytest.mark.bench
def test_guarded_ratios(guard):
    """Guarded: naive torch's and Liger's time over ours, per case and mode (runs after the providers)."""
    guard.ratios("linear_logprob", [("naive", "ours"), ("liger", "ours")])

"""Numerical checks for the fused kernels: input builders and DESIGN.md's tolerance rule.

Used by tests/kernels and handy when validating the kernels on a new machine.

Tolerance rule: a kernel's error against the truth must be at most twice the error of the
naive PyTorch computation at the same dtype plus a small atol. For fp32 kernels the truth is
the reference in fp64 and the baseline the reference in fp32; for bf16 kernels the truth is
the reference in fp32 on the same (bf16-valued) inputs and the baseline the naive bf16 GEMM.
"""

from __future__ import annotations

import torch

ATOL_FRACTION = {torch.float32: 1e-5, torch.bfloat16: 2e-3}
"""atol as a fraction of the largest |truth| of the compared quantity."""


def make_head(lead: tuple, hidden_size: int, vocab: int, dtype=torch.float32, logit_scale: float = 3.0,
              device="cpu", seed: int = 0):
    """hidden [*lead, H], weight [V, H] with logits of std ~logit_scale, targets [*lead]."""
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(*lead, hidden_size, generator=gen)
    weight = torch.randn(vocab, hidden_size, generator=gen) * (logit_scale / hidden_size ** 0.5)
    targets = torch.randint(0, vocab, lead, generator=gen)
    return hidden.to(device, dtype), weight.to(device, dtype), targets.to(device)


def check_close(name: str, out: torch.Tensor, truth: torch.Tensor, baseline: torch.Tensor | None,
                dtype: torch.dtype) -> None:
    """Assert max|out - truth| <= 2 * max|baseline - truth| + atol, with a readable report."""
    assert out.shape == truth.shape, f"{name}: shape {tuple(out.shape)} != {tuple(truth.shape)}"
    truth = truth.detach().double()
    err = (out.detach().double() - truth).abs()
    base = 0.0 if baseline is None else float((baseline.detach().double() - truth).abs().max())
    atol = ATOL_FRACTION[dtype] * max(1.0, float(truth.abs().max()))
    bound = 2 * base + atol
    if not bool(torch.isfinite(err).all()) or float(err.max()) > bound:
        bad = torch.nonzero(~(err <= bound))[:5].tolist()
        raise AssertionError(
            f"{name}: max error {float(err.max()):.3e} > bound {bound:.3e} (2 x torch {base:.3e} + atol "
            f"{atol:.3e}); {int((~(err <= bound)).sum())} of {err.numel()} entries, first at {bad}")


def old_logp_with_ratios(logp: torch.Tensor, ratios=(0.6, 0.95, 1.0, 1.05, 1.5)) -> torch.Tensor:
    """old log-probs giving ratios exp(logp - old) from `ratios`, cycling over tokens.

    The ratios stay far from the clip bounds 1 +- 0.2 (in log space), so a small error in a
    kernel's log-prob cannot flip the clip branch and make gradients disagree discretely.
    """
    r = torch.tensor(ratios, dtype=torch.float32, device=logp.device)
    picks = r[torch.arange(logp.numel(), device=logp.device) % len(ratios)].view(logp.shape)
    return (logp.detach().float() - torch.log(picks)).to(torch.float32)


def _zero_mean_noise(mask: torch.Tensor, scale: float, seed: int) -> torch.Tensor:
    """[B, T] noise whose masked mean is 0 in every row (0 outside the mask)."""
    gen = torch.Generator().manual_seed(seed)
    m = mask.to(torch.float32).cpu()
    noise = scale * torch.randn(m.shape, generator=gen) * m
    lengths = m.sum(1, keepdim=True).clamp(min=1.0)
    return ((noise - noise.sum(1, keepdim=True) / lengths) * m).to(mask.device)


def old_logp_with_sequence_ratios(logp: torch.Tensor, mask: torch.Tensor,
                                  ratios=(0.6, 0.95, 1.05, 1.5), spread: float = 0.3,
                                  seed: int = 0) -> torch.Tensor:
    """old log-probs [B, T] giving sequence b the GSPO ratio ratios[b % len] (masked mean log-ratio).

    The token log-ratios scatter around their sequence's value by `spread` (zero masked mean),
    so token-level and sequence-level ratios differ; the sequence ratios stay far from the clip
    bounds 1 +- 0.2 so that rounding cannot flip a clip branch.
    """
    r = torch.tensor(ratios, dtype=torch.float32)
    per_seq = torch.log(r[torch.arange(logp.shape[0]) % len(ratios)]).to(logp.device).unsqueeze(1)  # [B, 1]
    log_ratio = per_seq + _zero_mean_noise(mask, spread, seed)  # [B, T]
    return (logp.detach().float() - log_ratio).to(torch.float32)


def rollout_logp_with_ratios(old: torch.Tensor, mask: torch.Tensor, level: str,
                             ratios=(0.3, 0.7, 1.0, 1.4, 3.0), seed: int = 0) -> torch.Tensor:
    """Sampler log-probs [B, T] whose correction ratios exp(old - rollout) cycle through `ratios`.

    level "token": per token; "sequence": exp(sum of the sequence's masked log-ratios) per
    sequence (tokens scatter around an even share). The defaults stay far from the default
    threshold 2 and its inverse, and include values outside [0.5, 2] so TIS truncates and MIS masks.
    """
    r = torch.log(torch.tensor(ratios, dtype=torch.float32))
    if level == "token":
        picks = r[torch.arange(old.numel()) % len(ratios)].view(old.shape).to(old.device)
        return (old.detach().float() - picks).to(torch.float32)
    m = mask.to(torch.float32)
    lengths = m.sum(1, keepdim=True).clamp(min=1.0)
    per_seq = r[torch.arange(old.shape[0]) % len(ratios)].to(old.device).unsqueeze(1)  # [B, 1]
    log_ratio = per_seq / lengths * m + _zero_mean_noise(mask, 0.2, seed)  # [B, T], masked sum = per_seq
    return (old.detach().float() - log_ratio).to(torch.float32)

"""Numerical checks for the fused kernels: input builders and the tolerance rule (docs/design.md §5).

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


LOSS_MENU_SEQUENCE_RATIOS = (1.5, 0.6, 0.95, 1.5, 0.6)
"""GSPO ratios per row of `loss_menu_batch`: with its advantages rows 0 and 1 clip, and row 3
(ratio 1.5, A < 0) meets any delta below 1.5."""


def loss_menu_batch(seed: int = 0, empty_row: bool = True, hidden_size: int = 40, vocab: int = 97) -> dict:
    """A [5, 11] GRPO batch that exercises every option of the fused loss.

    Ragged masks (row 2 fully masked when `empty_row`), mixed-sign advantages, reference
    log-probs with noise, old log-probs for each importance-sampling level ("old": {None,
    "token", "sequence"}) and sampler log-probs for each (old kind, correction level)
    ("rollout") whose ratios fall on both sides of the default threshold. "logp" holds the
    naive fp32 log-probs the others were built from.
    """
    from videorft.kernels import reference

    bsz, seq = 5, 11
    hidden, weight, targets = make_head((bsz, seq), hidden_size, vocab, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(bsz, seq, generator=gen) > 0.3
    mask[:, 0] = True
    if empty_row:
        mask[2] = False
    with torch.no_grad():
        logp = reference.linear_logprob(hidden, weight, targets)
    old = {None: None, "token": old_logp_with_ratios(logp),
           "sequence": old_logp_with_sequence_ratios(logp, mask, LOSS_MENU_SEQUENCE_RATIOS, seed=seed)}
    rollout = {(kind, level): rollout_logp_with_ratios(logp if o is None else o, mask, level, seed=seed)
               for kind, o in old.items() for level in ("token", "sequence")}
    return dict(hidden=hidden, weight=weight, targets=targets, mask=mask, logp=logp,
                advantages=torch.tensor([0.9, -1.3, 0.4, -0.7, 1.1]), old=old, rollout=rollout,
                ref=logp + 0.5 * torch.randn(bsz, seq, generator=gen))


def token_mean_rank_worker(rank: int, world_size: int, init_method: str, batch_path: str, out_dir: str) -> None:
    """One data-parallel rank of the global token-mean check (run under torch.multiprocessing.spawn).

    Loads the batch saved at `batch_path` (a dict with "rows": one list of batch rows per rank and
    "options": keyword options of the loss), counts its masked tokens, all-reduces the count over
    the gloo group and computes the fused loss on its rows with that count as num_tokens, and with
    its local count. Writes the loss and d_weight summed over ranks, and its own d_hidden rows, to
    out_dir/rank{rank}.pt.
    """
    import torch.distributed as dist

    from videorft.kernels import fused_linear_grpo_loss

    torch.set_num_threads(1)  # two ranks share the machine's cores
    dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world_size)
    try:
        batch = torch.load(batch_path)
        rows = batch["rows"][rank]
        local = {k: None if batch[k] is None else batch[k][rows]
                 for k in ("targets", "mask", "advantages", "old_logp", "ref_logp", "rollout_logp")}
        count = local["mask"].sum().to(torch.float32)
        dist.all_reduce(count)
        result = {"rows": rows, "num_tokens": count}
        for label, num_tokens in (("global", count), ("local", None)):
            hidden = batch["hidden"][rows].clone().requires_grad_()
            weight = batch["weight"].clone().requires_grad_()
            loss, _ = fused_linear_grpo_loss(hidden, weight, loss_agg="token-mean", num_tokens=num_tokens,
                                             backend="torch", **local, **batch["options"])
            loss.backward()
            summed = torch.stack([loss.detach()])
            dist.all_reduce(summed)
            dist.all_reduce(weight.grad)
            result[label] = {"loss": summed[0], "d_weight": weight.grad, "d_hidden": hidden.grad}
        torch.save(result, f"{out_dir}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()

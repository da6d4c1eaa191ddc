"""Fused lm_head + token log-prob + GRPO loss kernels, with PyTorch references and fallbacks."""

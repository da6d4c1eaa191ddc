"""Reinforcement-learning pieces shared by the GRPO trainer: advantages and group statistics."""

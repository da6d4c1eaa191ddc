"""Evaluation: answer benchmark records with a checkpoint and score them with the rewards module."""

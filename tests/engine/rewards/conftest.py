"""Encoders for the reward tests: an untrained tiny SigLIP, and one trained on procedural shapes."""

import contextlib
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from videorft.engine.config import EncoderTrainConfig
from videorft.engine.encoder.shapes import shape_pairs
from videorft.engine.encoder.tiny_siglip import write_untrained_encoder

TRAINED_STEPS = 300


@contextlib.contextmanager
def single_thread():
    """Train with one intra-op thread: the CPU test machines are small and shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@dataclass
class TrainedEncoder:
    path: str
    result: dict
    held_out: tuple[np.ndarray, list[str]]


@pytest.fixture(scope="session")
def untrained_encoder(tmp_path_factory) -> str:
    """Directory of a randomly initialised tiny SigLIP (SigLIP checkpoint layout)."""
    return str(write_untrained_encoder(tmp_path_factory.mktemp("untrained_siglip"), seed=0))


@pytest.fixture(scope="session")
def trained_encoder(tmp_path_factory) -> TrainedEncoder:
    """A tiny SigLIP trained by the train-encoder code path on 1,500 shape frames (64 px)."""
    from videorft.engine.encoder.stage import train_and_save

    out = tmp_path_factory.mktemp("trained_siglip")
    cfg = EncoderTrainConfig(steps=TRAINED_STEPS)
    with single_thread():
        result = train_and_save(cfg, shape_pairs(1500, size=64, seed=0), str(out), torch.device("cpu"))
    return TrainedEncoder(path=str(out), result=result, held_out=shape_pairs(300, size=64, seed=1))

"""Shared fixtures of the loader tests: a small synthetic world written once per session."""

import pytest

from videorft.engine.config import SynthConfig


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A medium-level world (all five problem types): 12 train and 4 test clips of 112x112, 2 s."""
    from videorft.loaders.synth.world import generate_world

    root = tmp_path_factory.mktemp("small_world")
    generate_world(SynthConfig(output_dir=str(root), num_train=12, num_test=4, seed=1, width=112, height=112,
                               fps=8, duration_s=3.0, difficulty="medium", max_objects=3, cot_style="brief"))
    return root

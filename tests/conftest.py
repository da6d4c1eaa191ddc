"""Test harness: offline, CPU-first, deterministic.

TRITON_INTERPRET must be set before any Triton kernel module is imported (it is read when
`@triton.jit` decorates), so it is set here, at collection start, when no CUDA device exists.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip cleanly on machines without CUDA."""
    if HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def bpe_tokenizer():
    """The small offline BPE tokenizer with Qwen2.5-VL special tokens and chat template."""
    from videorft.engine.models.tokenizer import build_tokenizer

    return build_tokenizer("bpe")


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A medium-level world (all five problem types): 12 train and 4 test clips of 112x112, 3 s."""
    from videorft.loaders.config import SynthConfig
    from videorft.loaders.synth.world import generate_world

    root = tmp_path_factory.mktemp("small_world")
    generate_world(SynthConfig(output_dir=str(root), num_train=12, num_test=4, seed=1, width=112, height=112,
                               fps=8, duration_s=3.0, difficulty="medium", max_objects=3, cot_style="brief"))
    return root

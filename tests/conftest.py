"""Test harness: offline, CPU-first, deterministic.

TRITON_INTERPRET must be set before any Triton kernel module is imported (it is read when
`@triton.jit` decorates), so it is set here, at collection start, when no CUDA device exists.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two workers on a two-core machine: one compute thread each, or their
    # thread pools oversubscribe the cores and spin against each other
    os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

HAS_CUDA = torch.cuda.is_available()
if not HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")


SHARED_FIXTURE_DIRS = ("integration", "curate", "eval", "rewards")
"""Test folders whose files share session fixtures (trained runs, servers, encoders)."""

OWN_UNIT_FILES = ("integration/test_distributed.py",)
"""Files of those folders long enough to go to a worker of their own: building the shared
fixtures they need a second time costs less than the other worker's idle wait."""


def _start_order(item) -> int:
    """The longest work first: the integration folder (half the suite's time), then the other
    shared-fixture folders and slow files, then the rest."""
    folder = item.path.parent.name
    if folder == "integration":
        return 0
    return 1 if folder in SHARED_FIXTURE_DIRS or "slow" in item.keywords else 2


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` skip cleanly on machines without CUDA; the longest work runs first."""
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords and not HAS_CUDA:
            item.add_marker(skip)
    items.sort(key=_start_order)


@pytest.hookimpl(optionalhook=True)       # a plain `pytest` (no -n) runs without xdist's hooks
def pytest_xdist_make_scheduler(config, log):
    """`make test` runs two pytest-xdist workers. Each test file, or each folder whose files share
    session fixtures (less OWN_UNIT_FILES), goes whole to one worker, so those fixtures are built
    once per unit, not once per test; units are handed out in collection order, so the longest
    start first and neither worker is left with a long tail."""
    from xdist.scheduler import LoadScopeScheduling

    class SharedFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            folder, _, _ = path.rpartition("/")
            if folder.rpartition("/")[2] in SHARED_FIXTURE_DIRS and not path.endswith(OWN_UNIT_FILES):
                return folder
            return path

    config.option.loadscopereorder = False
    return SharedFixtureScheduling(config, log)


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

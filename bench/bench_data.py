"""Data throughput on the CPU: writing the tiny synthetic world, and the DataLoader feeding it.

    pytest bench/bench_data.py --benchmark-json=bench/results/<hardware>/data-<yyyymmdd>.json

synth: the tiny recipe's world (200 train records, 112x112, 3 s at 8 fps, easy level) written
by one process and by two. loader: decode + preprocess + tokenize + collate of 48 records of
that world, in the main process and with two workers, for prompt batches and SFT batches.
"""

import dataclasses
import itertools
from pathlib import Path

import pytest

from bench.conftest import stamp
from videorft.engine.config import DataConfig, VideoConfig, load_config
from videorft.engine.models.tokenizer import build_tokenizer
from videorft.loaders.dataloader import build_loader
from videorft.loaders.dataset import VideoQADataset
from videorft.loaders.records import read_records
from videorft.loaders.synth.world import generate_world

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "tiny" / "synth.yaml"
VIDEO = VideoConfig(fps=2.0, min_frames=4, max_frames=8, min_pixels=None, max_pixels=112 * 112)


@pytest.mark.bench
@pytest.mark.parametrize("workers", [1, 2])
def test_write_tiny_world(benchmark, tmp_path, workers):
    cfg = dataclasses.replace(load_config(RECIPE).synth, workers=workers, num_test=0)
    runs = itertools.count()

    def write():
        return generate_world(dataclasses.replace(cfg, output_dir=str(tmp_path / f"w{next(runs)}")))

    summary = benchmark.pedantic(write, rounds=3, warmup_rounds=0)
    assert summary["train"] == cfg.num_train
    stamp(benchmark, f"synth-{workers}proc",
          {"records": cfg.num_train, "width": cfg.width, "height": cfg.height, "seconds": cfg.duration_s,
           "fps": cfg.fps, "difficulty": cfg.difficulty}, records_per_s=cfg.num_train / benchmark.stats.stats.mean)


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    cfg = dataclasses.replace(load_config(RECIPE).synth, output_dir=str(root), num_train=48, num_test=0)
    generate_world(cfg)
    return root


@pytest.mark.bench
@pytest.mark.parametrize("layout", ["prompt", "sft"])
@pytest.mark.parametrize("workers", [0, 2])
def test_loader_epoch(benchmark, tiny_world, layout, workers):
    tok = build_tokenizer("bpe")
    records = read_records(tiny_world / "train.jsonl").records
    ds = VideoQADataset(records, tok, VIDEO, DataConfig(media_root=str(tiny_world)), "sft" if layout == "sft" else "prompt")

    def epoch():
        tokens = 0
        for batch in build_loader(ds, batch_size=8, layout=layout, num_workers=workers, prefetch=2):
            tokens += int(batch.attention_mask.sum())
        return tokens

    tokens = benchmark.pedantic(epoch, rounds=3, warmup_rounds=1)
    mean = benchmark.stats.stats.mean
    stamp(benchmark, f"workers={workers}", {"records": len(ds), "batch_size": 8, "layout": layout,
                                            "max_frames": VIDEO.max_frames, "max_pixels": VIDEO.max_pixels},
          tokens_per_s=tokens / mean, samples_per_s=len(ds) / mean)

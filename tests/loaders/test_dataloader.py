"""The DataLoader with worker processes: every sample once, skips counted in the main process,
seeded shuffling, prefetch settings."""

import shutil

from videorft.engine.config import DataConfig, VideoConfig
from videorft.loaders.dataloader import build_loader
from videorft.loaders.dataset import VideoQADataset
from videorft.loaders.records import read_records

VIDEO = VideoConfig(backend="pyav", fps=2.0, min_frames=4, max_frames=4, min_pixels=None, max_pixels=56 * 56,
                    preprocess="torch")


def _dataset(root, tok, mode="sft"):
    records = read_records(root / "train.jsonl").records
    return VideoQADataset(records, tok, VIDEO, DataConfig(media_root=str(root)), mode)


def test_two_workers_deliver_every_sample_once_and_count_skips(small_world, tmp_path, bpe_tokenizer):
    shutil.copytree(small_world, tmp_path / "w")
    ds = _dataset(tmp_path / "w", bpe_tokenizer)
    (tmp_path / "w" / ds.records[5].path).write_bytes(b"broken")
    stream = build_loader(ds, batch_size=3, layout="sft", shuffle=True, seed=7, num_workers=2, prefetch=3)
    assert stream.loader.num_workers == 2 and stream.loader.prefetch_factor == 3
    first = [s.index for b in stream for s in b.samples]
    assert sorted(first) == [i for i in range(len(ds)) if i != 5] and stream.skipped == 1
    second = [s.index for b in stream for s in b.samples]
    assert sorted(second) == sorted(first) and second != first            # a new order each pass
    assert stream.skipped == 2                                             # counted again on the second pass
    again = build_loader(ds, batch_size=3, layout="sft", shuffle=True, seed=7, num_workers=2)
    assert [s.index for b in again for s in b.samples] == first            # same seed, same order


def test_worker_batches_match_main_process_batches(small_world, bpe_tokenizer):
    ds = _dataset(small_world, bpe_tokenizer, mode="prompt")
    main = list(build_loader(ds, batch_size=4, layout="prompt"))
    workers = list(build_loader(ds, batch_size=4, layout="prompt", num_workers=2))
    assert len(main) == len(workers) == 3
    for a, b in zip(main, workers):
        assert a.input_ids.equal(b.input_ids) and a.attention_mask.equal(b.attention_mask)
        assert all(x.frames.equal(y.frames) for x, y in zip(a.clips, b.clips))
        assert a.vision.keys() == b.vision.keys() and all(a.vision[k].equal(b.vision[k]) for k in a.vision)

"""PyAV decoder: sequential decode or seek-per-GOP, whichever decodes fewer frames.

A sparse sample of a video with short GOPs is cheaper to reach by seeking to the keyframe
before each wanted frame; dense samples or long GOPs are cheaper to decode straight through.
Frames that nothing references and nobody wants (most B-frames) are not decoded at all, and
only the frames that are kept are converted to RGB.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

from videorft.loaders.video_probe import VideoDecodeError, VideoIndex

SEEK_COST_FRAMES = 3
"""A seek (demuxer reposition plus decoder flush) costs about as much as decoding this many frames."""


@dataclass(frozen=True)
class Segment:
    """A run of decoding that starts at keyframe `start` and collects `targets` (ascending)."""

    start: int
    targets: tuple[int, ...]


def plan_segments(index: VideoIndex, wanted: list[int]) -> list[Segment]:
    """Split the sorted, unique `wanted` frames into decode runs.

    Walking the targets in order, the decoder either keeps decoding from where it stands or
    seeks to the target's keyframe; it seeks when that skips more than SEEK_COST_FRAMES frames.
    Each choice only affects the frames between two targets, so the greedy plan is optimal for
    this cost model.
    """
    segments: list[tuple[int, list[int]]] = []
    pos = 0                                     # next frame the decoder would produce
    for i in wanted:
        key = index.keyframe_before(i)
        if segments and key - pos <= SEEK_COST_FRAMES:
            segments[-1][1].append(i)
        elif not segments and key <= SEEK_COST_FRAMES:
            segments.append((0, [i]))
        else:
            segments.append((key, [i]))
        pos = i + 1
    return [Segment(start, tuple(targets)) for start, targets in segments]


def decoded_frame_count(segments: list[Segment]) -> int:
    """Frames the plan decodes (for logging and tests)."""
    return sum(seg.targets[-1] - seg.start + 1 for seg in segments)


class _Retry(Exception):
    """The fast path met something it cannot place (a seek past its target, a frame without a
    known pts); the caller decodes again sequentially without skipping."""


def _decode_segment(container, stream, seg: Segment, seek: bool, index: VideoIndex,
                    position: dict[int, int], out: dict[int, np.ndarray]) -> None:
    """Fast path: from keyframe `seg.start`, decode until every target of `seg` is in `out`.

    Packets whose frame is not a target are decoded with skip_frame=NONREF: a frame that no
    other frame references (most H.264/HEVC B-frames) is then not decoded at all. Frames are
    placed by their pts, so skipped frames cannot shift the count.
    """
    if seek:
        container.seek(index.pts[seg.start], stream=stream, backward=True)
    ctx = stream.codec_context
    target_pts = {index.pts[i] for i in seg.targets}
    pending, k = seg.targets, 0
    for packet in container.demux(stream):
        ctx.skip_frame = "DEFAULT" if packet.pts is None or packet.pts in target_pts else "NONREF"
        for frame in packet.decode():
            i = position.get(frame.pts) if frame.pts is not None else None
            if i is None or i > pending[k]:
                raise _Retry()
            if i == pending[k]:
                out[i] = frame.to_ndarray(format="rgb24")          # [H, W, 3]
                k += 1
                if k == len(pending):
                    return
    raise VideoDecodeError(f"{index.path}: stream ended before frames {list(pending[k:])} were decoded")


def _decode_fast(path: str, index: VideoIndex, wanted: list[int], threads: int) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    position = {p: i for i, p in enumerate(index.pts)}
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        for k, seg in enumerate(plan_segments(index, wanted)):
            _decode_segment(container, stream, seg, seg.start > 0 or k > 0, index, position, out)
    return out


def _decode_sequential(path: str, index: VideoIndex, wanted: list[int], threads: int) -> dict[int, np.ndarray]:
    """Plain pass over every frame, counting frames where a pts is missing."""
    out: dict[int, np.ndarray] = {}
    position = {p: i for i, p in enumerate(index.pts)}
    todo, counter = set(wanted), 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        for frame in container.decode(stream):
            i = position.get(frame.pts, counter) if frame.pts is not None else counter
            counter = i + 1
            if i in todo:
                out[i] = frame.to_ndarray(format="rgb24")          # [H, W, 3]
                todo.discard(i)
                if not todo:
                    return out
    raise VideoDecodeError(f"{path}: stream ended before frames {sorted(todo)} were decoded")


def decode_pyav(path: str, index: VideoIndex, indices: list[int], threads: int = 0) -> np.ndarray:
    """Frames `indices` (presentation order, any order, repeats allowed) -> uint8 [n, H, W, 3] RGB.

    threads: decoder threads (0 lets FFmpeg choose). Seeks only when the plan says it pays, skips
    unreferenced frames that are not wanted, and falls back to one plain sequential pass if that
    fast path cannot place a frame.
    """
    wanted = sorted(set(indices))
    try:
        try:
            out = _decode_fast(path, index, wanted, threads)
        except _Retry:
            out = _decode_sequential(path, index, wanted, threads)
        frames = [out[i] for i in indices]
        if len({f.shape for f in frames}) != 1:
            raise VideoDecodeError(f"{path}: frame size changes within the stream")
        return np.stack(frames)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, EOFError, ValueError) as err:
        raise VideoDecodeError(f"{path}: decoding failed: {err}") from err

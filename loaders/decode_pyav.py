"""PyAV decoder: sequential decode or seek-per-GOP, whichever decodes fewer frames.

A sparse sample of a video with short GOPs is cheaper to reach by seeking to the keyframe
before each wanted frame; dense samples or long GOPs are cheaper to decode straight through.
Only the frames that are kept are converted to RGB.
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


class _Overshoot(Exception):
    """A seek landed after the frame it was meant to reach."""


def _decode_segment(container, stream, seg: Segment, seek: bool, index: VideoIndex,
                    position: dict[int, int], out: dict[int, np.ndarray]) -> None:
    """Decode from keyframe `seg.start` until every target of `seg` is in `out`.

    Frames are placed by their pts; a frame without a known pts counts on from the previous one,
    which is only trusted on a sequential pass (after a seek it raises _Overshoot).
    """
    if seek:
        container.seek(index.pts[seg.start], stream=stream, backward=True)
    pending, k, counter = seg.targets, 0, seg.start
    for frame in container.decode(stream):
        i = position.get(frame.pts) if frame.pts is not None else None
        if i is None:
            if seek:
                raise _Overshoot(pending[k])
            i = counter
        counter = i + 1
        if i == pending[k]:
            out[i] = frame.to_ndarray(format="rgb24")          # [H, W, 3]
            k += 1
            if k == len(pending):
                return
        elif i > pending[k]:
            raise _Overshoot(pending[k])
    raise VideoDecodeError(f"{index.path}: stream ended before frames {list(pending[k:])} were decoded")


def _decode(path: str, index: VideoIndex, wanted: list[int], threads: int, allow_seek: bool) -> dict:
    out: dict[int, np.ndarray] = {}
    position = {p: i for i, p in enumerate(index.pts)}
    segments = plan_segments(index, wanted) if allow_seek else [Segment(0, tuple(wanted))]
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.thread_count = threads
        for k, seg in enumerate(segments):
            _decode_segment(container, stream, seg, seg.start > 0 or k > 0, index, position, out)
    return out


def decode_pyav(path: str, index: VideoIndex, indices: list[int], threads: int = 0) -> np.ndarray:
    """Frames `indices` (presentation order, any order, repeats allowed) -> uint8 [n, H, W, 3] RGB.

    threads: decoder threads (0 lets FFmpeg choose). Seeks only when the plan says it pays, and
    falls back to one sequential pass if a seek lands past its target.
    """
    wanted = sorted(set(indices))
    try:
        try:
            out = _decode(path, index, wanted, threads, allow_seek=True)
        except _Overshoot:
            out = _decode(path, index, wanted, threads, allow_seek=False)
        frames = [out[i] for i in indices]
        if len({f.shape for f in frames}) != 1:
            raise VideoDecodeError(f"{path}: frame size changes within the stream")
        return np.stack(frames)
    except VideoDecodeError:
        raise
    except _Overshoot as err:
        raise VideoDecodeError(f"{path}: decoder skipped past frame {err}") from err
    except (av.FFmpegError, OSError, EOFError, ValueError) as err:
        raise VideoDecodeError(f"{path}: decoding failed: {err}") from err

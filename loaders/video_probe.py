"""One cheap pass over a video's packets (no decoding) that every decoder relies on.

The probe reads the container with PyAV and lists each video frame's presentation timestamp
and whether it starts a GOP. From it come the frame count, the source fps, the timestamps of
sampled frames and the plan of what to decode; it also turns missing, empty, garbage and
truncated files into a `VideoDecodeError` before any decoder library sees them (some of those
libraries retry or crash on such input instead of failing).
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from fractions import Fraction

import av


class VideoDecodeError(RuntimeError):
    """The media at a path cannot be decoded into the requested frames (missing, unreadable,
    truncated, no video stream, or too short for the request). The message names the file."""


@dataclass(frozen=True)
class VideoIndex:
    """Where every frame of a video's first video stream sits, in presentation order."""

    path: str
    """The probed file."""
    codec: str
    """FFmpeg codec name of the stream (h264, hevc, vp9, ...)."""
    width: int
    """Frame width in pixels."""
    height: int
    """Frame height in pixels."""
    fps: float
    """Average frame rate of the stream."""
    time_base: Fraction
    """Seconds per pts tick."""
    pts: tuple[int, ...]
    """Presentation timestamp of every frame, sorted (frame i has pts[i])."""
    keyframes: tuple[int, ...]
    """Frame indices (presentation order) of the frames that start a GOP, sorted."""

    @property
    def total_frames(self) -> int:
        """Frames in the stream."""
        return len(self.pts)

    def timestamps(self, indices: list[int]) -> list[float]:
        """Seconds from the first frame to each frame of `indices`."""
        start = self.pts[0]
        return [float((self.pts[i] - start) * self.time_base) for i in indices]

    def keyframe_before(self, index: int) -> int:
        """Index of the last GOP start at or before frame `index` (0 when none is marked)."""
        k = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[k] if k >= 0 else 0


def check_readable(path: str) -> None:
    """Fail fast, naming the file, when `path` is missing, not a file or empty."""
    if not os.path.exists(path):
        raise VideoDecodeError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise VideoDecodeError(f"{path}: not a regular file")
    if os.path.getsize(path) == 0:
        raise VideoDecodeError(f"{path}: file is empty")


def _stream_fps(stream: av.video.stream.VideoStream, pts: list[int], time_base: Fraction) -> float:
    """Average rate from the container, else the guessed rate, else the mean pts spacing."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return float(rate)
    if len(pts) > 1 and pts[-1] > pts[0]:
        return float((len(pts) - 1) / ((pts[-1] - pts[0]) * time_base))
    return 0.0


def _check_complete(path: str, container, stream, n_packets: int, corrupt: bool, fps: float) -> None:
    """Raise when the packets found fall short of what the headers promise (a cut-off file)."""
    if corrupt:
        raise VideoDecodeError(f"{path}: corrupt or truncated packet data after {n_packets} frames")
    if stream.frames > 0 and n_packets < stream.frames:
        raise VideoDecodeError(f"{path}: truncated: header lists {stream.frames} frames, found {n_packets}")
    # Containers without a frame count (WebM/Matroska) still record the duration; with audio
    # tracks that duration may exceed the video's, so the check runs on video-only files.
    only_video = len(container.streams) == 1
    if stream.frames <= 0 and only_video and container.duration and fps > 0:
        expected = container.duration / av.time_base * fps
        if n_packets < expected - 1.5:
            raise VideoDecodeError(f"{path}: truncated: duration promises ~{expected:.0f} frames, "
                                   f"found {n_packets}")


def probe_video(path: str | os.PathLike) -> VideoIndex:
    """Read the packet list of the first video stream of `path` (no decoding).

    Raises VideoDecodeError for a missing, empty, unreadable or truncated file, or one with no
    video frames.
    """
    path = os.fspath(path)
    check_readable(path)
    try:
        with av.open(path, metadata_errors="ignore") as container:
            if not container.streams.video:
                raise VideoDecodeError(f"{path}: no video stream")
            stream = container.streams.video[0]
            time_base = stream.time_base or Fraction(1, 1)
            frames: list[tuple[int, bool]] = []
            corrupt = False
            for packet in container.demux(stream):
                if packet.size == 0:            # the demuxer's end-of-stream marker
                    continue
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    stamp = frames[-1][0] + 1 if frames else 0
                frames.append((stamp, packet.is_keyframe))
                corrupt = corrupt or packet.is_corrupt
            if not frames:
                raise VideoDecodeError(f"{path}: the video stream holds no frames")
            frames.sort()
            pts = [p for p, _ in frames]
            fps = _stream_fps(stream, pts, time_base)
            _check_complete(path, container, stream, len(frames), corrupt, fps)
            keyframes = tuple(i for i, (_, key) in enumerate(frames) if key) or (0,)
            return VideoIndex(path=path, codec=stream.codec_context.name, width=stream.width,
                              height=stream.height, fps=fps, time_base=Fraction(time_base),
                              pts=tuple(pts), keyframes=keyframes)
    except VideoDecodeError:
        raise
    except (av.FFmpegError, OSError, EOFError, ValueError) as err:
        raise VideoDecodeError(f"{path}: cannot read video: {err}") from err

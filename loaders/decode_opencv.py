"""OpenCV decoder: one sequential pass of grab() over every frame, retrieve() only the kept ones.

grab() demuxes and decodes without converting colour; retrieve() does the BGR conversion, so
frames that are not sampled never cost a colour conversion. It led plain PyAV and decord on
480p H.264 and VP9 (docs/design.md §6); PyAV with its decode plan (decode_pyav.py) now
leads on H.264, so OpenCV is the second CPU choice of "auto".
"""

from __future__ import annotations

import numpy as np

from videorft.loaders.video_probe import VideoDecodeError, VideoIndex


def _grab_sequentially(cap, path: str, wanted: list[int]) -> dict[int, np.ndarray]:
    """grab() every frame up to the last wanted one; retrieve() and convert only the wanted ones."""
    import cv2

    out: dict[int, np.ndarray] = {}
    k = 0
    for i in range(wanted[-1] + 1):
        if not cap.grab():
            raise VideoDecodeError(f"{path}: stream ended at frame {i}, before frames {wanted[k:]} were decoded")
        if i == wanted[k]:
            ok, bgr = cap.retrieve()                             # [H, W, 3] BGR
            if not ok or bgr is None:
                raise VideoDecodeError(f"{path}: OpenCV could not convert frame {i}")
            out[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            k += 1
    return out


def decode_opencv(path: str, index: VideoIndex, indices: list[int], threads: int = 0) -> np.ndarray:
    """Frames `indices` (presentation order, any order, repeats allowed) -> uint8 [n, H, W, 3] RGB.

    threads: FFmpeg decoder threads (0 lets OpenCV choose).
    """
    import cv2

    wanted = sorted(set(indices))
    params = [cv2.CAP_PROP_N_THREADS, threads] if threads > 0 else []
    try:
        cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG, params)
        if not cap.isOpened():
            raise VideoDecodeError(f"{path}: OpenCV cannot open the video")
        try:
            cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 0)      # stored pixels, as PyAV and decord return them
            out = _grab_sequentially(cap, path, wanted)
        finally:
            cap.release()
    except cv2.error as err:
        raise VideoDecodeError(f"{path}: OpenCV failed: {err}") from err
    frames = [out[i] for i in indices]
    if frames[0].shape[:2] != (index.height, index.width):
        raise VideoDecodeError(f"{path}: OpenCV returned {frames[0].shape[:2]} frames, the stream "
                               f"is {index.height}x{index.width}")
    return np.stack(frames)

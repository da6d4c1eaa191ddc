"""decord decoder: its VideoReader.get_batch, the decoder that qwen-vl-utils prefers.

decord keeps its own frame index (built from the packets, like the probe) and seeks or decodes
sequentially on its own; the probe has already rejected files that would make it retry at EOF.
"""

from __future__ import annotations

import numpy as np

from videorft.loaders.video_probe import VideoDecodeError, VideoIndex


def decode_decord(path: str, index: VideoIndex, indices: list[int], threads: int = 0) -> np.ndarray:
    """Frames `indices` (presentation order, any order, repeats allowed) -> uint8 [n, H, W, 3] RGB.

    threads: decoder threads (0 lets decord choose).
    """
    import decord

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads)
        if len(reader) < max(indices) + 1:
            raise VideoDecodeError(f"{path}: decord sees {len(reader)} frames, the probe "
                                   f"{index.total_frames}")
        return reader.get_batch(list(indices)).asnumpy()           # [n, H, W, 3]
    except decord.DECORDError as err:
        raise VideoDecodeError(f"{path}: decord failed: {err}") from err

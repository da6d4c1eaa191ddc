"""NVIDIA DALI decoder: `fn.decoders.video` on the file's bytes with the sampled frame indices.

On a GPU the pipeline runs "mixed": NVDEC decodes (H.264, HEVC, VP8, VP9, AV1, MPEG-4, MJPEG)
and the frames are copied device-to-device into a CUDA torch tensor on the current stream, so
they reach the GPU preprocessing without a trip through host memory. Without a GPU the
pipeline runs on the CPU, where DALI reads VP8, VP9 and MJPEG only.

DALI converts YUV to RGB with bilinear chroma upsampling, while FFmpeg's default (PyAV,
OpenCV, decord) repeats chroma samples, so DALI frames differ from the others at sharp colour
edges (same frames, same luma; tests check both facts).

One pipeline per device is built on first use and reused; a pipeline that reports an error is
dropped and rebuilt on the next call.
"""

from __future__ import annotations

import threading

import numpy as np
import torch

from videorft.loaders.video_probe import VideoDecodeError, VideoIndex

CPU_CODECS = frozenset({"vp8", "vp9", "mjpeg"})
"""Codecs (FFmpeg names) that DALI's CPU video decoder reads."""
GPU_CODECS = CPU_CODECS | {"h264", "hevc", "av1", "mpeg4"}
"""Codecs that DALI's mixed (NVDEC) decoder reads."""

_pipelines: dict[tuple[int | None, int], object] = {}
_lock = threading.Lock()


def dali_supports(codec: str, device: str | torch.device) -> bool:
    """Whether DALI decodes `codec` (an FFmpeg codec name) on `device`."""
    return codec in (GPU_CODECS if torch.device(device).type == "cuda" else CPU_CODECS)


def _build_pipeline(device_id: int | None, threads: int):
    from nvidia.dali import fn, pipeline_def, types

    @pipeline_def(batch_size=1, num_threads=threads, device_id=device_id, exec_dynamic=True,
                  prefetch_queue_depth=1)
    def video_pipeline():
        encoded = fn.external_source(name="encoded", dtype=types.UINT8, ndim=1)
        frames = fn.external_source(name="frames", dtype=types.INT32, ndim=1)
        return fn.decoders.video(encoded, frames=frames, device="cpu" if device_id is None else "mixed")

    pipe = video_pipeline()
    pipe.build()
    return pipe


def _pipeline(device_id: int | None, threads: int):
    key = (device_id, threads)
    if key not in _pipelines:
        _pipelines[key] = _build_pipeline(device_id, threads)
    return _pipelines[key]


def _to_torch(batch, device_id: int | None) -> torch.Tensor:
    """The single sample of a DALI batch -> torch uint8 [n, H, W, 3] (on GPU `device_id` when given).

    The copy out of DALI's buffer is finished before returning: the buffer is DALI's again at
    the next run of the pipeline.
    """
    tensor = batch.as_tensor()                                        # [1, n, H, W, 3]
    if device_id is None:
        return torch.from_numpy(np.array(tensor)[0])
    from nvidia.dali.plugin.pytorch import feed_ndarray

    device = torch.device("cuda", device_id)
    out = torch.empty(tensor.shape(), dtype=torch.uint8, device=device)
    stream = torch.cuda.current_stream(device)
    feed_ndarray(tensor, out, cuda_stream=stream)
    stream.synchronize()
    return out[0]


def decode_dali(path: str, index: VideoIndex, indices: list[int], threads: int = 0,
                device: str | torch.device | None = None) -> torch.Tensor:
    """Frames `indices` (any order, repeats allowed) -> uint8 [n, H, W, 3] RGB torch tensor.

    device: where to decode (default: the current CUDA device when there is one, else the CPU).
    On CUDA the tensor lives on the GPU. Raises VideoDecodeError for a codec DALI cannot read on
    that device, or when the pipeline fails on the file.
    """
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    if not dali_supports(index.codec, dev):
        where = "GPU" if dev.type == "cuda" else "CPU (VP8, VP9 and MJPEG only)"
        raise VideoDecodeError(f"{path}: DALI cannot decode {index.codec} on the {where}")
    device_id = (dev.index if dev.index is not None else torch.cuda.current_device()) if dev.type == "cuda" else None
    threads = threads if threads > 0 else 2
    encoded = np.fromfile(path, dtype=np.uint8)
    with _lock:
        pipe = _pipeline(device_id, threads)
        try:
            pipe.feed_input("encoded", [encoded])
            pipe.feed_input("frames", [np.asarray(indices, dtype=np.int32)])
            (batch,) = pipe.run()
            frames = _to_torch(batch, device_id)
        except RuntimeError as err:
            _pipelines.pop((device_id, threads), None)
            raise VideoDecodeError(f"{path}: DALI failed to decode: {str(err).splitlines()[0]}") from err
    if tuple(frames.shape) != (len(indices), index.height, index.width, 3):
        raise VideoDecodeError(f"{path}: DALI returned {tuple(frames.shape)} for {len(indices)} frames of "
                               f"{index.height}x{index.width}")
    return frames

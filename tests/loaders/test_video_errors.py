"""Bad media raises VideoDecodeError naming the file, for every backend, without hanging or crashing."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from videorft.loaders.video import VideoDecodeError, installed_decoders, load_video
from videorft.loaders.video_writer import encode_video, pattern_frames

CPU_BACKENDS = [b for b in ("pyav", "opencv", "decord") if b in installed_decoders()]


def cut(src, dst, fraction):
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * fraction)])
    return str(dst)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    """name -> path of a file that no backend may turn into frames."""
    root = tmp_path_factory.mktemp("bad")
    frames = pattern_frames(48, 120, 160)
    fast = encode_video(root / "fast.mp4", frames, 24, "h264", gop=12, faststart=True)
    plain = encode_video(root / "plain.mp4", frames, 24, "h264", gop=12)
    webm = encode_video(root / "good.webm", frames, 24, "vp9", gop=12)
    (root / "empty.mp4").write_bytes(b"")
    (root / "noise.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    (root / "text.webm").write_text("this is not a video\n" * 100)
    (root / "folder.mp4").mkdir()
    return {
        "missing": str(root / "missing.mp4"),
        "empty": str(root / "empty.mp4"),
        "noise": str(root / "noise.mp4"),
        "text": str(root / "text.webm"),
        "directory": str(root / "folder.mp4"),
        "mp4 cut mid-stream (index first)": cut(fast, root / "cut_fast.mp4", 0.6),
        "mp4 cut before its index": cut(plain, root / "cut_plain.mp4", 0.6),
        "webm cut mid-stream": cut(webm, root / "cut.webm", 0.6),
        "webm cut near the end": cut(webm, root / "cut_late.webm", 0.93),
    }


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_every_bad_file_raises_a_decode_error_naming_it(bad_files, backend):
    for name, path in bad_files.items():
        with pytest.raises(VideoDecodeError) as info:
            load_video(path, num_frames=4, backend=backend)
        assert os.path.basename(path) in str(info.value), name


def test_messages_say_what_is_wrong(bad_files):
    expect = {"missing": "no such file", "empty": "empty", "directory": "not a regular file",
              "mp4 cut mid-stream (index first)": "truncated", "webm cut mid-stream": "truncated"}
    for name, fragment in expect.items():
        with pytest.raises(VideoDecodeError, match=fragment):
            load_video(bad_files[name], backend="pyav")


def test_bad_files_never_hang_or_crash_a_process(bad_files):
    """The native decoders run in a child process: a crash or a hang fails this test instead of pytest."""
    script = textwrap.dedent("""
        import sys
        from videorft.loaders.video import VideoDecodeError, load_video
        paths, backends = sys.argv[1].split("|"), sys.argv[2].split(",")
        for backend in backends:
            for path in paths:
                try:
                    load_video(path, num_frames=4, backend=backend)
                except VideoDecodeError:
                    continue
                sys.exit(f"{backend} decoded {path}")
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script, "|".join(bad_files.values()), ",".join(CPU_BACKENDS)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]


def test_encoder_rejects_frames_it_cannot_write_before_creating_the_file(tmp_path):
    cases = [(np.zeros((2, 15, 16, 3), np.uint8), "16x15 must be even"),
             (np.zeros((2, 16, 16, 3), np.float32), "uint8"),
             (np.zeros((2, 16, 16), np.uint8), r"\[H, W, 3\]"),
             (np.zeros((0, 16, 16, 3), np.uint8), "no frames")]
    for i, (frames, needle) in enumerate(cases):
        with pytest.raises(ValueError, match=needle):
            encode_video(tmp_path / f"bad{i}.mp4", frames)
        assert not (tmp_path / f"bad{i}.mp4").exists()
    with pytest.raises(ValueError, match="codec must be one of"):
        encode_video(tmp_path / "x.mp4", pattern_frames(2, 16, 16), codec="mpeg2")

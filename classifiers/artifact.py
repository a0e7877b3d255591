"""Save and load a decision model as a directory: `model.skops` (the fitted pipeline) and `metadata.json`.

Layout::

    my-artifact/
        model.skops      the fitted scikit-learn Pipeline, serialised with skops.io (no pickle)
        metadata.json    format/feature/library versions, provenance, metrics, threshold, file hash, trusted types

Load policy (why loading is strict):

* Versions are checked first, before the model file is read. `format_version` (this layout), `feature_version`
  (`features.FEATURE_VERSION`, the meaning of the feature columns) and scikit-learn's major.minor must all
  match this installation. A model with different feature semantics would load fine and score garbage, so a
  mismatch is refused with an `ArtifactError` that says what differs and how to retrain.
* The model file must have the SHA-256 recorded in the metadata.
* skops only instantiates types it trusts. Types outside skops' defaults are trusted only if they are in
  `ALLOWED_TYPES`, the short list of non-default types this package's own recipes produce (its feature
  transformers, HistGradientBoosting's tree predictor), *and* the file's list matches the list recorded at save
  time. There is no `trusted=True` path: an artifact that needs any other type is refused, even if its
  metadata claims to trust it. Saving refuses such a pipeline up front, so a saved artifact always loads.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import shlex
import sys
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .calibration import Threshold

if TYPE_CHECKING:  # the model module compiles the constraint detector; import it only when loading
    from .model import DecisionModel
    from .serving import ServingModel

__all__ = [
    "ArtifactError",
    "FORMAT_VERSION",
    "MODEL_FILE",
    "METADATA_FILE",
    "ALLOWED_TYPES",
    "save_artifact",
    "load_artifact",
    "load_serving_model",
    "write_serving_form",
    "read_metadata",
    "check_compatible",
    "library_versions",
    "sha256_file",
]

FORMAT_VERSION = 1
MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"

ALLOWED_TYPES: frozenset[str] = frozenset({
    "classifiers.features.ConstraintFeatures",
    "classifiers.features.StructureFeatures",
    "classifiers.features.TaxonomyFeatures",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
})
"""Types (beyond skops' defaults) a saved pipeline may contain; anything else is refused on save and load."""


class ArtifactError(Exception):
    """An artifact cannot be saved or loaded: missing/corrupt files, version mismatch, or untrusted content."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _sklearn_version() -> str:
    import sklearn

    return sklearn.__version__


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import skops

    return {
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "sklearn": sklearn.__version__,
        "skops": skops.__version__,
    }


def _compact_for_saving(pipeline: Any) -> None:
    """Make fitted text vectorizers cheap to serialise, without changing what they compute.

    * `vocabulary_` values are numpy integers after fitting; skops writes each as its own object (about 10x the
      size and time of plain ints), so they become plain ints (same indices).
    * `stop_words_` (every term cut from the vocabulary; older scikit-learn) is introspection only and is
      documented as safe to delete."""
    from sklearn.feature_extraction.text import CountVectorizer

    stack = [pipeline]
    while stack:
        obj = stack.pop()
        if isinstance(obj, CountVectorizer):
            if hasattr(obj, "vocabulary_"):
                obj.vocabulary_ = {term: int(i) for term, i in obj.vocabulary_.items()}
            if hasattr(obj, "stop_words_"):
                del obj.stop_words_
        for attr in ("steps", "transformer_list"):
            for item in getattr(obj, attr, None) or ():
                stack.append(item[1])


def save_artifact(
    path: str | os.PathLike[str],
    model: Any,
    *,
    threshold: Threshold | None = None,
    estimator: str | None = None,
    target_model: str = "",
    profile: str = "",
    dataset_name: str = "",
    dataset_hash: str = "",
    outcomes_hash: str = "",
    metrics: Mapping[str, Any] | None = None,
    command: str | None = None,
    extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write `model` (a fitted Pipeline or a DecisionModel) and its metadata into directory `path`.

    `threshold` defaults to the DecisionModel's own; `command` defaults to this process's command line.
    `metadata.json` is written last, so a directory with metadata is complete. Returns the directory."""
    import skops.io as sio

    from .model import DecisionModel
    from .rows import FEATURE_VERSION
    from .serving import SERVING_FILE, export_serving

    if isinstance(model, DecisionModel):
        threshold = threshold if threshold is not None else model.threshold
        pipeline = model.pipeline
        estimator = estimator or model.metadata.get("estimator")
    else:
        pipeline = model
    out = Path(path)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ArtifactError(f"{out} already exists and is not empty (pass overwrite=True to replace it)")
    _compact_for_saving(pipeline)
    data = sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED, compresslevel=6)
    untrusted = sorted(set(sio.get_untrusted_types(data=data)))
    unknown = [t for t in untrusted if t not in ALLOWED_TYPES]
    if unknown:
        raise ArtifactError(
            f"refusing to save: the pipeline contains types that load_artifact would not trust: {', '.join(unknown)}. "
            "Use the recipes in classifiers.estimators or extend ALLOWED_TYPES after reviewing those types."
        )
    decision = DecisionModel(pipeline, threshold, fast=False)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    model_path.write_bytes(data)
    metadata = {
        "format_version": FORMAT_VERSION,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "estimator": estimator,
        "task": decision.task,
        "target": {"model": target_model, "profile": profile},
        "dataset": {"name": dataset_name, "hash": dataset_hash},
        "outcomes_hash": outcomes_hash,
        "feature_version": FEATURE_VERSION,
        "metrics": dict(metrics or {}),
        "threshold": decision.threshold.to_json(),
        "command": command if command is not None else shlex.join([os.path.basename(sys.argv[0])] + sys.argv[1:]),
        "versions": library_versions(),
        "model_file": MODEL_FILE,
        "model_sha256": hashlib.sha256(data).hexdigest(),
        "trusted_types": untrusted,
    }
    if extra:
        metadata["extra"] = dict(extra)
    serving = export_serving(pipeline)
    if serving is not None:
        (out / SERVING_FILE).write_bytes(serving)
        metadata.update(serving_file=SERVING_FILE, serving_sha256=hashlib.sha256(serving).hexdigest())
    _write_metadata(out, metadata)
    return out


def _write_metadata(out: Path, metadata: Mapping[str, Any]) -> None:
    tmp = out / (METADATA_FILE + ".tmp")
    tmp.write_text(json.dumps(_jsonable(metadata), indent=2, sort_keys=True, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(out / METADATA_FILE)


def write_serving_form(path: str | os.PathLike[str], command: str | None = None) -> Path | None:
    """Add (or rewrite) the numpy serving form (`serving.py`) of an existing artifact, without refitting.

    Loads the artifact with every check, exports the same fitted numbers, records the file's SHA-256 and
    `command` in the metadata. Returns the file, or None if the pipeline's shape has no serving form."""
    from .serving import SERVING_FILE, export_serving

    root = Path(path)
    model = load_artifact(root)
    serving = export_serving(model.pipeline)
    if serving is None:
        return None
    (root / SERVING_FILE).write_bytes(serving)
    meta = read_metadata(root)
    meta.update(serving_file=SERVING_FILE, serving_sha256=hashlib.sha256(serving).hexdigest(),
                serving_command=command if command is not None else shlex.join(
                    [os.path.basename(sys.argv[0])] + sys.argv[1:]))
    _write_metadata(root, meta)
    return root / SERVING_FILE


def load_serving_model(path: str | os.PathLike[str]) -> "DecisionModel | ServingModel":
    """What a proxy serves: the numpy serving form when the artifact has one (no scikit-learn, skops or scipy
    imported: a few MB instead of ~370), else the full pipeline through `load_artifact`.

    The serving form is checked like the model file: format and feature versions, and its SHA-256."""
    from .model import default_threshold
    from .serving import ServingFormError, load_serving

    root = Path(path)
    meta = read_metadata(root)
    serving_file = meta.get("serving_file")
    if not serving_file:
        return load_artifact(root)
    check_compatible(meta, str(root), sklearn=False)
    serving_path = root / str(serving_file)
    if not serving_path.is_file():
        raise ArtifactError(f"cannot load {root}: serving file {serving_path.name} is missing")
    if sha256_file(serving_path) != meta.get("serving_sha256"):
        raise ArtifactError(f"cannot load {root}: {serving_path.name} does not match the SHA-256 in {METADATA_FILE}")
    try:
        threshold = _threshold(meta, root) or default_threshold(str(meta.get("task", "classification")))
        return load_serving(serving_path, threshold, meta)
    except ServingFormError as exc:
        raise ArtifactError(f"cannot load {root}: {exc}") from exc


def _threshold(meta: Mapping[str, Any], root: Path) -> Threshold | None:
    try:
        return Threshold.from_json(meta["threshold"]) if meta.get("threshold") else None
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"cannot load {root}: bad threshold in {METADATA_FILE}: {exc}") from None


def _jsonable(value: Any) -> Any:
    """Strict-JSON version of metadata: numpy scalars/arrays become Python values, non-finite floats strings."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy scalar or array
        return _jsonable(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The artifact's metadata.json as a dict (ArtifactError if missing or not JSON)."""
    meta_path = Path(path) / METADATA_FILE
    try:
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(f"{path} is not a decision-model artifact: {METADATA_FILE} is missing") from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"cannot read {meta_path}: {exc}") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{meta_path} does not hold a JSON object")
    return data


def _retrain_hint(meta: Mapping[str, Any]) -> str:
    cmd = meta.get("command")
    how = f"re-run the command that produced it with this installation: {cmd}" if cmd else \
        "retrain and save it again with this installation"
    return f"To fix it, {how}."


def check_compatible(meta: Mapping[str, Any], where: str = "artifact", *, sklearn: bool = True) -> None:
    """Raise ArtifactError if the metadata's format, feature or (with `sklearn`) scikit-learn version does not
    match this install. The serving form holds plain numbers, so it does not depend on scikit-learn's version."""
    from .rows import FEATURE_VERSION

    problems = []
    fmt = meta.get("format_version")
    if fmt != FORMAT_VERSION:
        problems.append(f"format version is {fmt!r}, this thinkgate reads format version {FORMAT_VERSION}")
    feat = meta.get("feature_version")
    if feat != FEATURE_VERSION:
        problems.append(f"feature version is {feat!r}, this thinkgate computes feature version {FEATURE_VERSION!r} "
                        "(the features changed meaning, so its coefficients would be misread)")
    saved = str((meta.get("versions") or {}).get("sklearn", ""))
    here = _sklearn_version() if sklearn else saved
    if _major_minor(saved) != _major_minor(here):
        problems.append(f"it was saved with scikit-learn {saved or 'unknown'}, this environment has {here} "
                        "(major.minor must match)")
    if problems:
        raise ArtifactError(f"cannot load {where}: " + "; ".join(problems) + ". " + _retrain_hint(meta))


def load_artifact(path: str | os.PathLike[str]) -> DecisionModel:
    """Load an artifact directory as a `DecisionModel` (its threshold and metadata attached).

    Raises ArtifactError for a missing or tampered file, a version mismatch, or a type outside `ALLOWED_TYPES`."""
    import skops.io as sio

    from .model import DecisionModel

    root = Path(path)
    meta = read_metadata(root)
    check_compatible(meta, str(root))
    model_path = root / str(meta.get("model_file") or MODEL_FILE)
    if not model_path.is_file():
        raise ArtifactError(f"cannot load {root}: model file {model_path.name} is missing")
    digest = sha256_file(model_path)
    if digest != meta.get("model_sha256"):
        raise ArtifactError(f"cannot load {root}: {model_path.name} does not match the SHA-256 in {METADATA_FILE} "
                            "(the file was modified or belongs to another artifact)")
    found = sorted(set(sio.get_untrusted_types(file=model_path)))
    unknown = [t for t in found if t not in ALLOWED_TYPES]
    if unknown:
        raise ArtifactError(f"cannot load {root}: it contains types this package does not trust: {', '.join(unknown)}")
    recorded = sorted(set(meta.get("trusted_types") or []))
    if found != recorded:
        raise ArtifactError(f"cannot load {root}: its types {found} differ from those recorded at save time {recorded}")
    try:
        pipeline = sio.load(model_path, trusted=found)
    except Exception as exc:  # skops raises several types for corrupt files
        raise ArtifactError(f"cannot load {root}: {model_path.name} is unreadable: {exc}") from exc
    return DecisionModel(pipeline, _threshold(meta, root), meta)

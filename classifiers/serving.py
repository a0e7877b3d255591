"""The serving form of a linear decision model: plain numpy arrays, loaded without scikit-learn.

A process that serves the classifier policy needs one number per prompt. Loading the skops pipeline for it
imports skops, scikit-learn, scipy and pandas: about 370 MB of resident memory and seconds of start-up, for
code the fast path never calls. For a linear pipeline (TF-IDF word/char parts, constraint counts, structure
statistics with their scalers, then a logistic regression or a linear regressor) everything the fast path
uses is a handful of arrays: vocabulary terms, idf weights, scaler factors, coefficients. `export_serving`
writes them next to the model (`serving.npz`, no pickle); `load_serving` rebuilds the same fast-path parts
(`fastpath.py`) from them with numpy only. The analyzers are rebuilt from their settings
(`fastpath.build_analyzer_from`), and the numbers equal the pipeline's own `predict_proba` (tests check
this on every IFEval prompt).

Pipelines of another shape have no serving form; they are served from the skops file as before.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from .calibration import Threshold
from .fastpath import LinearScorer, _AffinePart, _ConstraintPart, _Part, _StructurePart, _TfidfPart, tfidf_part_from

__all__ = ["SERVING_FILE", "ServingModel", "export_serving", "load_serving"]

SERVING_FILE = "serving.npz"
SERVING_FORMAT = 1


class ServingModel:
    """What the classifier policy asks of a model (`score`, `decide`, `threshold`, `metadata`), numpy only."""

    fast = True

    def __init__(self, scorer: LinearScorer, threshold: Threshold, metadata: Mapping[str, Any]) -> None:
        self._score = scorer
        self.threshold = threshold
        self.metadata = MappingProxyType(dict(metadata))
        self.task = "classification" if scorer.proba else "regression"

    def score(self, text: str) -> float:
        if not isinstance(text, str):
            raise TypeError(f"expected the prompt text as str, got {type(text).__name__}")
        return self._score(text)

    def decide(self, text: str) -> tuple[bool, float]:
        s = self.score(text)
        return s >= self.threshold.value, s


# -- export (training side: has the fitted pipeline) ---------------------------------------------------


def export_serving(pipeline: Any) -> bytes | None:
    """The serving form of a fitted pipeline as `.npz` bytes, or None if its shape has none."""
    from .fastpath import compile_scorer

    scorer = compile_scorer(pipeline)
    if not isinstance(scorer, LinearScorer):
        return None
    spec: dict[str, Any] = {"format": SERVING_FORMAT, "intercept": scorer.intercept, "proba": scorer.proba,
                            "parts": []}
    arrays: dict[str, np.ndarray] = {}
    for k, (part, coef) in enumerate(scorer.slices):
        described = _describe(part, k, arrays)
        if described is None:
            return None
        spec["parts"].append(described)
        arrays[f"p{k}_coef"] = np.asarray(coef, dtype=np.float64)
    arrays["spec"] = np.array(json.dumps(spec))
    buf = io.BytesIO()
    np.savez_compressed(buf, allow_pickle=False, **arrays)
    return buf.getvalue()


def _describe(part: _Part, k: int, arrays: dict[str, np.ndarray]) -> dict[str, Any] | None:
    if isinstance(part, _TfidfPart):
        if part.config is None:
            return None
        terms = sorted(part.vocab, key=part.vocab.__getitem__)
        arrays[f"p{k}_terms"] = np.array(terms, dtype=str)
        if part.idf is not None:
            arrays[f"p{k}_idf"] = part.idf
        return {"kind": "tfidf", "config": part.config, "binary": part.binary, "sublinear": part.sublinear,
                "norm": part.norm, "idf": part.idf is not None}
    if isinstance(part, _ConstraintPart):
        return {"kind": "constraints", "kinds": list(part.kinds), "binary": part.binary}
    if isinstance(part, _StructurePart):
        from .rows import STRUCTURE_COLUMNS

        return {"kind": "structure", "columns": list(STRUCTURE_COLUMNS)}
    if isinstance(part, _AffinePart):
        inner = _describe(part.inner, k, arrays)
        if inner is None or inner["kind"] == "tfidf":
            return None
        arrays[f"p{k}_mul"], arrays[f"p{k}_add"] = part.mul, part.add
        return {"kind": "affine", "inner": inner}
    return None


# -- load (serving side: numpy only) -----------------------------------------------------------------


class ServingFormError(ValueError):
    """The serving file is unreadable or describes something this version cannot rebuild."""


def load_serving(path: str | Path, threshold: Threshold, metadata: Mapping[str, Any]) -> ServingModel:
    """Rebuild the model from `serving.npz` bytes at `path`. Raises ServingFormError if it cannot."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        spec = json.loads(str(arrays["spec"]))
        if spec.get("format") != SERVING_FORMAT:
            raise ServingFormError(f"serving format {spec.get('format')!r}, this version reads {SERVING_FORMAT}")
        slices = [(_rebuild(part, k, arrays), arrays[f"p{k}_coef"]) for k, part in enumerate(spec["parts"])]
        scorer = LinearScorer(slices, float(spec["intercept"]), proba=bool(spec["proba"]))
    except ServingFormError:
        raise
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise ServingFormError(f"cannot read {path}: {exc}") from exc
    for part, coef in slices:
        if coef.shape != (part.dim,):
            raise ServingFormError(f"{path}: coefficients of shape {coef.shape} for a part of {part.dim} columns")
    return ServingModel(scorer, threshold, metadata)


def _rebuild(spec: Mapping[str, Any], k: int, arrays: Mapping[str, np.ndarray]) -> _Part:
    kind = spec["kind"]
    if kind == "tfidf":
        idf = np.asarray(arrays[f"p{k}_idf"], dtype=np.float64) if spec["idf"] else None
        return tfidf_part_from(spec["config"], arrays[f"p{k}_terms"].tolist(), binary=bool(spec["binary"]),
                               sublinear=bool(spec["sublinear"]), idf=idf, norm=spec["norm"])
    if kind == "constraints":
        return _ConstraintPart(tuple(spec["kinds"]), bool(spec["binary"]))
    if kind == "structure":
        return _StructurePart(tuple(spec["columns"]))
    if kind == "affine":
        return _AffinePart(_rebuild(spec["inner"], k, arrays), np.asarray(arrays[f"p{k}_mul"], dtype=np.float64),
                           np.asarray(arrays[f"p{k}_add"], dtype=np.float64))
    raise ServingFormError(f"unknown part kind {kind!r}")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()

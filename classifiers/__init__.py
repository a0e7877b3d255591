"""Decision models: predict from the request text alone whether thinking (chain-of-thought) improves the answer.

Modules (one job each):

* `constraints`  detect IFEval-style constraints in a prompt (`detect_constraints`, `constraint_counts`)
* `features`     scikit-learn transformers from raw text (`ConstraintFeatures`, `StructureFeatures`, TF-IDF)
* `estimators`   registry of pipeline recipes (`make_estimator("linear")`, ...)
* `calibration`  choose the decision threshold from scores and per-example outcomes (`calibrate`)
* `fastpath`     compile a fitted pipeline into a single-prompt scorer
* `model`        `DecisionModel`: pipeline + threshold -> `score(text)`, `decide(text)`
* `artifact`     save/load a model directory with strict version and type checks (`save_artifact`, `load_artifact`)

This package imports no other project package, and importing it is cheap: names below are resolved lazily,
so scikit-learn is only imported when something that needs it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "DetectedConstraint": "constraints",
    "KINDS": "constraints",
    "detect_constraints": "constraints",
    "constraint_counts": "constraints",
    "FEATURE_VERSION": "features",
    "ConstraintFeatures": "features",
    "StructureFeatures": "features",
    "available_estimators": "estimators",
    "make_estimator": "estimators",
    "register_estimator": "estimators",
    "UnknownEstimatorError": "estimators",
    "DEFAULT_ESTIMATOR": "estimators",
    "Threshold": "calibration",
    "calibrate": "calibration",
    "DecisionModel": "model",
    "ArtifactError": "artifact",
    "save_artifact": "artifact",
    "load_artifact": "artifact",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # pragma: no cover - type checkers see the real names; nothing is imported at run time
    from .artifact import ArtifactError, load_artifact, save_artifact  # noqa: F401
    from .calibration import Threshold, calibrate  # noqa: F401
    from .constraints import (  # noqa: F401
        KINDS,
        DetectedConstraint,
        constraint_counts,
        detect_constraints,
    )
    from .estimators import (  # noqa: F401
        DEFAULT_ESTIMATOR,
        UnknownEstimatorError,
        available_estimators,
        make_estimator,
        register_estimator,
    )
    from .features import FEATURE_VERSION, ConstraintFeatures, StructureFeatures  # noqa: F401
    from .model import DecisionModel  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'classifiers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))

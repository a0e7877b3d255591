"""Estimator registry: recipes, scikit-learn conventions, helpful errors."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import FeatureUnion, Pipeline

from classifiers.estimators import (
    DEFAULT_ESTIMATOR,
    UnknownEstimatorError,
    available_estimators,
    estimator_spec,
    make_estimator,
    register_estimator,
)

SMALL = {"linear": {"min_df": 1}, "ridge": {"min_df": 1}, "tree": {"max_iter": 20}}


def test_registry_has_the_required_recipes() -> None:
    names = available_estimators()
    assert {"linear", "tree", "constraints-linear", "ridge"} <= set(names)
    assert DEFAULT_ESTIMATOR == "linear"
    assert estimator_spec("ridge").task == "regression" and estimator_spec("linear").task == "classification"
    assert all(estimator_spec(n).description for n in names)


@pytest.mark.parametrize("name,close", [("linaer", "linear"), ("Tree", "tree"),
                                        ("constraint-linear", "constraints-linear")])
def test_unknown_name_lists_close_matches(name: str, close: str) -> None:
    with pytest.raises(UnknownEstimatorError) as info:
        make_estimator(name)
    msg = str(info.value)
    assert repr(name) in msg and f"Did you mean {close!r}" in msg and "Available:" in msg
    assert isinstance(info.value, KeyError)


def test_unknown_name_without_close_match() -> None:
    with pytest.raises(UnknownEstimatorError, match="Available: "):
        make_estimator("zzzzzz")


def test_register_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_estimator("linear", lambda: None)


@pytest.mark.parametrize("name", available_estimators())
def test_recipes_follow_sklearn_conventions(name: str, synthetic) -> None:
    prompts, labels, gains = synthetic
    pipe = make_estimator(name, **SMALL.get(name, {}))
    assert isinstance(pipe, Pipeline) and [s for s, _ in pipe.steps] == ["features", "model"]
    assert isinstance(pipe.named_steps["features"], FeatureUnion)
    regression = estimator_spec(name).task == "regression"
    assert is_regressor(pipe) if regression else is_classifier(pipe)

    params = pipe.get_params()
    twin = clone(pipe)
    assert twin is not pipe and twin.get_params().keys() == params.keys()
    with pytest.raises(NotFittedError):
        twin.predict(prompts[:2])
    twin.set_params(model__random_state=1) if "model__random_state" in params else None

    y = gains if regression else labels
    assert pipe.fit(prompts, y) is pipe
    model = pipe.named_steps["model"]
    assert any(k.endswith("_") and not k.startswith("_") for k in vars(model))
    if regression:
        out = pipe.predict(prompts[:5])
        assert out.shape == (5,)
    else:
        proba = pipe.predict_proba(prompts)
        assert proba.shape == (len(prompts), 2) and np.allclose(proba.sum(axis=1), 1)
        assert list(model.classes_) == [0, 1]
        # the synthetic constraints are learnable from text alone
        assert (pipe.predict(prompts) == np.asarray(labels)).mean() > 0.8


def test_overrides_reach_the_model() -> None:
    pipe = make_estimator("linear", C=0.25)
    assert pipe.named_steps["model"].C == 0.25
    with pytest.raises(TypeError):
        make_estimator("linear", no_such_param=1)


def test_importing_estimators_does_not_import_sklearn() -> None:
    import subprocess
    import sys

    code = "import sys, classifiers.estimators; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"

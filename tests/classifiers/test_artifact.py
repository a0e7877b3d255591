"""Artifact save/load: round trip, strict refusal of mismatched or tampered artifacts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline

from classifiers.artifact import (
    ALLOWED_TYPES,
    FORMAT_VERSION,
    METADATA_FILE,
    MODEL_FILE,
    ArtifactError,
    load_artifact,
    read_metadata,
    save_artifact,
)
from classifiers.calibration import maximize_accuracy
from classifiers.estimators import make_estimator
from classifiers.features import FEATURE_VERSION, ConstraintFeatures
from classifiers.model import DecisionModel


@pytest.fixture(scope="module")
def saved(tmp_path_factory, synthetic) -> tuple[Path, DecisionModel]:
    prompts, labels, gains = synthetic
    pipe = make_estimator("linear", min_df=1).fit(prompts, labels)
    model = DecisionModel(pipe)
    scores = model.score_many(prompts)
    gains_arr = np.asarray(gains)
    threshold = maximize_accuracy(scores, np.zeros_like(gains_arr), gains_arr)
    path = tmp_path_factory.mktemp("art") / "linear-smollm"
    save_artifact(path, model.with_threshold(threshold), estimator="linear", target_model="smollm2-135m",
                  profile="cot", dataset_name="synthetic", dataset_hash="sha256:abc", outcomes_hash="sha256:def",
                  metrics={"val_accuracy": 0.9}, command="thinkgate train --estimator linear")
    return path, model.with_threshold(threshold)


def _copy(src: Path, dst: Path, **meta_changes) -> Path:
    dst.mkdir()
    (dst / MODEL_FILE).write_bytes((src / MODEL_FILE).read_bytes())
    meta = json.loads((src / METADATA_FILE).read_text())
    for key, value in meta_changes.items():
        if "." in key:
            outer, inner = key.split(".")
            meta[outer][inner] = value
        else:
            meta[key] = value
    (dst / METADATA_FILE).write_text(json.dumps(meta))
    return dst


def test_round_trip_gives_the_same_scores(saved, synthetic) -> None:
    path, original = saved
    loaded = load_artifact(path)
    texts = synthetic[0][:15] + ["Answer in JSON only.", "", "Write in lowercase, under 20 words."]
    np.testing.assert_allclose([loaded.score(t) for t in texts], [original.score(t) for t in texts], atol=1e-12)
    np.testing.assert_allclose(loaded.score_many(texts), original.score_many(texts), atol=1e-12)
    assert loaded.fast
    assert loaded.threshold == original.threshold
    assert loaded.decide(texts[0]) == original.decide(texts[0])


def test_metadata_contents(saved) -> None:
    path, model = saved
    meta = read_metadata(path)
    assert meta["format_version"] == FORMAT_VERSION and meta["feature_version"] == FEATURE_VERSION
    assert meta["estimator"] == "linear" and meta["task"] == "classification"
    assert meta["target"] == {"model": "smollm2-135m", "profile": "cot"}
    assert meta["dataset"] == {"name": "synthetic", "hash": "sha256:abc"} and meta["outcomes_hash"] == "sha256:def"
    assert meta["metrics"] == {"val_accuracy": 0.9}
    assert meta["threshold"]["method"] == "max_accuracy" and meta["threshold"]["value"] == model.threshold.value
    assert meta["command"] == "thinkgate train --estimator linear"
    assert set(meta["versions"]) == {"python", "numpy", "sklearn", "skops"}
    assert meta["versions"]["sklearn"] == sklearn.__version__
    assert set(meta["trusted_types"]) <= ALLOWED_TYPES
    assert len(meta["model_sha256"]) == 64
    loaded = load_artifact(path)
    assert loaded.metadata["target"]["model"] == "smollm2-135m"
    with pytest.raises(TypeError):
        loaded.metadata["estimator"] = "x"  # type: ignore[index]


def test_model_file_is_compact(saved) -> None:
    path, _ = saved
    assert (path / MODEL_FILE).stat().st_size < 500_000  # compressed, vocabularies as plain ints


@pytest.mark.parametrize("change,needle", [
    ({"format_version": 999}, "format version is 999"),
    ({"feature_version": "0-old"}, "feature version is '0-old'"),
    ({"versions.sklearn": "0.24.2"}, "saved with scikit-learn 0.24.2"),
])
def test_refuses_version_mismatch(saved, tmp_path, change, needle) -> None:
    path, _ = saved
    bad = _copy(path, tmp_path / "bad", **change)
    with pytest.raises(ArtifactError) as info:
        load_artifact(bad)
    msg = str(info.value)
    assert needle in msg
    assert "thinkgate train --estimator linear" in msg  # how to retrain


def test_refuses_tampered_model_file(saved, tmp_path) -> None:
    path, _ = saved
    bad = _copy(path, tmp_path / "bad")
    data = bytearray((bad / MODEL_FILE).read_bytes())
    data[-10] ^= 0xFF
    (bad / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_artifact(bad)


def test_refuses_trusted_types_that_do_not_match(saved, tmp_path) -> None:
    path, _ = saved
    bad = _copy(path, tmp_path / "bad", trusted_types=["builtins.eval"])
    with pytest.raises(ArtifactError, match="differ from those recorded"):
        load_artifact(bad)


def test_refuses_missing_or_broken_metadata(tmp_path) -> None:
    with pytest.raises(ArtifactError, match="metadata.json is missing"):
        load_artifact(tmp_path)
    (tmp_path / METADATA_FILE).write_text("{not json")
    with pytest.raises(ArtifactError, match="cannot read"):
        load_artifact(tmp_path)


class _Custom(TransformerMixin, BaseEstimator):
    def fit(self, X, y=None):
        self.fitted_ = True
        return self

    def transform(self, X):
        return np.zeros((len(X), 1))


def test_refuses_to_save_untrusted_types(tmp_path, synthetic) -> None:
    prompts, labels, _ = synthetic
    pipe = Pipeline([("features", FeatureUnion([("c", ConstraintFeatures()), ("x", _Custom())])),
                     ("model", LogisticRegression())]).fit(prompts, labels)
    with pytest.raises(ArtifactError, match="would not trust"):
        save_artifact(tmp_path / "a", pipe)
    assert not (tmp_path / "a").exists()


def test_refuses_to_overwrite(saved, tmp_path) -> None:
    path, model = saved
    with pytest.raises(ArtifactError, match="not empty"):
        save_artifact(path, model)


def test_tree_artifact_round_trip(tmp_path, synthetic) -> None:
    prompts, labels, _ = synthetic
    pipe = make_estimator("tree", max_iter=20).fit(prompts, labels)
    save_artifact(tmp_path / "tree", pipe, estimator="tree", command="train tree")
    loaded = load_artifact(tmp_path / "tree")
    assert loaded.metadata["estimator"] == "tree" and loaded.threshold.method == "default"
    np.testing.assert_allclose([loaded.score(p) for p in prompts[:10]], pipe.predict_proba(prompts[:10])[:, 1],
                               atol=1e-12)


def test_metadata_is_strict_json_with_numpy_and_nan(tmp_path, synthetic) -> None:
    prompts, labels, _ = synthetic
    pipe = make_estimator("constraints-linear").fit(prompts, labels)
    metrics = {"auc": np.float64(0.75), "n": np.int64(40), "curve": np.array([0.1, 0.2]), "bad": float("nan"),
               "nested": {"none": None, "inf": float("inf")}}
    save_artifact(tmp_path / "a", pipe, metrics=metrics, extra={"ids": ("ifeval:1", "ifeval:2")})
    meta = json.loads((tmp_path / "a" / METADATA_FILE).read_text())  # strict parse below
    json.loads((tmp_path / "a" / METADATA_FILE).read_text(), parse_constant=lambda c: pytest.fail(c))
    assert meta["metrics"] == {"auc": 0.75, "n": 40, "curve": [0.1, 0.2], "bad": "nan",
                               "nested": {"none": None, "inf": "inf"}}
    assert meta["extra"] == {"ids": ["ifeval:1", "ifeval:2"]}
    assert meta["command"]  # defaults to this process's command line
    assert load_artifact(tmp_path / "a").metadata["metrics"]["auc"] == 0.75

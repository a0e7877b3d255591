"""The numpy serving form of a linear decision model: the same scores as the pipeline, without scikit-learn."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from classifiers.artifact import ArtifactError, load_artifact, load_serving_model, save_artifact, write_serving_form
from classifiers.bundled import bundled_artifact
from classifiers.estimators import make_estimator
from classifiers.model import DecisionModel
from classifiers.serving import SERVING_FILE, ServingModel, export_serving

ROOT = Path(__file__).resolve().parents[2]
IFEVAL = Path(os.environ.get("THINKGATE_DATA_DIR", ROOT.parent / "shared" / "data")) / "ifeval" / "input_data.jsonl"
ODD_TEXTS = ["", " ", "a", "Tabs\tand\n\nnew   lines", "ÉCOLE Ünïcode 東京 café", "emoji 😀 outside the BMP",
             "İstanbul ß ﬁ", "lone \ud800 surrogate", "nul \x00 byte", "Write in ALL CAPS. At most 40 words." * 20]


@pytest.fixture(scope="module")
def linear_artifact(tmp_path_factory, synthetic) -> tuple[Path, DecisionModel]:
    prompts, labels, _ = synthetic
    model = DecisionModel(make_estimator("linear", min_df=1).fit(prompts, labels))
    path = save_artifact(tmp_path_factory.mktemp("art") / "linear", model, estimator="linear")
    return path, model


def test_save_writes_a_serving_form_with_identical_scores(linear_artifact, synthetic) -> None:
    path, model = linear_artifact
    assert (path / SERVING_FILE).is_file()
    served = load_serving_model(path)
    assert isinstance(served, ServingModel)
    assert served.threshold == model.threshold and served.task == "classification"
    texts = synthetic[0] + ODD_TEXTS
    expected = model.score_many(texts)
    got = np.array([served.score(t) for t in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert [served.decide(t)[0] for t in texts] == [model.decide(t)[0] for t in texts]


def test_a_tree_model_has_no_serving_form_and_loads_as_before(tmp_path, synthetic) -> None:
    prompts, labels, _ = synthetic
    pipe = make_estimator("tree").fit(prompts, labels)
    assert export_serving(pipe) is None
    path = save_artifact(tmp_path / "tree", DecisionModel(pipe), estimator="tree")
    assert not (path / SERVING_FILE).exists()
    assert isinstance(load_serving_model(path), DecisionModel)
    assert write_serving_form(path, command="test") is None


def test_a_tampered_or_missing_serving_file_is_refused(linear_artifact, tmp_path) -> None:
    src, _ = linear_artifact
    copy = tmp_path / "copy"
    shutil.copytree(src, copy)
    (copy / SERVING_FILE).write_bytes((copy / SERVING_FILE).read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ArtifactError, match="SHA-256"):
        load_serving_model(copy)
    (copy / SERVING_FILE).unlink()
    with pytest.raises(ArtifactError, match="missing"):
        load_serving_model(copy)
    assert write_serving_form(copy, command="thinkgate train --serving-form copy") == copy / SERVING_FILE
    assert isinstance(load_serving_model(copy), ServingModel)
    assert json.loads((copy / "metadata.json").read_text())["serving_command"].endswith("--serving-form copy")


def test_serving_the_default_artifact_imports_no_scikit_learn() -> None:
    code = ("import sys; from classifiers.artifact import load_serving_model; from classifiers.bundled import "
            "bundled_artifact; m = load_serving_model(bundled_artifact('smollm2-135m-ifeval')); m.score('Hi. "
            "Answer in JSON.'); print(type(m).__name__, sorted(x for x in ('sklearn', 'scipy', 'skops', 'pandas') "
            "if x in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["ServingModel", "[]"]


def test_default_artifact_serving_form_equals_the_pipeline_on_every_ifeval_prompt() -> None:
    if not IFEVAL.is_file():
        pytest.skip(f"IFEval prompts not found at {IFEVAL} (set THINKGATE_DATA_DIR)")
    path = bundled_artifact("smollm2-135m-ifeval")
    served, full = load_serving_model(path), load_artifact(path)
    assert isinstance(served, ServingModel)
    texts = [json.loads(line)["prompt"] for line in IFEVAL.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(texts) == 541
    texts += ODD_TEXTS
    expected = full.pipeline.predict_proba(texts)[:, 1]
    got = np.array([served.score(t) for t in texts])
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert [served.decide(t)[0] for t in texts] == [bool(e >= full.threshold.value) for e in expected]

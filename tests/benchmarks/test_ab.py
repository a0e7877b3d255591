"""`thinkgate bench ab` end to end: a fixture dataset through a real `thinkgate serve` subprocess in front of
the mock upstream, over HTTP, per arm; then the report, the plots and resume after an interruption."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from benchmarks.ab.arms import parse_arms
from benchmarks.ab.cli import _parser, main, proxy_config, select_ids
from benchmarks.ab.records import read_records
from benchmarks.ab.results import build_results, goal_check
from router.profiles.cot import ANSWER_WITH_REASONING
from router.deciders.self_select import SELF_SELECT_PROMPT
from training.scoring.ifeval import ensure_punkt_tab

from support.mock_upstream import last_user_text

try:
    ensure_punkt_tab()
except Exception as exc:  # noqa: BLE001
    pytest.skip(f"IFEval scoring needs NLTK's punkt_tab: {exc}", allow_module_level=True)

BUNDLED = Path(__file__).resolve().parents[2] / "classifiers" / "artifacts" / "smollm2-135m-ifeval"

# Five prompts written for these tests, each with one checkable instruction; thinking helps on 1 and 3.
PROMPTS = {
    1: ("Write one sentence about tea. Do not use any commas.", "punctuation:no_comma", {},
        "Tea is warm, and it is calm.", "Tea is warm and calm."),
    2: ("Describe a cat in all lowercase letters.", "change_case:english_lowercase", {},
        "a cat is small and soft.", "A Cat Is Small."),
    3: ("Give your answer a title wrapped in double angular brackets, such as <<my title>>, about rivers.",
        "detectable_format:title", {}, "Rivers flow to the sea.", "<<Rivers>>\nRivers flow to the sea."),
    4: ("Answer in fewer than 12 words: why is the sky blue?", "length_constraints:number_words",
        {"relation": "less than", "num_words": 12}, "Because of scattering.",
        "The sky is blue because molecules in the air scatter the short blue wavelengths of sunlight more."),
    5: ("End your reply with the exact phrase 'Is there anything else I can help with?'. What is rain?",
        "startend:end_checker", {"end_phrase": "Is there anything else I can help with?"},
        "Rain is water falling from clouds. Is there anything else I can help with?",
        "Rain is water falling from clouds."),
}


def _write_dataset(path: Path) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for key, (prompt, inst, kwargs, _, _) in PROMPTS.items():
            f.write(json.dumps({"key": key, "prompt": prompt, "instruction_id_list": [inst],
                                "kwargs": [kwargs]}) + "\n")
    return path


def _reply(body: dict) -> str:
    """Direct calls get the direct answer; the answer call of two-call thinking gets the think answer."""
    system = " ".join(m["content"] for m in body["messages"] if m["role"] == "system")
    if SELF_SELECT_PROMPT in system:
        return "YES" if "title" in last_user_text(body) else "NO"
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    prompt = next(p for p in PROMPTS.values() if p[0] == user)
    if ANSWER_WITH_REASONING.split("{", 1)[0] in system:
        return prompt[4]
    if "Think step by step" in system:
        return "Let me check every instruction first."
    return prompt[3]


@pytest.fixture()
def dataset(tmp_path):
    return _write_dataset(tmp_path / "mini.jsonl")


def _artifact(tmp_path: Path, held_out: list[str]) -> Path:
    """The bundled decision model, recorded as trained on everything but `held_out`."""
    artifact = tmp_path / "artifact"
    shutil.copytree(BUNDLED, artifact)
    meta = json.loads((artifact / "metadata.json").read_text())
    meta["extra"]["held_out_ids"] = held_out
    (artifact / "metadata.json").write_text(json.dumps(meta))
    return artifact


def _run(out: Path, data: Path, upstream_url: str, *extra: str) -> int:
    return main(["--data", str(data), "--out", str(out), "--upstream", "upstream-model", "--base-url",
                 upstream_url, "--profile", "forced-cot", "--concurrency", "3", "--bootstrap", "200",
                 "--no-progress", *extra])


def test_arms_decide_as_configured_and_the_report_is_written(tmp_path, dataset, mock, upstream_url):
    mock.reply = _reply
    out = tmp_path / "ab"
    artifact = _artifact(tmp_path, [f"ifeval:{k}" for k in PROMPTS])
    arms = "never,always,few-shot,self-reflect,self-select,classifier,guard,oracle"  # the default arms and the guard
    assert _run(out, dataset, upstream_url, "--artifact", str(artifact), "--arms", arms) == 0

    records = read_records(out / "records.jsonl")
    by_arm: dict[str, dict[str, str]] = {}
    for r in records:
        assert r.error is None
        by_arm.setdefault(r.arm, {})[r.id] = r.decision
    assert set(by_arm["never"].values()) == {"direct"}
    for arm in ("always", "few-shot", "self-reflect"):
        assert set(by_arm[arm].values()) == {"think"}, arm
    assert by_arm["self-select"] == {f"ifeval:{k}": "think" if k == 3 else "direct" for k in PROMPTS}
    # the classifier arm decided with the artifact's own score and calibrated threshold
    from classifiers.artifact import load_artifact

    model = load_artifact(artifact)
    for r in (r for r in records if r.arm == "classifier"):
        expected = model.score(PROMPTS[int(r.id.split(":")[1])][0])
        assert r.score == pytest.approx(expected, abs=1e-4)
        assert r.decision == ("think" if expected >= model.threshold.value else "direct")

    results = json.loads((out / "results.json").read_text())
    arms = results["arms"]
    assert arms["never"]["metrics"]["inst_level_loose"] == pytest.approx(60.0)  # 2, 4, 5 pass direct
    assert arms["always"]["metrics"]["inst_level_loose"] == pytest.approx(40.0)  # 1, 3 pass thinking
    assert arms["oracle"]["metrics"]["inst_level_loose"] == pytest.approx(100.0)
    assert arms["oracle"]["think_rate"] == pytest.approx(0.4)
    assert arms["self-select"]["metrics"]["inst_level_loose"] == pytest.approx(80.0)
    assert arms["few-shot"]["metrics"]["inst_level_loose"] == pytest.approx(40.0)
    # decisions replayed on the never/always answers: the mock repeats itself, so replayed == live
    assert set(results["replayed"]) == {"self-select", "classifier"}
    assert results["replayed"]["self-select"]["metrics"] == arms["self-select"]["metrics"]
    # the review pass (no system message here) gets the direct answers, and both passes are counted
    assert arms["self-reflect"]["metrics"]["inst_level_loose"] == pytest.approx(60.0)
    assert arms["self-reflect"]["completion_tokens"] > arms["always"]["completion_tokens"] > \
        arms["never"]["completion_tokens"]
    assert arms["few-shot"]["prompt_tokens"] > arms["always"]["prompt_tokens"]  # the examples are sent
    # the guard answers directly, and thinks only where a check fails (1: a comma, 3: no title): the oracle's score
    assert arms["guard"]["metrics"]["inst_level_loose"] == pytest.approx(100.0)
    assert results["guard"]["outcomes"] == {"escalated": 2, "pass": 3}
    assert results["guard"]["calls_per_request"] == pytest.approx(1.4)
    assert "guard" not in results["replayed"]
    assert {(c["arm"], c["reference"]) for c in results["comparisons"]} >= {("oracle", "always"), ("never", "always")}
    oracle_vs_always = next(c for c in results["comparisons"] if (c["arm"], c["reference"]) == ("oracle", "always"))
    assert oracle_vs_always["diff"] == pytest.approx(60.0)
    assert oracle_vs_always["low"] <= 60.0 <= oracle_vs_always["high"]

    md = (out / "report.md").read_text()
    assert "| oracle | 100.00 ↑60.00" in md and "| never | 60.00 ↑20.00" in md
    assert "Goal (classifier arm)" in md and "5 examples" in md
    assert "Upstream calls per request: 1.40" in md and "above the two-mode oracle (100.00): not met" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 2 and "<table>" in page
    for png in ("pareto.png", "per_type.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "evaluated_ids.txt").read_text().split() == [f"ifeval:{k}" for k in PROMPTS]
    assert "ab-self-select" in (out / "proxy.yaml").read_text()


def test_resume_sends_only_what_is_missing(tmp_path, dataset, mock, upstream_url, capsys):
    mock.reply = _reply
    out = tmp_path / "ab"
    assert _run(out, dataset, upstream_url, "--arms", "never,always", "--ids", "all") == 0
    table = out / "records.jsonl"
    lines = table.read_text().splitlines()
    assert len(lines) == 10
    failed = json.loads(lines[1])
    failed.update(error="UpstreamError: proxy answered 502: boom", answer="", scores={})
    # interrupted: the last two records lost, one request failed, a write torn in half
    table.write_text("\n".join([lines[0], json.dumps(failed), *lines[2:-2]]) + "\n" + lines[-2][:25])
    mock.requests.clear()
    assert _run(out, dataset, upstream_url, "--arms", "never,always", "--ids", "all") == 0
    # one direct call for the failed never record; two-call thinking for the two lost always records
    assert len(mock.requests) == 1 + 2 * 2
    ok = {(r.arm, r.id) for r in read_records(table) if r.error is None}
    assert len(ok) == 10
    assert json.loads((out / "results.json").read_text())["arms"]["never"]["n"] == 5
    mock.requests.clear()
    assert _run(out, dataset, upstream_url, "--arms", "never,always", "--ids", "all") == 0
    assert mock.requests == [] and "not starting a proxy" in capsys.readouterr().err


def test_classifier_arm_runs_only_on_held_out_examples(tmp_path, dataset, mock, upstream_url):
    mock.reply = _reply
    artifact = _artifact(tmp_path, ["ifeval:2", "ifeval:4"])
    out = tmp_path / "ab"
    assert _run(out, dataset, upstream_url, "--arms", "never,classifier", "--artifact", str(artifact)) == 0
    assert sorted({r.id for r in read_records(out / "records.jsonl")}) == ["ifeval:2", "ifeval:4"]
    assert "2 examples held out from training the decision model" in (out / "report.md").read_text()
    # asking for every example does not let the training examples in
    out_all = tmp_path / "ab-all"
    assert _run(out_all, dataset, upstream_url, "--arms", "never,classifier", "--ids", "all",
                "--artifact", str(artifact)) == 0
    assert sorted({r.id for r in read_records(out_all / "records.jsonl")}) == ["ifeval:2", "ifeval:4"]
    assert "restricted to the 2 the decision model was not trained on" in (out_all / "report.md").read_text()


def test_bad_input_is_a_clear_error_not_a_traceback(tmp_path, dataset, capsys):
    assert main(["--data", str(dataset), "--out", str(tmp_path), "--arms", "never,sometimes"]) == 2
    assert "unknown arm(s) sometimes" in capsys.readouterr().err
    assert main(["--data", str(dataset), "--out", str(tmp_path), "--arms", "never,oracle"]) == 2
    assert "computed from the never and always arms" in capsys.readouterr().err
    assert main(["--data", str(dataset), "--out", str(tmp_path), "--arms", "never", "--ids", "nope.txt"]) == 2
    assert "not a file" in capsys.readouterr().err
    assert main(["--data", str(dataset), "--out", str(tmp_path), "--arms", "never", "--report-only"]) == 2
    assert "no example has a finished record" in capsys.readouterr().err


def test_the_calibrated_self_select_route_keeps_its_calibration(tmp_path):
    """Both self-select routes get the long decider deadline; only the calibrated one reads the calibration
    file (a regression: the deadline once replaced the calibration, so both arms decided alike)."""
    calibration = tmp_path / "cal.json"
    calibration.write_text("{}")
    args = _parser().parse_args(["--self-select-calibration", str(calibration)])
    routes = proxy_config(args, ["self-select", "self-select-calibrated"], tmp_path)["routes"]
    assert routes["ab-self-select"]["policy_options"] == {"timeout_s": 600}
    assert routes["ab-self-select-calibrated"]["policy_options"] == {"calibration": str(calibration.resolve()),
                                                                     "timeout_s": 600}


def test_parse_arms_keeps_canonical_order():
    assert parse_arms("oracle, classifier,never,always") == ["never", "always", "classifier", "oracle"]


def test_held_out_ids_come_from_the_artifact():
    ids, note = select_ids("auto", ["never", "classifier"], str(BUNDLED))
    meta = json.loads((BUNDLED / "metadata.json").read_text())
    assert ids == meta["extra"]["held_out_ids"] and not set(ids) & set(meta["extra"]["train_ids"])
    assert note.startswith(f"the {len(ids)} examples held out")
    assert select_ids("auto", ["never", "always"], None) == (None, "all examples of the dataset")


def test_goal_check_reports_each_part():
    from benchmarks.ab.records import ABRecord

    def rec(arm, i, ok, tokens, decision="direct"):
        return ABRecord(arm=arm, id=f"x:{i}", route=arm, decision=decision, score=None, decision_source="policy",
                        decision_ms=0.0, answer="", reasoning=None,
                        scores={"inst_level_loose": float(ok), "inst_level_strict": float(ok),
                                "prompt_level_loose": float(ok), "prompt_level_strict": float(ok),
                                "per_instruction": {"a:b": int(ok)}},
                        latency_s=1.0, prompt_tokens=1, completion_tokens=tokens, reasoning_tokens=0)

    never = [rec("never", i, ok, 10) for i, ok in enumerate([1, 0, 0, 1])]
    always = [rec("always", i, ok, 40, "think") for i, ok in enumerate([0, 1, 1, 0])]
    clf = [rec("classifier", i, ok, 15) for i, ok in enumerate([1, 1, 0, 1])]
    results = build_results(never + always + clf, ["never", "always", "classifier", "oracle"],
                            [f"x:{i}" for i in range(4)], resamples=50)
    check = goal_check(results)
    assert check.best_fixed == "never" or check.best_fixed == "always"  # tie at 50%: never first
    assert check.accuracy_margin == pytest.approx(25.0)
    assert check.gap_fraction == pytest.approx(0.5) and check.gap_ok
    assert check.token_ratio == pytest.approx(15 / 40) and check.tokens_ok


def test_complexbench_arms_are_judged_and_reported_in_drfr(tmp_path, mock, upstream_url):
    """ComplexBench through the proxy: the judge route scores every arm; the report speaks DRFR."""
    from support.mock_judge import judge_reply, model_reply
    from support.mock_upstream import MockUpstream
    from support.servers import serve

    fixture = Path(__file__).parents[1] / "training" / "fixtures" / "complexbench_e2e.json"
    mock.reply = model_reply
    judge = MockUpstream()
    judge.reply = judge_reply
    out = tmp_path / "ab"
    with serve(judge.app) as judge_server:
        argv = ["--dataset", "complexbench", "--data", str(fixture), "--out", str(out), "--arms", "never,always,oracle",
                "--upstream", "upstream-model", "--base-url", upstream_url, "--profile", "prompt-cot",
                "--bootstrap", "200", "--no-progress", "--judge", "mock-judge", "--judge-base-url",
                judge_server.url + "/v1", "--judge-cache", str(tmp_path / "verdicts.sqlite3")]
        assert main(argv) == 0
        assert len(judge.requests) == 17  # 9 for the direct answers, 8 for the thinking ones (see the fixture)
    results = json.loads((out / "results.json").read_text())
    arms = results["arms"]
    assert results["benchmark"] == "ComplexBench"
    assert arms["never"]["metrics"] == {"complexbench_drfr": 75.0, "complexbench_all_passed": 75.0}
    assert arms["always"]["metrics"] == {"complexbench_drfr": pytest.approx(41.67), "complexbench_all_passed": 25.0}
    assert arms["oracle"]["metrics"]["complexbench_drfr"] == 100.0 and arms["oracle"]["think_rate"] == 0.25
    assert arms["never"]["per_type"] == {"And": 100.0, "Chain": 100.0, "Selection": 50.0}
    md = (out / "report.md").read_text()
    assert "| arm | DRFR | all passed |" in md and "## Per category (scoring questions satisfied (%))" in md
    assert "| oracle | 100.00 ↑58.33" in md

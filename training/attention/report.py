"""The attention report: README.md with the numbers, Fig. 1 (traces) and Fig. 2 (Delta beta per layer)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from training.records import Example

from . import stats
from .stats import Measured

GROUP_ORDER = ("WIN", "LOSE", "TIE")
COLORS = {"WIN": "tab:green", "LOSE": "tab:red", "TIE": "tab:gray"}
SCALE = 1e3  # attention values are reported in units of 10^-3


def _fmt(v: float, digits: int = 3) -> str:
    return "n/a" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def _ci(lo: float, hi: float, digits: int = 3) -> str:
    return f"[{_fmt(lo, digits)}, {_fmt(hi, digits)}]"


def group_rows(m: Measured) -> list[dict[str, Any]]:
    """Per group (and all): n, mean layer-averaged beta in both runs, mean drop with its interval, share > 0."""
    rows = []
    for name in ("ALL",) + GROUP_ORDER:
        sel = np.ones(len(m.ids), bool) if name == "ALL" else m.where(name)
        if not sel.any():
            rows.append({"group": name, "n": 0})
            continue
        base, cot = m.beta_base[sel].mean(axis=1), m.beta_cot[sel].mean(axis=1)
        drop = base - cot
        lo, hi = stats.bootstrap(drop)
        rows.append({"group": name, "n": int(sel.sum()), "beta_base": base.mean() * SCALE,
                     "beta_cot": cot.mean() * SCALE, "drop": drop.mean() * SCALE, "drop_lo": lo * SCALE,
                     "drop_hi": hi * SCALE, "relative": 1 - cot.mean() / base.mean(),
                     "share_positive": float((drop > 0).mean())})
    return rows


def layer_thirds(m: Measured) -> dict[str, list[float]]:
    """Mean drop (x1e-3) in the early, middle and late third of the layers, per group."""
    parts = np.array_split(np.arange(m.delta.shape[1]), 3)
    return {g: [float(m.delta[m.where(g)][:, p].mean() * SCALE) if m.where(g).any() else float("nan")
                for p in parts] for g in GROUP_ORDER}


def pick_examples(m: Measured, records: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """Per group, the prompt whose layer-averaged drop is closest to its group's median (a typical case),
    among prompts that reasoned for at least 32 tokens (so the thinking phase is visible)."""
    by_id = {r["id"]: r for r in records}
    picked = {}
    drop = m.delta.mean(axis=1)
    for g in GROUP_ORDER:
        idx = [i for i in np.flatnonzero(m.where(g)) if by_id[m.ids[i]]["cot"]["answer_start"] >= 32]
        if not idx:
            continue
        median = np.median(drop[idx])
        best = min(idx, key=lambda i: (abs(drop[i] - median), m.ids[i]))
        picked[g] = by_id[m.ids[best]]
    return picked


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _smooth(values: np.ndarray, width: int = 5) -> np.ndarray:
    if len(values) < width:
        return values
    return np.convolve(values, np.ones(width) / width, mode="same")


def fig_traces(picked: Mapping[str, Mapping[str, Any]], path: Path) -> None:
    plt = _plt()
    fig, axes = plt.subplots(len(picked), 1, figsize=(9, 2.8 * len(picked)), squeeze=False)
    for ax, (g, r) in zip(axes[:, 0], picked.items()):
        cot = np.array(r["cot"]["trace"]) * SCALE
        base = np.array(r["base"]["trace"]) * SCALE
        start = r["cot"]["answer_start"]
        ax.plot(cot, color=COLORS[g], lw=0.6, alpha=0.4)
        ax.plot(_smooth(cot), color=COLORS[g], lw=1.6, label="CoT run (reasoning, then answer)")
        xs = np.arange(start, start + len(base))
        ax.plot(xs, _smooth(base), color="black", lw=1.2, ls="--", label="base run's answer (aligned to answer start)")
        ax.axvline(0, color="tab:blue", lw=1, ls=":")
        ax.axvline(start, color="tab:purple", lw=1, ls=":")
        ymax = ax.get_ylim()[1]
        ax.text(1, ymax * 0.92, "start of thinking", color="tab:blue", fontsize=8)
        ax.text(start + 1, ymax * 0.92, "start of answer", color="tab:purple", fontsize=8)
        ax.set_title(f"{g}: {r['id']} (direct {r['direct_score']:.2f}, think {r['think_score']:.2f}, "
                     f"{r['constraint_tokens']} constraint tokens)", fontsize=9)
        ax.set_ylabel("ᾱ(t) (×10⁻³)")
        ax.legend(fontsize=7, loc="upper right", bbox_to_anchor=(1, 0.85))
    axes[-1, 0].set_xlabel("generation step t (5-step moving average; thin line: raw)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def fig_delta(m: Measured, path: Path) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4))
    layers = np.arange(m.delta.shape[1])
    for g in ("WIN", "LOSE"):
        sel = m.where(g)
        if sel.sum() < 2:
            continue
        d = m.delta[sel] * SCALE
        lo, hi = stats.bootstrap(d)
        ax.plot(layers, d.mean(axis=0), color=COLORS[g], lw=1.8, label=f"{g} (n={int(sel.sum())})")
        ax.fill_between(layers, lo, hi, color=COLORS[g], alpha=0.2)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xlabel("layer l")
    ax.set_ylabel("Δβ(l) = β_base − β_CoT (×10⁻³)")
    ax.set_title("Drop in constraint attention per layer (mean, 95% bootstrap band over prompts)", fontsize=10)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def decision_model_scores(artifact: str, ids: Sequence[str], examples: Mapping[str, Example]) -> np.ndarray:
    from classifiers.artifact import load_artifact

    return np.asarray(load_artifact(artifact).score_many([examples[i].prompt for i in ids]), dtype=float)


def held_out_ids(artifact: str) -> set[str]:
    from classifiers.artifact import read_metadata

    return set((read_metadata(artifact).get("extra") or {}).get("held_out_ids") or [])


def auc_rows(m: Measured, artifact: str | None, examples: Mapping[str, Example]) -> list[dict[str, Any]]:
    """AUC for LOSE (thinking made the answer worse) of each predictor, with bootstrap intervals."""
    lose = m.groups == "LOSE"
    drop, base = m.delta.mean(axis=1), m.beta_base.mean(axis=1)
    subsets = [("all measured prompts", np.ones(len(m.ids), bool))]
    held = held_out_ids(artifact) if artifact else set()
    if held:
        subsets.append(("decision model's held-out prompts", np.array([i in held for i in m.ids])))
    rows = []
    for where, sel in subsets:
        predictors = [("Δβ (layer mean; larger → LOSE)", drop), ("β_base (layer mean; larger → LOSE)", base)]
        if where.startswith("decision"):
            ids = [i for i, s in zip(m.ids, sel) if s]
            score = np.full(len(m.ids), np.nan)
            score[sel] = decision_model_scores(artifact, ids, examples)
            predictors.append(("decision model (−P(thinking helps) → LOSE)", -score))
        for name, values in predictors:
            lo, hi = stats.auc_interval(values[sel], lose[sel])
            rows.append({"predictor": name, "prompts": where, "n": int(sel.sum()), "lose": int(lose[sel].sum()),
                         "auc": stats.auc(values[sel], lose[sel]), "lo": lo, "hi": hi})
    return rows


def control_summary(m: Measured) -> dict[str, Any]:
    """Constraint tokens against the user message's other tokens, on the prompts that have both."""
    has = np.isfinite(m.control_base) & np.isfinite(m.control_cot)
    out: dict[str, Any] = {"n": int(has.sum())}
    if has.sum() < 2:
        return out
    c_base, c_cot = m.beta_base[has].mean(axis=1), m.beta_cot[has].mean(axis=1)
    out["relative_constraint"] = float(1 - c_cot.mean() / c_base.mean())
    out["relative_other"] = float(1 - m.control_cot[has].mean() / m.control_base[has].mean())
    out["groups"] = {}
    for g in ("ALL",) + GROUP_ORDER:
        sel = has & (m.where(g) if g != "ALL" else True)
        if sel.sum() >= 2:
            s = m.specific_drop[sel]
            lo, hi = stats.bootstrap(s)
            rel_c = 1 - m.beta_cot[sel].mean() / m.beta_base[sel].mean()
            rel_o = 1 - m.control_cot[sel].mean() / m.control_base[sel].mean()
            out["groups"][g] = (float(s.mean()), float(lo), float(hi), int(sel.sum()), float(rel_c), float(rel_o))
    return out


def control_sentence(control: Mapping[str, Any]) -> str:
    overall = control.get("groups", {}).get("ALL")
    if not overall:
        return "Too few prompts have prompt tokens outside the constraint spans to compare against."
    mean, lo, hi, n = overall[:4]
    numbers = (f"relative drop {control['relative_constraint']:.0%} on constraint tokens vs "
               f"{control['relative_other']:.0%} on the user message's other tokens; constraint/other ratio falls by "
               f"{_fmt(mean)}, 95% CI {_ci(lo, hi)}, n={n}")
    if lo > 0:
        return f"The drop is specific to the constraints: they lose more attention than the rest of the prompt ({numbers})."
    if hi < 0:
        return (f"The drop is not specific to the constraints: the rest of the prompt loses more attention than they "
                f"do ({numbers}).")
    return (f"The drop is not specific to the constraints: the rest of the prompt loses about as much attention "
            f"({numbers}).")


def verdict(rows: list[dict[str, Any]], diff: tuple[float, float, float]) -> tuple[str, str]:
    """Two plain sentences: does CoT lower constraint attention; is the drop larger where CoT hurts."""
    all_ = rows[0]
    lowers = all_["drop_lo"] > 0
    first = (f"CoT lowers constraint attention on this model: mean Δβ {_fmt(all_['drop'])}×10⁻³, 95% CI "
             f"{_ci(all_['drop_lo'], all_['drop_hi'])}, a {all_['relative']:.0%} relative drop, positive for "
             f"{all_['share_positive']:.0%} of prompts." if lowers else
             f"CoT does not measurably lower constraint attention on this model: mean Δβ {_fmt(all_['drop'])}×10⁻³, "
             f"95% CI {_ci(all_['drop_lo'], all_['drop_hi'])}.")
    mean, lo, hi = diff
    if lo > 0:
        second = (f"The drop is larger where thinking hurt: LOSE − WIN = {_fmt(mean)}×10⁻³, 95% CI {_ci(lo, hi)}.")
    elif hi < 0:
        second = (f"The drop is larger where thinking helped, the opposite of the paper: LOSE − WIN = "
                  f"{_fmt(mean)}×10⁻³, 95% CI {_ci(lo, hi)}.")
    else:
        second = (f"The drop is not distinguishably larger where thinking hurt: LOSE − WIN = {_fmt(mean)}×10⁻³, "
                  f"95% CI {_ci(lo, hi)} (includes 0).")
    return first, second


def _by_group(records: Sequence[Mapping[str, Any]], reason: str) -> str:
    counts = Counter(r.get("group") for r in records if r.get("skipped") == reason)
    return ", ".join(f"{g} {counts[g]}" for g in GROUP_ORDER if counts[g])


def write_report(records: Sequence[dict[str, Any]], out_dir: str | Path, *, command: str, artifact: str | None,
                 examples: Mapping[str, Example], max_answer_tokens: int | None,
                 table: Sequence[Mapping[str, Any]] | None = None) -> str:
    """Write README.md, summary.json and the figures into `out_dir`; return the headline lines.

    `table`: every prompt of the outcome table (`reasoning_tokens`, `think_score`, `gain`) for the
    reasoning-length correlation, which needs no attention (default: the records)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    total = len(records)
    analysed = [{**r, "skipped": f"failed: {r['error']}"} if "error" in r else r for r in records]
    skipped = Counter(r["skipped"] for r in analysed if "skipped" in r)
    records = [r for r in records if "error" not in r]
    m = stats.measured(records)
    if len(m.ids) == 0:
        text = f"no prompt was measured ({total} records; left out: {dict(skipped)})"
        (out_dir / "README.md").write_text(f"# Constraint attention\n\n{text}\n", encoding="utf-8")
        return text
    rows = group_rows(m)
    thirds = layer_thirds(m)
    drop = m.delta.mean(axis=1)
    diff_lo, diff_hi = stats.difference_interval(drop[m.where("LOSE")], drop[m.where("WIN")])
    diff = (float(drop[m.where("LOSE")].mean() - drop[m.where("WIN")].mean()) * SCALE
            if m.where("LOSE").any() and m.where("WIN").any() else float("nan"), diff_lo * SCALE, diff_hi * SCALE)
    bumps = {}
    for g in GROUP_ORDER:
        b = m.bump[m.where(g)]
        b = b[np.isfinite(b)]
        bumps[g] = (b.mean() * SCALE, *(x * SCALE for x in stats.bootstrap(b)), b.size) if b.size else None
    everyone = list(table) if table is not None else [r for r in records if "think_score" in r]
    corr_acc = stats.correlations([r["reasoning_tokens"] for r in everyone], [r["think_score"] for r in everyone])
    corr_gain = stats.correlations([r["reasoning_tokens"] for r in everyone], [r["gain"] for r in everyone])
    aucs = auc_rows(m, artifact, examples)
    picked = pick_examples(m, records)
    fig_traces(picked, out_dir / "fig1_traces.png")
    fig_delta(m, out_dir / "fig2_delta_beta.png")
    measured_records = [r for r in records if "skipped" not in r]
    seconds = sum(r["seconds"] for r in measured_records)
    peak = max(r["peak_rss_mb"] for r in measured_records)
    tokens = sum(r["base"]["tokens"] + r["cot"]["tokens"] for r in measured_records)
    first, second = verdict(rows, diff)
    control = control_summary(m)
    third = control_sentence(control)

    lines = ["# Constraint attention with and without thinking", "",
             "Produced by (from the repository root):", "", "```bash", command, "```", "",
             f"{total} prompts analysed; {len(m.ids)} measured; left out: "
             + (", ".join(f"{n} ({reason}: {_by_group(analysed, reason)})" for reason, n in skipped.items())
                or "none") + ". "
             f"Groups (measured): " + ", ".join(f"{g} {int(m.where(g).sum())}" for g in GROUP_ORDER) + ".", "",
             "Each prompt is teacher-forced twice (base: prompt → recorded direct answer; CoT: prompt → `<think>` → "
             "recorded reasoning → `</think>` → recorded answer), one forward pass each with eager attention. "
             "α(l,t) is the newest token's attention at step t and layer l, averaged over heads and over the "
             "constraint tokens (prompt tokens inside the constraint detector's spans); β(l) averages α over the "
             "answer's steps" + (f" (the first {max_answer_tokens} answer tokens of each run)" if max_answer_tokens
                                 else "") + "; Δβ(l) = β_base(l) − β_CoT(l). Values are in units of 10⁻³.", "",
             f"Cost: {seconds / 60:.1f} min of forward passes for {tokens:,} tokens "
             f"({seconds / len(m.ids):.2f} s per prompt, both runs), peak resident memory {peak:.0f} MB "
             "(float32, one thread, on a 2-core machine shared with other jobs).", "",
             "## Verdict", "", f"- {first}", f"- {second}", f"- {third}", "",
             "## Drop per group", "", "| group | n | β_base | β_CoT | mean Δβ [95% CI] | relative drop | Δβ > 0 |",
             "|---|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        if r["n"]:
            lines.append(f"| {r['group']} | {r['n']} | {_fmt(r['beta_base'])} | {_fmt(r['beta_cot'])} | "
                         f"{_fmt(r['drop'])} {_ci(r['drop_lo'], r['drop_hi'])} | {r['relative']:.1%} | "
                         f"{r['share_positive']:.1%} |")
    lines += ["", f"LOSE − WIN mean drop: {_fmt(diff[0])} {_ci(diff[1], diff[2])}.", "",
              "Mean Δβ by layer third (early / middle / late): " + "; ".join(
                  f"{g} {' / '.join(_fmt(v) for v in thirds[g])}" for g in GROUP_ORDER) + ".", "",
              "![Fig. 2](fig2_delta_beta.png)", "",
              "## Is the drop specific to the constraints?", "",
              "After thinking, the answer sits behind a longer context, so attention to *any* prompt token may "
              "fall. Control: β over the user message's tokens outside the constraint spans, from the same "
              "forward passes. Per prompt, the ratio β_constraint / β_other in each run; the table shows how much "
              "that ratio falls with thinking (base − CoT; > 0: the constraints lose more than the rest).", "",
              "| group | n | relative drop, constraint tokens | relative drop, other tokens | ratio drop [95% CI] |",
              "|---|---:|---:|---:|---|"]
    for g, (mean, lo, hi, n, rel_c, rel_o) in control.get("groups", {}).items():
        lines.append(f"| {g} | {n} | {rel_c:.1%} | {rel_o:.1%} | {_fmt(mean)} {_ci(lo, hi)} |")
    lines += ["", third, "",
              "## Traces (Fig. 1)", "",
              "One typical prompt per group (layer-averaged drop closest to its group's median, at least 32 "
              "thinking tokens). The CoT trace runs from the start of thinking; the base run's answer is drawn "
              "from the CoT answer's start so the two answers line up.", "", "![Fig. 1](fig1_traces.png)", "",
              "## Is there a bump when the answer starts?", "",
              f"Per prompt, CoT run: mean ᾱ over the first {stats.BUMP_WINDOW} answer steps minus the mean over "
              f"the last {stats.BUMP_WINDOW} steps before them (end of the reasoning and the closing tag).", "",
              "| group | n | mean bump [95% CI] |", "|---|---:|---|"]
    for g in GROUP_ORDER:
        if bumps[g]:
            mean, lo, hi, n = bumps[g]
            lines.append(f"| {g} | {n} | {_fmt(mean)} {_ci(lo, hi)} |")
    win_bump = bumps.get("WIN")
    lines += ["", ("WIN answers show a bump: attention to the constraints rises when the answer starts."
                   if win_bump and win_bump[1] > 0 else
                   "WIN answers show no clear bump (the interval includes 0 or lies below it)."
                   if win_bump else "No WIN prompt was measured."), "",
              "## Reasoning length and accuracy" + (" (every prompt of the outcome table)" if table is not None
                                                   else " (the analysed prompts)"), "",
              f"Reasoning tokens vs think-mode accuracy ({len(everyone)} prompts): Pearson "
              f"{corr_acc['pearson']:.3f}, Spearman {corr_acc['spearman']:.3f}. Reasoning tokens vs gain "
              f"(think − direct): Pearson {corr_gain['pearson']:.3f}, Spearman {corr_gain['spearman']:.3f}.", "",
              "## Could the mechanism decide? AUC for predicting LOSE", "",
              "| predictor | prompts | n (LOSE) | AUC [95% CI] |", "|---|---|---:|---|"]
    for r in aucs:
        lines.append(f"| {r['predictor']} | {r['prompts']} | {r['n']} ({r['lose']}) | {_fmt(r['auc'])} "
                     f"{_ci(r['lo'], r['hi'])} |")
    lines += ["", "The directions were fixed before looking (the paper's: more drop, or more to lose, means LOSE); "
              "an AUC below 0.5 means the opposite direction ranks better. The decision model was fitted on the "
              "other half of the prompts; it is compared only on its held-out ids"
              + (f" ({artifact})" if artifact else "") + ", where none of the three saw the labels.", "",
              "At serving time Δβ cannot be used: it needs the CoT answer (thinking already paid for) and the "
              "base answer, plus the model's attention weights, which API upstreams never expose and which need "
              "eager attention (slower than the fused kernels) on a local model. β_base needs the direct answer "
              "first, so it could only drive an escalate-after-answering step, never a decision before the call; "
              "the decision model needs only the prompt text and decides in microseconds."]
    (out_dir / "README.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    summary = {"groups": rows, "lose_minus_win": diff, "control": control, "thirds": thirds, "bumps": bumps, "aucs": aucs,
               "reasoning_length_vs_accuracy": corr_acc, "reasoning_length_vs_gain": corr_gain,
               "left_out": dict(skipped), "seconds": seconds, "peak_rss_mb": peak, "tokens": tokens,
               "examples": {g: r["id"] for g, r in picked.items()}}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1, default=float) + "\n", encoding="utf-8")
    auc_line = "; ".join(f"{r['predictor'].split(' (')[0]} {_fmt(r['auc'])}" for r in aucs
                         if r["prompts"].startswith("decision")) or "; ".join(
                             f"{r['predictor'].split(' (')[0]} {_fmt(r['auc'])}" for r in aucs)
    return "\n".join([f"measured {len(m.ids)} of {total} prompts (left out: {dict(skipped)})",
                      first, second, third, f"AUC for LOSE: {auc_line}", f"report: {out_dir / 'README.md'}"])

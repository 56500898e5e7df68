"""Plots of ``metrics.jsonl`` (PNG) and the short ``report.md`` written next to a trained model."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def plot_metrics(metrics_path: str | Path, output_png: str | Path, title: str) -> Path | None:
    """Training losses (left) and evaluation metrics (right) against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    if not records:
        return None
    train = [r for r in records if "loss" in r]
    evals = [r for r in records if any(k.startswith("eval/") for k in r)]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    loss_keys = sorted({k for r in train for k in r} - {"step", "epoch", "lr", "samples_per_s", "skipped_nonfinite",
                                                       "grad_norm"})
    for key in loss_keys:
        left.plot([r["step"] for r in train if key in r], [r[key] for r in train if key in r], label=key)
    left.set_xlabel("step")
    left.set_title("training losses")
    left.legend()
    eval_keys = sorted({k for r in evals for k in r if k.startswith("eval/") and isinstance(r[k], (int, float))})
    for key in eval_keys:
        right.plot([r["step"] for r in evals if key in r], [r[key] for r in evals if key in r], marker="o", label=key)
    right.set_xlabel("step")
    right.set_title("evaluation")
    if eval_keys:
        right.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(output_png, dpi=100)
    plt.close(figure)
    return Path(output_png)


def accuracy_gap(model: dict[str, Any], baseline: dict[str, Any]) -> dict[str, Any] | None:
    """``model`` − ``baseline`` accuracy on the same ``n`` test rows, two standard errors of that
    difference (unpaired binomial: cautious), and whether the gap is beyond them."""
    n, a, b = model.get("n"), model.get("accuracy"), baseline.get("accuracy")
    if not n or a is None or b is None:
        return None
    two_se = 2 * math.sqrt((a * (1 - a) + b * (1 - b)) / n)
    return {"accuracy_gap": a - b, "two_standard_errors": two_se, "beyond_noise": abs(a - b) >= two_se}


def pair_rows(keys_a: np.ndarray, values_a: np.ndarray, keys_b: np.ndarray, values_b: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray]:
    """The values of the rows both sides have, aligned by row key (a key that occurs k times on
    one side and m on the other pairs min(k, m) times, in order). Rows only one side has are left
    out; the caller reports how many were paired."""
    waiting: dict[int, list[int]] = {}
    for index, key in enumerate(keys_b.tolist()):
        waiting.setdefault(key, []).append(index)
    left, right = [], []
    for index, key in enumerate(keys_a.tolist()):
        queue = waiting.get(key)
        if queue:
            left.append(index)
            right.append(queue.pop(0))
    return values_a[np.asarray(left, np.int64)], values_b[np.asarray(right, np.int64)]


def paired_accuracy_gap(model_correct: np.ndarray, baseline_correct: np.ndarray) -> dict[str, Any] | None:
    """``model`` − ``baseline`` accuracy on the same rows, judged on the rows they disagree on:
    b rows only the model gets right, c only the baseline; the gap is (b − c) / n and its
    standard error √(b + c − (b − c)²/n) / n (the paired difference of two proportions, the
    statistic behind McNemar's test). Far tighter than :func:`accuracy_gap` when both models
    get the same rows right, as two classifiers of one task mostly do."""
    n = len(model_correct)
    if not n or len(baseline_correct) != n:
        return None
    b = int(np.sum(model_correct & ~baseline_correct))
    c = int(np.sum(~model_correct & baseline_correct))
    two_se = 2 * math.sqrt(max(b + c - (b - c) ** 2 / n, 0.0)) / n
    gap = (b - c) / n
    return {"n": n, "model_only_right": b, "baseline_only_right": c, "accuracy_gap": gap,
            "two_standard_errors": two_se, "beyond_noise": b != c and abs(gap) >= two_se}


def comparison_noise(student: dict[str, Any], baseline: dict[str, Any],
                     paired: dict[str, Any] | None = None) -> str | None:
    """A line saying whether the student − baseline accuracy gap stands out of the test split's
    sampling noise: two standard errors of the difference of two accuracies on ``n`` rows each
    (unpaired, so on the cautious side). ~600 test rows carry ±1.6 points of noise each. With
    ``paired`` (:func:`paired_accuracy_gap` on the same rows) the test is the paired one, and the
    line says on how many rows each model alone was right."""
    gap = paired or accuracy_gap(student, baseline)
    if gap is None:
        return None
    rows = paired["n"] if paired else student["n"]
    head = f"- accuracy gap student − baseline {100 * gap['accuracy_gap']:+.1f} points on {rows} test rows"
    if paired:
        head += (f", paired (only the student right on {paired['model_only_right']}, only the baseline on "
                 f"{paired['baseline_only_right']})")
    two_se = f"±{100 * gap['two_standard_errors']:.1f}"
    if gap["beyond_noise"]:
        return f"{head}: beyond two standard errors ({two_se})"
    return (f"{head}: WITHIN the noise of two standard errors ({two_se}); a larger test split (--split-column) "
            "can tell them apart")


def write_report(path: str | Path, *, title: str, summary: dict[str, Any], evaluation: dict[str, Any],
                 parameters: dict[str, Any], speed: dict[str, Any] | None, plot: str | None) -> None:
    """A short Markdown report: teacher vs student, size, speed, training summary. The noise line
    is paired when ``evaluation`` has ``vs_baseline_paired``."""
    student, teacher = evaluation.get("student", {}), evaluation.get("teacher", {})

    def fmt(value: Any) -> str:
        return f"{value:.4f}" if isinstance(value, float) else str(value)

    baseline = evaluation.get("baseline") or {}
    with_baseline = "accuracy" in baseline
    header = "| | teacher (stored logits) | student |" + (" char 1-3-gram TF-IDF + LR |" if with_baseline else "")
    lines = [f"# {title}", "", header, "|---|---|---|" + ("---|" if with_baseline else "")]
    for key in ("accuracy", "macro_f1", "ece", "n"):
        lines.append(f"| {key} | {fmt(teacher.get(key, '–'))} | {fmt(student.get(key, '–'))} |"
                     + (f" {fmt(baseline.get(key, '–'))} |" if with_baseline else ""))
    if with_baseline:
        verdict = "beats" if student.get("macro_f1", 0) > baseline.get("macro_f1", 0) else "does NOT beat"
        lines += ["", f"- the student {verdict} the cheap baseline on macro-F1 (trained on the same "
                  f"{baseline.get('train_rows')} labeled rows in {baseline.get('fit_seconds', 0):.1f} s; "
                  f"{baseline.get('latency_ms_batch1_served', 0):.2f} ms per request, normalizer included)"]
        noise = comparison_noise(student, baseline, evaluation.get("vs_baseline_paired"))
        if noise:
            lines.append(noise)
    lines += ["", f"- retention (student / teacher accuracy): {fmt(evaluation.get('retention', '–'))}",
              f"- agreement with the teacher's argmax: {fmt(evaluation.get('agreement_with_teacher', '–'))}",
              f"- student parameters: {parameters.get('total'):,} total, {parameters.get('non_embedding'):,} "
              "without embeddings"]
    if speed:
        lines.append(f"- CPU (1 thread): {speed['latency_ms_batch1']:.2f} ms at batch 1 "
                     f"({speed['latency_ms_batch1_torchscript']:.2f} ms as TorchScript), "
                     f"{speed['throughput_batch64']:.0f} sentences/s at batch 64")
    lines += [f"- training: {summary.get('steps')} steps in {summary.get('seconds', 0):.1f} s on "
              f"{summary.get('device')} (bf16: {summary.get('bf16')}, CUDA graphs: {summary.get('cuda_graphs')}), "
              f"status {summary.get('status')}"]
    if summary.get("exported"):
        lines.append(f"- exported: {summary['exported']}")
    if correction := summary.get("prior_correction"):
        fitted = (f" (fitted on {correction['fitted_on']}: macro-F1 {correction['macro_f1_before']:.4f} → "
                  f"{correction['macro_f1_after']:.4f}, accuracy {correction['accuracy_before']:.4f} → "
                  f"{correction['accuracy_after']:.4f})") if correction.get("fitted_on") else ""
        lines.append(f"- prior correction: the classifier's bias minus τ = {correction['tau']:g} × log(train label "
                     f"share){fitted}; the scores above are the corrected model's")
    if plot:
        lines += ["", f"![metrics]({Path(plot).name})"]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

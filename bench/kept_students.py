"""Second looks at a kept real-data run (``bench.real_data --keep DIR``): each student against the
n-gram baseline on the same test rows, and what ``kd.distill --prior-correction auto`` would do.

    .venv/bin/python -m bench.kept_students DIR [--tasks nsmc,3i4k] [--variant ens+aug] [--json FILE]

For every seed's student: the paired accuracy gap (``kd.report.paired_accuracy_gap``), a paired
bootstrap of the macro-F1 gap (the same resampled rows for both; macro-F1 has no closed-form
standard error, and rare classes make it noisy), and the logit adjustment fitted on the valid split
as ``--prior-correction auto`` fits it (``kd.evaluate.fit_prior_correction``) with its test scores.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from kd.evaluate import macro_f1


def bootstrap_gap(labels: np.ndarray, a: np.ndarray, b: np.ndarray, num_labels: int, rounds: int = 2000,
                  seed: int = 0) -> dict[str, float]:
    """Macro-F1 of ``a`` − macro-F1 of ``b`` on the same rows, with a paired bootstrap's 95% interval."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(rounds):
        rows = rng.integers(0, len(labels), len(labels))
        gaps.append(macro_f1(labels[rows], a[rows], num_labels) - macro_f1(labels[rows], b[rows], num_labels))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return {"macro_f1_gap": macro_f1(labels, a, num_labels) - macro_f1(labels, b, num_labels),
            "ci95": [float(low), float(high)], "share_of_resamples_above_0": float(np.mean(np.asarray(gaps) > 0))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("kept", help="a bench.real_data --keep folder")
    parser.add_argument("--tasks", default="nsmc,3i4k")
    parser.add_argument("--variant", default="ens+aug")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    import torch
    from transformers import AutoModelForSequenceClassification

    from kd.baseline import evaluate_baseline, keyed_labeled_rows
    from kd.data import open_kd_dataset
    from kd.evaluate import (
        classification_metrics,
        fit_prior_correction,
        log_prior,
        predict_kd_split,
        prior_corrected,
    )
    from kd.report import pair_rows, paired_accuracy_gap

    report: dict = {"kept": args.kept, "variant": args.variant}
    for task in args.tasks.split(","):
        folder = Path(args.kept) / task
        opened = open_kd_dataset(str(folder / "kd"))
        num_labels = len(opened.provenance["label_names"])
        base: dict = {}
        evaluate_baseline(opened, "test", rows=base)
        prior = log_prior(keyed_labeled_rows(opened, "train", keys=False)[1], num_labels)
        rows = []
        for student in sorted(folder.glob(f"student-{args.variant}-*"), key=lambda p: int(p.name.rsplit("-", 1)[1])):
            model = AutoModelForSequenceClassification.from_pretrained(student).eval()
            test = predict_kd_split(model, opened, "test", device=torch.device("cpu"), keys=True)
            valid = predict_kd_split(model, opened, "valid", device=torch.device("cpu"))
            predicted = test["probs"].argmax(1)
            ours, theirs = pair_rows(test["keys"], np.stack([predicted, test["labels"]], 1), base["keys"],
                                     base["predicted"])
            fitted = fit_prior_correction(valid["probs"], valid["labels"], prior)  # as --prior-correction auto
            after = classification_metrics(test["labels"], prior_corrected(test["probs"], fitted["tau"], prior))
            rows.append({"student": student.name,
                         "accuracy_vs_baseline_paired": paired_accuracy_gap(ours[:, 0] == ours[:, 1],
                                                                            theirs == ours[:, 1]),
                         "macro_f1_vs_baseline": bootstrap_gap(ours[:, 1], ours[:, 0], theirs, num_labels),
                         "prior_correction_auto": {**fitted, "test_accuracy": after["accuracy"],
                                                   "test_macro_f1": after["macro_f1"]}})
            print(task, json.dumps(rows[-1]), flush=True)
        report[task] = rows
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

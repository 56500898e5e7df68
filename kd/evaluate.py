"""``python -m kd.evaluate``: accuracy, macro-F1, calibration, retention, size and CPU speed.

    python -m kd.evaluate --data KD_DIR --model STUDENT_DIR [--model STUDENT_DIR_SEED2 …] [--split test]

The teacher's accuracy on the same split comes from the ``teacher_logits`` stored in the kd
shards, so retention (student / teacher accuracy) needs no teacher model. With several
``--model`` runs (seeds), each figure is reported as mean ± std.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import tokenizer_hash, tokenizer_hashes
from kd.data import DEFAULT_BUCKETS, BucketBatches, Chunk, OpenedDataset, kd_chunks, open_kd_dataset, row_keys
from kd.models import count_parameters, torchscript_for_cpu
from schemas import storage
from schemas.options import MalmoiError, config_command, option


def classification_metrics(labels: np.ndarray, probs: np.ndarray, num_bins: int = 15) -> dict[str, float]:
    """Accuracy, macro-F1 and expected calibration error (equal-width confidence bins) on labeled rows."""
    keep = labels >= 0
    labels, probs = labels[keep], probs[keep]
    if not len(labels):
        return {"n": 0}
    preds = probs.argmax(axis=1)
    accuracy = float((preds == labels).mean())
    confidence = probs.max(axis=1)
    edges = np.linspace(0, 1, num_bins + 1)
    ece = 0.0
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        in_bin = (confidence > low) & (confidence <= high)
        if in_bin.any():
            ece += in_bin.mean() * abs(float((preds[in_bin] == labels[in_bin]).mean()) - float(confidence[in_bin].mean()))
    return {"n": int(len(labels)), "accuracy": accuracy, "macro_f1": macro_f1(labels, preds, probs.shape[1]),
            "ece": float(ece)}


def macro_f1(labels: np.ndarray, predicted: np.ndarray, num_labels: int) -> float:
    """Mean F1 over the classes that occur in ``labels`` or ``predicted``."""
    f1s = []
    for c in range(num_labels):
        tp = float(((predicted == c) & (labels == c)).sum())
        fp = float(((predicted == c) & (labels != c)).sum())
        fn = float(((predicted != c) & (labels == c)).sum())
        if tp + fp + fn:
            f1s.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


@torch.no_grad()
def predict_kd_split(model: torch.nn.Module, opened: OpenedDataset, split: str, *, batch_size: int = 128,
                     pad_id: int = 0, device: torch.device | None = None, keys: bool = False) -> dict[str, np.ndarray]:
    """Student probabilities, gold labels and teacher probabilities for every row of ``split``; with
    ``keys``, each row's key too (:func:`kd.data.row_keys`: the rows come back in bucket order, the
    keys pair them with another model's predictions on the same rows)."""
    device = device or next(model.parameters()).device

    def keyed(chunk: Chunk) -> Chunk:
        chunk.columns["row_key"] = row_keys(chunk)
        return chunk

    def chunks(epoch: int):
        stream = kd_chunks(opened, split, None, 0)
        return map(keyed, stream) if keys else stream

    batches = BucketBatches(chunks, batch_size=batch_size, buckets=DEFAULT_BUCKETS, pad_id=pad_id, seed=0,
                            shuffle_rows=1 << 30)
    probs, labels, teacher, found = [], [], [], []
    was_training = model.training
    model.eval()
    for batch in batches.epoch(0):
        real = batch["weight"] > 0
        inputs = {k: torch.from_numpy(batch[k]).to(device) for k in ("input_ids", "attention_mask")}
        out = model(**inputs)
        logits = out[0] if isinstance(out, tuple) else out.logits
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy()[real])
        labels.append(batch["label"][real])
        teacher.append(torch.softmax(torch.from_numpy(batch["teacher_logits"]), -1).numpy()[real])
        if keys:
            found.append(batch["row_key"][real])
    model.train(was_training)
    if not probs:
        return {"probs": np.zeros((0, 0)), "labels": np.zeros(0, np.int64), "teacher_probs": np.zeros((0, 0)),
                **({"keys": np.zeros(0, np.int64)} if keys else {})}
    return {"probs": np.concatenate(probs), "labels": np.concatenate(labels), "teacher_probs": np.concatenate(teacher),
            **({"keys": np.concatenate(found)} if keys else {})}


def correct_rows(predictions: dict[str, np.ndarray]) -> np.ndarray:
    """Whether the model's argmax is the gold label, per row of :func:`predict_kd_split`'s output."""
    if not len(predictions["probs"]):
        return np.zeros(0, bool)
    return predictions["probs"].argmax(1) == predictions["labels"]


PRIOR_CORRECTION_GRID = tuple(round(0.1 * i, 1) for i in range(16))  # τ = 0, 0.1, …, 1.5


def log_prior(labels: np.ndarray, num_labels: int) -> np.ndarray:
    """log of each class's share of the gold labels (add-one smoothed, so an absent class is finite)."""
    counts = np.bincount(labels[labels >= 0], minlength=num_labels)[:num_labels].astype(np.float64) + 1
    return np.log(counts / counts.sum())


def prior_corrected(probs: np.ndarray, tau: float, prior: np.ndarray) -> np.ndarray:
    """Scores whose argmax is the logit-adjusted decision: exp(log p − τ·log prior), row max 1."""
    adjusted = np.log(np.clip(probs, 1e-12, 1.0)) - tau * prior
    return np.exp(adjusted - adjusted.max(axis=1, keepdims=True))


def fit_prior_correction(probs: np.ndarray, labels: np.ndarray, prior: np.ndarray,
                         grid: tuple[float, ...] = PRIOR_CORRECTION_GRID) -> dict[str, float]:
    """The τ of ``grid`` whose logit adjustment (predict argmax of log p − τ·log prior; Menon et
    al. 2021, "Long-tail learning via logit adjustment") gives the best macro-F1 on these rows,
    the smallest τ among ties; with the macro-F1 and accuracy before (τ = 0) and after."""
    def scores(tau: float) -> dict[str, float]:
        return classification_metrics(labels, prior_corrected(probs, tau, prior))

    results = {tau: scores(tau) for tau in grid}
    best = max(grid, key=lambda tau: (round(results[tau].get("macro_f1", 0.0), 10), -tau))
    return {"tau": float(best), "macro_f1_before": scores(0.0).get("macro_f1", 0.0),
            "macro_f1_after": results[best].get("macro_f1", 0.0), "accuracy_before": scores(0.0).get("accuracy", 0.0),
            "accuracy_after": results[best].get("accuracy", 0.0)}


def apply_prior_correction(model: torch.nn.Module, tau: float, prior: np.ndarray) -> None:
    """Subtract τ·log prior from the classifier's output bias, in place: the exported model then
    serves the adjusted decision with no code of malmoi's (any ``AutoModelForSequenceClassification``)."""
    head = getattr(model, "classifier", None)
    bias = getattr(head, "bias", None)
    if not isinstance(bias, torch.nn.Parameter) or bias.shape != (len(prior),):
        raise MalmoiError(f"--prior-correction adjusts the classifier's output bias; {type(model).__name__} has no "
                          f"`classifier` with a bias of {len(prior)} classes.",
                          "use a sequence-classification student (BERT-style), or leave --prior-correction at 0.")
    with torch.no_grad():
        bias -= torch.as_tensor(tau * prior, dtype=bias.dtype, device=bias.device)


#: what to try when a distilled student or a fine-tuned teacher predicts one class for every row
STUCK_ADVICE = {
    "the student": "Try a higher --learning-rate (from-scratch students often need 1e-3 to 3e-3), more --max-steps, "
                   "the soft labels (--kl 1), or --student-init / --student-from-teacher.",
    "the teacher": "Try more --max-steps, another --learning-rate (5e-5 suits a pretrained checkpoint, 5e-4 a small "
                   "masked LM pretrained here), or an --init pretrained for longer (a masked LM still near its "
                   "unigram loss gives every sentence the same vector).",
}


def stuck_at_majority(history: list[dict], num_labels: int, patience: int = 3, who: str = "the student") -> str | None:
    """A warning when the last ``patience`` evaluations all predicted one class for (nearly) every
    valid row (``history``: each evaluation's ``probs`` and ``labels``) — the model sits at the
    majority-class rate and is learning nothing; ``who`` picks what the warning advises."""
    if len(history) < patience:
        return None
    for predictions in history[-patience:]:
        predicted = predictions["probs"].argmax(1) if len(predictions["probs"]) else np.zeros(0, int)
        if not len(predicted) or np.bincount(predicted, minlength=num_labels).max() < 0.98 * len(predicted):
            return None
    labels = history[-1]["labels"]
    labeled = labels[labels >= 0]
    majority = np.bincount(labeled, minlength=num_labels).max() / len(labeled) if len(labeled) else float("nan")
    evaluations = f"in the last {patience} evaluations" if patience > 1 else "as exported"
    return (f"{who} has predicted one class for nearly every valid row {evaluations} (accuracy = the "
            f"majority-class rate {majority:.3f}): it is not learning. {STUCK_ADVICE[who]}")


def kd_split_metrics(predictions: dict[str, np.ndarray]) -> dict[str, Any]:
    """Student and teacher metrics on the same rows, retention and agreement."""
    student = classification_metrics(predictions["labels"], predictions["probs"])
    teacher = classification_metrics(predictions["labels"], predictions["teacher_probs"])
    out: dict[str, Any] = {"student": student, "teacher": teacher}
    if student.get("n") and teacher.get("accuracy"):
        out["retention"] = student["accuracy"] / teacher["accuracy"]
    if len(predictions["probs"]):
        out["agreement_with_teacher"] = float(
            (predictions["probs"].argmax(1) == predictions["teacher_probs"].argmax(1)).mean())
    return out


def cpu_speed(model: torch.nn.Module, tokenizer: Any, texts: list[str], *, repeats: int = 30) -> dict[str, float]:
    """Median CPU latency at batch 1 (ms) with the eager forward and with the TorchScript copy
    a CPU service would run (:func:`kd.models.torchscript_for_cpu`), and eager throughput at
    batch 64 (sentences/s); one thread."""
    model = model.to("cpu").eval()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        single = [tokenizer(t, return_tensors="pt") for t in texts[:repeats]]
        scripted = torchscript_for_cpu(model, single[0]["input_ids"])
        with torch.inference_mode():
            eager = _median_ms(lambda inputs: model(**inputs), single)
            served = _median_ms(lambda inputs: scripted(inputs["input_ids"], inputs["attention_mask"]), single)
            batch = tokenizer(texts[:64], return_tensors="pt", padding=True)
            model(**batch)
            start = time.perf_counter()
            rounds = 3
            for _ in range(rounds):
                model(**batch)
            throughput = rounds * len(texts[:64]) / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return {"latency_ms_batch1": eager, "latency_ms_batch1_torchscript": served, "throughput_batch64": throughput}


def interleaved_latency(model_dirs: dict[str, str], texts: list[str], *, repeats: int = 30,
                        passes: int = 5) -> dict[str, dict[str, float]]:
    """Median batch-1 CPU latency (ms, one thread) of several models timed **in turn on each
    sentence**, eager and as TorchScript, so a shared machine's drift hits all of them alike
    (timing one model after another does not: ratios then move by tens of percent)."""
    loaded = {}
    for name, folder in model_dirs.items():
        model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = load_subword_tokenizer(folder)
        single = [tokenizer(t, return_tensors="pt") for t in texts[:repeats]]
        loaded[name] = (model, torchscript_for_cpu(model, single[0]["input_ids"]), single)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, dict[str, list[float]]] = {n: {"eager": [], "torchscript": []} for n in loaded}
    try:
        with torch.inference_mode():
            for round_ in range(passes + 1):  # round 0 warms up
                for i in range(len(texts[:repeats])):
                    for name, (model, scripted, single) in loaded.items():
                        inputs = single[i]
                        start = time.perf_counter()
                        model(**inputs)
                        middle = time.perf_counter()
                        scripted(inputs["input_ids"], inputs["attention_mask"])
                        end = time.perf_counter()
                        if round_:
                            times[name]["eager"].append(middle - start)
                            times[name]["torchscript"].append(end - middle)
    finally:
        torch.set_num_threads(threads)
    return {name: {f"latency_ms_batch1{'' if kind == 'eager' else '_torchscript'}": 1000 * statistics.median(values)
                   for kind, values in kinds.items()} for name, kinds in times.items()}


def _median_ms(forward: Callable[[dict], Any], inputs: list[dict], passes: int = 3) -> float:
    """Median over ``passes`` rounds of every input (a shared CPU is noisy)."""
    for item in inputs[:3]:  # warm-up
        forward(item)
    latencies = []
    for _ in range(passes):
        for item in inputs:
            start = time.perf_counter()
            forward(item)
            latencies.append(time.perf_counter() - start)
    return 1000 * statistics.median(latencies)


def check_model_matches(model_dir: str, model: torch.nn.Module, opened: OpenedDataset) -> None:
    """Refuse a model whose labels (in order) or tokenizer differ from the shards': its scores would
    compare other classes or other token ids (a model with swapped labels would score 1 - accuracy)."""
    provenance = opened.provenance
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    problems = []
    if labels != list(provenance.get("label_names", labels)):
        problems.append(f"its labels are {labels}, the shards' {list(provenance['label_names'])}")
    try:
        found = tokenizer_hashes(model_dir)
    except FileNotFoundError:
        found = None
    expected = provenance.get("student_tokenizer_hash")
    if found and expected and expected not in found:
        problems.append(f"its tokenizer hash is {tokenizer_hash(model_dir)}, the shards were made with {expected}")
    if problems:
        raise MalmoiError(f"--model {model_dir} does not match --data {opened.folder}: " + "; ".join(problems) + ".",
                          "evaluate a model trained on these shards (kd.distill --data with the same tokenizer).")


def served_latency_ms(model_dir: str, texts: list[str], *, torchscript: bool = True) -> float:
    """Median milliseconds per request of the whole served path at batch 1 — raw text through the
    model's recorded normalizer, its tokenizer and the model (``kd.predict.Predictor``), one thread."""
    from kd.predict import Predictor

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        predictor = Predictor(model_dir, torchscript=torchscript)
        predictor.predict(texts[:2])  # load the judge, trace
        times = []
        for text in texts:
            start = time.perf_counter()
            predictor.predict([text])
            times.append(1000 * (time.perf_counter() - start))
        return float(np.median(times))
    finally:
        torch.set_num_threads(threads)


def evaluate_model_dir(model_dir: str, opened: OpenedDataset, split: str, texts: list[str],
                       rows: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
    """A model's scores on ``split`` beside the teacher's, its size and its CPU speed; given
    ``rows`` (a dict), fills it with each row's ``keys`` and whether the model got it ``correct``."""
    model = AutoModelForSequenceClassification.from_pretrained(model_dir)
    check_model_matches(model_dir, model, opened)
    tokenizer = load_subword_tokenizer(model_dir)
    predictions = predict_kd_split(model, opened, split, pad_id=tokenizer.pad_token_id or 0,
                                   device=torch.device("cpu"), keys=rows is not None)
    if rows is not None:
        rows.update(keys=predictions["keys"], correct=correct_rows(predictions))
    return {"model": model_dir, **kd_split_metrics(predictions), "parameters": count_parameters(model),
            **cpu_speed(model, tokenizer, texts), "latency_ms_batch1_served": served_latency_ms(model_dir, texts)}


def model_groups(specs: tuple[str, ...]) -> dict[str, list[str]]:
    """``--model`` values -> rows: ``NAME=DIR`` groups the runs of one NAME (seeds of one model,
    reported as mean ± std); a bare ``DIR`` is a row of its own."""
    groups: dict[str, list[str]] = {}
    for spec in specs:
        name, _, folder = spec.partition("=") if "=" in spec and not Path(spec).exists() else (spec, "", spec)
        groups.setdefault(name, []).append(folder)
    return groups


def mean_std(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± std of every numeric leaf over runs (std is 0 for one run)."""
    def flatten(d: dict, prefix: str = "") -> dict[str, float]:
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out.update(flatten(v, f"{prefix}{k}."))
            elif isinstance(v, (int, float)) and not isinstance(v, bool):
                out[f"{prefix}{k}"] = float(v)
        return out

    flats = [flatten(r) for r in runs]
    keys = sorted(set().union(*flats)) if flats else []
    return {k: {"mean": statistics.fmean(f[k] for f in flats if k in f),
                "std": statistics.pstdev([f[k] for f in flats if k in f]) if len(flats) > 1 else 0.0}
            for k in keys}


def split_texts(opened: OpenedDataset, split: str, limit: int = 64) -> list[str]:
    import pyarrow.compute as pc

    texts: list[str] = []
    for path in opened.files:
        table = storage.read_table(path, columns=["text", "split"])
        texts += table.filter(pc.equal(table.column("split"), split)).column("text").to_pylist()
        if len(texts) >= limit:
            break
    return (texts or ["안녕하세요"])[:limit]


@dataclass(frozen=True, kw_only=True)
class EvaluateConfig:
    data: str = option(help="kd shards with the split to evaluate on", metavar="DIR", required=True)
    models: tuple[str, ...] = option(help="a model dir, one row each; NAME=DIR groups several dirs (seeds) into one "
                                     "row with mean ± std; repeat", flag="--model", repeat=True, metavar="[NAME=]DIR",
                                     required=True)
    split: str = option("test", help="which split")
    baseline: bool = option(True, help="add the char 1-3-gram TF-IDF + LR row, trained on the same train rows",
                            flag="--no-baseline")
    output: str | None = option(None, help="write the results as JSON here", metavar="FILE")


def main(argv: list[str] | None = None) -> int:
    def command(config: EvaluateConfig) -> None:
        opened = open_kd_dataset(config.data)
        texts = split_texts(opened, config.split)
        rows, rows_scored = [], []  # rows_scored: per run, its per-row keys and correctness
        for name, folders in model_groups(config.models).items():
            scored: list[dict] = [{} for _ in folders]
            runs = [evaluate_model_dir(folder, opened, config.split, texts, rows=found)
                    for folder, found in zip(folders, scored, strict=True)]
            rows.append({"name": name, "seeds": len(runs), "runs": runs, "summary": mean_std(runs)})
            rows_scored.append(scored)
        result: dict[str, Any] = {"split": config.split, "rows": rows}
        if config.baseline:
            from kd.baseline import evaluate_baseline
            from kd.report import accuracy_gap, pair_rows, paired_accuracy_gap

            baseline_rows: dict[str, np.ndarray] = {}
            result["baseline"] = evaluate_baseline(opened, config.split, rows=baseline_rows,
                                                   normalizer_config=opened.provenance.get("normalizer_config"))
            for row, scored in zip(rows, rows_scored, strict=True):  # each gap beyond the test split's noise?
                mean = {"n": row["runs"][0]["student"].get("n"), "accuracy": row["summary"].get("student.accuracy",
                                                                                             {}).get("mean")}
                row["vs_baseline"] = accuracy_gap(mean, result["baseline"])
                if baseline_rows:  # each run against the baseline on the same rows (paired: less noise)
                    row["vs_baseline_paired"] = [
                        paired_accuracy_gap(*pair_rows(r["keys"], r["correct"], baseline_rows["keys"],
                                                       baseline_rows["correct"]))
                        for r in scored]
        text = json.dumps(result, indent=2, ensure_ascii=False)
        if config.output:
            Path(config.output).write_text(text + "\n", encoding="utf-8")
        print(text)

    return config_command(EvaluateConfig, command, argv, prog="python -m kd.evaluate", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

"""``python -m kd.distill``: train a small student from kd shards and export it.

    python -m kd.distill --data out/kd --tokenizer out/tokenizer --output out/student \\
        [--teacher out/teacher] [--max-steps 2000] [--save-every 500] [--resume] \\
        [--kl 1 --ce 1 --mse 0 --cosine 0 --temperature 2] [--student-layers 4 --student-hidden 256]

Writes to OUTPUT: a Hugging Face model (safetensors, config with id2label, tokenizer,
``malmoi_normalizer.json``), ``metrics.jsonl``, ``metrics.png``, ``report.md``,
``evaluation.json`` and ``checkpoints/step-N/``. Several GPUs: ``torchrun --nproc_per_node N -m kd.distill …``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import (
    init_distributed,
    pick_device,
    tokenizer_hashes,
    weights_hash,
    write_json,
)
from kd.data import (
    BucketBatches,
    check_token_ids,
    count_labeled,
    has_label,
    kd_chunks,
    open_kd_dataset,
    unlabeled_keep_probability,
)
from kd.evaluate import (
    classification_metrics,
    correct_rows,
    cpu_speed,
    kd_split_metrics,
    predict_kd_split,
    split_texts,
    stuck_at_majority,
)
from kd.loop import BestSoFar, LoopConfig, interrupted, report_interruption, train
from kd.models import (
    DistillStudent,
    bert_student,
    count_parameters,
    export_pretrained,
    student_from_checkpoint,
    student_from_teacher,
)
from kd.objectives import DistillObjective, DistillWeights
from kd.report import plot_metrics, write_report
from schemas.options import MalmoiError, config_command, fraction, option

LOG = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class StudentConfig:
    """The student's shape, how many teacher layers to copy (``from_teacher``), or a pretrained
    checkpoint to start from (``init``: a small masked-LM or classifier with the same tokenizer)."""

    num_layers: int = option(4, help="student encoder layers", flag="--student-layers")
    hidden_size: int = option(256, help="student hidden size", flag="--student-hidden")
    num_heads: int = option(4, help="student attention heads (head size = hidden / heads; a multiple of 8 gets the "
                            "fused attention kernels)", flag="--student-heads")
    intermediate_size: int = option(1024, help="student feed-forward size", flag="--student-intermediate")
    max_positions: int = 512
    from_teacher: bool = option(False, help="copy the teacher's embeddings and every k-th layer",
                                flag="--student-from-teacher")
    init: str | None = option(None, help="start from this pretrained checkpoint (a small masked-LM, same tokenizer "
                              "as --tokenizer); the --student-layers/hidden/heads/intermediate options are then "
                              "ignored", flag="--student-init", metavar="DIR")


def tau_or_auto(text: str) -> str:
    """``--prior-correction``: ``auto`` or a number ≥ 0 (kept as text: the config is saved as given)."""
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0 such as 0.5, or auto; found {text!r}")
    return text


@dataclass(frozen=True, kw_only=True)
class DistillConfig:
    """Everything that decides the student; saved into the export (malmoi_training_config.json)."""

    data: str = option(help="kd shards (beam_jobs.augment output)", metavar="DIR", required=True)
    tokenizer: str = option(help="the student tokenizer the shards were made with", metavar="DIR", required=True)
    teacher: str | None = option(None, help="teacher dir: checks its weights hash; needed to copy layers",
                                 metavar="DIR")
    student: StudentConfig = StudentConfig()
    weights: DistillWeights = DistillWeights()
    loop: LoopConfig = LoopConfig(output="out/student", max_steps=2000, learning_rate=5e-4)
    train_split: str = "train"
    eval_split: str = "valid"
    test_split: str = "test"
    originals_only: bool = option(False, help="ignore the paraphrase rows of the shards")
    labeled_only: bool = option(False, help="train on rows with a gold label only (on by itself when the hard-label "
                                "CE is the only loss: unlabeled rows would fill batches and teach nothing)")
    unlabeled_share: float = option(1.0, help="the largest share of each epoch's training rows that rows without a "
                                    "gold label (a pseudo-labelled pool) may take, in expectation: every gold row is "
                                    "kept and a fresh seeded random part of the others each epoch, so a large pool "
                                    "does not crowd the gold rows out of the step budget (1: all rows; 0: like "
                                    "--labeled-only)", parse=fraction)
    token_target: str = option("first", help="kd_token shards: a student token's target is the teacher's "
                               "distribution at its first character, or the mean over its characters",
                               choices=("first", "mean"))
    export_best: bool = option(True, help="export the student that scored best on the eval split (macro-F1) "
                               "rather than the last step's", flag="--export-last")
    measure_cpu_speed: bool = option(True, help="time the exported student on the CPU for report.md",
                                     flag="--no-cpu-speed")
    baseline: bool = option(True, help="score a char 1-3-gram TF-IDF + LR baseline on the same rows for report.md",
                            flag="--no-baseline")
    prior_correction: str = option("0", help="logit adjustment for rare classes: the exported classifier's bias "
                                   "minus TAU x log(train label share), so rare classes are predicted more often — "
                                   "more macro-F1 for some accuracy; 'auto' picks TAU in 0..1.5 for the best "
                                   "macro-F1 on the eval split (0: off)", metavar="TAU|auto", parse=tau_or_auto)


def prior_correction_on(config: DistillConfig) -> bool:
    return config.prior_correction == "auto" or float(config.prior_correction) > 0


def prior_correction(model: torch.nn.Module, opened, config: DistillConfig, num_labels: int,
                     pad_id: int) -> dict[str, Any] | None:
    """``--prior-correction``: τ (given, or fitted on the eval split for macro-F1) and the
    classifier's bias adjusted by it; what was done, for the summary and report.md."""
    from kd.baseline import labeled_rows
    from kd.evaluate import apply_prior_correction, fit_prior_correction, log_prior

    if prior_correction_on(config):
        prior = log_prior(labeled_rows(opened, config.train_split)[1], num_labels)
        if config.prior_correction == "auto":
            valid = predict_kd_split(model, opened, config.eval_split, pad_id=pad_id)
            if not (valid["labels"] >= 0).any():
                raise MalmoiError(f"--prior-correction auto fits τ on the {config.eval_split} split, which has no "
                                  "labeled row.", "pass a number (e.g. --prior-correction 0.5), or add valid rows.")
            fitted = fit_prior_correction(valid["probs"], valid["labels"], prior)
        else:
            fitted = {"tau": float(config.prior_correction)}
        apply_prior_correction(model, fitted["tau"], prior)
        return {**fitted, "fitted_on": config.eval_split if config.prior_correction == "auto" else None,
                "train_label_share": np.exp(prior).round(4).tolist()}
    return None


def train_rows(opened, config: DistillConfig, column: str, is_labeled, labeled_only: bool) -> dict[str, Any]:
    """The train split's labeled and unlabeled rows and the chance an epoch keeps an unlabeled one
    (:func:`kd.data.unlabeled_keep_probability` of ``--unlabeled-share``), logged and reported."""
    if not 0.0 <= config.unlabeled_share <= 1.0:
        raise MalmoiError(f"--unlabeled-share: expected a fraction in [0, 1], found {config.unlabeled_share!r}.",
                          "pass e.g. 0.25 (at most a quarter of each epoch's rows without a gold label), or 1.")
    labeled, unlabeled = count_labeled(opened, config.train_split, column, is_labeled)
    keep = 0.0 if labeled_only else unlabeled_keep_probability(labeled, unlabeled, config.unlabeled_share)
    if unlabeled and not labeled and keep == 0.0:
        why = (f"--unlabeled-share {config.unlabeled_share:g}" if not labeled_only else
               "--labeled-only" if config.labeled_only else "the hard-label CE as the only loss")
        raise MalmoiError(f"{config.data}: none of the {unlabeled} train rows has a gold label, and {why} keeps "
                          "only rows that have one: nothing would be trained on.",
                          "train on the teacher's signals alone (--unlabeled-share 1 with --kl > 0), or add "
                          "labeled rows to the train split.")
    if unlabeled and 0.0 < keep < 1.0:
        LOG.info("%s: %d of %d train rows have no gold label; each epoch keeps about %d of them (--unlabeled-share "
                 "%g)", config.data, unlabeled, labeled + unlabeled, round(keep * unlabeled), config.unlabeled_share)
    return {"labeled": labeled, "unlabeled": unlabeled, "unlabeled_keep": keep,
            "unlabeled_share": config.unlabeled_share}


def build_student(config: DistillConfig, vocab_size: int, label_names: list[str], pad_id: int,
                  embedding_size: int) -> DistillStudent:
    torch.manual_seed(config.loop.seed)
    s = config.student
    if s.from_teacher and s.init:
        raise MalmoiError("--student-from-teacher and --student-init both say where the student starts.",
                          "pick one of the two.")
    if s.init:
        model = student_from_checkpoint(s.init, config.tokenizer, label_names)
    elif s.from_teacher:
        if not config.teacher:
            raise MalmoiError("--student-from-teacher copies the teacher's layers but no teacher was given.",
                              "pass --teacher DIR.")
        model = student_from_teacher(config.teacher, s.num_layers, label_names)
    else:
        model = bert_student(vocab_size=vocab_size, label_names=label_names, num_layers=s.num_layers,
                             hidden_size=s.hidden_size, num_heads=s.num_heads, intermediate_size=s.intermediate_size,
                             max_positions=s.max_positions, pad_token_id=pad_id)
    return DistillStudent(model, embedding_size)


def run_tokens(config: DistillConfig) -> dict[str, Any]:
    """Token-level (named-entity) distillation from ``kd_token`` shards, whatever the teacher's
    tokenizer: the same loop, the best student on valid entity F1 exported."""
    from transformers import AutoModelForTokenClassification, BertConfig, BertForTokenClassification

    from kd.data import open_dataset, provenance_problems
    from kd.ner import (
        TokenDistillObjective,
        has_entities,
        kd_token_chunks,
        predict_token_split,
        token_split_metrics,
    )
    from schemas.kd_token import KD_TOKEN, KD_TOKEN_PROVENANCE_KEYS

    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, KD_TOKEN)
    provenance = opened.provenance
    expect = {"student_tokenizer_hash": tokenizer_hashes(config.tokenizer)}
    if config.teacher:
        expect["teacher_weights_hash"] = weights_hash(config.teacher)
    problems = [k for k in KD_TOKEN_PROVENANCE_KEYS if k not in provenance]
    problems += provenance_problems(provenance, expect)
    if problems:
        raise MalmoiError(f"kd_token dataset '{config.data}' does not match this run: {problems}.",
                          "re-run beam_jobs.augment with this teacher and student tokenizer.")
    if prior_correction_on(config):
        raise MalmoiError("--prior-correction adjusts a sentence classifier's decision; these are kd_token "
                          "(entity) shards.", "leave --prior-correction at 0 for token classification.")
    labels = list(provenance["label_names"])
    id2label, label2id = dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}
    tokenizer = load_subword_tokenizer(config.tokenizer)
    check_token_ids(opened, len(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    torch.manual_seed(config.loop.seed)
    s = config.student
    if s.init:
        model = AutoModelForTokenClassification.from_pretrained(s.init, num_labels=len(labels), id2label=id2label,
                                                                label2id=label2id, ignore_mismatched_sizes=True)
    else:
        model = BertForTokenClassification(BertConfig(
            vocab_size=len(tokenizer), hidden_size=s.hidden_size, num_hidden_layers=s.num_layers,
            num_attention_heads=s.num_heads, intermediate_size=s.intermediate_size,
            max_position_embeddings=s.max_positions, pad_token_id=pad_id, num_labels=len(labels),
            id2label=id2label, label2id=label2id))
    loop, w = config.loop, config.weights
    labeled_only = config.labeled_only or (w.ce > 0 and not w.kl)
    rows = train_rows(opened, config, "entities", has_entities, labeled_only)
    batches = BucketBatches(lambda epoch: kd_token_chunks(opened, config.train_split, loop.seed, epoch,
                                                          how=config.token_target, labeled_only=labeled_only,
                                                          unlabeled_keep=rows["unlabeled_keep"]),
                            batch_size=loop.batch_size, buckets=loop.buckets, pad_id=pad_id, seed=loop.seed,
                            rank=dist.rank, world_size=dist.world_size)
    output = Path(loop.output)
    best = BestSoFar(output)

    def export(model_: torch.nn.Module, folder: Path) -> None:
        export_pretrained(model_, tokenizer, folder, normalizer_config=provenance.get("normalizer_config"),
                          training_config=config)

    def evaluate(model_: torch.nn.Module, step: int) -> dict[str, float]:
        metrics = token_split_metrics(predict_token_split(model_, opened, config.eval_split, pad_id=pad_id))
        if not metrics["n"]:
            return {}
        score = metrics["student"]["f1"]
        if config.export_best:
            best.offer(score, step, lambda folder: export(model_, folder), write=dist.is_main, metric="entity_f1")
        return {"eval/entity_f1": score, "eval/entity_precision": metrics["student"]["precision"],
                "eval/entity_recall": metrics["student"]["recall"]}

    summary = train(model=model, objective=TokenDistillObjective(w.kl, w.ce, w.temperature), batches=batches,
                    config=loop, dist=dist, evaluate=evaluate)
    if not dist.is_main or interrupted(summary):
        return {"training": summary}
    if best.promote():
        model = AutoModelForTokenClassification.from_pretrained(output).to(device)
        summary = {**summary, "exported": f"best on {config.eval_split} (step {best.step}, entity F1 {best.score:.4f})"}
    else:
        export(model, output)
        summary = {**summary, "exported": f"last step ({summary['steps']})"}
    evaluation = token_split_metrics(predict_token_split(model.eval(), opened, config.test_split, pad_id=pad_id))
    parameters = count_parameters(model)
    speed = cpu_speed(model, tokenizer, split_texts(opened, config.test_split)) \
        if config.measure_cpu_speed else None
    plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"distill -> {output.name}")
    result = {"training": {**summary, "labeled_only": labeled_only, "token_target": config.token_target,
                           "train_rows": rows},
              "test": evaluation, "parameters": parameters, "cpu": speed, "label_names": labels,
              "task": "token-classification"}
    write_json(output / "evaluation.json", result)
    return result


def run(config: DistillConfig) -> dict[str, Any]:
    """Distill, export and evaluate; returns the summary (also in OUTPUT/evaluation.json)."""
    from schemas import read_manifest

    if read_manifest(config.data).get("schema") == "kd_token":
        return run_tokens(config)
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        config = replace(config, loop=replace(config.loop, device=str(device)))
    expect = {"student_tokenizer_hash": tokenizer_hashes(config.tokenizer)}
    if config.teacher:
        expect["teacher_weights_hash"] = weights_hash(config.teacher)
    opened = open_kd_dataset(config.data, expect)
    provenance = opened.provenance
    label_names = list(provenance["label_names"])
    tokenizer = load_subword_tokenizer(config.tokenizer)
    check_token_ids(opened, len(tokenizer))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    student = build_student(config, len(tokenizer), label_names, pad_id, int(provenance["embedding_size"]))

    loop = config.loop
    columns = config.weights.columns()
    w = config.weights
    labeled_only = config.labeled_only or (w.ce > 0 and not (w.kl or w.mse or w.cosine))
    if labeled_only and not config.labeled_only:
        LOG.info("labeled rows only: the hard-label CE is the only loss on (--kl 0, no embedding loss)")
    rows = train_rows(opened, config, "label", has_label, labeled_only)
    batches = BucketBatches(lambda epoch: kd_chunks(opened, config.train_split, loop.seed, epoch, columns,
                                                    config.originals_only, labeled_only, rows["unlabeled_keep"]),
                            batch_size=loop.batch_size, buckets=loop.buckets, pad_id=pad_id, seed=loop.seed,
                            rank=dist.rank, world_size=dist.world_size)

    output = Path(loop.output)
    best = BestSoFar(output)
    warned: list[str] = []

    def export(model: torch.nn.Module, folder: Path) -> None:
        export_pretrained(model, tokenizer, folder, normalizer_config=provenance.get("normalizer_config"),
                          training_config=config)

    history: list[dict] = []

    def evaluate(model: DistillStudent, step: int) -> dict[str, float]:
        if opened.manifest.get("rows_per_split", {}).get(config.eval_split, 0) == 0:
            return {}
        predictions = predict_kd_split(model.model, opened, config.eval_split, pad_id=pad_id)
        metrics = kd_split_metrics(predictions)
        score = metrics["student"].get("macro_f1")
        if config.export_best and score is not None:
            best.offer(score, step, lambda folder: export(model.model, folder), write=dist.is_main)
        history.append(predictions)
        del history[:-3]
        if not warned and (warning := stuck_at_majority(history, len(label_names))):
            warned.append(warning)
            LOG.warning(warning)
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        return {f"eval/{k}": v for k, v in {
            "accuracy": metrics["student"].get("accuracy"), "macro_f1": metrics["student"].get("macro_f1"),
            "agreement_with_teacher": metrics.get("agreement_with_teacher")}.items() if v is not None}

    summary = train(model=student, objective=DistillObjective(config.weights), batches=batches, config=loop,
                    dist=dist, evaluate=evaluate)
    if not dist.is_main or interrupted(summary):  # a stopped run exports nothing: it must not look finished
        return {"training": summary}
    if best.promote():  # the best on the eval split, not the last step's weights
        student.model = type(student.model).from_pretrained(output).to(device)
        summary = {**summary, "exported": f"best on {config.eval_split} (step {best.step}, macro-F1 {best.score:.4f})"}
    else:
        export(student.model, output)
        summary = {**summary, "exported": f"last step ({summary['steps']})"}
    correction = prior_correction(student.model, opened, config, len(label_names), pad_id)
    if correction:  # the exported model carries the adjusted bias
        export(student.model, output)
        summary = {**summary, "prior_correction": correction}
    predictions = predict_kd_split(student.model, opened, config.test_split, pad_id=pad_id, keys=config.baseline)
    evaluation = kd_split_metrics(predictions)
    parameters = count_parameters(student.model)
    speed = cpu_speed(student.model, tokenizer, split_texts(opened, config.test_split)) \
        if config.measure_cpu_speed else None
    student.model.to(device)
    baseline = None
    if config.baseline:
        from kd.baseline import evaluate_baseline
        from kd.report import pair_rows, paired_accuracy_gap

        baseline_rows: dict[str, np.ndarray] = {}
        baseline = evaluate_baseline(opened, config.test_split, config.train_split, len(label_names),
                                     provenance.get("normalizer_config"), rows=baseline_rows)
        evaluation = {**evaluation, "baseline": baseline}
        if baseline_rows:  # the same rows, paired: far less noise than comparing two accuracies
            pair = pair_rows(predictions["keys"], correct_rows(predictions), baseline_rows["keys"],
                             baseline_rows["correct"])
            evaluation["vs_baseline_paired"] = paired_accuracy_gap(*pair)
    plot = plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"distill -> {output.name}")
    write_report(output / "report.md", title=f"Student {output.name}", summary=summary, evaluation=evaluation,
                 parameters=parameters, speed=speed, plot=str(plot) if plot else None)
    result = {"training": {**summary, "rows_skipped": dict(opened.skipped), "warnings": warned,
                           "labeled_only": labeled_only, "train_rows": rows}, "test": evaluation,
              "parameters": parameters, "cpu": speed, "label_names": label_names}
    write_json(output / "evaluation.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    def command(config: DistillConfig) -> int:
        result = run(config)
        if interrupted(result["training"]):
            return report_interruption(result["training"], config.loop.output)
        test = result.get("test", {})
        if result.get("task") == "token-classification":
            print(f"exported: {result['training']['exported']}")
            print(f"test entity F1 {test['student']['f1']:.4f} (teacher {test['teacher']['f1']:.4f}, n={test['n']})")
        elif test:
            print(f"exported: {result['training']['exported']}")
            print(f"test accuracy {test['student'].get('accuracy', float('nan')):.4f} "
                  f"(teacher {test['teacher'].get('accuracy', float('nan')):.4f}); report: {config.loop.output}/report.md")
        return 0

    return config_command(DistillConfig, command, argv, prog="python -m kd.distill", description=__doc__)


__all__ = ["DistillConfig", "StudentConfig", "classification_metrics", "main", "run"]

if __name__ == "__main__":
    sys.exit(main())

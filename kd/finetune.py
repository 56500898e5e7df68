"""``python -m kd.finetune``: fine-tune a teacher classifier on the labeled rows of an utterances dataset.

    python -m kd.finetune --data out/utterances --init out/mlm --output out/teacher \\
        [--max-steps 3000] [--eval-every 200 --patience 3]

``--init`` is any local Hugging Face checkpoint (your pretrained Korean model, or kd.pretrain's
output); a new classification head is created for the dataset's labels (sorted label strings).
With ``--eval-every``, the best checkpoint on the valid split (macro-F1) is what OUTPUT holds,
and training stops after ``--patience`` evaluations without improvement.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification

from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import init_distributed, pick_device, write_json
from kd.data import BucketBatches, open_dataset, utterance_chunks, utterance_labels
from kd.evaluate import classification_metrics, stuck_at_majority
from kd.loop import BestSoFar, LoopConfig, interrupted, report_interruption, train
from kd.models import export_pretrained, label_maps
from kd.objectives import ClassificationObjective
from kd.report import plot_metrics
from schemas import UTTERANCES
from schemas.options import MalmoiError, config_command, option


@dataclass(frozen=True, kw_only=True)
class FinetuneConfig:
    """Everything that decides the teacher; saved into its export."""

    data: str = option(help="utterances dataset with labels", metavar="DIR", required=True)
    init: str = option(help="local Hugging Face checkpoint to start from", metavar="DIR", required=True)
    task: str = option("sequence-classification", help="what the teacher predicts: the label of each utterance, "
                       "or a BIO entity tag per token from the utterances' entities",
                       choices=("sequence-classification", "token-classification"))
    max_length: int = option(128, help="inputs are truncated to this many tokens")
    patience: int = option(3, help="evaluations without improvement before stopping")
    loop: LoopConfig = LoopConfig(output="out/teacher", max_steps=3000, learning_rate=5e-5)


@torch.no_grad()
def entity_metrics(model, rows: list[dict], tokenizer, id2label: dict[int, str], max_length: int,
                   batch_size: int = 64) -> dict:
    """Entity-level P/R/F1 on character spans (:mod:`kd.ner`), overall and per domain."""
    from kd.ner import encoded_spans, entities_from_tags, entity_scores

    if not rows:
        return {"n": 0}
    device = next(model.parameters()).device
    predicted = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start:start + batch_size]
        texts = [r["text"] for r in chunk]
        encoded = tokenizer(texts, truncation=True, max_length=max_length, padding=True,
                            return_offsets_mapping=True, return_tensors="pt")
        offsets = encoded_spans(tokenizer, texts, encoded)
        encoded.pop("offset_mapping")
        tags = model(**{k: v.to(device) for k, v in encoded.items() if k in ("input_ids", "attention_mask")}
                     ).logits.argmax(-1).cpu().tolist()
        predicted += [entities_from_tags(o, t, id2label) for o, t in zip(offsets, tags, strict=True)]
    result = {"n": len(rows), **entity_scores([r["entities"] for r in rows], predicted), "by_domain": {}}
    for domain in sorted({r["domain"] for r in rows}):
        picked = [i for i, r in enumerate(rows) if r["domain"] == domain]
        scores = entity_scores([rows[i]["entities"] for i in picked], [predicted[i] for i in picked])
        result["by_domain"][domain] = {"n": len(picked), **{k: v for k, v in scores.items() if k != "per_type"}}
    return result


def run_token_classification(config: FinetuneConfig) -> dict:
    """A BIO entity tagger over the utterances' ``entities`` (``AutoModelForTokenClassification``),
    the best on valid entity F1 exported."""
    from transformers import AutoModelForTokenClassification

    from kd.ner import TokenClassificationObjective, bio_labels, entity_rows, silent_tagger, token_chunks

    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, UTTERANCES)
    rows = {split: list(entity_rows(opened, split)) for split in ("train", "valid", "test")}
    if not rows["train"]:
        raise MalmoiError(f"'{config.data}' has no train rows with entities.",
                          "preprocess KLUE-NER files or JSONL with an 'entities' field.")
    labels = bio_labels(t for r in rows["train"] for _, _, t in r["entities"])
    id2label, label2id = dict(enumerate(labels)), {name: i for i, name in enumerate(labels)}
    tokenizer = load_subword_tokenizer(config.init)
    if not getattr(tokenizer, "is_fast", False):
        raise MalmoiError(f"--init {config.init}: its tokenizer gives no character offsets (not a fast tokenizer).",
                          "use a tokenizer.json tokenizer (kd.tokenizer writes one).")
    torch.manual_seed(config.loop.seed)
    model = AutoModelForTokenClassification.from_pretrained(config.init, num_labels=len(labels), id2label=id2label,
                                                            label2id=label2id, ignore_mismatched_sizes=True)
    loop = config.loop
    train_rows = rows["train"]

    def chunks(epoch: int):
        order = np.random.default_rng([loop.seed, epoch]).permutation(len(train_rows))
        for start in range(0, len(order), 4096):
            yield token_chunks([train_rows[i] for i in order[start:start + 4096]], tokenizer, label2id,
                               config.max_length)

    batches = BucketBatches(chunks, batch_size=loop.batch_size, buckets=loop.buckets,
                            pad_id=tokenizer.pad_token_id or 0, seed=loop.seed, rank=dist.rank,
                            world_size=dist.world_size)
    normalizer_config = opened.manifest.get("provenance", {}).get("normalizer_config")
    output = Path(loop.output)
    best = BestSoFar(output)
    bad_evals = 0

    def export(folder: Path, model_=model) -> None:
        export_pretrained(model_, tokenizer, folder, normalizer_config=normalizer_config, training_config=config)

    history: list[dict] = []

    def evaluate(model_, step: int) -> dict:
        nonlocal bad_evals
        metrics = entity_metrics(model_, rows["valid"], tokenizer, id2label, config.max_length)
        if not metrics.get("n"):
            return {}
        history.append({"step": step, **metrics})
        if (warning := silent_tagger(history)) is not None:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        if best.offer(metrics["f1"], step, lambda folder: export(folder, model_), write=dist.is_main, metric="entity_f1"):
            bad_evals = 0
        else:
            bad_evals += 1
        return {"eval/entity_f1": metrics["f1"], "eval/entity_precision": metrics["precision"],
                "eval/entity_recall": metrics["recall"], **({"stop": True} if bad_evals >= config.patience else {})}

    summary = train(model=model, objective=TokenClassificationObjective(), batches=batches, config=loop, dist=dist,
                    evaluate=evaluate)
    if dist.is_main and not interrupted(summary):
        if not best.promote():
            export(output)
        best_model = AutoModelForTokenClassification.from_pretrained(output).to(device).eval()
        test = entity_metrics(best_model, rows["test"], tokenizer, id2label, config.max_length)
        plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"finetune -> {output.name}")
        best_valid = {"entity_f1": best.score, "step": best.step}
        write_json(output / "evaluation.json", {"training": summary, "best_valid": best_valid, "test": test,
                                                "labels": labels, "task": config.task})
        summary = {**summary, "best_valid": best_valid, "test": test}
    return summary


@torch.no_grad()
def split_metrics(model, opened, split: str, tokenizer, label_to_id, max_length: int, batch_size: int,
                  predictions: list | None = None) -> dict:
    """Metrics of ``split``'s labeled rows; with ``predictions`` (a list), their ``probs`` and
    ``labels`` are appended to it too."""
    device = next(model.parameters()).device
    batches = BucketBatches(
        lambda epoch: utterance_chunks(opened, split, tokenizer, max_length, label_to_id, None, 0, labeled_only=True),
        batch_size=batch_size, buckets=(16, 32, 64, 128, 256, 512), pad_id=tokenizer.pad_token_id or 0, seed=0)
    probs, labels = [], []
    for batch in batches.epoch(0):
        real = batch["weight"] > 0
        logits = model(input_ids=torch.from_numpy(batch["input_ids"]).to(device),
                       attention_mask=torch.from_numpy(batch["attention_mask"]).to(device)).logits
        probs.append(torch.softmax(logits.float(), -1).cpu().numpy()[real])
        labels.append(batch["label"][real])
    if not probs:
        return {"n": 0}
    if predictions is not None:
        predictions.append({"probs": np.concatenate(probs), "labels": np.concatenate(labels)})
    return classification_metrics(np.concatenate(labels), np.concatenate(probs))


def run(config: FinetuneConfig) -> dict:
    if config.task == "token-classification":
        return run_token_classification(config)
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, UTTERANCES)
    label_names = utterance_labels(opened)
    if len(label_names) < 2:
        raise MalmoiError(
            f"'{config.data}' has {len(label_names)} label value(s) {label_names}; a classifier needs at least 2.",
            "preprocess with --label-column pointing at the task labels.")
    id2label, label2id = label_maps(label_names)
    tokenizer = load_subword_tokenizer(config.init)
    torch.manual_seed(config.loop.seed)
    model = AutoModelForSequenceClassification.from_pretrained(
        config.init, num_labels=len(label_names), id2label=id2label, label2id=label2id, ignore_mismatched_sizes=True)
    loop = config.loop
    batches = BucketBatches(
        lambda epoch: utterance_chunks(opened, "train", tokenizer, config.max_length, label2id, loop.seed, epoch,
                                       labeled_only=True),
        batch_size=loop.batch_size, buckets=loop.buckets, pad_id=tokenizer.pad_token_id or 0, seed=loop.seed,
        rank=dist.rank, world_size=dist.world_size)
    normalizer_config = opened.manifest.get("provenance", {}).get("normalizer_config")
    output = Path(loop.output)
    best = BestSoFar(output)
    bad_evals = 0
    history: list[dict] = []
    warned: list[str] = []

    def warn_once(warning: str | None) -> None:
        if warning and not warned and dist.is_main:
            warned.append(warning)
            print(f"warning: {warning}", file=sys.stderr, flush=True)

    def export(folder: Path, model_=model) -> None:
        export_pretrained(model_, tokenizer, folder, normalizer_config=normalizer_config, training_config=config)

    def evaluate(model_, step: int) -> dict:
        nonlocal bad_evals
        metrics = split_metrics(model_, opened, "valid", tokenizer, label2id, config.max_length, loop.batch_size,
                                history)
        if not metrics.get("n"):
            return {}
        del history[:-3]
        warn_once(stuck_at_majority(history, len(label_names), who="the teacher"))
        result = {f"eval/{k}": v for k, v in metrics.items() if k != "n"}
        if best.offer(metrics["macro_f1"], step, lambda folder: export(folder, model_), write=dist.is_main):
            bad_evals = 0
        else:
            bad_evals += 1
            if bad_evals >= config.patience:
                result["stop"] = True
        return result

    summary = train(model=model, objective=ClassificationObjective(), batches=batches, config=loop, dist=dist,
                    evaluate=evaluate)
    if dist.is_main and not interrupted(summary):  # a stopped run exports nothing: it must not look finished
        if not best.promote():  # never evaluated: keep the last weights
            export(output)
        best_model = AutoModelForSequenceClassification.from_pretrained(output).to(device)
        exported: list[dict] = []  # however few evaluations ran, the exported teacher is checked once
        split_metrics(best_model, opened, "valid", tokenizer, label2id, config.max_length, loop.batch_size, exported)
        warn_once(stuck_at_majority(exported, len(label_names), patience=1, who="the teacher"))
        test = split_metrics(best_model, opened, "test", tokenizer, label2id, config.max_length, loop.batch_size)
        plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"finetune -> {output.name}")
        best_valid = {"macro_f1": best.score, "step": best.step}
        write_json(output / "evaluation.json", {"training": {**summary, "warnings": warned}, "best_valid": best_valid,
                                                "test": test, "label_names": label_names})
        summary = {**summary, "best_valid": best_valid, "test": test}
    return summary


def main(argv: list[str] | None = None) -> int:
    def command(config: FinetuneConfig) -> int:
        summary = run(config)
        if interrupted(summary):
            return report_interruption(summary, config.loop.output)
        print(f"teacher -> {config.loop.output}: test {summary.get('test')}")
        return 0

    return config_command(FinetuneConfig, command, argv, prog="python -m kd.finetune", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

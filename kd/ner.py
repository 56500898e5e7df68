"""Named entities for the trainer: annotated rows, token batches with BIO classes, the
token-classification objectives. The span and tag arithmetic is :mod:`beam_jobs.text.entities`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from beam_jobs.text.entities import (  # noqa: F401 - the trainer's names for them
    IGNORE,
    Span,
    bio_labels,
    char_distributions,
    encoded_spans,
    entities_from_tags,
    entity_scores,
    token_tags,
    token_targets,
)


def entity_rows(opened, split: str | None) -> Iterator[dict[str, Any]]:
    """(id, text, entities, domain) of the annotated rows of an utterances dataset's ``split``;
    ``domain`` is the last ``-`` part of a KLUE guid (``nsmc``, ``wikitree`` …) or the corpus."""
    import pyarrow.compute as pc

    from schemas import storage

    for path in opened.files:
        table = storage.read_table(path, columns=["id", "text", "entities", "split", "meta", "corpus"])
        if split is not None:
            table = table.filter(pc.equal(table.column("split"), split))
        table = table.filter(pc.is_valid(table.column("entities")))
        for row in table.to_pylist():
            meta = {m["key"]: m["value"] for m in row["meta"]}
            guid = meta.get("guid")
            yield {"id": row["id"], "text": row["text"], "split": row["split"],
                   "entities": [(e["start"], e["end"], e["label"]) for e in row["entities"]],
                   "domain": guid.rsplit("-", 1)[-1] if guid and "-" in guid else row["corpus"]}


def token_chunks(rows: list[dict[str, Any]], tokenizer: Any, label2id: dict[str, int], max_length: int):
    """A :class:`kd.data.Chunk` of tokenized rows with per-token class ids (``token_labels``,
    padded with ``IGNORE`` to ``max_length``)."""
    from kd.data import Chunk

    texts = [r["text"] for r in rows]
    encoded = tokenizer(texts, truncation=True, max_length=max_length,
                        return_offsets_mapping=True, return_attention_mask=False)
    labels = np.full((len(rows), max_length), IGNORE, np.int64)
    for i, (row, mapping) in enumerate(zip(rows, encoded_spans(tokenizer, texts, encoded), strict=True)):
        tags = token_tags(mapping, row["entities"], label2id)
        labels[i, :len(tags)] = tags
    return Chunk.from_lists(encoded["input_ids"], {"token_labels": labels})


class TokenClassificationObjective:
    """Cross-entropy on every real token's BIO class (``IGNORE`` and weight-0 rows left out)."""

    def __call__(self, model, batch):
        import torch.nn.functional as F

        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        labels = batch["token_labels"].masked_fill(batch["weight"][:, None] <= 0, IGNORE)
        total = F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                ignore_index=IGNORE, reduction="sum")
        loss = total / (labels != IGNORE).sum().clamp_min(1)  # a batch of padding rows gives 0, not NaN
        return loss, {"ce": loss.detach()}


def silent_tagger(history: list[dict], patience: int = 3) -> str | None:
    """A warning, once (when the ``patience``-th evaluation in a row found no entity at all):
    the tagger sits at all-O, the majority class, and is learning nothing."""
    recent = history[-patience:]
    if len(recent) < patience or any(h.get("precision") or h.get("recall") for h in recent):
        return None
    if len(history) > patience and not (history[-patience - 1].get("precision") or history[-patience - 1].get("recall")):
        return None  # already said
    return (f"the tagger has found no entity on valid in {patience} evaluations (steps "
            f"{[h['step'] for h in recent]}): it sits at all-O. Try more --max-steps, another --learning-rate, "
            "or a pretrained --init.")


def has_entities(table):
    """Rows of a ``kd_token`` table with gold entities (an empty list counts: a sentence with none)."""
    import pyarrow.compute as pc

    return pc.is_valid(table.column("entities"))


def kd_token_chunks(opened, split: str | None, seed: int | None, epoch: int, *, how: str = "first",
                    labeled_only: bool = False, unlabeled_keep: float = 1.0):
    """Chunks of ``kd_token`` shards for a student: ``input_ids``, per-token teacher targets
    (``token_targets``: :func:`token_targets` of the stored per-character distributions, float16)
    and gold classes (``token_labels``: from the gold entities, ``IGNORE`` where a row has none),
    one chunk per row group. ``labeled_only`` drops the rows without gold entities;
    ``unlabeled_keep`` keeps each of those with that chance per epoch (:func:`kd.data.sample_unlabeled`)."""
    from kd.data import Chunk, row_group_tables, sample_unlabeled

    labels = list(opened.provenance["label_names"])
    label2id = {name: i for i, name in enumerate(labels)}
    width = len(labels)
    columns = ["input_ids", "token_starts", "token_ends", "entities", "split", "text", "teacher_char_probs"]
    keep = [has_entities] if labeled_only else sample_unlabeled(has_entities, unlabeled_keep, seed, epoch)
    for table in row_group_tables(opened.files, columns, split, seed, epoch, keep):
        rows = table.to_pylist()
        longest = max(len(r["input_ids"]) for r in rows)
        targets = np.zeros((len(rows), longest, width), np.float16)
        gold = np.full((len(rows), longest), IGNORE, np.int64)
        for i, r in enumerate(rows):
            spans = list(zip(r["token_starts"], r["token_ends"], strict=True))
            chars = np.asarray(r["teacher_char_probs"], np.float32).reshape(len(r["text"]), width)
            targets[i, :len(spans)] = token_targets(chars, spans, how)
            if r["entities"] is not None:
                gold[i, :len(spans)] = token_tags(spans, [(e["start"], e["end"], e["label"]) for e in r["entities"]],
                                                  label2id)
        yield Chunk.from_lists([r["input_ids"] for r in rows], {"token_targets": targets, "token_labels": gold})


class TokenDistillObjective:
    """Per-token distillation: ``kl · T² · KL(teacher_T ‖ student_T)`` averaged over the tokens
    that have a target, plus ``ce ·`` cross-entropy on gold classes where a row has them (a
    pseudo-labelled row feeds only the KL term). The teacher's probabilities at temperature T are
    ``p^(1/T)`` renormalized (the softmax of its logits divided by T)."""

    def __init__(self, kl: float = 1.0, ce: float = 1.0, temperature: float = 2.0) -> None:
        self.kl, self.ce, self.temperature = kl, ce, temperature

    def __call__(self, model, batch):
        import torch
        import torch.nn.functional as F

        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        real = batch["weight"][:, None] > 0
        targets = batch["token_targets"].float()
        has_target = (targets.sum(-1) > 0) & real & (batch["attention_mask"] > 0)
        parts = {}
        loss = logits.new_zeros(())
        if self.kl:
            t = self.temperature
            teacher = targets.clamp_min(1e-8) ** (1.0 / t)
            teacher = teacher / teacher.sum(-1, keepdim=True)
            log_student = F.log_softmax(logits / t, -1)
            per_token = (teacher * (teacher.log() - log_student)).sum(-1)
            kl = (per_token * has_target).sum() / has_target.sum().clamp_min(1) * t * t
            parts["kl"] = kl
            loss = loss + self.kl * kl
        if self.ce:
            gold = batch["token_labels"].masked_fill(~real, IGNORE)
            total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), gold.reshape(-1), ignore_index=IGNORE,
                                    reduction="sum")
            ce = total / (gold != IGNORE).sum().clamp_min(1)
            parts["ce"] = ce
            loss = loss + self.ce * ce
        return loss, {k: v.detach() for k, v in parts.items()} or {"loss_terms": torch.zeros(())}


def predict_token_split(model, opened, split: str, *, batch_size: int = 64, pad_id: int = 0) -> dict[str, Any]:
    """The student's entities on ``split`` of ``kd_token`` shards (decoded from its own tokens'
    character spans) beside the gold and the teacher's, for the rows with gold entities."""
    import pyarrow.compute as pc
    import torch

    from schemas import storage

    id2label = {int(k): v for k, v in model.config.id2label.items()}
    gold, student, teacher = [], [], []
    device = next(model.parameters()).device
    for path in opened.files:
        table = storage.read_table(path, columns=["id", "input_ids", "token_starts", "token_ends", "entities", "split",
                                                  "teacher_entities"])
        table = table.filter(pc.and_(pc.equal(table.column("split"), split), pc.is_valid(table.column("entities"))))
        rows = table.to_pylist()
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            longest = max(len(r["input_ids"]) for r in chunk)
            ids = torch.full((len(chunk), longest), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), longest), dtype=torch.long)
            for i, r in enumerate(chunk):
                ids[i, :len(r["input_ids"])] = torch.tensor(r["input_ids"])
                mask[i, :len(r["input_ids"])] = 1
            with torch.inference_mode():
                tags = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.argmax(-1).cpu().tolist()
            for r, row_tags in zip(chunk, tags, strict=True):
                spans = list(zip(r["token_starts"], r["token_ends"], strict=True))
                student.append(entities_from_tags(spans, row_tags[:len(spans)], id2label))
                gold.append([(e["start"], e["end"], e["label"]) for e in r["entities"]])
                teacher.append([(e["start"], e["end"], e["label"]) for e in r["teacher_entities"]])
    return {"gold": gold, "student": student, "teacher": teacher}


def token_split_metrics(predictions: dict[str, Any]) -> dict[str, Any]:
    student = entity_scores(predictions["gold"], predictions["student"])
    teacher = entity_scores(predictions["gold"], predictions["teacher"])
    out = {"n": len(predictions["gold"]), "student": student, "teacher": teacher}
    if teacher["f1"]:
        out["retention"] = student["f1"] / teacher["f1"]
    return out

"""Named entities for the trainer: BIO tags on subword tokens from character spans, back to
character spans, and entity-level precision / recall / F1 (exact span and type, as ``seqeval``
counts chunks).

A token takes the tag of its first character: ``B-T`` when that character begins an entity of
type T, ``I-T`` when it lies inside one, ``O`` otherwise; special tokens are ignored (-100).
Predicted tags become entities again from the tokens' character offsets (an ``I-T`` that
continues nothing begins an entity, as seqeval reads it), so scores are computed on character
spans of the text, whatever the tokenizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

Span = tuple[int, int, str]
IGNORE = -100


def bio_labels(types: Iterable[str]) -> list[str]:
    """``O`` then ``B-T``, ``I-T`` for every entity type, sorted: the token classes."""
    return ["O", *(f"{prefix}-{t}" for t in sorted(set(types)) for prefix in ("B", "I"))]


def token_tags(offsets: Sequence[tuple[int, int]], entities: Sequence[Span], label2id: dict[str, int]) -> list[int]:
    """One class id per token (``IGNORE`` for special tokens, whose offsets are (0, 0))."""
    tags = []
    for start, end in offsets:
        if start == end:
            tags.append(IGNORE)
            continue
        tag = "O"
        for e_start, e_end, label in entities:
            if e_start <= start < e_end:
                tag = f"{'B' if start == e_start else 'I'}-{label}"
                break
        tags.append(label2id.get(tag, label2id["O"]))
    return tags


def entities_from_tags(offsets: Sequence[tuple[int, int]], tags: Sequence[int], id2label: dict[int, str]) -> list[Span]:
    """Character spans from per-token class ids (tokens with empty offsets are skipped)."""
    spans: list[list[Any]] = []
    previous = "O"
    for (start, end), tag_id in zip(offsets, tags, strict=False):
        if start == end:
            continue
        tag = id2label.get(int(tag_id), "O")
        kind, _, label = tag.partition("-")
        if kind == "I" and spans and previous != "O" and previous.split("-", 1)[1] == label:
            spans[-1][1] = end
        elif kind in ("B", "I"):
            spans.append([start, end, label])
        previous = tag
    return [(s, e, label) for s, e, label in spans]


def entity_scores(gold: Iterable[Iterable[Span]], predicted: Iterable[Iterable[Span]]) -> dict[str, Any]:
    """Micro precision, recall and F1 over exact (start, end, type) matches, and per type."""
    true_positive, gold_count, predicted_count = Counter(), Counter(), Counter()
    for gold_spans, predicted_spans in zip(gold, predicted, strict=True):
        gold_set, predicted_set = set(map(tuple, gold_spans)), set(map(tuple, predicted_spans))
        for span in gold_set:
            gold_count[span[2]] += 1
        for span in predicted_set:
            predicted_count[span[2]] += 1
            true_positive[span[2]] += span in gold_set

    def prf(tp: int, n_gold: int, n_pred: int) -> dict[str, float]:
        precision = tp / n_pred if n_pred else 0.0
        recall = tp / n_gold if n_gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": n_gold}

    types = sorted(set(gold_count) | set(predicted_count))
    return {**prf(sum(true_positive.values()), sum(gold_count.values()), sum(predicted_count.values())),
            "per_type": {t: prf(true_positive[t], gold_count[t], predicted_count[t]) for t in types}}


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

    encoded = tokenizer([r["text"] for r in rows], truncation=True, max_length=max_length,
                        return_offsets_mapping=True, return_attention_mask=False)
    lengths = np.fromiter((len(ids) for ids in encoded["input_ids"]), np.int64, len(rows))
    offsets = np.zeros(len(rows) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    values = np.fromiter((t for ids in encoded["input_ids"] for t in ids), np.int32, int(offsets[-1]))
    labels = np.full((len(rows), max_length), IGNORE, np.int64)
    for i, (row, mapping) in enumerate(zip(rows, encoded["offset_mapping"], strict=True)):
        tags = token_tags(mapping, row["entities"], label2id)
        labels[i, :len(tags)] = tags
    return Chunk(values, offsets, {"token_labels": labels})


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

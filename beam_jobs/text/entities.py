"""Named entities as character spans and as BIO tags on subword tokens — pure functions shared by
the augment job (teacher signals per character) and the trainer (targets, decoding, scores).

A token takes the tag of its first character: ``B-T`` when that character begins an entity of
type T, ``I-T`` when it lies inside one, ``O`` otherwise; special tokens are ignored (-100).
Predicted tags become entities again from the tokens' character offsets (an ``I-T`` that
continues nothing begins an entity, as seqeval reads it), so scores are computed on character
spans of the text, whatever the tokenizer. A teacher's per-token distribution becomes one per
character (:func:`char_distributions`): a character inside a teacher token takes that token's
distribution, its ``B-T`` mass moved to ``I-T`` unless it is the token's first character;
characters outside every token (spaces) are ``O``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

Span = tuple[int, int, str]
IGNORE = -100


def bio_labels(types: Iterable[str]) -> list[str]:
    """``O`` then ``B-T``, ``I-T`` for every entity type, sorted: the token classes."""
    return ["O", *(f"{prefix}-{t}" for t in sorted(set(types)) for prefix in ("B", "I"))]


#: word-start markers a tokenizer writes into its tokens: SentencePiece / Metaspace, byte-level BPE
WORD_START_MARKERS = "▁Ġ"


def text_spans(text: str, offsets: Sequence[tuple[int, int]], tokens: Sequence[str] | None = None) -> list[tuple[int, int]]:
    """Tokens' character spans of ``text`` without the whitespace a tokenizer's offsets include
    (a SentencePiece/Unigram ``▁행크스`` is reported from the space before the word): each span
    trimmed to the characters it writes; a token that is only a word-start marker (``▁``, given
    ``tokens``) or only whitespace becomes empty, like a special token. Without this, a student
    with such a tokenizer learns every word-initial token as the space's ``O`` and decodes every
    entity one character early."""
    spans = []
    for i, (start, end) in enumerate(offsets):
        if tokens is not None and start < end and not tokens[i].strip(WORD_START_MARKERS):
            spans.append((start, start))
            continue
        end = min(end, len(text))
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        spans.append((start, end) if start < end else (start, start))
    return spans


def encoded_spans(tokenizer: Any, texts: Sequence[str], encoded: Any) -> list[list[tuple[int, int]]]:
    """:func:`text_spans` of every row of a fast tokenizer's output (``return_offsets_mapping``)."""
    ids = encoded["input_ids"]
    ids = ids.tolist() if hasattr(ids, "tolist") else ids
    mapping = encoded["offset_mapping"]
    mapping = mapping.tolist() if hasattr(mapping, "tolist") else mapping
    return [text_spans(text, [tuple(o) for o in offsets], tokenizer.convert_ids_to_tokens(row))
            for text, offsets, row in zip(texts, mapping, ids, strict=True)]


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




def char_distributions(offsets: Sequence[tuple[int, int]], probs: np.ndarray, length: int,
                       labels: Sequence[str]) -> np.ndarray:
    """(length, C) per-character class probabilities of a text from per-token ones (see the
    module docstring)."""
    index = {name: i for i, name in enumerate(labels)}
    out = np.zeros((length, len(labels)), np.float32)
    out[:, index["O"]] = 1.0
    inside = probs.copy()
    for name, i in index.items():
        if name.startswith("B-") and f"I-{name[2:]}" in index:
            inside[:, index[f"I-{name[2:]}"]] += inside[:, i]
            inside[:, i] = 0.0
    for t, (start, end) in enumerate(offsets):
        if start >= end or start >= length:
            continue
        out[start] = probs[t]
        out[start + 1:min(end, length)] = inside[t]
    return out


def token_targets(char_probs: np.ndarray, offsets: Sequence[tuple[int, int]], how: str = "first") -> np.ndarray:
    """(tokens, C) targets for a student's tokens from per-character distributions: the token's
    first character's (``first``) or the mean over its characters (``mean``); all-zero rows for
    special tokens (nothing to learn there)."""
    out = np.zeros((len(offsets), char_probs.shape[1]), np.float32)
    for t, (start, end) in enumerate(offsets):
        if start >= end or start >= len(char_probs):
            continue
        out[t] = char_probs[start] if how == "first" else char_probs[start:min(end, len(char_probs))].mean(0)
    return out

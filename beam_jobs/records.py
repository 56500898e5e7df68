"""From a read utterance to an ``utterances`` row: ids, splits, normalize, tokenize. Pure Python.

Ids and splits are stable hashes (:mod:`schemas.provenance`), so a rerun, another machine or another
number of workers gives the same values; the split hashes the *document* so turns of one
dialogue never straddle splits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from beam_jobs.readers import RawUtterance, Reject
from beam_jobs.text.edits import normalize_keeping_spans
from beam_jobs.text.normalizer import Normalizer
from beam_jobs.text.tokenizer import Tokenizer
from schemas.options import option
from schemas.provenance import stable_id, stable_unit


def utterance_id(corpus: str, source: str, position: str) -> str:
    """Deterministic id of an utterance: a hash of where it came from."""
    return stable_id(corpus, source, position)


@dataclass(frozen=True)
class SplitRatios:
    """Fractions of documents in train / valid / test; must sum to 1."""

    train: float = 0.8
    valid: float = 0.1
    test: float = 0.1

    def __post_init__(self) -> None:
        values = (self.train, self.valid, self.test)
        if not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1.0) > 1e-6:
            raise ValueError(
                f"split ratios: expected three non-negative fractions summing to 1 (train,valid,test), "
                f"found {values}. Fix: e.g. --split-ratios 0.8,0.1,0.1"
            )

    @classmethod
    def parse(cls, text: str) -> SplitRatios:
        parts = text.split(",")
        if len(parts) != 3:
            raise ValueError(f"--split-ratios: expected 'train,valid,test' such as 0.8,0.1,0.1; found {text!r}")
        try:
            values = [float(p) for p in parts]
        except ValueError as error:
            raise ValueError(f"--split-ratios: expected three numbers, found {text!r} ({error})") from error
        return cls(*values)


def assign_split(corpus: str, doc_id: str, ratios: SplitRatios, seed: str = "") -> str:
    """train / valid / test from a stable hash of the corpus and document id."""
    fraction = stable_unit(seed, corpus, doc_id)
    if fraction < ratios.train:
        return "train"
    if fraction < ratios.train + ratios.valid:
        return "valid"
    return "test"


#: the stratum of a row whose stratify column is empty or missing
NO_STRATUM = "<none>"


def stratum_of(row: dict[str, Any], column: str) -> str:
    """The value of ``column`` in an ``utterances`` row: ``label``, or a meta key (an input field
    that is not the text, label, id, doc id or split field); NO_STRATUM when it has none."""
    if column == "label":
        value = row.get("label")
    else:
        value = next((item["value"] for item in row.get("meta") or () if item["key"] == column), None)
    return NO_STRATUM if value in (None, "") else str(value)


def doc_stratum(strata: Iterable[str]) -> str:
    """A document's stratum: the value most of its rows have (ties: the smallest), so a dialogue
    whose turns differ still goes to one split whole."""
    counts: dict[str, int] = {}
    for stratum in strata:
        counts[stratum] = counts.get(stratum, 0) + 1
    return min(counts, key=lambda s: (-counts[s], s))


def stratified_splits(docs: Iterable[tuple[str, str, int]], ratios: SplitRatios, seed: str = "") -> dict[tuple[str, str], str]:
    """train / valid / test for the documents of one stratum, given as (corpus, doc_id, rows): in the
    order of their stable hash, each document takes the split its rows' midpoint falls in, so every
    stratum is split in the ratios (by rows, to within one document) and the assignment does not
    depend on the order the documents arrive in."""
    ordered = sorted(docs, key=lambda d: (stable_unit(seed, d[0], d[1]), d[0], d[1]))
    total = sum(n for *_, n in ordered)
    out, seen = {}, 0
    for corpus, doc_id, n in ordered:
        middle = (seen + n / 2) / total
        out[(corpus, doc_id)] = ("train" if middle < ratios.train else
                                 "valid" if middle < ratios.train + ratios.valid else "test")
        seen += n
    return out


@dataclass(frozen=True, kw_only=True)
class RowOptions:
    """Per-row limits and the split policy."""

    ratios: SplitRatios = option(SplitRatios(), help="train,valid,test fractions of documents (default: 0.8,0.1,0.1)",
                                 flag="--split-ratios", parse=SplitRatios.parse)
    split_seed: str = option("", help="changes the document -> split assignment")
    stratify_by: str | None = option(None, help="split each value of this field in the ratios (e.g. the label "
                                     "field): the hash split per stratum instead of over all documents",
                                     metavar="FIELD")
    max_chars: int = option(2000, help="longer utterances are rejected")


#: a row key the job counts and drops: the text was normalized in pieces around its entities
ENTITY_CUT = "_normalized_around_entities"


class RowBuilder:
    """Turns :class:`RawUtterance` into ``utterances`` rows (dicts), or rejects with reasons."""

    def __init__(self, normalizer: Normalizer, tokenizer: Tokenizer, options: RowOptions,
                 morph_analyzer: Any | None = None) -> None:
        self.normalizer = normalizer
        self.tokenizer = tokenizer
        self.options = options
        self.morph_analyzer = morph_analyzer

    def build(self, raw: RawUtterance) -> dict[str, Any] | Reject:
        if len(raw.text) > self.options.max_chars:
            return Reject("too_long", raw.source, raw.position,
                          f"{len(raw.text)} characters, more than --max-chars {self.options.max_chars}",
                          raw.text[:200])
        cut = False
        entities = None
        if raw.entities is not None:
            text, edits, entities, cut = normalize_keeping_spans(
                lambda t: self.normalizer.normalize(t, raw.markup), raw.text, raw.entities)
        else:
            text, edits = self.normalizer.normalize(raw.text, raw.markup)
        if not text.strip():
            detail = "empty text" if not raw.text.strip() else "nothing left after normalization (markup only)"
            return Reject("empty_text", raw.source, raw.position, detail, raw.text[:200])
        return {
            "id": utterance_id(raw.corpus, raw.source, raw.position),
            "corpus": raw.corpus,
            "source": raw.source,
            "position": raw.position,
            "doc_id": raw.doc_id,
            "turn": raw.turn,
            "speaker": raw.speaker,
            "text_raw": raw.text,
            "text": text,
            "edits": [e.as_dict() for e in edits],
            "tokens": self.tokenizer.tokenize(text),
            "morphs": self.morph_analyzer(text) if self.morph_analyzer is not None else None,
            "label": raw.label,
            "split": raw.split or assign_split(raw.corpus, raw.doc_id, self.options.ratios, self.options.split_seed),
            "meta": [{"key": k, "value": v} for k, v in (raw.meta or {}).items()],
            "entities": None if entities is None else [{"start": s, "end": e, "label": label}
                                                       for s, e, label in entities],
            ENTITY_CUT: cut,  # normalized piecewise to keep an entity whole (counted, not stored)
        }

    def build_many(self, raws: Iterable[RawUtterance]) -> Iterator[dict[str, Any] | Reject]:
        for raw in raws:
            yield self.build(raw)

"""The ``kd_token`` shards: token-level (named-entity) teacher signals that any student tokenizer
can be distilled from, written by ``beam_jobs.augment`` with a token-classification teacher and
read by ``kd.distill``.

The teacher's distribution is stored **per character of ``text``** (``teacher_char_probs``:
``len(text) × C`` float16 values, row-major, classes in ``label_names`` order; the rule is
``beam_jobs.text.entities.char_distributions``), beside the student's ``input_ids`` and each
token's character span (``token_starts`` / ``token_ends``; special tokens have 0, 0). Gold
``entities`` (null when the row has none: a pseudo-labelled corpus) and the teacher's predicted
spans with their confidence (``teacher_entities``: an entity-annotated corpus on its own).
Provenance the trainer checks: ``label_names`` (the BIO classes), ``teacher_id``,
``teacher_weights_hash``, ``student_tokenizer_hash``, ``normalizer_hash``, ``char_rule``. A
shard set written from several teachers keeps the first one's id and hash there and lists every
member with its weight under ``ensemble``; ``teacher_char_probs`` is then their combination.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import DatasetSpec
from schemas.utterances import ENTITY_TYPE, SPLITS

TEACHER_ENTITY_TYPE = pa.struct([pa.field("start", pa.int32(), nullable=False),
                                 pa.field("end", pa.int32(), nullable=False),
                                 pa.field("label", pa.string(), nullable=False),
                                 pa.field("confidence", pa.float32(), nullable=False)])


def _list(kind: pa.DataType) -> pa.DataType:
    return pa.list_(pa.field("item", kind, nullable=False))


KD_TOKEN_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("split", pa.string(), nullable=False),
    pa.field("input_ids", _list(pa.int32()), nullable=False),
    pa.field("token_starts", _list(pa.int32()), nullable=False),
    pa.field("token_ends", _list(pa.int32()), nullable=False),
    pa.field("entities", _list(ENTITY_TYPE)),  # gold; null when the row has none
    pa.field("teacher_char_probs", _list(pa.float16()), nullable=False),
    pa.field("teacher_entities", _list(TEACHER_ENTITY_TYPE), nullable=False),
])

KD_TOKEN = DatasetSpec(name="kd_token", version=1, schema=KD_TOKEN_SCHEMA, allowed_values={"split": frozenset(SPLITS)})

KD_TOKEN_PROVENANCE_KEYS = ("label_names", "teacher_id", "teacher_weights_hash", "student_tokenizer_hash",
                            "normalizer_hash", "char_rule")

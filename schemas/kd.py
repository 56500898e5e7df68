"""The ``kd`` shards: one row per training example (original or paraphrase), written by
``beam_jobs.augment`` and read by ``kd.distill``.

Teacher logits are raw (temperature 1): the trainer applies the temperature. The manifest's
``provenance`` carries what the trainer checks when it opens a dataset: ``label_names``,
``teacher_id``, ``teacher_weights_hash``, ``student_tokenizer_hash``, ``normalizer_hash``,
``embedding_size``.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import DatasetSpec
from schemas.utterances import SPLITS

KD_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("parent_id", pa.string(), nullable=False),  # the original's id; == id for originals
        pa.field("origin", pa.string(), nullable=False),  # "original" or "paraphrase:<method>"
        pa.field("text", pa.string(), nullable=False),
        pa.field("input_ids", pa.list_(pa.field("item", pa.int32(), nullable=False)), nullable=False),
        pa.field("label", pa.int32(), nullable=False),  # -1 when unlabeled
        pa.field("split", pa.string(), nullable=False),  # inherited from the parent
        pa.field("teacher_logits", pa.list_(pa.field("item", pa.float32(), nullable=False)), nullable=False),
        pa.field("teacher_embedding", pa.list_(pa.field("item", pa.float16(), nullable=False)), nullable=False),
        pa.field("teacher_label", pa.int32(), nullable=False),  # argmax of the logits
        pa.field("teacher_confidence", pa.float32(), nullable=False),  # max softmax probability
        pa.field("teacher_entropy", pa.float32(), nullable=False),  # entropy of the softmax, nats
    ]
)

KD = DatasetSpec(name="kd", version=1, schema=KD_SCHEMA, allowed_values={"split": frozenset(SPLITS)})

#: Provenance keys a kd dataset's manifest must carry.
KD_PROVENANCE_KEYS = ("label_names", "teacher_id", "teacher_weights_hash", "student_tokenizer_hash",
                      "normalizer_hash", "embedding_size")


#: how ``teacher_embedding`` is pooled from the last hidden states (``--embedding-pooling``)
POOLINGS = ("mean", "cls")


def pool_embedding(hidden, attention_mask, pooling: str = "mean"):
    """The sentence embedding the ``teacher_embedding`` column holds, and the student is compared with.

    ``mean``: the mean of the last hidden states over real tokens, (B, L, H), (B, L) -> (B, H);
    ``cls``: the first position's vector. Works on torch tensors without importing torch (the
    contract is written once, here; the augment job's teacher and ``kd.losses`` both call it).
    """
    if pooling == "cls":
        return hidden[:, 0]
    if pooling != "mean":
        raise ValueError(f"embedding pooling: expected one of {POOLINGS}, found {pooling!r}")
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)

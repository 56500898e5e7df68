"""The ``utterances`` dataset: one row per utterance, written by ``beam_jobs.preprocess``."""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import DatasetSpec

SPLITS = ("train", "valid", "test")

EDIT_TYPE = pa.struct(
    [
        pa.field("rule", pa.string(), nullable=False),
        # Character offsets into the text as it was when the rule ran; replaying the edits
        # in order on ``text_raw`` gives ``text`` (see beam_jobs.text.normalizer.replay_edits).
        pa.field("start", pa.int32(), nullable=False),
        pa.field("end", pa.int32(), nullable=False),
        pa.field("before", pa.string(), nullable=False),
        pa.field("after", pa.string(), nullable=False),
    ]
)

MORPH_TYPE = pa.struct([pa.field("form", pa.string(), nullable=False), pa.field("tag", pa.string(), nullable=False)])

UTTERANCES_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),  # stable hash of corpus + source + position
        pa.field("corpus", pa.string(), nullable=False),  # reader format or --corpus-name
        pa.field("source", pa.string(), nullable=False),  # file path relative to the input glob's base
        pa.field("position", pa.string(), nullable=False),  # JSON path or line/row inside the source
        pa.field("doc_id", pa.string(), nullable=False),  # document / dialogue the utterance belongs to
        pa.field("turn", pa.int32(), nullable=False),  # 0-based position inside the document
        pa.field("speaker", pa.string()),
        pa.field("text_raw", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),  # normalized
        pa.field("edits", pa.list_(pa.field("item", EDIT_TYPE, nullable=False)), nullable=False),
        pa.field("tokens", pa.list_(pa.field("item", pa.string(), nullable=False)), nullable=False),
        pa.field("morphs", pa.list_(pa.field("item", MORPH_TYPE, nullable=False))),  # null unless --kiwi
        pa.field("label", pa.string()),  # task label as a string; null when unlabeled
        pa.field("split", pa.string(), nullable=False),  # train / valid / test, by document hash
        pa.field("meta", pa.map_(pa.string(), pa.string()), nullable=False),
    ]
)

UTTERANCES = DatasetSpec(
    name="utterances",
    version=1,
    schema=UTTERANCES_SCHEMA,
    allowed_values={"split": frozenset(SPLITS)},
)

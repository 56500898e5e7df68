"""The ``utterances`` dataset: one row per utterance, written by ``beam_jobs.preprocess``."""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import SPLITS, DatasetSpec

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

#: ``meta``: the source's other fields, as (key, value) pairs — a list of structs, which pandas,
#: pyarrow and Hugging Face ``datasets`` all read (v1's ``map<string, string>`` has no ``datasets`` type)
META_TYPE = pa.list_(pa.field("item", pa.struct([pa.field("key", pa.string(), nullable=False),
                                                 pa.field("value", pa.string())]), nullable=False))

#: a named entity: character offsets into ``text`` (end exclusive) and its type (PS, LC, OG, DT, TI, QT …)
ENTITY_TYPE = pa.struct([pa.field("start", pa.int32(), nullable=False), pa.field("end", pa.int32(), nullable=False),
                         pa.field("label", pa.string(), nullable=False)])

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
        pa.field("meta", META_TYPE, nullable=False),
        # named entities of ``text`` (offsets remapped through the edits); null: not annotated
        pa.field("entities", pa.list_(pa.field("item", ENTITY_TYPE, nullable=False))),
    ]
)

#: v1 (until malmoi 0.2): ``meta`` was a ``map<string, string>``; still read, upgraded on read
UTTERANCES_SCHEMA_V1 = pa.schema([f if f.name != "meta" else pa.field("meta", pa.map_(pa.string(), pa.string()),
                                                                      nullable=False)
                                  for f in UTTERANCES_SCHEMA if f.name != "entities"])


def _upgrade(table: pa.Table, version: int) -> pa.Table:
    """A v1 table in the v2 schema: ``meta``'s map entries become (key, value) structs; no entities."""
    index = table.schema.get_field_index("meta")
    meta = pa.array([[{"key": k, "value": v} for k, v in (row or [])] for row in table.column("meta").to_pylist()],
                    META_TYPE)
    table = table.set_column(index, UTTERANCES_SCHEMA.field("meta"), meta)
    table = table.append_column(UTTERANCES_SCHEMA.field("entities"),
                                pa.nulls(table.num_rows, UTTERANCES_SCHEMA.field("entities").type))
    return table.replace_schema_metadata(table.schema.metadata)

UTTERANCES = DatasetSpec(
    name="utterances",
    version=2,
    schema=UTTERANCES_SCHEMA,
    allowed_values={"split": frozenset(SPLITS)},
    previous={1: UTTERANCES_SCHEMA_V1},
    upgrade=_upgrade,
)

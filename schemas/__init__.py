"""malmoi's data contracts: the pyarrow schemas every stage writes and reads."""

from schemas.dataset import (
    MANIFEST_NAME,
    REJECTS_DIR,
    STATS_NAME,
    SUCCESS_NAME,
    DatasetNotReadyError,
    DatasetSpec,
    SchemaMismatchError,
    build_manifest,
    read_dataset,
    read_manifest,
    table_from_rows,
    validate,
)
from schemas.kd import KD, KD_PROVENANCE_KEYS
from schemas.utterances import SPLITS, UTTERANCES

__version__ = "0.1.0"

__all__ = [
    "KD",
    "KD_PROVENANCE_KEYS",
    "MANIFEST_NAME",
    "REJECTS_DIR",
    "SPLITS",
    "STATS_NAME",
    "SUCCESS_NAME",
    "UTTERANCES",
    "DatasetNotReadyError",
    "DatasetSpec",
    "SchemaMismatchError",
    "build_manifest",
    "read_dataset",
    "read_manifest",
    "table_from_rows",
    "validate",
]

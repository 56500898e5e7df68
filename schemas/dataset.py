"""Dataset contracts: named, versioned pyarrow schemas, validation, manifests and metadata.

A malmoi dataset is a folder of ``{split}-SSSSS-of-NNNNN.parquet`` files (``train-``,
``valid-``, ``test-``: each holds one split's rows, so Hugging Face ``datasets`` finds the splits
by name and nothing else) plus side-cars (``_manifest.json``, ``_stats.json``, ``_rejects/``,
``_SUCCESS``); folders written before that layout hold ``part-SSSSS-of-NNNNN.parquet`` files and
still read. This module is the
single place that knows those names and checks that a table matches its schema. It has no
Beam or torch import so that every stage (and users' own code) can use it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from schemas import storage

MANIFEST_NAME = "_manifest.json"
STATS_NAME = "_stats.json"
REJECTS_DIR = "_rejects"
SUCCESS_NAME = "_SUCCESS"


def success_marker() -> bytes:
    """What ``_SUCCESS`` holds: when the job finished. Only its presence is read; it is not empty
    because an object store written through Beam cannot take a zero-byte object (S3's multipart
    upload needs one part)."""
    import datetime

    return dumps_json({"finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")})
SPLITS = ("train", "valid", "test")
PART_PREFIX = "part"  # the layout before per-split files: every split mixed in part-* files
PART_PREFIXES = (*SPLITS, PART_PREFIX)
ALWAYS_WRITTEN_SPLIT = SPLITS[0]  # its file is written even when empty: every dataset carries its schema in a file
PART_SUFFIX = ".parquet"


def is_part_file(name: str) -> bool:
    """Whether a file name is a dataset part (``train-00000-of-00002.parquet``, legacy ``part-…``)."""
    return name.endswith(PART_SUFFIX) and any(name.startswith(prefix + "-") for prefix in PART_PREFIXES)

# Keys of the Parquet key-value metadata every malmoi file carries.
META_SCHEMA = b"malmoi.schema"
META_VERSION = b"malmoi.schema_version"
META_PROVENANCE = b"malmoi.provenance"


class SchemaMismatchError(ValueError):
    """A table or dataset does not match the contract it claims to follow."""


class DatasetNotReadyError(FileNotFoundError):
    """A dataset folder is missing, incomplete, or was written by an unfinished job."""


@dataclass(frozen=True)
class DatasetSpec:
    """A named, versioned schema plus value-level rules that pyarrow types cannot express."""

    name: str
    version: int
    schema: pa.Schema
    allowed_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: schemas of earlier versions that are still read (version -> schema) …
    previous: Mapping[int, pa.Schema] = field(default_factory=dict)
    #: … and how a table of such a version becomes a table of this one
    upgrade: Any = None

    def reads(self, version: Any) -> bool:
        """Whether data written with schema ``version`` can be read (this version or a kept older one)."""
        return version == self.version or version in self.previous

    def schema_of(self, version: int | None) -> pa.Schema:
        return self.previous.get(version, self.schema) if version is not None else self.schema

    def to_current(self, table: pa.Table, version: int | None) -> pa.Table:
        """``table`` (written with ``version``) in this version's schema."""
        if version is None or version == self.version or self.upgrade is None:
            return table
        return self.upgrade(table, version)

    def schema_with_metadata(self, provenance: Mapping[str, Any] | None = None) -> pa.Schema:
        """The schema carrying malmoi's key-value metadata (written into every Parquet file)."""
        metadata = {
            META_SCHEMA: self.name.encode(),
            META_VERSION: str(self.version).encode(),
            META_PROVENANCE: json.dumps(dict(provenance or {}), sort_keys=True, ensure_ascii=False).encode(),
        }
        return self.schema.with_metadata(metadata)


def _describe(field_: pa.Field) -> str:
    return f"{field_.type}{'' if field_.nullable else ' (not null)'}"


def file_version(schema: pa.Schema) -> int | None:
    """The malmoi schema version a Parquet file's key-value metadata declares (None: none)."""
    value = (schema.metadata or {}).get(META_VERSION)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def validate(table: pa.Table | pa.RecordBatch, spec: DatasetSpec, *, where: str = "table",
             version: int | None = None) -> None:
    """Check that ``table`` follows ``spec``; raise :class:`SchemaMismatchError` naming every problem.

    Checks column names and order, types, nulls in non-nullable columns, and allowed values
    (for example ``split``), against the schema of ``version`` (default: the version the table's
    metadata declares when ``spec`` still reads it, else the current one). Metadata is not
    otherwise compared: provenance is checked by the readers that care about it.
    """
    problems: list[str] = []
    if version is None:
        declared = file_version(table.schema)
        version = declared if declared is not None and spec.reads(declared) else spec.version
    expected_schema = spec.schema_of(version)
    expected_names = expected_schema.names
    found_names = table.schema.names
    missing = [n for n in expected_names if n not in found_names]
    extra = [n for n in found_names if n not in expected_names]
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"unexpected column(s) {extra}")
    if not missing and not extra and expected_names != found_names:
        problems.append(f"columns in order {found_names}, expected {expected_names}")
    for expected in expected_schema:
        if expected.name not in found_names:
            continue
        found = table.schema.field(expected.name)
        if not found.type.equals(expected.type):
            problems.append(f"column '{expected.name}': expected {_describe(expected)}, found {found.type}")
            continue
        column = table.column(expected.name)
        if not expected.nullable and column.null_count:
            problems.append(
                f"column '{expected.name}': expected no nulls, found {column.null_count} null(s)"
            )
        allowed = spec.allowed_values.get(expected.name)
        if allowed is not None:
            values = set(pc.unique(column).to_pylist()) - {None}
            bad = sorted(values - allowed)
            if bad:
                problems.append(f"column '{expected.name}': expected values in {sorted(allowed)}, found {bad}")
    if problems:
        raise SchemaMismatchError(
            f"{where} does not match schema '{spec.name}' v{version}: "
            + "; ".join(problems)
            + f". Fix: write it with schemas.{spec.name.upper()}.schema (see schemas/) "
            "or re-run the job that produces it."
        )


def table_from_rows(rows: Iterable[Mapping[str, Any]], spec: DatasetSpec) -> pa.Table:
    """Build a table with exactly ``spec.schema`` from row dicts, then validate it."""
    table = pa.Table.from_pylist(list(rows), schema=spec.schema)
    validate(table, spec)
    return table


# --------------------------------------------------------------------------- manifests


def build_manifest(
    spec: DatasetSpec,
    *,
    created_by: str,
    rows_per_split: Mapping[str, int],
    files: Iterable[str],
    options: Mapping[str, Any],
    provenance: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``_manifest.json`` content for a dataset (schema, counts, options, provenance)."""
    from schemas import __version__

    manifest = {
        "schema": spec.name,
        "schema_version": spec.version,
        "created_by": created_by,
        "malmoi_version": __version__,
        "num_rows": int(sum(rows_per_split.values())),
        "rows_per_split": {k: int(v) for k, v in sorted(rows_per_split.items())},
        "files": sorted(files),
        "options": dict(options),
        "provenance": dict(provenance),
        "columns": {f.name: str(f.type) for f in spec.schema},
    }
    if extra:
        manifest.update(extra)
    return manifest


def dumps_json(obj: Any) -> bytes:
    """Stable, human-readable JSON bytes for side-cars."""
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n").encode()


# --------------------------------------------------------------------------- reading


def read_manifest(folder: str) -> dict[str, Any]:
    """Read a dataset's ``_manifest.json``; refuse folders without ``_SUCCESS`` (local or remote)."""
    if not storage.is_dir(folder) and not storage.list_files(folder):
        raise DatasetNotReadyError(
            f"dataset folder '{folder}' does not exist. Fix: pass the --output folder of a finished job."
        )
    if not storage.is_file(storage.join(folder, SUCCESS_NAME)):
        raise DatasetNotReadyError(
            f"dataset folder '{folder}' has no {SUCCESS_NAME}: the job that writes it did not finish "
            "(or is still running). Fix: re-run the job, or wait for it to finish."
        )
    return storage.read_json(storage.join(folder, MANIFEST_NAME))


def part_files(folder: str) -> list[str]:
    """The dataset's Parquet part files (full paths or URIs), sorted by name."""
    return [path for path in storage.list_files(folder) if is_part_file(path.rsplit("/", 1)[-1])]


def distinct_values(files: Iterable[str], column: str) -> list[str]:
    """The sorted non-null values of ``column`` over a dataset's part files (e.g. its label names)."""
    names: set[Any] = set()
    for path in files:
        values = storage.read_table(path, columns=[column]).column(column)
        names.update(v for v in pc.unique(values).to_pylist() if v is not None)
    return sorted(names)


def read_dataset(folder: str, spec: DatasetSpec, *, columns: list[str] | None = None) -> pa.Table:
    """Read a finished dataset folder into one table, validating manifest and every file.

    Raises :class:`DatasetNotReadyError` for an unfinished folder and
    :class:`SchemaMismatchError` when the manifest or a file does not follow ``spec``.
    """
    manifest = read_manifest(folder)
    if manifest.get("schema") != spec.name or not spec.reads(manifest.get("schema_version")):
        raise SchemaMismatchError(
            f"dataset '{folder}' holds schema '{manifest.get('schema')}' "
            f"v{manifest.get('schema_version')}, expected '{spec.name}' v{spec.version}. "
            "Fix: point to the output of the job that writes this schema, or re-run it with this malmoi version."
        )
    tables = []
    version = manifest.get("schema_version")
    for path in part_files(folder):
        table = storage.read_table(path)
        metadata = table.schema.metadata or {}
        if metadata.get(META_SCHEMA) != spec.name.encode():
            raise SchemaMismatchError(
                f"file '{path}' carries schema '{metadata.get(META_SCHEMA, b'<none>').decode()}' "
                f"in its metadata, expected '{spec.name}'. Fix: remove foreign files from the folder."
            )
        validate(table, spec, where=f"file '{path}'", version=version)
        table = spec.to_current(table, version)
        tables.append(table.select(columns) if columns else table)
    if not tables:
        schema = spec.schema if not columns else pa.schema([spec.schema.field(c) for c in columns])
        return schema.empty_table()
    total = sum(t.num_rows for t in tables)
    if total != manifest.get("num_rows"):
        raise SchemaMismatchError(
            f"dataset '{folder}' has {total} rows in its part files, but its manifest says "
            f"{manifest.get('num_rows')}. Fix: the folder was modified after the job finished; re-run the job."
        )
    return pa.concat_tables(tables)


def write_local_dataset(folder: str, table: pa.Table, spec: DatasetSpec, *, created_by: str,
                        provenance: Mapping[str, Any], options: Mapping[str, Any] | None = None,
                        split_column: str = "split", row_group_rows: int = 50_000) -> None:
    """Write a small dataset from one process (tests, benchmarks, in-memory tools).

    Same layout and checks as the Beam jobs' output: validated table, one zstd part file per
    split with key-value metadata (``train-`` always, so even an empty dataset has its schema in
    a file), ``_manifest.json``, ``_stats.json`` and, last, ``_SUCCESS``.
    """
    validate(table, spec, where="the table to write")
    os.makedirs(folder, exist_ok=True)
    schema = spec.schema_with_metadata(provenance)
    splits = pc.value_counts(table.column(split_column)).to_pylist() if table.num_rows else []
    rows_per_split = {item["values"]: item["counts"] for item in splits}
    names = []
    for split in SPLITS:
        if split == ALWAYS_WRITTEN_SPLIT or rows_per_split.get(split):
            names.append(f"{split}-00000-of-00001{PART_SUFFIX}")
            rows = table.filter(pc.equal(table.column(split_column), split))
            pq.write_table(rows.cast(schema), os.path.join(folder, names[-1]), compression="zstd",
                           row_group_size=row_group_rows)
    manifest = build_manifest(spec, created_by=created_by, rows_per_split=rows_per_split, files=names,
                              options=options or {}, provenance=provenance)
    with open(os.path.join(folder, MANIFEST_NAME), "wb") as handle:
        handle.write(dumps_json(manifest))
    with open(os.path.join(folder, STATS_NAME), "wb") as handle:
        handle.write(dumps_json({"counts": {"records.out": table.num_rows}}))
    with open(os.path.join(folder, SUCCESS_NAME), "wb") as handle:
        handle.write(success_marker())

"""The Beam shell shared by the jobs: options, input listing and parsing, counting, the Parquet
sink, a coder for Arrow tables, and :class:`WriteDataset` (parts + rejects + stats + conservation + manifest + ``_SUCCESS``).

Everything here works on any Beam filesystem (local paths, ``gs://``), so the same job runs
on the in-process runner and on Dataflow.
"""

from __future__ import annotations

import argparse
import difflib
import glob
import logging
import os
import posixpath
import shutil
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io import filebasedsink
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions, TestOptions
from apache_beam.pvalue import AsDict, AsList, TaggedOutput

from beam_jobs.readers import RawUtterance, ReaderOptions, Reject, parse_file
from schemas.dataset import (
    ALWAYS_WRITTEN_SPLIT,
    MANIFEST_NAME,
    PART_PREFIXES,
    PART_SUFFIX,
    REJECTS_DIR,
    SPLITS,
    STATS_NAME,
    SUCCESS_NAME,
    DatasetSpec,
    build_manifest,
    dumps_json,
    success_marker,
    validate,
)
from schemas.options import MalmoiError, add_options, from_args

LOG = logging.getLogger(__name__)
REJECTS = "rejects"
STATS = "stats"
METRICS_NAMESPACE = "malmoi"
_GLOB_CHARS = "*?["


# --------------------------------------------------------------------------- progress


class Progress:
    """A stage's progress in this worker process, logged at most every ``every`` seconds
    ("augment.teacher: 12,288 rows, 240 rows/s"): long stages say where they are (Beam's own
    counters only reach the runner's UI). Safe to hold in a DoFn: it pickles without its clock."""

    def __init__(self, stage: str, unit: str = "rows", every: float = 30.0) -> None:
        self.stage, self.unit, self.every = stage, unit, every
        self.count, self.started, self.last = 0, None, None

    def add(self, n: int = 1) -> None:
        import time

        now = time.monotonic()
        if self.started is None:
            self.started = self.last = now
        self.count += n
        if now - self.last >= self.every:
            self.last = now
            LOG.info("%s: %s %s, %.0f %s/s", self.stage, f"{self.count:,}", self.unit,
                     self.count / max(now - self.started, 1e-9), self.unit)

    def __getstate__(self) -> dict:
        return {"stage": self.stage, "unit": self.unit, "every": self.every, "count": 0, "started": None, "last": None}


# --------------------------------------------------------------------------- options


def pipeline_options(beam_args: list[str]) -> PipelineOptions:
    """Standard Beam options; locally the in-process FnApiRunner unless --runner says otherwise.

    Naming the runner avoids DirectRunner's attempt to download Prism (docs/design.md, facts).
    """
    options = PipelineOptions(beam_args)
    standard = options.view_as(StandardOptions)
    if not standard.runner:
        standard.runner = "FnApiRunner"
    return options


BEAM_EPILOG = ("Any other option is passed to Beam (e.g. --runner, --project, --region, --temp_location, "
               "--setup_file, --direct_num_workers).")


def job_parser(config_cls: type, *, prog: str, description: str | None) -> argparse.ArgumentParser:
    """A job's command line: the options its config declares; Beam's own options pass through."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=BEAM_EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, config_cls)
    return parser


def beam_flags() -> set[str]:
    """Every option Beam's ``PipelineOptions`` (all of its option groups) understands."""
    parser = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
    pending, seen = [PipelineOptions], set()
    while pending:
        cls = pending.pop()
        if cls in seen:
            continue
        seen.add(cls)
        pending.extend(cls.__subclasses__())
        cls._add_argparse_args(parser)
    return {flag for action in parser._actions for flag in action.option_strings}


def parse_job(config_cls: type, argv: list[str] | None, *, prog: str, description: str | None) -> tuple[Any, list[str]]:
    """``argv`` -> (the job's config, the remaining arguments for Beam's PipelineOptions).

    An option neither the job nor Beam knows is an error naming the nearest known one: Beam alone
    would drop it with a log line, so a misspelt flag would silently change the results."""
    parser = job_parser(config_cls, prog=prog, description=description)
    args, beam_args = parser.parse_known_args(argv)
    known_to_beam = beam_flags()
    ours = {flag for action in parser._actions for flag in action.option_strings}
    for arg in beam_args:
        name = arg.split("=", 1)[0]
        if name.startswith("-") and name not in known_to_beam:
            nearest = difflib.get_close_matches(name, sorted(ours | known_to_beam), n=1, cutoff=0.5)
            raise MalmoiError(f"{prog}: unknown option {name!r}" + (f" (did you mean {nearest[0]}?)" if nearest else ""),
                              f"see {prog} --help for the job's options; any other must be a Beam pipeline option.")
    # what a job does outside its pipeline (listing inputs, side-cars, _SUCCESS) uses Beam's
    # FileSystems too: give them the run's options (s3:// needs its endpoint and keys from them)
    FileSystems.set_options(PipelineOptions(beam_args))
    return from_args(config_cls, args), beam_args


def is_dry_run(beam_args: list[str], test_pipeline: beam.Pipeline | None = None) -> bool:
    """Whether the run only translates the job (``--dry_run`` of the Dataflow runner): nothing ran,
    so nothing may be checked as written."""
    options = test_pipeline.options if test_pipeline is not None else PipelineOptions(beam_args)
    value = options.view_as(TestOptions).dry_run  # an untyped option: "--dry_run=True" gives the string
    return str(value).strip().lower() in ("true", "1", "yes")


def run_job(build: Any, beam_args: list[str], test_pipeline: beam.Pipeline | None = None):
    """Build a job's steps into ``test_pipeline`` (or a new pipeline from ``beam_args``), run it to the end."""
    pipeline = test_pipeline or beam.Pipeline(options=pipeline_options(beam_args))
    build(pipeline)
    result = pipeline.run()
    result.wait_until_finish()
    return result


# --------------------------------------------------------------------------- inputs


def glob_base(pattern: str) -> str:
    """The directory before the first wildcard; sources are named relative to it."""
    cut = min((pattern.find(c) for c in _GLOB_CHARS if c in pattern), default=-1)
    prefix = pattern if cut < 0 else pattern[:cut]
    if cut < 0:
        return posixpath.dirname(pattern.rstrip("/"))
    return prefix if prefix.endswith("/") else posixpath.dirname(prefix)


def resolve_input(pattern: str) -> str:
    """A directory means every file below it (``DIR/**``)."""
    if any(c in pattern for c in _GLOB_CHARS):
        return pattern
    if "://" not in pattern:
        return pattern.rstrip("/") + "/**" if os.path.isdir(pattern) else pattern
    if FileSystems.match([pattern])[0].metadata_list:
        return pattern
    return pattern.rstrip("/") + "/**"


def check_inputs(patterns: Iterable[str]) -> list[str]:
    """Resolve inputs and fail early, with the fix, when one matches nothing. Local paths become
    absolute, so how a path is spelled (./data, data/) changes no source name or id."""
    resolved = []
    for pattern in patterns:
        spec = resolve_input(pattern)
        if "://" not in spec:
            spec = os.path.abspath(spec)  # keeps the glob; drops ./ and a trailing /
        matched = FileSystems.match([spec])[0].metadata_list
        if not matched:
            raise FileNotFoundError(
                f"--input {pattern!r} matched no files. Fix: check the path or glob (quote it so the "
                "shell does not expand it), e.g. --input 'data/samples/**'."
            )
        resolved.append(spec)
    return resolved


def common_base(patterns: Iterable[str]) -> str:
    """The deepest folder every input's glob base lies in: sources are named relative to it, so the
    same file name under two input folders gives two sources (a/x.txt, b/x.txt) and two ids."""
    parts = [glob_base(p).rstrip("/").split("/") for p in patterns]
    if not parts:
        return ""
    shared = []
    for pieces in zip(*parts, strict=False):
        if len(set(pieces)) != 1:
            break
        shared.append(pieces[0])
    return "/".join(shared) + "/" if shared else ""


def relative_source(path: str, base: str) -> str:
    """A file's name relative to its glob's base: stable across machines and buckets."""
    if base and path.startswith(base):
        relative = path[len(base):].lstrip("/")
        return relative or posixpath.basename(path)
    return posixpath.basename(path)


class ExpandInputsFn(beam.DoFn):
    """Glob -> (source name, full path) for every matched file, sorted for stable output; sources
    are relative to ``base`` (the common base of all inputs; the glob's own base when None)."""

    def __init__(self, base: str | None = None) -> None:
        self._base = base

    def process(self, pattern: str):
        base = self._base if self._base is not None else glob_base(pattern)
        for metadata in sorted(FileSystems.match([pattern])[0].metadata_list, key=lambda m: m.path):
            if metadata.path.endswith("/"):
                continue
            yield relative_source(metadata.path, base), metadata.path


class ParseFilesFn(beam.DoFn):
    """(source, path) -> batches of RawUtterance; rejects and file counts on side outputs."""

    def __init__(self, reader: ReaderOptions, batch_size: int) -> None:
        self._reader = reader
        self._batch_size = batch_size
        self._progress = Progress("read", "records")

    def process(self, element: tuple[str, str]):
        source, path = element
        yield TaggedOutput(STATS, count("files.matched"))
        batch: list[RawUtterance] = []
        file_reject: Reject | None = None
        if "://" not in path and os.path.exists(path) and not stat.S_ISREG(os.stat(path).st_mode):
            file_reject = Reject("not_a_regular_file", source, "", "a FIFO, socket or device, not a file: it is "
                                 "not opened (a FIFO would block the job). Fix: remove it from the input.", "", "file")
            yield TaggedOutput(REJECTS, file_reject)
            yield TaggedOutput(STATS, count("files.rejected"))
            yield TaggedOutput(STATS, count(f"files.rejected.{file_reject.reason}"))
            return
        try:
            with FileSystems.open(path, compression_type="uncompressed") as stream:
                for item in parse_file(stream, source, self._reader):
                    if isinstance(item, Reject):
                        if item.level == "file":
                            file_reject = file_reject or item
                        else:
                            yield TaggedOutput(STATS, count("records.in"))
                            yield TaggedOutput(STATS, count(f"records.rejected.{item.reason}"))
                        yield TaggedOutput(REJECTS, item)
                        continue
                    batch.append(item)
                    if len(batch) >= self._batch_size:
                        yield TaggedOutput(STATS, count("records.in", len(batch)))
                        self._progress.add(len(batch))
                        yield batch
                        batch = []
        except OSError as error:  # unreadable file (permissions, vanished): the run goes on
            file_reject = Reject("unreadable_file", source, "", f"cannot open or read: {error}", "", "file")
            yield TaggedOutput(REJECTS, file_reject)
        if batch:
            yield TaggedOutput(STATS, count("records.in", len(batch)))
            yield batch
        if file_reject is not None:
            yield TaggedOutput(STATS, count("files.rejected"))
            yield TaggedOutput(STATS, count(f"files.rejected.{file_reject.reason}"))
        else:
            yield TaggedOutput(STATS, count("files.read"))


class ReadCorpus(beam.PTransform):
    """Input globs -> batches of RawUtterance (main output ``utterances``), with ``rejects`` and ``stats``."""

    def __init__(self, inputs: Iterable[str], reader: ReaderOptions, batch_size: int) -> None:
        super().__init__()
        self._inputs = list(inputs)
        self._reader = reader
        self._batch_size = batch_size

    def expand(self, pipeline):
        return (
            pipeline
            | "ListInputs" >> beam.Create(self._inputs)
            | "MatchFiles" >> beam.ParDo(ExpandInputsFn(common_base(self._inputs)))
            | "ReadEachFileOnce" >> beam.Distinct()  # a file two inputs match is read once
            | "SpreadFiles" >> beam.Reshuffle()
            | "ReadAndParse" >> beam.ParDo(ParseFilesFn(self._reader, self._batch_size)).with_outputs(
                REJECTS, STATS, main="utterances")
        )


# --------------------------------------------------------------------------- counting


def count(name: str, n: int = 1) -> tuple[str, int]:
    """A stats element for the ``stats`` output, also reported as a Beam counter."""
    Metrics.counter(METRICS_NAMESPACE, name).inc(n)
    return name, n


# --------------------------------------------------------------------------- Arrow tables between stages


class ArrowTablesCoder(beam.coders.Coder):
    """A list of Arrow tables as Arrow IPC streams, for combiner accumulators that cross a shuffle.

    Beam's default (pickle) writes every buffer a table *references*: a zero-copy slice of a
    larger table, or one of the chunks ``group_by`` returns, carries its whole parent buffer, so
    16 shard slices of one batch encoded 16 times its size. IPC writes only each slice's rows.

    The streams' buffers are zstd-compressed (level 1, ``compression=None`` for none; a stream
    says its own codec, so either kind decodes): with several local workers every accumulator
    crosses the runner's gRPC data plane twice and the runner decodes and re-encodes it in
    between, which for learn_words' partial counts (31 MB a worker at 200k utterances, 12 MB
    compressed) was most of the time between counting and scoring (docs/benchmarks.md).
    """

    def __init__(self, compression: str | None = "zstd", level: int | None = 1) -> None:
        self.compression, self.level = compression, level

    def _write_options(self) -> pa.ipc.IpcWriteOptions:
        """Built per call: Arrow's options do not pickle, and the coder travels to every worker."""
        usable = self.compression is not None and pa.Codec.is_available(self.compression)
        return pa.ipc.IpcWriteOptions(compression=pa.Codec(self.compression, self.level) if usable else None)

    def encode(self, tables: list[pa.Table]) -> bytes:
        out = pa.BufferOutputStream()
        out.write(len(tables).to_bytes(8, "little"))  # 8-byte fields keep every stream 8-aligned
        options = self._write_options()
        for table in tables:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
                writer.write_table(table)
            data = sink.getvalue()
            out.write(data.size.to_bytes(8, "little"))
            out.write(data)
        return out.getvalue().to_pybytes()

    def decode(self, encoded: bytes) -> list[pa.Table]:
        buffer = pa.py_buffer(encoded)
        count_, position, tables = int.from_bytes(encoded[:8], "little"), 8, []
        for _ in range(count_):
            size = int.from_bytes(encoded[position:position + 8], "little")
            position += 8
            tables.append(pa.ipc.open_stream(buffer.slice(position, size)).read_all())
            position += size
        return tables

    def estimate_size(self, tables: list[pa.Table]) -> int:
        """The tables' own size, for Beam's byte-count metrics: the default encodes the value a
        second time just to measure it (half of learn_words' encoding work)."""
        return sum(table.nbytes for table in tables)

    def is_deterministic(self) -> bool:
        return False

    def to_type_hint(self):
        return list


# --------------------------------------------------------------------------- the Parquet sink


class _RowGroupWriter:
    """Buffers incoming tables and writes them as row groups of at least ``row_group_rows``."""

    def __init__(self, handle: Any, schema: pa.Schema, codec: str, row_group_rows: int) -> None:
        self.handle = handle
        self.writer = pq.ParquetWriter(handle, schema, compression=codec)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self.buffer: list[pa.Table] = []
        self.buffered = 0

    def add(self, table: pa.Table) -> None:
        self.buffer.append(table)
        self.buffered += table.num_rows
        if self.buffered >= self.row_group_rows:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            table = pa.concat_tables(self.buffer).replace_schema_metadata(self.schema.metadata)
            self.writer.write_table(table, row_group_size=max(self.row_group_rows, table.num_rows))
            self.buffer, self.buffered = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


class ParquetDatasetSink(filebasedsink.FileBasedSink):
    """Writes ``{prefix}-SSSSS-of-NNNNN.parquet`` files with an explicit schema, compression and
    large row groups (Beam's own sink writes one row group per incoming table); with
    ``skip_if_empty`` an empty collection writes no file at all."""

    def __init__(self, folder: str, schema: pa.Schema, codec: str = "zstd", row_group_rows: int = 50_000, *,
                 prefix: str, skip_if_empty: bool = False) -> None:
        super().__init__(
            posixpath.join(folder, prefix) if "://" not in folder else folder.rstrip("/") + "/" + prefix,
            coder=None,
            file_name_suffix=PART_SUFFIX,
            num_shards=0,
            shard_name_template="-SSSSS-of-NNNNN",
            mime_type="application/x-parquet",
            compression_type=CompressionTypes.UNCOMPRESSED,
            skip_if_empty=skip_if_empty,
        )
        self._schema = schema
        self._codec = codec
        self._row_group_rows = row_group_rows

    def open(self, temp_path: str) -> _RowGroupWriter:
        return _RowGroupWriter(super().open(temp_path), self._schema, self._codec, self._row_group_rows)

    def write_record(self, file_handle: _RowGroupWriter, value: pa.Table) -> None:
        file_handle.add(value)

    def close(self, file_handle: _RowGroupWriter) -> None:
        file_handle.close()
        super().close(file_handle.handle)


class RowsToTableFn(beam.DoFn):
    """A batch of row dicts -> one validated Arrow table, counting rows per split."""

    def __init__(self, spec: DatasetSpec, split_column: str = "split", counter: str = "records.out") -> None:
        self._spec = spec
        self._split_column = split_column
        self._counter = counter

    def process(self, rows: list[dict[str, Any]]):
        if not rows:
            return
        table = pa.Table.from_pylist(rows, schema=self._spec.schema)
        validate(table, self._spec, where="a batch about to be written")
        splits: dict[str, int] = {}
        for value in table.column(self._split_column).to_pylist():
            splits[value] = splits.get(value, 0) + 1
        yield beam.pvalue.TaggedOutput(STATS, count(self._counter, table.num_rows))
        for split, n in sorted(splits.items()):
            yield beam.pvalue.TaggedOutput(STATS, count(f"{self._counter}.{split}", n))
        yield table


# --------------------------------------------------------------------------- output folder


def finished(folder: str) -> bool:
    """Whether a job's output folder has its ``_SUCCESS`` (local or remote)."""
    return FileSystems.exists(f"{folder.rstrip('/')}/{SUCCESS_NAME}")


def prepare_output(folder: str, overwrite: bool, also: tuple[str, ...] = ()) -> None:
    """Refuse to mix runs in one folder; with ``overwrite`` remove what a previous run wrote first:
    its parts, side-cars, rejects, the files named in ``also``, and the ``beam-temp-*`` folders a
    killed run leaves behind (only those: other files in the folder are not malmoi's and stay).
    Local paths and object stores alike (through Beam's ``FileSystems``)."""
    existing = []
    base = folder.rstrip("/")
    for pattern in (*(f"{base}/{prefix}-*{PART_SUFFIX}" for prefix in PART_PREFIXES), f"{base}/_*", f"{base}/{REJECTS_DIR}/*",
                    f"{base}/beam-temp-*/**", f"{base}/{REJECTS_DIR}/beam-temp-*/**",
                    *(f"{base}/{name}" for name in also)):
        try:
            existing += [m.path for m in FileSystems.match([pattern])[0].metadata_list]
        except Exception:  # noqa: BLE001 - a missing folder matches nothing
            continue
    if not existing:
        return
    if not overwrite:
        raise FileExistsError(
            f"--output {folder!r} already holds a dataset ({len(existing)} files, e.g. {existing[0]}). "
            "Fix: choose a new folder, or pass --overwrite to replace it."
        )
    success = f"{folder.rstrip('/')}/{SUCCESS_NAME}"
    if FileSystems.exists(success):  # first, so a half-replaced folder never looks finished
        FileSystems.delete([success])
    FileSystems.delete([p for p in existing if p != success and FileSystems.exists(p)])
    if "://" not in base:  # the emptied temp folders themselves (object stores have no folders)
        for temp in glob.glob(f"{base}/beam-temp-*") + glob.glob(f"{base}/{REJECTS_DIR}/beam-temp-*"):
            shutil.rmtree(temp, ignore_errors=True)


def write_bytes(path: str, data: bytes) -> None:
    with FileSystems.create(path) as handle:
        handle.write(data)


@dataclass(frozen=True)
class Balance:
    """One conservation law over the job's counters: ``total == sum(parts)``.

    Each term is ``(name in the summary, counter)``; a counter ending in ``.`` sums every
    counter under that prefix (``records.rejected.`` = all reject reasons).
    """

    total: tuple[str, str]
    parts: tuple[tuple[str, str], ...]


def counter_value(stats: Mapping[str, int], counter: str) -> int:
    if counter.endswith("."):
        return sum(v for k, v in stats.items() if k.startswith(counter))
    return int(stats.get(counter, 0))


def conservation(stats: Mapping[str, int], balances: Iterable[Balance]) -> dict[str, Any]:
    """Every term of ``balances`` and whether all hold; a job whose counts do not balance fails.

    Raises RuntimeError (a malmoi bug, never bad input): a dataset whose counts do not add up
    must not look finished, so this runs before ``_SUCCESS`` is written.
    """
    summary: dict[str, Any] = {}
    broken = []
    for balance in balances:
        total = counter_value(stats, balance.total[1])
        parts = {name: counter_value(stats, counter) for name, counter in balance.parts}
        summary[balance.total[0]] = total
        summary.update(parts)
        if total != sum(parts.values()):
            broken.append(f"{balance.total[0]} {total} != {' + '.join(f'{k} {v}' for k, v in parts.items())}")
    summary["balanced"] = not broken
    if broken:
        raise RuntimeError(f"malmoi bug: counts do not balance ({'; '.join(broken)}): {summary}. "
                           "Please report it with the input.")
    return summary


class WriteRejects(beam.PTransform):
    """Reject records -> ``FOLDER/rejects-SSSSS-of-NNNNN.jsonl`` (a dataset's ``_rejects/``); outputs the file names."""

    def __init__(self, folder: str) -> None:
        super().__init__()
        self._folder = folder.rstrip("/")

    def expand(self, rejects):
        return (rejects
                | "RejectsToJson" >> beam.Map(Reject.to_json)
                | "WriteRejectLines" >> beam.io.WriteToText(f"{self._folder}/rejects",
                                                            file_name_suffix=".jsonl",
                                                            shard_name_template="-SSSSS-of-NNNNN",
                                                            # no empty file: S3 takes no zero-byte upload
                                                            skip_if_empty=True))


class SumStats(beam.PTransform):
    """Several ``(counter, n)`` collections -> one ``(counter, total)`` per counter."""

    def expand(self, parts):
        return parts | "AllStats" >> beam.Flatten() | "SumCounters" >> beam.CombinePerKey(sum)


class SplitTablesFn(beam.DoFn):
    """An Arrow table -> its rows of each split, tagged with the split's name."""

    def __init__(self, split_column: str) -> None:
        self._split_column = split_column

    def process(self, table: pa.Table):
        column = table.column(self._split_column)
        taken = 0
        for split in SPLITS:
            rows = table.filter(pc.equal(column, split))
            taken += rows.num_rows
            if rows.num_rows:
                yield TaggedOutput(split, rows)
        if taken != table.num_rows:  # validated upstream; a row no split file would take is never dropped silently
            found = sorted(set(column.to_pylist()) - set(SPLITS), key=str)[:5]
            raise ValueError(f"rows with split {found}, expected one of {list(SPLITS)}")


class WriteDataset(beam.PTransform):
    """A whole dataset folder: part files, ``_rejects/``, ``_stats.json`` (counts + conservation),
    ``_manifest.json`` and, last, ``_SUCCESS``.

    Input: ``{"tables": Arrow tables, "rejects": Reject records, "stats": (counter, n) pairs}``
    (flatten several collections of rejects or stats first).
    ``balances`` are the job's conservation laws; ``rows_counter`` names the counter of written
    rows (``<rows_counter>.<split>`` gives the manifest's rows per split).
    """

    def __init__(self, *, folder: str, spec: DatasetSpec, provenance: Mapping[str, Any], created_by: str,
                 options: Mapping[str, Any], balances: tuple[Balance, ...], rows_counter: str = "records.out",
                 codec: str = "zstd", row_group_rows: int = 50_000, split_column: str = "split") -> None:
        super().__init__()
        self._split_column = split_column
        self._folder = folder.rstrip("/")
        self._spec = spec
        self._provenance = dict(provenance)
        self._created_by = created_by
        self._options = dict(options)
        self._balances = balances
        self._rows_counter = rows_counter
        self._codec = codec
        self._row_group_rows = row_group_rows

    def expand(self, inputs):
        schema = self._spec.schema_with_metadata(self._provenance)
        # one file set per split (Hugging Face finds them by name)
        by_split = inputs["tables"] | "BySplit" >> beam.ParDo(SplitTablesFn(self._split_column)).with_outputs(*SPLITS)
        written = [by_split[split] | f"Write_{split}" >> beam.io.Write(ParquetDatasetSink(
            self._folder, schema, self._codec, self._row_group_rows, prefix=split,
            skip_if_empty=split != ALWAYS_WRITTEN_SPLIT)) for split in SPLITS] | "AllParts" >> beam.Flatten()
        reject_files = inputs["rejects"] | "WriteRejects" >> WriteRejects(f"{self._folder}/{REJECTS_DIR}")
        stats = inputs["stats"] | "SumCounters" >> beam.CombinePerKey(sum)
        return (inputs["tables"].pipeline
                | "FinalizeTrigger" >> beam.Create([None])
                | "WriteManifest" >> beam.Map(self._finalize, AsList(written), AsList(reject_files), AsDict(stats)))

    def _finalize(self, _: Any, written_files: list[str], reject_files: list[str], stats: Mapping[str, int]) -> str:
        """Write ``_stats.json``, ``_manifest.json`` and, last, ``_SUCCESS``."""
        stats = dict(stats)
        summary = conservation(stats, self._balances)
        prefix = self._rows_counter + "."
        rows_per_split = {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
        stats_doc = {"counts": dict(sorted(stats.items())), "conservation": summary,
                     "reject_files": sorted(posixpath.basename(f) for f in reject_files)}
        write_bytes(f"{self._folder}/{STATS_NAME}", dumps_json(stats_doc))
        manifest = build_manifest(self._spec, created_by=self._created_by, rows_per_split=rows_per_split,
                                  files=[posixpath.basename(f) for f in written_files], options=self._options,
                                  provenance=self._provenance)
        write_bytes(f"{self._folder}/{MANIFEST_NAME}", dumps_json(manifest))
        write_bytes(f"{self._folder}/{SUCCESS_NAME}", success_marker())
        LOG.info("wrote %s: %d rows %s", self._folder, manifest["num_rows"], manifest["rows_per_split"])
        return self._folder

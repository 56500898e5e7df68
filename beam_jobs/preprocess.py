"""``python -m beam_jobs.preprocess``: raw corpora -> the ``utterances`` Parquet dataset.

read -> parse -> normalize -> tokenize -> [exact dedup on normalized text] -> split -> write,
plus ``_manifest.json``, ``_stats.json``, ``_rejects/`` and, last, ``_SUCCESS``.

Locally it runs on Beam's in-process runner; any standard Beam option passes through, so
``--runner DataflowRunner --project P --region R --temp_location gs://… --setup_file ./setup.py``
runs it on Dataflow unchanged. Work moves through the pipeline in batches of utterances
(``--batch-size``), since Beam's per-element overhead would otherwise dominate.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
from dataclasses import asdict, dataclass
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import AsDict, AsList, TaggedOutput
from apache_beam.transforms.util import BatchElements

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, count
from beam_jobs.cli import add_reader_arguments, normalizer_config, reader_options
from beam_jobs.readers import RawUtterance, ReaderOptions, Reject, parse_file
from beam_jobs.records import RowBuilder, RowOptions, SplitRatios
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.tokenizer import Tokenizer, TokenizerConfig
from schemas import REJECTS_DIR, UTTERANCES

LOG = logging.getLogger(__name__)
JOB_NAME = "beam_jobs.preprocess"


@dataclass(frozen=True)
class PreprocessConfig:
    """Everything that decides the job's output; saved into the manifest."""

    inputs: tuple[str, ...]
    output: str
    reader: ReaderOptions = ReaderOptions()
    normalizer: NormalizerConfig = NormalizerConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    rows: RowOptions = RowOptions()
    dedup: bool = False
    kiwi_morphs: bool = False
    batch_size: int = 2000
    row_group_rows: int = 50_000
    codec: str = "zstd"
    overwrite: bool = False

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self), default=str))


# --------------------------------------------------------------------------- DoFns (thin shells)


class ParseFilesFn(beam.DoFn):
    """(source, path) -> batches of RawUtterance; rejects and file counts on side outputs."""

    def __init__(self, reader: ReaderOptions, batch_size: int) -> None:
        self._reader = reader
        self._batch_size = batch_size

    def process(self, element: tuple[str, str]):
        from apache_beam.io.filesystems import FileSystems

        source, path = element
        yield TaggedOutput(STATS, count("files.matched"))
        batch: list[RawUtterance] = []
        file_reject: Reject | None = None
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


class BuildRowsFn(beam.DoFn):
    """A batch of RawUtterance -> a batch of ``utterances`` rows (normalized, tokenized, split)."""

    def __init__(self, config: PreprocessConfig) -> None:
        self._config = config
        self._builder: RowBuilder | None = None

    def setup(self) -> None:
        morphs = None
        if self._config.kiwi_morphs:
            from beam_jobs.text.morphs import KiwiMorphs

            morphs = KiwiMorphs()
        self._builder = RowBuilder(Normalizer(self._config.normalizer), Tokenizer(self._config.tokenizer),
                                   self._config.rows, morphs)

    def process(self, batch: list[RawUtterance]):
        rows = []
        for item in self._builder.build_many(batch):  # type: ignore[union-attr]
            if isinstance(item, Reject):
                yield TaggedOutput(STATS, count(f"records.rejected.{item.reason}"))
                yield TaggedOutput(REJECTS, item)
            else:
                rows.append(item)
        if rows:
            yield rows


def dedup_key(row: dict[str, Any]) -> str:
    """Rows with the same normalized text are duplicates (exact dedup)."""
    return hashlib.sha1(row["text"].encode()).hexdigest()


def keep_first(element: tuple[str, Any]):
    """Keep the duplicate with the smallest id (deterministic); count the others."""
    _, rows = element
    rows = sorted(rows, key=lambda r: r["id"])
    if len(rows) > 1:
        yield TaggedOutput(STATS, count("records.deduplicated", len(rows) - 1))
    yield rows[0]


class Deduplicate(beam.PTransform):
    """Batches of rows -> batches of rows with exact duplicates of normalized text removed."""

    def __init__(self, batch_size: int) -> None:
        super().__init__()
        self._batch_size = batch_size

    def expand(self, batches):
        kept = (
            batches
            | "KeyByText" >> beam.FlatMap(lambda rows: ((dedup_key(r), r) for r in rows))
            | "GroupByText" >> beam.GroupByKey()
            | "KeepFirst" >> beam.FlatMap(keep_first).with_outputs(STATS, main="rows")
        )
        rebatched = kept.rows | "Rebatch" >> BatchElements(
            min_batch_size=self._batch_size, max_batch_size=self._batch_size * 5
        )
        return rebatched, kept[STATS]


# --------------------------------------------------------------------------- conservation


def conservation(stats: dict[str, int]) -> dict[str, Any]:
    """rows in = rows out + rejected + deduplicated (records), matched = read + rejected (files)."""
    rejected = sum(v for k, v in stats.items() if k.startswith("records.rejected."))
    summary = {
        "records_in": stats.get("records.in", 0),
        "records_out": stats.get("records.out", 0),
        "records_rejected": rejected,
        "records_deduplicated": stats.get("records.deduplicated", 0),
        "files_matched": stats.get("files.matched", 0),
        "files_read": stats.get("files.read", 0),
        "files_rejected": stats.get("files.rejected", 0),
    }
    summary["balanced"] = (
        summary["records_in"] == summary["records_out"] + rejected + summary["records_deduplicated"]
        and summary["files_matched"] == summary["files_read"] + summary["files_rejected"]
    )
    if not summary["balanced"]:
        raise RuntimeError(f"malmoi bug: counts do not balance: {summary}. Please report it with the input.")
    return summary


def _finalize(_, written_files, reject_files, stats, *, config: PreprocessConfig, provenance):
    stats = dict(stats)
    return beam_io.finalize_dataset(
        None,
        folder=config.output,
        spec=UTTERANCES,
        created_by=JOB_NAME,
        written_files=written_files,
        reject_files=reject_files,
        stats=stats,
        options=config.to_dict(),
        provenance=provenance,
        conservation=conservation(stats),
    )


# --------------------------------------------------------------------------- the pipeline


def provenance_of(config: PreprocessConfig) -> dict[str, Any]:
    tokenizer = Tokenizer(config.tokenizer)
    return {
        "normalizer_hash": config.normalizer.hash(),
        "normalizer_config": config.normalizer.to_dict(),
        "tokenizer_hash": tokenizer.hash(),
        "tokenizer_config": config.tokenizer.to_dict(),
        "kiwi_morphs": config.kiwi_morphs,
    }


def build(pipeline: beam.Pipeline, config: PreprocessConfig) -> None:
    """Add the preprocess steps to ``pipeline``."""
    provenance = provenance_of(config)
    schema = UTTERANCES.schema_with_metadata(provenance)

    files = (
        pipeline
        | "ListInputs" >> beam.Create(list(config.inputs))
        | "MatchFiles" >> beam.ParDo(beam_io.ExpandInputsFn())
        | "SpreadFiles" >> beam.Reshuffle()
    )
    parsed = files | "ReadAndParse" >> beam.ParDo(ParseFilesFn(config.reader, config.batch_size)).with_outputs(
        REJECTS, STATS, main="utterances"
    )
    built = parsed.utterances | "NormalizeTokenizeSplit" >> beam.ParDo(BuildRowsFn(config)).with_outputs(
        REJECTS, STATS, main="rows"
    )
    stats_parts = [parsed[STATS], built[STATS]]
    row_batches = built.rows
    if config.dedup:
        row_batches, dedup_stats = row_batches | "Deduplicate" >> Deduplicate(config.batch_size)
        stats_parts.append(dedup_stats)
    tables = row_batches | "RowsToArrow" >> beam.ParDo(beam_io.RowsToTableFn(UTTERANCES)).with_outputs(
        STATS, main="tables"
    )
    stats_parts.append(tables[STATS])
    written = tables.tables | "WriteShards" >> beam.io.Write(
        beam_io.ParquetDatasetSink(config.output, schema, config.codec, config.row_group_rows)
    )
    reject_files = (
        (parsed[REJECTS], built[REJECTS])
        | "AllRejects" >> beam.Flatten()
        | "RejectsToJson" >> beam.Map(beam_io.reject_to_json)
        | "WriteRejects" >> beam.io.WriteToText(
            f"{config.output.rstrip('/')}/{REJECTS_DIR}/rejects", file_name_suffix=".jsonl",
            shard_name_template="-SSSSS-of-NNNNN",
        )
    )
    stats = stats_parts | "AllStats" >> beam.Flatten() | "SumStats" >> beam.CombinePerKey(sum)
    _ = (
        pipeline
        | "FinalizeTrigger" >> beam.Create([None])
        | "WriteManifest" >> beam.Map(
            _finalize, AsList(written), AsList(reject_files), AsDict(stats), config=config, provenance=provenance
        )
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.preprocess",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Any other option is passed to Beam (e.g. --runner, --project, --region, "
        "--temp_location, --setup_file, --direct_num_workers).",
    )
    add_reader_arguments(parser)
    parser.add_argument("--output", required=True, metavar="DIR", help="dataset folder to write")
    parser.add_argument("--tokenizer", default="whitespace", choices=("whitespace", "soynlp"))
    parser.add_argument("--word-scores", default=None, help="word-scores file from beam_jobs.learn_words")
    parser.add_argument("--soynlp-tokenizer", default="ltokenizer", choices=("ltokenizer", "maxscore"))
    parser.add_argument("--kiwi-morphs", action="store_true", help="add the Kiwi morphs column (slow)")
    parser.add_argument("--dedup", action="store_true",
                        help="drop exact duplicates of normalized text (off by default: short turns such "
                        "as 네 repeat legitimately inside dialogues)")
    parser.add_argument("--split-ratios", default="0.8,0.1,0.1", help="train,valid,test fractions of documents")
    parser.add_argument("--split-seed", default="", help="changes the document -> split assignment")
    parser.add_argument("--max-chars", type=int, default=2000, help="longer utterances are rejected")
    parser.add_argument("--batch-size", type=int, default=2000, help="utterances per pipeline element")
    parser.add_argument("--row-group-rows", type=int, default=50_000)
    parser.add_argument("--codec", default="zstd", choices=("zstd", "snappy", "gzip", "none"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --output")
    return parser


def config_from_args(args: argparse.Namespace) -> PreprocessConfig:
    return PreprocessConfig(
        inputs=tuple(args.input),
        output=args.output.rstrip("/"),
        reader=reader_options(args),
        normalizer=normalizer_config(args),
        tokenizer=TokenizerConfig(args.tokenizer, args.soynlp_tokenizer, args.word_scores),
        rows=RowOptions(SplitRatios.parse(args.split_ratios), args.split_seed, args.max_chars),
        dedup=args.dedup,
        kiwi_morphs=args.kiwi_morphs,
        batch_size=args.batch_size,
        row_group_rows=args.row_group_rows,
        codec=args.codec,
        overwrite=args.overwrite,
    )


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    """Parse ``argv``, build the pipeline and run it to completion. Returns the Beam result."""
    args, beam_args = build_parser().parse_known_args(argv)
    config = config_from_args(args)
    config = PreprocessConfig(**{**config.__dict__, "inputs": tuple(beam_io.check_inputs(config.inputs))})
    beam_io.prepare_output(config.output, config.overwrite)
    return beam_io.run_job(lambda pipeline: build(pipeline, config), beam_args, test_pipeline)


def main(argv: list[str] | None = None) -> int:
    return beam_io.job_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

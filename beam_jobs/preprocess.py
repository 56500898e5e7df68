"""``python -m beam_jobs.preprocess``: raw corpora -> the ``utterances`` Parquet dataset.

read -> parse -> normalize -> tokenize -> [exact dedup on normalized text] -> split -> write,
plus ``_manifest.json``, ``_stats.json``, ``_rejects/`` and, last, ``_SUCCESS``.

Locally it runs on Beam's in-process runner; any standard Beam option passes through, so
``--runner DataflowRunner --project P --region R --temp_location gs://… --setup_file ./setup.py``
runs it on Dataflow unchanged. Work moves through the pipeline in batches of utterances
(``--batch-size``), since Beam's per-element overhead would otherwise dominate.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput
from apache_beam.transforms.util import BatchElements

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, Balance, count
from beam_jobs.readers import RawUtterance, ReaderOptions, Reject
from beam_jobs.records import (
    ENTITY_CUT,
    RowBuilder,
    RowOptions,
    SplitRatios,
    doc_stratum,
    stratified_splits,
    stratum_of,
)
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.tokenizer import Tokenizer, TokenizerConfig
from schemas import UTTERANCES
from schemas.options import MalmoiError, cli_main, option

JOB_NAME = "beam_jobs.preprocess"

#: rows in = out + rejected + deduplicated; files matched = read + rejected
BALANCES = (
    Balance(("records_in", "records.in"), (("records_out", "records.out"), ("records_rejected", "records.rejected."),
                                           ("records_deduplicated", "records.deduplicated"))),
    Balance(("files_matched", "files.matched"), (("files_read", "files.read"), ("files_rejected", "files.rejected"))),
)


def normalizer_option() -> Any:
    """The ``--normalizer-config JSON`` option shared by the jobs that normalize."""
    return option(NormalizerConfig(), help="a NormalizerConfig as JSON (see beam_jobs.text.config)",
                  flag="--normalizer-config", parse=NormalizerConfig.from_file, metavar="JSON")


def inputs_option() -> Any:
    return option(help="file, folder or glob; repeat for several (quote globs)", flag="--input", repeat=True,
                  metavar="GLOB", required=True)


@dataclass(frozen=True, kw_only=True)
class PreprocessConfig:
    """Everything that decides the job's output; saved into the manifest."""

    inputs: tuple[str, ...] = inputs_option()
    output: str = option(help="dataset folder to write", metavar="DIR", required=True)
    reader: ReaderOptions = ReaderOptions()
    normalizer: NormalizerConfig = normalizer_option()
    tokenizer: TokenizerConfig = TokenizerConfig()
    rows: RowOptions = RowOptions()
    dedup: bool = option(False, help="drop exact duplicates of normalized text (off by default: short turns "
                         "such as 네 repeat legitimately inside dialogues)")
    kiwi_morphs: bool = option(False, help="add the Kiwi morphs column (slow)")
    batch_size: int = option(2000, help="utterances per pipeline element")
    row_group_rows: int = option(50_000, help="rows per Parquet row group")
    codec: str = option("zstd", help="Parquet compression", choices=("zstd", "snappy", "gzip", "none"))
    overwrite: bool = option(False, help="replace an existing dataset in --output")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


# --------------------------------------------------------------------------- DoFns (thin shells)

ParseFilesFn = beam_io.ParseFilesFn  # where it lived before the shared shell; learn_words reads the same way


class BuildRowsFn(beam.DoFn):
    """A batch of RawUtterance -> a batch of ``utterances`` rows (normalized, tokenized, split)."""

    def __init__(self, config: PreprocessConfig) -> None:
        self._config = config
        self._builder: RowBuilder | None = None
        self._progress = beam_io.Progress("preprocess.normalize", "utterances")

    def setup(self) -> None:
        morphs = None
        if self._config.kiwi_morphs:
            from beam_jobs.text.morphs import KiwiMorphs

            morphs = KiwiMorphs()
        self._builder = RowBuilder(Normalizer(self._config.normalizer), Tokenizer(self._config.tokenizer),
                                   self._config.rows, morphs)

    def process(self, batch: list[RawUtterance]):
        self._progress.add(len(batch))
        rows = []
        for item in self._builder.build_many(batch):  # type: ignore[union-attr]
            if isinstance(item, Reject):
                yield TaggedOutput(STATS, count(f"records.rejected.{item.reason}"))
                yield TaggedOutput(REJECTS, item)
            else:
                if item.pop(ENTITY_CUT, False):
                    yield TaggedOutput(STATS, count("entities.normalized_around"))
                if item["entities"] is not None:
                    yield TaggedOutput(STATS, count("entities.kept", len(item["entities"])))
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


def _doc_key(row: dict[str, Any]) -> tuple[str, str]:
    return row["corpus"], row["doc_id"]


def _stratum_of_doc(key: tuple[str, str], strata) -> tuple[str, tuple[str, str, int]]:
    strata = list(strata)
    return doc_stratum(strata), (*key, len(strata))


def _assign_stratum(element, ratios: SplitRatios, seed: str):
    stratum, docs = element
    docs = list(docs)
    yield TaggedOutput(STATS, count("split.strata"))
    yield from stratified_splits(docs, ratios, seed).items()


def _with_split(element):
    _, grouped = element
    (split,) = grouped["split"]
    for row in grouped["rows"]:
        yield {**row, "split": split}


class StratifiedSplit(beam.PTransform):
    """Batches of rows -> batches of rows whose hash split is drawn per stratum (``--stratify-by``):
    each document's stratum is its rows' most common value; the documents of a stratum (keys and
    row counts only, not the rows) meet on one worker and are split in the ratios; the split then
    joins the rows back by document."""

    def __init__(self, column: str, ratios: SplitRatios, seed: str, batch_size: int) -> None:
        super().__init__()
        self._column, self._ratios, self._seed, self._batch_size = column, ratios, seed, batch_size

    def expand(self, batches):
        column = self._column
        rows = batches | "Rows" >> beam.FlatMap(lambda batch: batch)
        by_doc = rows | "KeyByDoc" >> beam.Map(lambda r: (_doc_key(r), r))
        splits = (
            rows
            | "StratumOfRow" >> beam.Map(lambda r: (_doc_key(r), stratum_of(r, column)))
            | "GroupStrataByDoc" >> beam.GroupByKey()
            | "StratumOfDoc" >> beam.MapTuple(_stratum_of_doc)
            | "GroupDocsByStratum" >> beam.GroupByKey()
            | "SplitEachStratum" >> beam.FlatMap(_assign_stratum, self._ratios, self._seed).with_outputs(
                STATS, main="splits")
        )
        joined = ({"rows": by_doc, "split": splits.splits} | "JoinSplits" >> beam.CoGroupByKey()
                  | "SetSplit" >> beam.FlatMap(_with_split))
        rebatched = joined | "Rebatch" >> BatchElements(min_batch_size=self._batch_size,
                                                        max_batch_size=self._batch_size * 5)
        return rebatched, splits[STATS]


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
    parsed = pipeline | "ReadCorpus" >> beam_io.ReadCorpus(config.inputs, config.reader, config.batch_size)
    built = parsed.utterances | "NormalizeTokenizeSplit" >> beam.ParDo(BuildRowsFn(config)).with_outputs(
        REJECTS, STATS, main="rows"
    )
    stats_parts = [parsed[STATS], built[STATS]]
    row_batches = built.rows
    if config.dedup:
        row_batches, dedup_stats = row_batches | "Deduplicate" >> Deduplicate(config.batch_size)
        stats_parts.append(dedup_stats)
    if config.rows.stratify_by:
        column = "label" if config.rows.stratify_by == config.reader.label_column else config.rows.stratify_by
        row_batches, split_stats = row_batches | "StratifiedSplit" >> StratifiedSplit(
            column, config.rows.ratios, config.rows.split_seed, config.batch_size)
        stats_parts.append(split_stats)
    tables = row_batches | "RowsToArrow" >> beam.ParDo(beam_io.RowsToTableFn(UTTERANCES)).with_outputs(
        STATS, main="tables"
    )
    stats_parts.append(tables[STATS])
    _ = {
        "tables": tables.tables,
        "rejects": (parsed[REJECTS], built[REJECTS]) | "AllRejects" >> beam.Flatten(),
        "stats": stats_parts | "AllStats" >> beam.Flatten(),
    } | "WriteDataset" >> beam_io.WriteDataset(
        folder=config.output, spec=UTTERANCES, provenance=provenance_of(config), created_by=JOB_NAME,
        options=config.to_dict(), balances=BALANCES, codec=config.codec, row_group_rows=config.row_group_rows)


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    """Parse ``argv``, build the pipeline and run it to completion. Returns the Beam result."""
    config, beam_args = beam_io.parse_job(PreprocessConfig, argv, prog="python -m beam_jobs.preprocess",
                                          description=__doc__)
    config = dataclasses.replace(config, output=config.output.rstrip("/"),
                                 inputs=tuple(beam_io.check_inputs(config.inputs)))
    if config.rows.stratify_by and config.reader.split_column:
        raise MalmoiError(f"--stratify-by {config.rows.stratify_by!r} and --split-column {config.reader.split_column!r}: "
                          "expected one of them (the split column gives every row its split; stratifying draws "
                          "the hash split). Fix: drop one.")
    beam_io.prepare_output(config.output, config.overwrite)
    return beam_io.run_job(lambda pipeline: build(pipeline, config), beam_args, test_pipeline)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

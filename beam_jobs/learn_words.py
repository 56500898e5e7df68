"""``python -m beam_jobs.learn_words``: learn soynlp word scores from a corpus, at corpus scale.

read -> parse -> normalize -> count the L/R substrings the scores read, per batch (Arrow kernels) -> combine the
counts per shard (first character) across workers -> prune and score each shard on its own as
soynlp does (forward cohesion x exp(right branching entropy), Arrow/numpy) -> collect the scores
(not the counts: no process ever holds the whole corpus's counts) -> OUTPUT/ holding
``word_scores.json``, ``_stats.json`` (counts and their conservation), ``_rejects/`` and, last,
``_SUCCESS`` — the layout of every malmoi job. An input that yields no sentence or no word is an
error, not an empty scores file. The preprocess job applies it with ``--tokenizer soynlp
--word-scores OUTPUT``. Takes the same reader options as preprocess and any standard Beam option
(Dataflow included).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import asdict, dataclass, replace

import apache_beam as beam
import pyarrow as pa
from apache_beam.pvalue import AsDict, AsList, TaggedOutput

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, Balance
from beam_jobs.preprocess import inputs_option, normalizer_option
from beam_jobs.readers import RawUtterance, ReaderOptions
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.word_scores import (
    SCORES_NAME,
    artifact_bytes,
    count_substrings,
    hangul_words,
    merge_counts,
    scores_from_counts,
    split_by_shard,
)
from schemas.dataset import REJECTS_DIR, STATS_NAME, SUCCESS_NAME, dumps_json, success_marker
from schemas.options import MalmoiError, cli_main, option

LOG = logging.getLogger(__name__)
NUM_SHARDS = 16
#: one shard's scores, as they travel to the writer
SCORES_SCHEMA = pa.schema([("word", pa.string()), ("score", pa.float64())])
#: every utterance read is counted or rejected; every file read or rejected
BALANCES = (
    Balance(("records_in", "records.in"), (("records_counted", "sentences.counted"),
                                           ("records_rejected", "records.rejected."))),
    Balance(("files_matched", "files.matched"), (("files_read", "files.read"), ("files_rejected", "files.rejected"))),
)


@dataclass(frozen=True, kw_only=True)
class LearnWordsConfig:
    """Everything that decides the word scores; saved in the artifact."""

    inputs: tuple[str, ...] = inputs_option()
    output: str = option(help="folder to write: word_scores.json, _stats.json, _rejects/, _SUCCESS",
                         metavar="DIR", required=True)
    overwrite: bool = option(False, help="replace the word scores already in --output")
    reader: ReaderOptions = ReaderOptions()
    normalizer: NormalizerConfig = normalizer_option()
    min_count: int = option(5, help="minimum substring frequency")
    max_left_length: int = option(10, help="longest left substring counted")
    max_right_length: int = option(6, help="longest right substring counted")
    min_cohesion_forward: float = option(0.05, help="words below this cohesion are not scored")
    batch_size: int = option(2000, help="utterances per pipeline element")

    @property
    def folder(self) -> str:
        return self.output.rstrip("/")

    @property
    def rejects_folder(self) -> str:
        return f"{self.folder}/{REJECTS_DIR}"


class CountSubstringsFn(beam.DoFn):
    """A batch of utterances -> (shard, counts table) pairs for that batch."""

    def __init__(self, config: LearnWordsConfig) -> None:
        self._config = config
        self._normalizer: Normalizer | None = None
        self._progress = beam_io.Progress("learn_words.count", "sentences")

    def setup(self) -> None:
        self._normalizer = Normalizer(self._config.normalizer)

    def process(self, batch: list[RawUtterance]):
        self._progress.add(len(batch))
        normalize = self._normalizer.normalize  # type: ignore[union-attr]
        sentences = [hangul_words(normalize(raw.text, raw.markup)[0]) for raw in batch]
        yield TaggedOutput(STATS, beam_io.count("sentences.counted", len(batch)))
        yield TaggedOutput(STATS, beam_io.count("sentences.with_words", sum(1 for s in sentences if s)))
        counts = count_substrings(sentences, self._config.max_left_length, self._config.max_right_length,
                                  scored_only=True)
        if not counts.num_rows:
            return
        # One element per shard and batch, not per substring: Beam's per-element cost would
        # dominate otherwise. A substring always lands in the same shard, so shards are summed and
        # pruned independently.
        yield from split_by_shard(counts, NUM_SHARDS).items()


class MergeCountsFn(beam.CombineFn):
    """Sums counts tables; the accumulator is a list of tables, summed when it grows and before
    it crosses the shuffle (``compact``), encoded as Arrow IPC (:class:`beam_io.ArrowTablesCoder`)."""

    def create_accumulator(self) -> list:
        return []

    def add_input(self, accumulator: list, counts) -> list:
        accumulator.append(counts)
        return [merge_counts(accumulator)] if len(accumulator) >= 16 else accumulator

    def merge_accumulators(self, accumulators) -> list:
        return [merge_counts(table for accumulator in accumulators for table in accumulator)]

    def compact(self, accumulator: list) -> list:
        return [merge_counts(accumulator)] if len(accumulator) > 1 else accumulator

    def extract_output(self, accumulator: list):
        return merge_counts(accumulator)

    def get_accumulator_coder(self):
        return beam_io.ArrowTablesCoder()


class CollectTablesFn(beam.combiners.ToListCombineFn):
    """Beam's ``ToList`` for the shards' scores (disjoint tables), its accumulator encoded as Arrow IPC."""

    def get_accumulator_coder(self):
        return beam_io.ArrowTablesCoder()


def score_shard(counts: pa.Table, config: LearnWordsConfig) -> pa.Table:
    """One shard's combined counts -> its words' scores (:data:`SCORES_SCHEMA`). A shard holds
    every count its words' scores read (:func:`~beam_jobs.text.word_scores.shard_ids`), so the
    shards' scores together are the whole corpus's."""
    scores = scores_from_counts(counts, min_count=config.min_count, max_left_length=config.max_left_length,
                                max_right_length=config.max_right_length,
                                min_cohesion_forward=config.min_cohesion_forward)
    return pa.table({"word": list(scores), "score": list(scores.values())}, schema=SCORES_SCHEMA)


def gather_scores(tables: list[pa.Table]) -> dict[str, float]:
    """The shards' scores as one ``{word: score}``; a word scored in two shards is a sharding
    defect, raised rather than merged."""
    table = pa.concat_tables(tables) if tables else SCORES_SCHEMA.empty_table()
    scores = dict(zip(table.column("word").to_pylist(), table.column("score").to_pylist(), strict=True))
    if len(scores) != table.num_rows:
        raise ValueError(f"{table.num_rows - len(scores)} words were scored in more than one shard; "
                         "expected every word in exactly one (the shard of its first character)")
    return scores


def write_artifact(shard_scores: list[pa.Table], stats: dict[str, int], config: LearnWordsConfig) -> str:
    """Gather the shards' scores and write OUTPUT/: ``_stats.json``, then (when any word was
    scored) ``word_scores.json`` and, last, ``_SUCCESS``."""
    summary = beam_io.conservation(stats, BALANCES)
    scores = gather_scores(shard_scores)
    stats_doc = {"counts": dict(sorted(stats.items())), "conservation": summary, "num_words": len(scores)}
    beam_io.write_bytes(f"{config.folder}/{STATS_NAME}", dumps_json(stats_doc))
    if not scores:
        LOG.error("no word scores learned from %s (%s); nothing written but _stats.json", config.inputs, summary)
        return config.output
    info = {"learned_from": list(config.inputs), "normalizer_hash": config.normalizer.hash(),
            "options": {k: v for k, v in asdict(config).items() if k not in ("inputs", "output", "reader",
                                                                             "overwrite")},
            "counts": dict(sorted(stats.items())), "conservation": summary, "rejects": config.rejects_folder}
    beam_io.write_bytes(f"{config.folder}/{SCORES_NAME}", artifact_bytes(scores, info))
    beam_io.write_bytes(f"{config.folder}/{SUCCESS_NAME}", success_marker())
    LOG.info("wrote %d word scores to %s", len(scores), config.output)
    return config.output


def build(pipeline: beam.Pipeline, config: LearnWordsConfig) -> None:
    parsed = pipeline | "ReadCorpus" >> beam_io.ReadCorpus(config.inputs, config.reader, config.batch_size)
    counted = parsed.utterances | "CountSubstrings" >> beam.ParDo(CountSubstringsFn(config)).with_outputs(
        STATS, main="shards")
    shard_scores = (
        counted.shards
        | "SumCounts" >> beam.CombinePerKey(MergeCountsFn())
        | "ScoreShards" >> beam.Map(lambda kv, c: score_shard(kv[1], c), config)
        | "CollectScores" >> beam.CombineGlobally(CollectTablesFn())
    )
    reject_files = parsed[REJECTS] | "WriteRejects" >> beam_io.WriteRejects(config.rejects_folder)
    stats = (parsed[STATS], counted[STATS]) | "Stats" >> beam_io.SumStats()
    _ = shard_scores | "Write" >> beam.Map(
        lambda scores_, stats_, _files: write_artifact(scores_, dict(stats_), config),
        AsDict(stats), AsList(reject_files))


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    """Parse ``argv``, build the pipeline and run it to completion. Returns the Beam result."""
    config, beam_args = beam_io.parse_job(LearnWordsConfig, argv, prog="python -m beam_jobs.learn_words",
                                          description=__doc__)
    config = replace(config, inputs=tuple(beam_io.check_inputs(config.inputs)))
    beam_io.prepare_output(config.folder, config.overwrite, also=(SCORES_NAME,))
    result = beam_io.run_job(lambda pipeline: build(pipeline, config), beam_args, test_pipeline)
    if not beam_io.is_dry_run(beam_args, test_pipeline) and not beam_io.finished(config.folder):
        raise MalmoiError(
            f"learn_words learned no word scores from {list(config.inputs)} (see {config.folder}/{STATS_NAME}): "
            "no sentence held a Hangul word, or none reached --min-count.",
            "check the inputs and --text-column, or lower --min-count.")
    return result


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

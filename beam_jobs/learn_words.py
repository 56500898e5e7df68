"""``python -m beam_jobs.learn_words``: learn soynlp word scores from a corpus, at corpus scale.

read -> parse -> normalize -> count L/R substrings per batch -> combine across workers ->
prune -> score with soynlp -> one JSON artifact (with the job's counts and their conservation;
unreadable files and records go to ``<output name>_rejects/``). The preprocess job applies it with
``--tokenizer soynlp --word-scores FILE``. Takes the same reader options as preprocess and
any standard Beam option (Dataflow included).
"""

from __future__ import annotations

import logging
import posixpath
import sys
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, replace

import apache_beam as beam
from apache_beam.pvalue import AsDict, AsList, TaggedOutput

from beam_jobs import beam_io
from beam_jobs.beam_io import REJECTS, STATS, Balance
from beam_jobs.preprocess import inputs_option, normalizer_option
from beam_jobs.readers import RawUtterance, ReaderOptions
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.word_scores import (
    artifact_bytes,
    count_substrings,
    hangul_words,
    prune,
    scores_from_counts,
)
from schemas.options import cli_main, option

LOG = logging.getLogger(__name__)
NUM_SHARDS = 16
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
    output: str = option(help="word-scores JSON to write; rejects go to OUTPUT's folder under <name>_rejects/",
                         metavar="FILE", required=True)
    reader: ReaderOptions = ReaderOptions()
    normalizer: NormalizerConfig = normalizer_option()
    min_count: int = option(5, help="minimum substring frequency")
    max_left_length: int = option(10, help="longest left substring counted")
    max_right_length: int = option(6, help="longest right substring counted")
    min_cohesion_forward: float = option(0.05, help="words below this cohesion are not scored")
    batch_size: int = option(2000, help="utterances per pipeline element")

    @property
    def rejects_folder(self) -> str:
        return self.output.rsplit(".", 1)[0] + "_rejects" if "." in posixpath.basename(self.output) \
            else self.output + "_rejects"


class CountSubstringsFn(beam.DoFn):
    """A batch of utterances -> ((kind, substring), count) pairs for that batch."""

    def __init__(self, config: LearnWordsConfig) -> None:
        self._config = config
        self._normalizer: Normalizer | None = None

    def setup(self) -> None:
        self._normalizer = Normalizer(self._config.normalizer)

    def process(self, batch: list[RawUtterance]):
        normalize = self._normalizer.normalize  # type: ignore[union-attr]
        sentences = (hangul_words(normalize(raw.text, raw.markup)[0]) for raw in batch)
        yield TaggedOutput(STATS, beam_io.count("sentences.counted", len(batch)))
        counts = count_substrings(sentences, self._config.max_left_length, self._config.max_right_length)
        # One element per shard and batch, not per substring: Beam's per-element cost would
        # dominate otherwise. A substring always lands in the same shard, so shards can be
        # pruned independently.
        shards: list[Counter] = [Counter() for _ in range(NUM_SHARDS)]
        for key, n in counts.items():
            shards[zlib.crc32(key[1].encode()) % NUM_SHARDS][key] = n
        yield from enumerate(shards)


class MergeCountersFn(beam.CombineFn):
    """Sums Counters (the accumulator is a Counter)."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, accumulator: Counter, counts: Counter) -> Counter:
        accumulator.update(counts)
        return accumulator

    def merge_accumulators(self, accumulators) -> Counter:
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator: Counter) -> Counter:
        return accumulator


def write_artifact(shards: list[dict], stats: dict[str, int], config: LearnWordsConfig) -> str:
    """Score the combined counts and write the artifact, with the job's counts and conservation."""
    counts = {}
    for shard in shards:
        counts.update(shard)
    summary = beam_io.conservation(stats, BALANCES)
    scores = scores_from_counts(counts, min_count=config.min_count, max_left_length=config.max_left_length,
                                max_right_length=config.max_right_length,
                                min_cohesion_forward=config.min_cohesion_forward)
    info = {"learned_from": list(config.inputs), "normalizer_hash": config.normalizer.hash(),
            "options": {k: v for k, v in asdict(config).items() if k not in ("inputs", "output", "reader")},
            "counts": dict(sorted(stats.items())), "conservation": summary, "rejects": config.rejects_folder}
    beam_io.write_bytes(config.output, artifact_bytes(scores, info))
    LOG.info("wrote %d word scores to %s", len(scores), config.output)
    return config.output


def build(pipeline: beam.Pipeline, config: LearnWordsConfig) -> None:
    parsed = pipeline | "ReadCorpus" >> beam_io.ReadCorpus(config.inputs, config.reader, config.batch_size)
    counted = parsed.utterances | "CountSubstrings" >> beam.ParDo(CountSubstringsFn(config)).with_outputs(
        STATS, main="shards")
    shards = (
        counted.shards
        | "SumCounts" >> beam.CombinePerKey(MergeCountersFn())
        | "Prune" >> beam.Map(lambda kv, m: prune(kv[1], m), config.min_count)
        | "CollectShards" >> beam.combiners.ToList()
    )
    reject_files = parsed[REJECTS] | "WriteRejects" >> beam_io.WriteRejects(config.rejects_folder)
    stats = (parsed[STATS], counted[STATS]) | "Stats" >> beam_io.SumStats()
    _ = shards | "ScoreAndWrite" >> beam.Map(
        lambda shards_, stats_, _files: write_artifact(shards_, dict(stats_), config),
        AsDict(stats), AsList(reject_files))


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    """Parse ``argv``, build the pipeline and run it to completion. Returns the Beam result."""
    config, beam_args = beam_io.parse_job(LearnWordsConfig, argv, prog="python -m beam_jobs.learn_words",
                                          description=__doc__)
    config = replace(config, inputs=tuple(beam_io.check_inputs(config.inputs)))
    return beam_io.run_job(lambda pipeline: build(pipeline, config), beam_args, test_pipeline)


def main(argv: list[str] | None = None) -> int:
    return cli_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

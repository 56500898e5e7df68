"""``python -m beam_jobs.learn_words``: learn soynlp word scores from a corpus, at corpus scale.

read -> parse -> normalize -> count L/R substrings per batch -> combine across workers ->
prune -> score with soynlp -> one JSON artifact. The preprocess job applies it with
``--tokenizer soynlp --word-scores FILE``. Takes the same reader options as preprocess and
any standard Beam option (Dataflow included).
"""

from __future__ import annotations

import argparse
import logging
import sys
import zlib
from collections import Counter
from dataclasses import asdict, dataclass

import apache_beam as beam

from beam_jobs import beam_io, preprocess
from beam_jobs.cli import add_reader_arguments, normalizer_config, reader_options
from beam_jobs.readers import RawUtterance, ReaderOptions
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.word_scores import (
    artifact_bytes,
    count_substrings,
    hangul_words,
    prune,
    scores_from_counts,
)

LOG = logging.getLogger(__name__)
NUM_SHARDS = 16


@dataclass(frozen=True)
class LearnWordsConfig:
    inputs: tuple[str, ...]
    output: str
    reader: ReaderOptions = ReaderOptions()
    normalizer: NormalizerConfig = NormalizerConfig()
    min_count: int = 5
    max_left_length: int = 10
    max_right_length: int = 6
    min_cohesion_forward: float = 0.05
    batch_size: int = 2000


class CountSubstringsFn(beam.DoFn):
    """A batch of utterances -> ((kind, substring), count) pairs for that batch."""

    def __init__(self, config: LearnWordsConfig) -> None:
        self._config = config
        self._normalizer: Normalizer | None = None

    def setup(self) -> None:
        self._normalizer = Normalizer(self._config.normalizer)

    def process(self, batch: list[RawUtterance]):
        normalize = self._normalizer.normalize  # type: ignore[union-attr]
        sentences = (hangul_words(normalize(raw.text, raw.corpus)[0]) for raw in batch)
        beam_io.count("sentences.counted", len(batch))
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


def write_artifact(shards: list[dict], config: LearnWordsConfig) -> str:
    counts = {}
    for shard in shards:
        counts.update(shard)
    scores = scores_from_counts(counts, min_count=config.min_count, max_left_length=config.max_left_length,
                                max_right_length=config.max_right_length,
                                min_cohesion_forward=config.min_cohesion_forward)
    info = {"learned_from": list(config.inputs), "normalizer_hash": config.normalizer.hash(),
            "options": {k: v for k, v in asdict(config).items() if k not in ("inputs", "output", "reader")}}
    beam_io.write_bytes(config.output, artifact_bytes(scores, info))
    LOG.info("wrote %d word scores to %s", len(scores), config.output)
    return config.output


def build(pipeline: beam.Pipeline, config: LearnWordsConfig) -> None:
    batches = (
        pipeline
        | "ListInputs" >> beam.Create(list(config.inputs))
        | "MatchFiles" >> beam.ParDo(beam_io.ExpandInputsFn())
        | "SpreadFiles" >> beam.Reshuffle()
        | "ReadAndParse" >> beam.ParDo(preprocess.ParseFilesFn(config.reader, config.batch_size)).with_outputs(
            beam_io.REJECTS, beam_io.STATS, main="utterances")
    ).utterances
    counts = (
        batches
        | "CountSubstrings" >> beam.ParDo(CountSubstringsFn(config))
        | "SumCounts" >> beam.CombinePerKey(MergeCountersFn())
        | "Prune" >> beam.Map(lambda kv, m: prune(kv[1], m), config.min_count)
        | "CollectShards" >> beam.combiners.ToList()
    )
    _ = counts | "ScoreAndWrite" >> beam.Map(write_artifact, config=config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m beam_jobs.learn_words", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_reader_arguments(parser)
    parser.add_argument("--output", required=True, metavar="FILE", help="word-scores JSON to write")
    parser.add_argument("--min-count", type=int, default=5, help="minimum substring frequency")
    parser.add_argument("--max-left-length", type=int, default=10)
    parser.add_argument("--max-right-length", type=int, default=6)
    parser.add_argument("--min-cohesion-forward", type=float, default=0.05)
    return parser


def run(argv: list[str] | None = None, test_pipeline: beam.Pipeline | None = None):
    args, beam_args = build_parser().parse_known_args(argv)
    config = LearnWordsConfig(
        inputs=tuple(beam_io.check_inputs(args.input)), output=args.output, reader=reader_options(args),
        normalizer=normalizer_config(args), min_count=args.min_count, max_left_length=args.max_left_length,
        max_right_length=args.max_right_length, min_cohesion_forward=args.min_cohesion_forward,
    )
    return beam_io.run_job(lambda pipeline: build(pipeline, config), beam_args, test_pipeline)


def main(argv: list[str] | None = None) -> int:
    return beam_io.job_main(run, argv)


if __name__ == "__main__":
    sys.exit(main())

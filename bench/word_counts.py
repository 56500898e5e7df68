"""Benchmark: learn_words' per-core counting work, Arrow kernels vs the pure-Python counting it replaced.

    .venv/bin/python -m bench.word_counts [--utterances 170000] [--batch-size 2000] [--job]

With ``--job`` it also times the whole learn_words job (read, normalize, count, combine, score,
write) on the same corpus, against the job as it was at ``--baseline-rev`` (the commit before
the Arrow counting, extracted with ``git archive`` into a temporary folder): each in its own
child process, one worker, one after the other in the same run.

Same real utterances (../shared/data, normalized once, outside the timing), same batches, one
process, in ``--rounds`` interleaved rounds (the medians and every round's ratio reported). Each side does what one learn_words worker does per batch and then per shard: count
the substrings of a batch, split the counts into 16 shards, sum each shard over all batches and
prune it. The baseline is the previous implementation, kept here verbatim as the reference
(``Counter`` updates per substring, ``zlib.crc32`` per key for the shard, ``Counter`` merges); the
new one is ``beam_jobs.text.word_scores`` (``count_substrings``, ``split_by_shard``, ``merge_counts``,
``prune``). Both must give identical pruned counts; the ratio is baseline seconds / new seconds.
A third side is what the job counts since it keeps only the rows the scores read
(``count_substrings(..., scored_only=True)``: ``L`` and ``aL`` at the default lengths); its pruned
counts must equal the baseline's restricted to those rows.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import zlib
from collections import Counter
from itertools import islice

import pyarrow as pa

from beam_jobs.text.normalizer import Normalizer
from beam_jobs.text.word_scores import (
    as_dict,
    count_substrings,
    hangul_words,
    merge_counts,
    prune,
    split_by_shard,
)
from bench.corpora import colloquial_texts

SHARDS = 16


def baseline_count(sentences, max_left_length=10, max_right_length=6):
    """The counting learn_words used before (soynlp's loop, one Counter update per substring)."""
    counts = Counter()
    for words in sentences:
        for word in words:
            if len(word) <= 1:
                continue
            length = len(word)
            for i in range(1, min(max_left_length + 1, length) + 1):
                counts["L", word[:i]] += 1
            for i in range(1, min(max_right_length + 1, length)):
                counts["R", word[-i:]] += 1
        if len(words) <= 1:
            continue
        for left_word, word, right_word in zip([words[-1], *words[:-1]], words, [*words[1:], words[0]], strict=True):
            counts["aL", f"{word} {right_word[0]}"] += 1
            counts["aR", f"{left_word[-1]} {word}"] += 1
            length = len(word)
            for i in range(1, min(max_right_length + 1, length)):
                counts["aL", f"{word[-i:]} {right_word[0]}"] += 1
            for i in range(1, min(max_left_length + 1, length)):
                counts["aR", f"{left_word[-1]} {word[:i]}"] += 1
    return counts


def baseline(batches, min_count):
    merged = [Counter() for _ in range(SHARDS)]
    for batch in batches:
        for key, n in baseline_count(batch).items():
            merged[zlib.crc32(key[1].encode()) % SHARDS][key] += n
    pruned = {}
    for shard in merged:
        pruned.update({k: n for k, n in shard.items() if n >= (min_count if k[0] in ("L", "R") else 2)})
    return pruned


def arrow(batches, min_count, scored_only=False):
    parts: list[list] = [[] for _ in range(SHARDS)]
    for batch in batches:
        for shard, table in split_by_shard(count_substrings(batch, scored_only=scored_only), SHARDS).items():
            parts[shard].append(table)
    return pa.concat_tables([prune(merge_counts(p), min_count) for p in parts if p])


def job_comparison(args) -> dict:
    import os
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from bench.corpora import write_jsonl_corpus

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_jsonl_corpus(tmp / "corpus", args.utterances, num_files=8)
        (tmp / "old").mkdir()
        archive = subprocess.run(["git", "archive", args.baseline_rev], cwd=root, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(tmp / "old")], input=archive.stdout, check=True)
        seconds = {}
        for name, code, output in (("baseline_job", tmp / "old", tmp / "old_scores.json"),
                                   ("arrow_job", root, tmp / "new_scores")):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "beam_jobs.learn_words", "--input", str(tmp / "corpus"), "--output",
                            str(output), "--min-count", str(args.min_count), "--runner", "FnApiRunner"], cwd=code,
                           env=dict(os.environ, PYTHONPATH=str(code)), check=True, capture_output=True)
            seconds[name] = round(time.perf_counter() - start, 1)
        old_scores = json.loads((tmp / "old_scores.json").read_text())["scores"]
        new_scores = json.loads((tmp / "new_scores" / "word_scores.json").read_text())["scores"]
    # soynlp sums entropies in dictionary order, which differs with how the counts were built:
    # the same words, scores equal to float rounding
    worst = max((abs(old_scores[w] - new_scores[w]) / max(abs(old_scores[w]), 1e-12) for w in new_scores
                 if w in old_scores), default=0.0)
    return {**seconds, "speedup": round(seconds["baseline_job"] / seconds["arrow_job"], 2),
            "baseline_rev": args.baseline_rev, "same_words": set(old_scores) == set(new_scores),
            "max_relative_score_difference": worst, "words": len(new_scores)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=170_000)
    parser.add_argument("--batch-size", type=int, default=2000)
    parser.add_argument("--min-count", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved baseline/Arrow rounds (medians reported)")
    parser.add_argument("--job", action="store_true")
    parser.add_argument("--baseline-rev", default="61f449d")
    args = parser.parse_args(argv)
    normalize = Normalizer()
    sentences = [hangul_words(normalize(t)) for t in islice(colloquial_texts(), args.utterances)]
    batches = [sentences[i:i + args.batch_size] for i in range(0, len(sentences), args.batch_size)]
    old_times, new_times, scored_times = [], [], []
    for _ in range(args.rounds):  # interleaved, so a change in the machine's speed hits every side
        start = time.perf_counter()
        old = baseline(batches, args.min_count)
        old_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        new = arrow(batches, args.min_count)
        new_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        scored = arrow(batches, args.min_count, scored_only=True)
        scored_times.append(time.perf_counter() - start)
    identical = as_dict(new) == old
    scored_identical = as_dict(scored) == {k: n for k, n in old.items() if k[0] in ("L", "aL")}
    ratios = sorted(o / n for o, n in zip(old_times, new_times, strict=True))
    scored_ratios = sorted(o / n for o, n in zip(old_times, scored_times, strict=True))
    old_seconds, new_seconds = statistics.median(old_times), statistics.median(new_times)
    job = job_comparison(args) if args.job else None
    report = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "utterances": len(sentences),
              "batch_size": args.batch_size, "baseline_seconds": round(old_seconds, 2),
              "arrow_seconds": round(new_seconds, 2), "speedup": round(old_seconds / new_seconds, 2),
              "rounds": args.rounds, "speedup_per_round": [round(r, 2) for r in ratios],
              "baseline_seconds_per_round": [round(t, 2) for t in old_times],
              "arrow_seconds_per_round": [round(t, 2) for t in new_times],
              "pruned_counts": len(old), "identical": identical,
              "scored_only_seconds": round(statistics.median(scored_times), 2),
              "scored_only_speedup": round(old_seconds / statistics.median(scored_times), 2),
              "scored_only_speedup_per_round": [round(r, 2) for r in scored_ratios],
              "scored_only_identical": scored_identical, "job": job}
    print(json.dumps(report, indent=2))
    return 0 if identical and scored_identical else 1


if __name__ == "__main__":
    raise SystemExit(main())

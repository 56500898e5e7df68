"""Benchmark: preprocess and learn_words at corpus scale — time against size, peak memory, workers.

    .venv/bin/python -m bench.scale [--sizes 200000,2000000] [--jobs preprocess,learn_words] [--rounds N] [--json FILE]

For each size, real utterances from ../shared/data (about 170k distinct, cycled beyond that,
each with its own id) are written to 16 JSONL files in a temporary folder; each job then runs
in a fresh child process (the in-process FnApiRunner with one worker, and with
``--direct_running_mode multi_processing --direct_num_workers 2``; ``--workers 1,1mp,2`` adds one
worker *process*, which separates what multi-processing costs from what parallelism gains;
``--rounds N`` repeats them interleaved and reports medians). Reported per run: wall
seconds, seconds per 100k utterances (linear time: the same at every size) and the peak resident
memory of the job's processes (``ru_maxrss`` of the child and of its own workers); for learn_words
also a digest of the scores in ``word_scores.json`` (the same whatever the worker count). The baseline
of each ratio is in the same run: the smallest size for time per utterance and memory, one
worker for the two-worker speed-up.

The corpus repeats ~170k distinct utterances, so at ``--min-count 5`` every substring of a
2M-utterance corpus clears the floor and learn_words scores 9x the words (its memory then grows
with what it keeps, not with what it reads). ``--proportional-min-count`` raises learn_words'
``--min-count`` with the size (5 x size / smallest size), so every size keeps about the same
substrings and memory compares like with like; each learn_words run records ``num_words``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.corpora import write_jsonl_corpus

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import resource, sys, time
from beam_jobs import {job}
start = time.perf_counter()
{job}.run(sys.argv[1:])
wall = time.perf_counter() - start
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print("RESULT", wall, own, workers)
"""


def run_job(job: str, corpus: Path, output: Path, workers: str, min_count: int = 5) -> dict:
    """One run; ``workers`` is ``"1"`` (Beam's in-process runner, the local default), ``"N"`` (N
    local worker processes) or ``"1mp"`` (one worker process: what multi-processing itself costs)."""
    args = ["--input", str(corpus), "--output", str(output), "--runner", "FnApiRunner"]
    if job == "learn_words":
        args += ["--min-count", str(min_count)]
    if workers != "1":
        args += ["--direct_running_mode", "multi_processing", "--direct_num_workers", workers.removesuffix("mp")]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", CHILD.format(job=job), *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    line = [x for x in done.stdout.splitlines() if x.startswith("RESULT")]
    if done.returncode != 0 or not line:
        raise SystemExit(f"{job} failed:\n{done.stderr[-3000:]}")
    _, wall, own, children = line[-1].split()
    result = {"seconds": float(wall), "peak_rss_mb": max(int(own), int(children)) / 1024}
    if job == "learn_words":
        stats = json.loads((output / "_stats.json").read_text(encoding="utf-8"))
        scores = json.loads((output / "word_scores.json").read_text(encoding="utf-8"))["scores"]
        digest = hashlib.sha256(json.dumps(scores, sort_keys=True).encode()).hexdigest()[:16]
        result |= {"min_count": min_count, "num_words": stats["num_words"], "scores_sha256": digest}
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="200000,2000000")
    parser.add_argument("--jobs", default="preprocess,learn_words")
    parser.add_argument("--workers", default="1,2",
                        help="runs to make: 1 = in-process runner, N = N worker processes, 1mp = one worker process")
    parser.add_argument("--json", default=None)
    parser.add_argument("--rounds", type=int, default=1,
                        help="runs of each job and worker count, interleaved; seconds are their median")
    parser.add_argument("--proportional-min-count", action="store_true",
                        help="learn_words --min-count 5 x size / smallest size (the same substrings kept)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    jobs = args.jobs.split(",")
    workers = args.workers.split(",")
    if not all(w == "1mp" or w.isdigit() for w in workers):
        raise SystemExit(f"--workers: expected numbers or 1mp, found {args.workers!r}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            corpus = Path(tmp) / f"corpus_{size}"
            write_jsonl_corpus(corpus, size, num_files=16)
            min_count = round(5 * size / sizes[0]) if args.proportional_min_count else 5
            for job in jobs:
                # rounds interleave the worker counts (1, 2, 1, 2, ...), so a slow spell of the
                # machine hits both; the row keeps every round's seconds and reports the median
                runs: dict[str, list[dict]] = {n: [] for n in workers}
                for _ in range(args.rounds):
                    for n in workers:
                        out = Path(tmp) / f"out_{job}_{size}_{n}"
                        subprocess.run(["rm", "-rf", str(out)], check=False)
                        runs[n].append(run_job(job, corpus, out, n, min_count))
                        print(json.dumps({"job": job, "utterances": size, "workers": n, **runs[n][-1]}), flush=True)
                for n in workers:
                    result = dict(runs[n][len(runs[n]) // 2])
                    result["seconds"] = statistics.median(r["seconds"] for r in runs[n])
                    result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs[n])
                    row = {"job": job, "utterances": size, "workers": n, **result,
                           "seconds_by_round": [round(r["seconds"], 2) for r in runs[n]],
                           "seconds_per_100k": result["seconds"] / size * 100_000}
                    rows.append(row)
            subprocess.run(["rm", "-rf", str(corpus)], check=False)
    for row in rows:
        base = next(r for r in rows if r["job"] == row["job"] and r["workers"] == row["workers"])
        one = next((r for r in rows if r["job"] == row["job"] and r["utterances"] == row["utterances"]
                    and r["workers"] == "1"), None)
        row["time_per_utterance_vs_smallest"] = row["seconds_per_100k"] / base["seconds_per_100k"]
        row["peak_memory_vs_smallest"] = row["peak_rss_mb"] / base["peak_rss_mb"]
        if one:
            row["speedup_vs_one_worker"] = one["seconds"] / row["seconds"]
            row["speedup_by_round"] = [round(a / b, 3) for a, b in zip(one["seconds_by_round"],
                                                                        row["seconds_by_round"], strict=True)]
        process = next((r for r in rows if r["job"] == row["job"] and r["utterances"] == row["utterances"]
                        and r["workers"] == "1mp"), None)
        if process and row["workers"] not in ("1", "1mp"):
            row["speedup_vs_one_worker_process"] = process["seconds"] / row["seconds"]
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
              "runs": rows}
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

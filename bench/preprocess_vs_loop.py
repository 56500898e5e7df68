"""Benchmark: the preprocess Beam job against a plain Python loop doing the same work.

Same input (real utterances from ../shared/data as JSONL files), same parse + normalize +
tokenize + zstd Parquet write, each in its own subprocess so peak memory is measured per run.
Also runs the Beam job on a tenth of the input to show that peak memory stays flat as the
input grows 10x (the job streams; it does not collect).

    .venv/bin/python -m bench.preprocess_vs_loop [--utterances 200000]

Prints a JSON summary and a Markdown row for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def child_loop(input_dir: str, output_dir: str) -> dict:
    """The baseline: one process, one loop, one streamed Parquet writer."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from beam_jobs.readers import RawUtterance, ReaderOptions, parse_file
    from beam_jobs.records import RowBuilder, RowOptions
    from beam_jobs.text.normalizer import Normalizer
    from beam_jobs.text.tokenizer import Tokenizer
    from schemas import UTTERANCES

    start = time.perf_counter()
    builder = RowBuilder(Normalizer(), Tokenizer(), RowOptions())
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    writer = pq.ParquetWriter(f"{output_dir}/part-00000-of-00001.parquet", UTTERANCES.schema_with_metadata({}),
                              compression="zstd")
    rows, written, rejected = [], 0, 0
    options = ReaderOptions()
    for path in sorted(Path(input_dir).glob("*.jsonl")):
        with open(path, "rb") as handle:
            for item in parse_file(handle, path.name, options):
                built = builder.build(item) if isinstance(item, RawUtterance) else None
                if isinstance(built, dict):
                    rows.append(built)
                else:
                    rejected += 1
                if len(rows) >= 50_000:
                    writer.write_table(pa.Table.from_pylist(rows, schema=UTTERANCES.schema))
                    written += len(rows)
                    rows = []
    if rows:
        writer.write_table(pa.Table.from_pylist(rows, schema=UTTERANCES.schema))
        written += len(rows)
    writer.close()
    return {"seconds": time.perf_counter() - start, "rows": written, "rejected": rejected}


def child_beam(input_dir: str, output_dir: str, extra: list[str]) -> dict:
    from beam_jobs import preprocess

    start = time.perf_counter()
    preprocess.run(["--input", f"{input_dir}/*.jsonl", "--output", output_dir, "--runner", "FnApiRunner", *extra])
    seconds = time.perf_counter() - start
    stats = json.loads(Path(output_dir, "_stats.json").read_text())
    return {"seconds": seconds, "rows": stats["conservation"]["records_out"],
            "rejected": stats["conservation"]["records_rejected"]}


def run_child(kind: str, input_dir: Path, output_dir: Path, extra: list[str] | None = None) -> dict:
    command = [sys.executable, "-m", "bench.preprocess_vs_loop", "--child", kind, "--input", str(input_dir),
               "--output", str(output_dir), "--", *(extra or [])]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=200_000)
    parser.add_argument("--child", choices=("loop", "beam"))
    parser.add_argument("--input")
    parser.add_argument("--output")
    parser.add_argument("extra", nargs="*")
    args = parser.parse_args()

    if args.child:
        result = (child_loop(args.input, args.output) if args.child == "loop"
                  else child_beam(args.input, args.output, args.extra))
        result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
        return

    from bench.corpora import write_jsonl_corpus

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        small, large = args.utterances // 10, args.utterances
        write_jsonl_corpus(root / "in_small", small)
        write_jsonl_corpus(root / "in_large", large)
        results = {
            "loop": run_child("loop", root / "in_large", root / "out_loop"),
            "beam": run_child("beam", root / "in_large", root / "out_beam"),
            "beam_small": run_child("beam", root / "in_small", root / "out_beam_small"),
        }
    loop, beam = results["loop"], results["beam"]
    assert loop["rows"] == beam["rows"], (loop, beam)
    summary = {
        "utterances": large,
        "loop_utt_per_s": round(large / loop["seconds"]),
        "beam_utt_per_s": round(large / beam["seconds"]),
        "beam_over_loop_time": round(beam["seconds"] / loop["seconds"], 2),
        "peak_rss_mb": {k: round(v["peak_rss_mb"]) for k, v in results.items()},
        "beam_peak_rss_growth_for_10x_input": round(beam["peak_rss_mb"] / results["beam_small"]["peak_rss_mb"], 2),
        "machine": f"{platform.processor() or platform.machine()}, {platform.python_version()}",
        "raw": results,
    }
    print(json.dumps(summary, indent=2))
    print(
        f"| {time.strftime('%Y-%m-%d')} | {large:,} | {summary['loop_utt_per_s']:,} | {summary['beam_utt_per_s']:,} "
        f"| {summary['beam_over_loop_time']}x | {summary['peak_rss_mb']['loop']} / {summary['peak_rss_mb']['beam']} MB "
        f"| {summary['peak_rss_mb']['beam_small']} -> {summary['peak_rss_mb']['beam']} MB "
        f"({summary['beam_peak_rss_growth_for_10x_input']}x) |"
    )


if __name__ == "__main__":
    main()

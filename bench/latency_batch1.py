"""Batch-1 CPU latency of a teacher and its students, timed in turn on each sentence.

    python -m bench.latency_batch1 --teacher out/teacher --student out/student [--student …] \\
        --texts-from out/kd [--split test]

Every model runs on the same sentence one after another (eager, then its TorchScript copy),
one thread, several passes; the report is each model's median and its speed-up over the
teacher. Interleaving makes the ratio robust to a shared machine's drift, which moves
back-to-back measurements by tens of percent (docs/benchmarks.md, issue 6).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from kd.data import open_kd_dataset
from kd.evaluate import interleaved_latency, split_texts


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", action="append", required=True)
    parser.add_argument("--texts-from", required=True, help="a kd dataset; its split's texts are timed")
    parser.add_argument("--split", default="test")
    parser.add_argument("--passes", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    texts = split_texts(open_kd_dataset(args.texts_from), args.split)
    dirs = {"teacher": args.teacher, **{f"student{i}": d for i, d in enumerate(args.student)}}
    latency = interleaved_latency(dirs, texts, passes=args.passes)
    teacher = latency["teacher"]
    report = {"date": time.strftime("%Y-%m-%d"), "device": f"{platform.machine()} CPU, 1 thread",
              "torch": torch.__version__, "sentences": min(30, len(texts)), "passes": args.passes,
              "models": dirs, "latency": latency,
              "speedup_vs_teacher": {name: {kind: teacher[kind] / value for kind, value in row.items()}
                                     for name, row in latency.items() if name != "teacher"}}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()

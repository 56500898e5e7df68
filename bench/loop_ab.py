"""Benchmark: the training loop on main against the loop of an earlier revision, in one process.

Same synthetic kd shards, student and objective as ``bench.distill_vs_trainer``; the two loops
run in turn (A B A B …) so a shared machine's drift hits both alike. The baseline is
``kd/loop.py`` read from ``git show REV:kd/loop.py`` and imported as its own module (it uses
the current ``kd.data`` and ``kd.common``), so only the loop differs.

    python -m bench.loop_ab --baseline be27500 --rounds 4 --steps 60        # CPU, ~4 minutes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from bench.distill_vs_trainer import WARMUP_STEPS, make_student, synthetic_shards
from kd import loop as current_loop
from kd.common import Distributed
from kd.data import BucketBatches, kd_chunks, open_kd_dataset
from kd.objectives import DistillObjective, DistillWeights

ROOT = Path(__file__).resolve().parent.parent


def baseline_loop(revision: str):
    source = subprocess.run(["git", "show", f"{revision}:kd/loop.py"], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout
    path = Path(tempfile.mkdtemp()) / "baseline_loop.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("kd_baseline_loop", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["kd_baseline_loop"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def run_once(module, folder: Path, args) -> float:
    opened = open_kd_dataset(str(folder))
    out = Path(tempfile.mkdtemp()) / "run"
    config = module.LoopConfig(output=str(out), max_steps=args.steps, batch_size=args.batch_size, learning_rate=5e-4,
                               log_every=WARMUP_STEPS, device=args.device, progress=False)
    weights = DistillWeights(kl=1.0, ce=1.0)
    batches = BucketBatches(lambda e: kd_chunks(opened, "train", 0, e, weights.columns()), batch_size=args.batch_size,
                            buckets=config.buckets, pad_id=0, seed=0)
    module.train(model=make_student(0), objective=DistillObjective(weights), batches=batches, config=config,
                 dist=Distributed())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"loss"' in line]
    return float(np.mean([r["samples_per_s"] for r in records[1:]] or [records[0]["samples_per_s"]]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", required=True, help="git revision whose kd/loop.py is the baseline")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    folder = synthetic_shards(Path(tempfile.mkdtemp()) / "kd", args.rows)
    loops = {"baseline": baseline_loop(args.baseline), "current": current_loop}
    speeds: dict[str, list[float]] = {name: [] for name in loops}
    for _ in range(args.rounds):
        for name, module in loops.items():
            speeds[name].append(run_once(module, folder, args))
    ratios = [c / b for c, b in zip(speeds["current"], speeds["baseline"], strict=True)]
    result = {"baseline": args.baseline, "device": args.device, "machine": platform.machine(),
              "torch": torch.__version__, "rows": args.rows, "steps": args.steps, "batch_size": args.batch_size,
              "samples_per_s": speeds, "ratio_current_over_baseline": ratios,
              "median_ratio": statistics.median(ratios)}
    text = json.dumps(result, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

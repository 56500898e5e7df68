"""Where one distillation step's GPU time goes, and what the loop reaches without the data pipeline.

For the benchmark student (bench/distill_vs_trainer.py: 4 layers, hidden 312) at batch 256:

* **kernels** — the eager step under ``torch.profiler`` (CUDA activity): kernels per step and
  device time per step, grouped by kind (GEMM, attention, casts, normalization, elementwise,
  optimizer, ...), with the top kernels. The captured graph replays the same kernels.
* **replay** — ``kd.loop.train`` on one pre-built batch per bucket length repeated (no Parquet,
  no bucketing): samples/s per length with CUDA graphs and eager; the gap to the full benchmark
  is the data pipeline's share.
* **sdpa** — which scaled-dot-product-attention backend PyTorch picks for this head size.

    python -m bench.profile_step --lengths 16,24,32,64 --json docs/results/profile_step_h200.json
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import torch

from bench.distill_vs_trainer import EMBEDDING, NUM_LABELS, VOCAB, make_student
from kd.common import Distributed
from kd.loop import LoopConfig, train
from kd.objectives import DistillObjective, DistillWeights

KINDS = [  # first match wins; kernel names differ across CUDA/cuBLAS versions, so keep these broad
    ("attention", r"fmha|flash|attention|softmax"),
    ("gemm", r"gemm|cutlass|sm90_xmma|sm80_xmma|ampere|hopper|nvjet|cublas"),
    ("optimizer", r"fused_adam|multi_tensor|foreach|adam"),
    ("norm", r"layer_norm|LayerNorm|norm"),
    ("embedding", r"embedding|index|indices|scatter|gather|sort|radix|segment"),
    ("dropout", r"dropout|fused_dropout|philox|bernoulli"),
    ("reduce", r"reduce|sum"),
    ("cast/copy", r"copy|cast|convert|to_copy"),
    ("elementwise", r"elementwise|vectorized|unrolled|gelu|where|fill"),
]


class RepeatedBatch:
    """Stands in for BucketBatches: the same fixed-shape numpy batch ``steps`` times."""

    def __init__(self, batch: dict[str, np.ndarray], steps: int) -> None:
        self.batch, self.steps = batch, steps

    def epoch(self, epoch: int, skip: int = 0):
        for _ in range(skip, self.steps):
            yield {k: v.copy() for k, v in self.batch.items()}


def make_batch(batch_size: int, length: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Rows of random ids whose real lengths fill the bucket from its lower neighbour up."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(max(1, length * 2 // 3), length + 1, batch_size)
    mask = (np.arange(length)[None, :] < lengths[:, None]).astype(np.int64)
    return {"input_ids": np.where(mask, rng.integers(5, VOCAB, (batch_size, length)), 0).astype(np.int64),
            "attention_mask": mask, "weight": np.ones(batch_size, np.float32),
            "label": rng.integers(0, NUM_LABELS, batch_size).astype(np.int64),
            "teacher_logits": rng.normal(0, 3, (batch_size, NUM_LABELS)).astype(np.float32)}


def run_loop(batch: dict[str, np.ndarray], steps: int, graphs: bool, log_every: int, device: str = "cuda") -> float:
    """Steady-state samples/s of kd.loop.train on a repeated batch (first window excluded)."""
    out = Path(tempfile.mkdtemp()) / "loop"
    config = LoopConfig(output=str(out), max_steps=steps, batch_size=len(batch["weight"]), log_every=log_every,
                        device=device, cuda_graphs=graphs, bf16=True, progress=False)
    train(model=make_student(0), objective=DistillObjective(DistillWeights(kl=1.0, ce=1.0)),
          batches=RepeatedBatch(batch, steps), config=config, dist=Distributed())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return float(np.mean([r["samples_per_s"] for r in records[1:]]))


def kind_of(name: str) -> str:
    return next((kind for kind, pattern in KINDS if re.search(pattern, name, re.IGNORECASE)), "other")


def profile_kernels(batch: dict[str, np.ndarray], steps: int = 6, device: str = "cuda") -> dict:
    """Kernels per eager step and their device time, by kind (on a CPU: aten ops and CPU time,
    a smoke test of this script)."""
    from torch.profiler import ProfilerActivity, profile

    out = Path(tempfile.mkdtemp()) / "profile"
    config = LoopConfig(output=str(out), max_steps=steps, batch_size=len(batch["weight"]), log_every=steps,
                        device=device, cuda_graphs=False, bf16=True, progress=False)
    run_loop(batch, 3, graphs=False, log_every=1, device=device)  # allocator and cuBLAS warm before profiling
    cuda = device == "cuda"
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        train(model=make_student(0), objective=DistillObjective(DistillWeights(kl=1.0, ce=1.0)),
              batches=RepeatedBatch(batch, steps), config=config, dist=Distributed())
        if cuda:
            torch.cuda.synchronize()
    counts: Counter = Counter()
    micros: defaultdict = defaultdict(float)
    wanted = torch.autograd.DeviceType.CUDA if cuda else torch.autograd.DeviceType.CPU
    for event in prof.events():
        if event.device_type == wanted and not event.name.startswith("Memcpy") and (cuda or event.name.startswith("aten::")):
            counts[event.name] += 1
            micros[event.name] += event.device_time_total if cuda else event.self_cpu_time_total
    by_kind: defaultdict = defaultdict(lambda: {"kernels_per_step": 0.0, "us_per_step": 0.0})
    for name, count in counts.items():
        kind = by_kind[kind_of(name)]
        kind["kernels_per_step"] += count / steps
        kind["us_per_step"] += micros[name] / steps
    top = sorted(counts, key=lambda n: -micros[n])[:15]
    return {"kernels_per_step": sum(counts.values()) / steps, "kernel_us_per_step": sum(micros.values()) / steps,
            "by_kind": dict(sorted(by_kind.items(), key=lambda kv: -kv[1]["us_per_step"])),
            "top": [{"name": n[:90], "per_step": counts[n] / steps, "us_per_step": micros[n] / steps} for n in top]}


def sdpa_backend(batch_size: int, length: int) -> str:
    """The backend SDPA picks for this student's attention (head size 26) with a padding mask."""
    heads, head_dim = 12, 312 // 12
    q, k, v = (torch.randn(batch_size, heads, length, head_dim, device="cuda", dtype=torch.bfloat16,
                           requires_grad=True) for _ in range(3))
    mask = torch.ones(batch_size, 1, length, length, device="cuda", dtype=torch.bool)
    choice = torch._fused_sdp_choice(q, k, v, mask, 0.1, False)
    names = {int(v): k for k, v in torch.nn.attention.SDPBackend.__members__.items()}
    return names.get(int(choice), str(choice))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="16,24,32,64")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="cuda", help="cpu: a quick smoke test of this script only")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        raise SystemExit("bench.profile_step needs a CUDA device (or --device cpu for a smoke test)")
    report: dict = {"date": time.strftime("%Y-%m-%d"), "device": torch.cuda.get_device_name() if cuda else "cpu",
                    "torch": torch.__version__, "batch_size": args.batch_size, "embedding_size": EMBEDDING,
                    "sdpa_backend": sdpa_backend(args.batch_size, 24) if cuda else None, "lengths": {}}
    print("sdpa backend:", report["sdpa_backend"], flush=True)
    for length in (int(x) for x in args.lengths.split(",")):
        batch = make_batch(args.batch_size, length)
        entry = {"kernels": profile_kernels(batch, device=args.device),
                 "eager_samples_per_s": run_loop(batch, max(60, args.steps // 5), graphs=False, log_every=20,
                                                 device=args.device)}
        if cuda:
            entry["graphs_samples_per_s"] = run_loop(batch, args.steps, graphs=True, log_every=50)
            entry["graph_us_per_step"] = 1e6 * args.batch_size / entry["graphs_samples_per_s"]
        report["lengths"][str(length)] = entry
        print(length, json.dumps(entry), flush=True)
    text = json.dumps(report, indent=2)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

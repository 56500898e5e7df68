"""Benchmark: ``kd.distill``'s loop against Hugging Face ``Trainer`` with the same KD loss.

Same student (BERT, 4 layers, hidden 312, 12 heads, FFN 1200), same kd shards (synthetic ids
with a spoken-utterance length distribution: log-normal, median 20 tokens, 3..128), same batch
size, bf16 on CUDA, fused AdamW on CUDA, same objective (T^2-scaled soft-label KL + hard-label
CE), same device, one process, one run:

* malmoi loop, whole step captured as one CUDA graph per length bucket (CUDA only), with the
  default buckets (8..128 in 9 shapes) and with docs/design.md's five (``graphs_coarse``);
* malmoi loop, eager (what runs on a CPU);
* ``Trainer`` with a KD ``compute_loss`` (dynamic padding to the longest row of each batch).

    python -m bench.distill_vs_trainer --device cuda --rows 200000 --steps 400 --batch-size 256
    python -m bench.distill_vs_trainer --device cpu --rows 4000 --steps 40 --batch-size 32   # small, CPU

Steady-state samples/s excludes the first 20 steps (warm-up: CUDA graph capture, allocator,
DataLoader start); warm-up is reported separately. MFU = model FLOPs / s over the card's dense
bf16 peak, with FLOPs per sample = 6 * non-embedding params * padded length + 12 * layers *
hidden * padded length^2.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from kd.common import Distributed
from kd.data import DEFAULT_BUCKETS, BucketBatches, kd_chunks, open_kd_dataset
from kd.loop import LoopConfig, train
from kd.losses import hard_label_ce, soft_label_kl
from kd.models import DistillStudent, bert_student, count_parameters
from kd.objectives import DistillObjective, DistillWeights
from schemas import KD
from schemas.dataset import write_local_dataset

VOCAB, NUM_LABELS, EMBEDDING, LAYERS, HIDDEN = 8000, 7, 768, 4, 312
WARMUP_STEPS = 20
PEAK_BF16 = {"H100": 989.4e12, "H200": 989.4e12, "A100": 312e12}


def synthetic_shards(folder: Path, rows: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lengths = np.clip(np.round(np.exp(rng.normal(np.log(20), 0.6, rows))), 3, 128).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    ids = rng.integers(5, VOCAB, offsets[-1], dtype=np.int32)
    input_ids = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), pa.array(ids, pa.int32()))
    logits = rng.normal(0, 3, (rows, NUM_LABELS)).astype(np.float32)
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    embedding = rng.normal(0, 1, (rows, EMBEDDING)).astype(np.float16)

    def fixed_list(matrix: np.ndarray, kind: pa.DataType) -> pa.ListArray:
        width = matrix.shape[1]
        return pa.ListArray.from_arrays(pa.array(np.arange(0, rows * width + 1, width, dtype=np.int32)),
                                        pa.array(matrix.reshape(-1), kind))

    table = pa.table({
        "id": pa.array([f"s{i}" for i in range(rows)]), "parent_id": pa.array([f"s{i}" for i in range(rows)]),
        "origin": pa.array(["original"] * rows), "text": pa.array([""] * rows),
        "input_ids": input_ids, "label": pa.array(rng.integers(0, NUM_LABELS, rows).astype(np.int32)),
        "split": pa.array(["train"] * rows),
        "teacher_logits": fixed_list(logits, pa.float32()), "teacher_embedding": fixed_list(embedding, pa.float16()),
        "teacher_label": pa.array(logits.argmax(1).astype(np.int32)),
        "teacher_confidence": pa.array(probs.max(1).astype(np.float32)),
        "teacher_entropy": pa.array((-(probs * np.log(probs)).sum(1)).astype(np.float32)),
    }).cast(KD.schema)
    provenance = {"label_names": [f"c{i}" for i in range(NUM_LABELS)], "teacher_id": "synthetic",
                  "teacher_weights_hash": "synthetic", "student_tokenizer_hash": "synthetic",
                  "normalizer_hash": "synthetic", "embedding_size": EMBEDDING}
    write_local_dataset(str(folder), table, KD, created_by="bench", provenance=provenance, row_group_rows=20_000)
    return folder


def make_student(seed: int) -> DistillStudent:
    torch.manual_seed(seed)
    model = bert_student(vocab_size=VOCAB, label_names=[f"c{i}" for i in range(NUM_LABELS)], num_layers=LAYERS,
                         hidden_size=HIDDEN, num_heads=12, intermediate_size=1200)
    return DistillStudent(model, EMBEDDING)


def flops_per_sample(non_embedding: int, padded_length: float, padded_length_sq: float) -> float:
    return 6 * non_embedding * padded_length + 12 * LAYERS * HIDDEN * padded_length_sq


COARSE_BUCKETS = (16, 32, 48, 64, 128)  # the shapes of docs/design.md's reference measurement


def run_malmoi(folder: Path, args, graphs: bool, buckets: tuple[int, ...] | None = None) -> dict:
    opened = open_kd_dataset(str(folder))
    student = make_student(0)
    out = Path(tempfile.mkdtemp()) / ("graphs" if graphs else "eager")
    config = LoopConfig(output=str(out), max_steps=args.steps, batch_size=args.batch_size, learning_rate=5e-4,
                        log_every=WARMUP_STEPS, device=args.device, cuda_graphs=graphs, bf16=True, progress=False,
                        **({"buckets": buckets} if buckets else {}))
    weights = DistillWeights(kl=1.0, ce=1.0)
    batches = BucketBatches(lambda e: kd_chunks(opened, "train", 0, e, weights.columns()), batch_size=args.batch_size,
                            buckets=config.buckets, pad_id=0, seed=0)
    summary = train(model=student, objective=DistillObjective(weights), batches=batches,
                    config=config, dist=Distributed())
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steady = [r["samples_per_s"] for r in records[1:]] or [records[0]["samples_per_s"]]
    lengths = [b["input_ids"].shape[1] for b in batches.epoch(0)]
    return {"samples_per_s": float(np.mean(steady)), "warmup_seconds": summary["warmup_seconds"],
            "final_loss": records[-1]["loss"], "mean_padded_length": float(np.mean(lengths)),
            "mean_padded_length_sq": float(np.mean(np.square(lengths))), "cuda_graphs": summary["cuda_graphs"]}


class _Rows(torch.utils.data.Dataset):
    def __init__(self, folder: Path) -> None:
        import pyarrow.parquet as pq

        from schemas.dataset import part_files

        table = pa.concat_tables([pq.read_table(p, columns=["input_ids", "label", "teacher_logits"])
                                  for p in part_files(str(folder))])
        self.ids = table.column("input_ids").to_pylist()
        self.labels = table.column("label").to_numpy()
        self.logits = np.stack(table.column("teacher_logits").to_numpy(zero_copy_only=False)).astype(np.float32)

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "labels": int(self.labels[i]), "teacher_logits": self.logits[i]}


def _collate(rows: list[dict]) -> dict:
    length = max(len(r["input_ids"]) for r in rows)
    ids = torch.zeros(len(rows), length, dtype=torch.long)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, r in enumerate(rows):
        ids[i, :len(r["input_ids"])] = torch.tensor(r["input_ids"])
        mask[i, :len(r["input_ids"])] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": torch.tensor([r["labels"] for r in rows]),
            "teacher_logits": torch.from_numpy(np.stack([r["teacher_logits"] for r in rows]))}


def run_trainer(folder: Path, args) -> dict:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    class KDTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            teacher = inputs.pop("teacher_logits")
            labels = inputs.pop("labels")
            outputs = model(**inputs)
            weight = torch.ones(labels.shape[0], device=labels.device)
            loss = soft_label_kl(outputs.logits, teacher, 2.0, weight) + hard_label_ce(outputs.logits, labels, weight)
            return (loss, outputs) if return_outputs else loss

    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *_args, **_kwargs):
            if args.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter())

    dataset = _Rows(folder)
    model = make_student(0).model
    training_args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=args.batch_size, max_steps=args.steps,
        learning_rate=5e-4, warmup_steps=max(1, int(0.06 * args.steps)), weight_decay=0.01, max_grad_norm=1.0, bf16=args.device == "cuda",
        optim="adamw_torch_fused" if args.device == "cuda" else "adamw_torch", logging_steps=10_000,
        save_strategy="no", report_to=[], disable_tqdm=True, remove_unused_columns=False,
        dataloader_num_workers=2 if args.device == "cuda" else 0, dataloader_pin_memory=args.device == "cuda",
        use_cpu=args.device == "cpu", seed=0)
    started = time.perf_counter()
    KDTrainer(model=model, args=training_args, train_dataset=dataset, data_collator=_collate,
              callbacks=[Clock()]).train()
    steady = (len(times) - WARMUP_STEPS) * args.batch_size / (times[-1] - times[WARMUP_STEPS - 1])
    rng = np.random.default_rng(0)
    lengths = [max(len(dataset.ids[i]) for i in rng.integers(0, len(dataset), args.batch_size)) for _ in range(200)]
    return {"samples_per_s": steady, "warmup_seconds": times[WARMUP_STEPS - 1] - started,
            "mean_padded_length": float(np.mean(lengths)), "mean_padded_length_sq": float(np.mean(np.square(lengths)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--json", default=None)
    parser.add_argument("--only", default="graphs,graphs_coarse,eager,trainer")
    parser.add_argument("--child", default=None)
    parser.add_argument("--data", default=None)
    args = parser.parse_args()
    if args.child:
        folder = Path(args.data)
        if args.child == "trainer":
            result = run_trainer(folder, args)
        else:
            buckets = COARSE_BUCKETS if args.child.endswith("_coarse") else DEFAULT_BUCKETS
            result = run_malmoi(folder, args, args.child.startswith("graphs"), buckets)
            result["buckets"] = list(buckets)
        print(json.dumps(result), flush=True)
        return
    card = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or platform.machine()
    peak = next((v for k, v in PEAK_BF16.items() if k in card), None) if args.device == "cuda" else None
    non_embedding = count_parameters(make_student(0).model)["non_embedding"]
    report: dict = {"date": time.strftime("%Y-%m-%d"), "device": card, "torch": torch.__version__,
                    "rows": args.rows, "steps": args.steps, "batch_size": args.batch_size,
                    "student_non_embedding_params": non_embedding, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = synthetic_shards(Path(tmp) / "kd", args.rows)
        for name in args.only.split(","):
            if name.startswith("graphs") and args.device != "cuda":
                continue
            # each run in its own process: a failed CUDA graph capture cannot spoil the others
            command = [sys.executable, "-m", "bench.distill_vs_trainer", "--child", name, "--data", str(folder),
                       "--device", args.device, "--steps", str(args.steps), "--batch-size", str(args.batch_size)]
            done = subprocess.run(command, capture_output=True, text=True)
            lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
            result = json.loads(lines[-1]) if done.returncode == 0 and lines else {
                "error": (done.stderr or done.stdout)[-1500:]}
            if "samples_per_s" in result and peak:
                flops = flops_per_sample(non_embedding, result["mean_padded_length"], result["mean_padded_length_sq"])
                result["mfu"] = result["samples_per_s"] * flops / peak
            report["runs"][name] = result
            print(name, json.dumps(result), flush=True)
    base = report["runs"].get("trainer", {}).get("samples_per_s")
    if base:
        report["speedup_vs_trainer"] = {k: v["samples_per_s"] / base for k, v in report["runs"].items()
                                        if "samples_per_s" in v}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")


if __name__ == "__main__":
    main()

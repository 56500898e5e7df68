"""Benchmark: the augment job's teacher-labeling throughput vs a bare PyTorch forward loop.

Same teacher (a 6-layer, hidden-384 BERT classifier built from a config), same utterances
(real NSMC reviews, CC0, preprocessed by the real job), same device, one process, one run.
The job runs the teacher through Beam's ``RunInference`` (once per process, and once more with
``--share-teacher``: one copy per machine behind ``MultiProcessShared``). The baseline gets the texts already tokenized and sorted into length-ordered batches of the same
size, and only runs ``model(...)`` plus the mean pooling; the job does everything it always does
(read Parquet, tokenize for teacher and student, forward, derive, write zstd Parquet, side-cars).

    .venv/bin/python -m bench.augment_vs_forward [--utterances 5000] [--rounds 2] [--device cpu|cuda]

Each job run is compared with the mean of the bare runs just before and after it (interleaved
rounds: a baseline timed once at the start drifts with the machine).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from bench.corpora import require_shared_data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utterances", type=int, default=5000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved bare / job rounds")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    from beam_jobs import augment, preprocess
    from kd.models import bert_student
    from kd.tokenizer import train_tokenizer
    from schemas import UTTERANCES, read_dataset

    root = require_shared_data()
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if r["document"] and r["label"]]
    rows = rows[: args.utterances]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        with open(tmp / "nsmc.jsonl", "w", encoding="utf-8") as out:
            for r in rows:
                out.write(json.dumps({"id": r["id"], "text": r["document"], "label": r["label"]}, ensure_ascii=False) + "\n")
        preprocess.run(["--input", str(tmp / "nsmc.jsonl"), "--output", str(tmp / "utt"), "--runner", "FnApiRunner"])
        texts = read_dataset(str(tmp / "utt"), UTTERANCES, columns=["text"]).column("text").to_pylist()
        tokenizer = train_tokenizer(texts, tmp / "tok", vocab_size=8000)
        torch.manual_seed(0)
        teacher = bert_student(vocab_size=len(tokenizer), label_names=["0", "1"], num_layers=6, hidden_size=384,
                               num_heads=6, intermediate_size=1536)
        teacher.save_pretrained(tmp / "teacher")
        tokenizer.save_pretrained(tmp / "teacher")

        # baseline: pre-tokenized, length-sorted batches, forward + pooling only
        model = teacher.to(args.device).eval()
        teacher_tok = AutoTokenizer.from_pretrained(tmp / "teacher")
        encoded = sorted(teacher_tok(texts, truncation=True, max_length=128)["input_ids"], key=len)
        batches = []
        for start in range(0, len(encoded), args.batch_size):
            chunk = encoded[start:start + args.batch_size]
            length = max(map(len, chunk))
            ids = torch.zeros(len(chunk), length, dtype=torch.long)
            mask = torch.zeros(len(chunk), length, dtype=torch.long)
            for i, e in enumerate(chunk):
                ids[i, :len(e)] = torch.tensor(e)
                mask[i, :len(e)] = 1
            batches.append((ids.to(args.device), mask.to(args.device)))
        use_bf16 = args.device == "cuda"

        def bare_rate() -> float:
            start = time.perf_counter()
            with torch.inference_mode():
                for ids, mask in batches:
                    with torch.autocast(args.device, dtype=torch.bfloat16, enabled=use_bf16):
                        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                    m = mask.unsqueeze(-1).float()
                    pooled = (out.hidden_states[-1].float() * m).sum(1) / m.sum(1)
                    _ = out.logits.float().cpu(), pooled.cpu()
            return len(texts) / (time.perf_counter() - start)

        def job_rate(name: str, *extra: str) -> float:
            start = time.perf_counter()
            augment.run(["--input", str(tmp / "utt"), "--output", str(tmp / name), "--teacher", str(tmp / "teacher"),
                         "--student-tokenizer", str(tmp / "tok"), "--teacher-batch-size", str(args.batch_size),
                         "--device", args.device, "--runner", "FnApiRunner", "--overwrite", *extra])
            return len(texts) / (time.perf_counter() - start)

        # interleaved rounds, so a machine that speeds up or slows down over the run (turbo, other
        # load) moves both sides: each job run is compared with the bare runs just before and after it
        bares, jobs, shareds = [bare_rate()], [], []
        for _ in range(args.rounds):
            jobs.append(job_rate("kd"))  # the teacher through RunInference, one copy per process
            bares.append(bare_rate())
            shareds.append(job_rate("kd_shared", "--share-teacher"))  # one copy per machine (MultiProcessShared)
            bares.append(bare_rate())
        job_ratios = [j / ((bares[2 * i] + bares[2 * i + 1]) / 2) for i, j in enumerate(jobs)]
        shared_ratios = [s / ((bares[2 * i + 1] + bares[2 * i + 2]) / 2) for i, s in enumerate(shareds)]
    card = torch.cuda.get_device_name() if args.device == "cuda" else f"{platform.machine()} CPU, {torch.get_num_threads()} threads"
    report = {"date": time.strftime("%Y-%m-%d"), "device": card, "utterances": len(texts), "rounds": args.rounds,
              "bare_forward_utt_per_s": [round(b, 1) for b in bares], "augment_job_utt_per_s": [round(j, 1) for j in jobs],
              "job_over_bare": [round(r, 3) for r in job_ratios],
              "augment_job_shared_teacher_utt_per_s": [round(s, 1) for s in shareds],
              "shared_over_bare": [round(r, 3) for r in shared_ratios]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

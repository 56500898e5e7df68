"""Benchmark: the mlm paraphraser, one forward pass per text with the vocabulary projected at
every position (the previous implementation, kept here as the baseline) vs ``MlmParaphraser.many``
(batches sorted by token count over a whole augment batch, projection at the masked positions
only, a text's spare positions run only where its first ones gave too few candidates),
in float32 and with ``--mlm-precision bfloat16``, same model, same real texts, same process.

    .venv/bin/python -m bench.mlm_paraphrase [--texts 2000] [--layers 4 --hidden 256] [--rounds 3]

The masked LM is a BERT built from a config over a WordPiece vocabulary trained on the texts
(real NSMC reviews, CC0). The float32 paths must return the same candidates; bf16 rounds the
scores, so where two predictions nearly tie it can pick the other: reported is the share of texts
whose candidates are identical to float32's, and the same for ``--mlm-joint-masks`` (a round's words
masked together in one row, in float32 and bf16), whose predictions see fewer words.
Reported: milliseconds per text of each and the ratios, and a ceiling: the matrix-product FLOPs
the exact batched path spends (torch's profiler) at this CPU's peak matrix-product rate, the
best time any batching of these forward passes could reach.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch

from bench.corpora import colloquial_texts


def one_at_a_time(paraphraser, source_id: str, text: str, seed: int = 0) -> list[str]:
    """The paraphraser as it was (the baseline, kept verbatim): one forward pass per text over its
    masked variants, the vocabulary projected at every position."""
    from beam_jobs.paraphrase import _distinct, rng_for

    self = paraphraser
    rng = rng_for(source_id, "mlm", seed)
    words = text.split()
    if not words:
        return []
    positions = rng.sample(range(len(words)), min(len(words), self.num_candidates * 2))
    masked = [" ".join(words[:p] + [self.tokenizer.mask_token] + words[p + 1:]) for p in positions]
    inputs = self.tokenizer(masked, return_tensors="pt", padding=True, truncation=True, max_length=128).to(self.device)
    with torch.inference_mode():
        logits = self.model(**inputs).logits
    candidates = []
    for row, p in enumerate(positions):
        where = (inputs["input_ids"][row] == self.tokenizer.mask_token_id).nonzero()
        if not len(where):
            continue
        top = logits[row, where[0, 0]].topk(self.top_k * 3).indices.tolist()
        choices = [self.tokenizer.convert_ids_to_tokens(t) for t in top]
        choices = [c for c in choices if c and not c.startswith(("##", "[", "<", "▁▁")) and c != words[p]
                   and c not in self.tokenizer.all_special_tokens][: self.top_k]
        if choices:
            replacement = rng.choice(choices).lstrip("▁")
            candidates.append(" ".join(words[:p] + [replacement] + words[p + 1:]))
    return _distinct(text, candidates, self.num_candidates)


def counted_flops(run) -> float:
    """The floating-point operations ``run()`` spends in matrix products, as torch's profiler
    counts them (``with_flops``: mm/addmm/bmm/matmul; fused attention kernels are not counted, so
    this is a lower bound — at ~20 tokens a text attention is ~1% of a BERT layer's products)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], with_flops=True) as profiler:
        run()
    return float(sum(event.flops for event in profiler.key_averages() if event.flops))


def peak_matmul_flops(dtype: torch.dtype = torch.float32, size: int = 1024, repeats: int = 20) -> float:
    """This CPU's best matrix-product rate in ``dtype`` (FLOP/s of a square ``size`` product, best of
    ``repeats``, all of torch's threads): the roofline no batching of small models can pass."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    best = float("inf")
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            torch.mm(a, b)
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _bf16_flags() -> list[str]:
    """The CPU's bf16 instruction sets (what decides whether bf16 autocast is faster here)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].splitlines()[0].split()
    except (OSError, IndexError):
        return []
    return sorted(f for f in flags if "bf16" in f or f.startswith("amx"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every side (medians reported)")
    args = parser.parse_args(argv)

    from transformers import BertConfig, BertForMaskedLM

    from beam_jobs.paraphrase import MlmParaphraser
    from kd.tokenizer import train_tokenizer

    texts = list(islice(colloquial_texts(), args.texts))
    items = [(f"t{i}", t) for i, t in enumerate(texts)]
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = train_tokenizer(texts, Path(tmp), vocab_size=args.vocab, min_frequency=1)
        torch.manual_seed(0)
        BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
                                   num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden)
                        ).save_pretrained(tmp)
        paraphraser = MlmParaphraser(tmp, num_candidates=2)
        paraphraser.many(items[:8])  # warm-up
        paraphraser.precision = "bfloat16"
        paraphraser.many(items[:8])  # warm-up of the bf16 kernels
        times: dict[str, list[float]] = {k: [] for k in ("one_by_one", "batched", "batched_bf16", "joint_float32",
                                                           "joint_bfloat16")}
        joint: dict[str, list] = {}
        for _ in range(args.rounds):  # interleaved, so a change in the machine's speed hits every side
            start = time.perf_counter()
            one_by_one = [one_at_a_time(paraphraser, source_id, text) for source_id, text in items]
            times["one_by_one"].append(time.perf_counter() - start)
            paraphraser.precision = "float32"
            start = time.perf_counter()
            batched = paraphraser.many(items)
            times["batched"].append(time.perf_counter() - start)
            paraphraser.precision = "bfloat16"
            start = time.perf_counter()
            bf16 = paraphraser.many(items)
            times["batched_bf16"].append(time.perf_counter() - start)
            paraphraser.joint_masks = True
            for precision in ("float32", "bfloat16"):
                paraphraser.precision = precision
                start = time.perf_counter()
                joint[precision] = paraphraser.many(items)
                times[f"joint_{precision}"].append(time.perf_counter() - start)
            paraphraser.precision, paraphraser.joint_masks = "float32", False
        # the exact path's compute: what the forward passes of the batched float32 path must do,
        # against the fastest this CPU multiplies matrices — the best time any batching could reach
        flops = counted_flops(lambda: paraphraser.many(items))
        peak = {str(dtype).removeprefix("torch."): peak_matmul_flops(dtype) for dtype in (torch.float32, torch.bfloat16)}
    single, many, many_bf16 = (statistics.median(times[k]) for k in ("one_by_one", "batched", "batched_bf16"))
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} "
              "threads", "texts": len(items), "ms_per_text_one_by_one": round(1000 * single / len(items), 2),
              "ms_per_text_batched": round(1000 * many / len(items), 2), "speedup": round(single / many, 1),
              "same_candidates": batched == one_by_one, "ms_per_text_batched_bf16": round(1000 * many_bf16 / len(items), 2),
              "speedup_bf16": round(single / many_bf16, 1),
              "bf16_identical_share": round(sum(a == b for a, b in zip(bf16, batched, strict=True)) / len(items), 3),
              "rounds": args.rounds,
              "speedup_per_round": [round(o / b, 1) for o, b in zip(times["one_by_one"], times["batched"], strict=True)],
              "speedup_bf16_per_round": [round(o / b, 1) for o, b in zip(times["one_by_one"], times["batched_bf16"],
                                                                        strict=True)],
              **{f"ms_per_text_joint_masks_{p}": round(1000 * statistics.median(times[f"joint_{p}"]) / len(items), 2)
                 for p in ("float32", "bfloat16")},
              **{f"speedup_joint_masks_{p}": round(single / statistics.median(times[f"joint_{p}"]), 1)
                 for p in ("float32", "bfloat16")},
              **{f"joint_masks_{p}_identical_share": round(sum(a == b for a, b in zip(joint[p], batched, strict=True))
                                                           / len(items), 3) for p in ("float32", "bfloat16")},
              "matmul_gflop_per_text_batched": round(flops / len(items) / 1e9, 4),
              "achieved_gflops_batched_float32": round(flops / many / 1e9, 1),
              "peak_matmul_gflops": {k: round(v / 1e9, 1) for k, v in peak.items()},
              # the one-text-at-a-time time over the batched path's products at the CPU's peak rate:
              # no exact float32 batching can beat this ratio on this machine
              "ceiling_speedup_exact_float32": round(single / (flops / peak["float32"]), 1),
              "ceiling_speedup_bfloat16": round(single / (flops / peak["bfloat16"]), 1),
              "cpu_flags_bf16": _bf16_flags()}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

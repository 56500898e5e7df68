"""Benchmark: masked-LM training steps on the CPU, vocabulary projection on masked positions only
vs on every position (the baseline), same model, same batches, same process, interleaved.

    .venv/bin/python -m bench.mlm_projection [--vocab 16000 --hidden 256 --layers 4 --rounds 5]

A BERT masked LM built from a config (about 5M non-embedding parameters at the defaults), batches
of 32 real-length sequences (48 tokens), AdamW steps; reported: samples per second of each path
(median of the rounds) and their ratio.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=16000)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--length", type=int, default=48)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    from transformers import BertConfig, BertForMaskedLM

    from kd.objectives import MaskedLMObjective

    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig(vocab_size=args.vocab, hidden_size=args.hidden, num_hidden_layers=args.layers,
                                       num_attention_heads=args.hidden // 64, intermediate_size=4 * args.hidden))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(5, args.vocab, (args.batch_size, args.length))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "weight": torch.ones(args.batch_size)}
    objectives = {name: MaskedLMObjective(4, args.vocab, [0, 1, 2, 3, 4], masked_only=name == "masked_only")
                  for name in ("every_position", "masked_only")}
    rates: dict[str, list[float]] = {name: [] for name in objectives}
    for round_ in range(args.rounds + 1):
        for name, objective in objectives.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                loss, _ = objective(model, batch)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            if round_:  # the first round warms up
                rates[name].append(args.steps * args.batch_size / (time.perf_counter() - start))
    medians = {name: statistics.median(values) for name, values in rates.items()}
    report = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} CPU, {torch.get_num_threads()} "
              "threads", "non_embedding_parameters": sum(p.numel() for n, p in model.named_parameters()
                                                         if "embeddings" not in n and "decoder" not in n),
              "samples_per_s": {k: round(v, 1) for k, v in medians.items()},
              "speedup": round(medians["masked_only"] / medians["every_position"], 2)}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""``python -m kd.pretrain``: masked-LM pretraining on an utterances dataset.

From scratch (a BERT config of the given size) or continued from a checkpoint (``--init``:
domain adaptation of a general model to spoken text):

    python -m kd.pretrain --data out/utterances --tokenizer out/tokenizer --output out/mlm \\
        [--init klue/bert-base-like-local-dir] [--layers 4 --hidden 256 --heads 4] [--max-steps 10000]
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

from kd.common import init_distributed, pick_device, write_json
from kd.data import BucketBatches, open_dataset, utterance_chunks
from kd.loop import LoopConfig, add_loop_arguments, loop_config, train
from kd.objectives import MaskedLMObjective
from kd.report import plot_metrics
from schemas import UTTERANCES


@dataclass(frozen=True)
class PretrainConfig:
    data: str
    tokenizer: str
    init: str | None = None
    num_layers: int = 4
    hidden_size: int = 256
    num_heads: int = 4
    intermediate_size: int = 1024
    max_length: int = 128
    mask_probability: float = 0.15
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output="out/mlm"))


def run(config: PretrainConfig) -> dict:
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, UTTERANCES)
    tokenizer = AutoTokenizer.from_pretrained(config.init or config.tokenizer)
    torch.manual_seed(config.loop.seed)
    if config.init:
        model = AutoModelForMaskedLM.from_pretrained(config.init)
    else:
        model = BertForMaskedLM(BertConfig(
            vocab_size=len(tokenizer), hidden_size=config.hidden_size, num_hidden_layers=config.num_layers,
            num_attention_heads=config.num_heads, intermediate_size=config.intermediate_size,
            max_position_embeddings=max(512, config.max_length), pad_token_id=tokenizer.pad_token_id or 0))
    if model.get_input_embeddings().num_embeddings < len(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    loop = config.loop
    batches = BucketBatches(
        lambda epoch: utterance_chunks(opened, "train", tokenizer, config.max_length, None, loop.seed, epoch),
        batch_size=loop.batch_size, buckets=loop.buckets, pad_id=tokenizer.pad_token_id or 0, seed=loop.seed,
        rank=dist.rank, world_size=dist.world_size)
    objective = MaskedLMObjective(tokenizer.mask_token_id, len(tokenizer), tokenizer.all_special_ids,
                                  config.mask_probability)

    def evaluate(model_, step: int) -> dict[str, float]:
        valid = BucketBatches(
            lambda epoch: utterance_chunks(opened, "valid", tokenizer, config.max_length, None, None, 0),
            batch_size=loop.batch_size, buckets=loop.buckets, pad_id=tokenizer.pad_token_id or 0, seed=0)
        losses = []
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(1234)  # the same masks at every evaluation
            for batch in valid.epoch(0):
                tensors = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
                losses.append(objective(model_, tensors)[0].item())
        return {"eval/mlm_loss": sum(losses) / len(losses)} if losses else {}

    summary = train(model=model, objective=objective, batches=batches, config=loop, dist=dist, evaluate=evaluate)
    if dist.is_main:
        output = Path(loop.output)
        model.save_pretrained(output, safe_serialization=True)
        tokenizer.save_pretrained(output)
        plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"pretrain -> {output.name}")
        write_json(output / "training_summary.json", {"config": config, "summary": summary})
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kd.pretrain", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="utterances dataset")
    parser.add_argument("--tokenizer", required=True, help="tokenizer dir (kd.tokenizer); ignored with --init")
    parser.add_argument("--output", required=True)
    parser.add_argument("--init", default=None, help="continue from this masked-LM checkpoint (local dir)")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--intermediate", type=int, default=1024)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--mask-probability", type=float, default=0.15)
    add_loop_arguments(parser, max_steps=10_000, learning_rate=5e-4)
    args = parser.parse_args(argv)
    config = PretrainConfig(args.data, args.tokenizer, args.init, args.layers, args.hidden, args.heads,
                            args.intermediate, args.max_length, args.mask_probability, loop_config(args))
    try:
        summary = run(config)
    except (ValueError, FileNotFoundError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"pretrained {summary['steps']} steps -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

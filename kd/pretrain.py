"""``python -m kd.pretrain``: masked-LM pretraining on an utterances dataset.

From scratch (a BERT config of the given size) or continued from a checkpoint (``--init``:
domain adaptation of a general model to spoken text):

    python -m kd.pretrain --data out/utterances --tokenizer out/tokenizer --output out/mlm \\
        [--init klue/bert-base-like-local-dir] [--layers 4 --hidden 256 --heads 4] [--max-steps 10000]
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import init_distributed, pick_device, write_json
from kd.data import BucketBatches, open_dataset, utterance_chunks
from kd.loop import LoopConfig, interrupted, report_interruption, train
from kd.objectives import MaskedLMObjective
from kd.report import plot_metrics
from schemas import UTTERANCES
from schemas.options import config_command, option


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Everything that decides the masked LM; saved next to it (training_summary.json)."""

    data: str = option(help="utterances dataset", metavar="DIR", required=True)
    tokenizer: str = option(help="tokenizer dir (kd.tokenizer); ignored with --init", metavar="DIR", required=True)
    init: str | None = option(None, help="continue from this masked-LM checkpoint (local dir)", metavar="DIR")
    num_layers: int = option(4, help="encoder layers (from scratch)", flag="--layers")
    hidden_size: int = option(256, help="hidden size (from scratch)", flag="--hidden")
    num_heads: int = option(4, help="attention heads (from scratch)", flag="--heads")
    intermediate_size: int = option(1024, help="feed-forward size (from scratch)", flag="--intermediate")
    max_length: int = option(128, help="inputs are truncated to this many tokens")
    mask_probability: float = option(0.15, help="share of tokens masked")
    loop: LoopConfig = LoopConfig(output="out/mlm", max_steps=10_000, learning_rate=5e-4)


def run(config: PretrainConfig) -> dict:
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, UTTERANCES)
    tokenizer = load_subword_tokenizer(config.init or config.tokenizer)
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
    if dist.is_main and not interrupted(summary):
        output = Path(loop.output)
        model.save_pretrained(output, safe_serialization=True)
        tokenizer.save_pretrained(output)
        plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"pretrain -> {output.name}")
        write_json(output / "training_summary.json", {"config": config, "summary": summary})
    return summary


def main(argv: list[str] | None = None) -> int:
    def command(config: PretrainConfig) -> int:
        summary = run(config)
        if interrupted(summary):
            return report_interruption(summary, config.loop.output)
        print(f"pretrained {summary['steps']} steps -> {config.loop.output}")
        return 0

    return config_command(PretrainConfig, command, argv, prog="python -m kd.pretrain", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

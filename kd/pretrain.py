"""``python -m kd.pretrain``: masked-LM pretraining on an utterances dataset.

From scratch (a BERT config of the given size) or continued from a checkpoint (``--init``:
domain adaptation of a general model to spoken text):

    python -m kd.pretrain --data out/utterances --tokenizer out/tokenizer --output out/mlm \\
        [--init klue/bert-base-like-local-dir] [--layers 4 --hidden 256 --heads 4] [--max-steps 10000]

``--init DIR --stack-layers N`` grows a shallow checkpoint into an N-layer one (each new layer a
copy of one below) and continues from it: on a CPU, the way to a deeper masked LM that would sit on
the unigram plateau from random weights.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForMaskedLM, BertConfig, BertForMaskedLM

from beam_jobs.text.subwords import load_subword_tokenizer
from kd.common import init_distributed, pick_device, write_json
from kd.data import BucketBatches, open_dataset, utterance_chunks
from kd.loop import LoopConfig, interrupted, report_interruption, train
from kd.objectives import MaskedLMObjective
from kd.report import plot_metrics
from schemas import UTTERANCES
from schemas.options import MalmoiError, config_command, option


@dataclass(frozen=True, kw_only=True)
class PretrainConfig:
    """Everything that decides the masked LM; saved next to it (training_summary.json)."""

    data: str = option(help="utterances dataset", metavar="DIR", required=True)
    tokenizer: str = option(help="tokenizer dir (kd.tokenizer); ignored with --init", metavar="DIR", required=True)
    init: str | None = option(None, help="continue from this masked-LM checkpoint (local dir)", metavar="DIR")
    stack_layers: int = option(0, help="with --init: first grow its encoder to this many layers, layer i a copy of "
                                       "layer i mod L (progressive stacking; 0: keep its depth)", metavar="N")
    num_layers: int = option(4, help="encoder layers (from scratch)", flag="--layers")
    hidden_size: int = option(256, help="hidden size (from scratch)", flag="--hidden")
    num_heads: int = option(4, help="attention heads (from scratch)", flag="--heads")
    intermediate_size: int = option(1024, help="feed-forward size (from scratch)", flag="--intermediate")
    max_length: int = option(128, help="inputs are truncated to this many tokens")
    mask_probability: float = option(0.15, help="share of tokens masked")
    loop: LoopConfig = LoopConfig(output="out/mlm", max_steps=10_000, learning_rate=5e-4)


PLATEAU_MARGIN = 1.0  # nats: an MLM this close to the unigram loss has not learned to use context


def unigram_loss(train_ids: Iterable[np.ndarray], valid_ids: Iterable[np.ndarray], vocab_size: int,
                 special_ids: Iterable[int]) -> float | None:
    """Cross-entropy (nats) of the valid tokens under the train tokens' unigram frequencies (add-one
    smoothed; special tokens left out): the masked-LM loss of a model that predicts every masked
    token by its frequency alone, ignoring the sentence. None without tokens on either side."""
    special = np.asarray(sorted(set(special_ids)), np.int64)

    def counts(arrays: Iterable[np.ndarray]) -> np.ndarray:
        total = np.zeros(vocab_size, np.float64)
        for ids in arrays:
            total += np.bincount(np.asarray(ids, np.int64), minlength=vocab_size)[:vocab_size]
        total[special[special < vocab_size]] = 0
        return total

    train, valid = counts(train_ids), counts(valid_ids)
    if not train.sum() or not valid.sum():
        return None
    log_p = np.log((train + 1) / (train.sum() + vocab_size))
    return float(-(valid * log_p).sum() / valid.sum())


def plateau_warning(eval_loss: float | None, unigram: float | None, steps: int) -> str | None:
    """A warning when the final masked-LM loss is within :data:`PLATEAU_MARGIN` of the unigram loss."""
    if eval_loss is None or unigram is None or eval_loss < unigram - PLATEAU_MARGIN:
        return None
    return (f"after {steps} steps the masked LM's valid loss ({eval_loss:.2f}) is still within {PLATEAU_MARGIN:.0f} "
            f"nat of predicting every masked token by its frequency ({unigram:.2f}): it has not learned to use the "
            "sentence, its encoder gives nearly the same vector for any input, and a teacher or student started from "
            "it learns little. Train for more --max-steps (thousands on a CPU: a 2-layer/128 model at "
            "--learning-rate 1e-3 and --batch-size 64 was a nat under it after about 1,800 steps, a 4-layer/256 one "
            "had not after 4,800), or a smaller model.")


def stack_encoder_layers(model: torch.nn.Module, layers: int) -> torch.nn.Module:
    """A copy of a BERT-like masked LM with ``layers`` encoder layers, layer ``i`` initialised from
    layer ``i mod L`` of the ``L`` it has, everything else (embeddings, head) copied as is.

    Progressive stacking (Gong et al., 2019): a deep encoder started from a trained shallow one
    trains on from near that one's loss (a 2-layer/256 masked LM at 4.50 gave a 4-layer one at 4.71
    after 500 steps, 4.31 after 3,900) instead of starting on the unigram plateau (7.57), where a
    4-layer model from random weights stayed for 4,800 CPU steps (docs/benchmarks.md)."""
    config = model.config
    have = getattr(config, "num_hidden_layers", None)
    if not have or not any(".encoder.layer.0." in f".{k}" for k in model.state_dict()):
        raise ValueError(f"--stack-layers expects a BERT-like checkpoint (encoder.layer.N weights, num_hidden_layers "
                         f"in its config); found a {type(model).__name__}: pretrain it without --stack-layers")
    if layers <= have:
        raise ValueError(f"--stack-layers {layers} must be more than the checkpoint's {have} layers "
                         f"(0 keeps its depth)")
    grown = type(model)(type(config).from_dict({**config.to_dict(), "num_hidden_layers": layers}))
    source = model.state_dict()
    state = {}
    for key in grown.state_dict():
        head, sep, rest = key.partition("encoder.layer.")
        if sep:
            index, _, tail = rest.partition(".")
            key_from = f"{head}encoder.layer.{int(index) % have}.{tail}"
        else:
            key_from = key
        state[key] = source[key_from]  # load_state_dict copies: the repeated layers do not share storage
    grown.load_state_dict(state)
    return grown


def _token_arrays(chunks, limit: int) -> Iterable[np.ndarray]:
    """The token ids of ``chunks``, up to about ``limit`` tokens."""
    seen = 0
    for chunk in chunks:
        yield chunk.values
        seen += len(chunk.values)
        if seen >= limit:
            return


def run(config: PretrainConfig) -> dict:
    if config.stack_layers and not config.init:  # refused before any data or device is touched
        raise MalmoiError(f"--stack-layers {config.stack_layers} was given without --init; it grows an existing checkpoint.",
                          "give the checkpoint to grow with --init DIR, or train from scratch with --layers N.")
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    opened = open_dataset(config.data, UTTERANCES)
    tokenizer = load_subword_tokenizer(config.init or config.tokenizer)
    torch.manual_seed(config.loop.seed)
    if config.init:
        model = AutoModelForMaskedLM.from_pretrained(config.init)
        if config.stack_layers:
            model = stack_encoder_layers(model, config.stack_layers)
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
        # has it left the unigram plateau? (the final valid loss against frequencies alone; dropout
        # off, as at the loop's evaluations)
        model.eval()
        final = evaluate(model, summary["steps"]).get("eval/mlm_loss")
        unigram = unigram_loss(
            _token_arrays(utterance_chunks(opened, "train", tokenizer, config.max_length, None, None, 0), 2_000_000),
            _token_arrays(utterance_chunks(opened, "valid", tokenizer, config.max_length, None, None, 0), 2_000_000),
            len(tokenizer), tokenizer.all_special_ids)
        warning = plateau_warning(final, unigram, summary["steps"])
        summary = {**summary, "final_eval_mlm_loss": final, "unigram_loss": unigram,
                   "left_unigram_plateau": None if final is None or unigram is None else warning is None}
        if warning:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
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

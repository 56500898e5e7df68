"""The one training loop (pretrain, finetune and distill all use it). Read it top to bottom.

What it does, in order:
1. set up the device, DDP (under ``torchrun``), AdamW (fused on CUDA) and a warmup + linear
   decay learning rate held in a tensor (so a captured CUDA graph sees each new value);
2. resume exactly from the latest ``OUTPUT/checkpoints/step-N/`` when asked: weights, optimizer,
   step, data position (epoch, batches consumed) and every RNG;
3. for each fixed-shape batch (prefetched into pinned memory on a background thread):
   forward under bf16 autocast on CUDA, backward, a NaN/inf guard that skips the update of a
   non-finite step (counted, no host sync), gradient clipping, the optimizer step — on CUDA the
   whole step is captured once per batch shape as a CUDA graph and replayed;
4. every ``log_every`` steps: one host sync to log means to ``metrics.jsonl`` and the progress
   bar; every ``eval_every`` steps: the evaluation callback; every ``save_every`` steps and on
   SIGINT/SIGTERM: a resumable checkpoint.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from kd.common import Distributed, pick_device, to_jsonable, write_json
from kd.data import DEFAULT_BUCKETS, BucketBatches, Prefetcher

CHECKPOINTS = "checkpoints"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class LoopConfig:
    """How to train; saved into every checkpoint."""

    output: str
    max_steps: int = 1000
    max_minutes: float = 0.0  # > 0: also stop (and export as usual) once this much wall time is spent
    batch_size: int = 64
    learning_rate: float = 5e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.06
    clip_norm: float = 1.0
    log_every: int = 50
    eval_every: int = 0
    save_every: int = 0
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "auto"
    bf16: bool = True  # on CUDA only
    compile: bool = False
    cuda_graphs: bool = True  # on CUDA only, single process, not with compile
    buckets: tuple[int, ...] = DEFAULT_BUCKETS
    resume: bool = False
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


def lr_at(step: int, config: LoopConfig) -> float:
    """Linear warmup to the peak, then linear decay to 0 at ``max_steps``."""
    warmup = max(1, int(config.warmup_ratio * config.max_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    return config.learning_rate * max(0.0, (config.max_steps - step) / max(1, config.max_steps - warmup))


def latest_checkpoint(output: str) -> Path | None:
    folder = Path(output) / CHECKPOINTS
    done = [p for p in folder.glob("step-*") if (p / "COMPLETE").exists()] if folder.exists() else []
    return max(done, key=lambda p: int(p.name.split("-")[1]), default=None)


def _rng_state(device: torch.device) -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def train(*, model: torch.nn.Module, objective: Callable, batches: BucketBatches, config: LoopConfig,
          dist: Distributed, evaluate: Callable[[torch.nn.Module, int], dict[str, float]] | None = None) -> dict:
    """Train ``model`` with ``objective`` on ``batches``; returns a summary (steps, speed, status)."""
    # 1. device, DDP, optimizer, learning rate -------------------------------------------------
    device = pick_device(config.device)
    model.to(device)
    model.train()
    output = Path(config.output)
    if dist.is_main:
        output.mkdir(parents=True, exist_ok=True)
    use_bf16 = config.bf16 and device.type == "cuda"
    use_graphs = config.cuda_graphs and device.type == "cuda" and dist.world_size == 1 and not config.compile
    step_model: torch.nn.Module = model
    if dist.world_size > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        step_model = torch.compile(step_model)
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    lr: float | torch.Tensor = torch.tensor(lr_at(0, config), device=device) if use_graphs else lr_at(0, config)
    # fused AdamW (CUDA and CPU) reads two tensors the loop fills each step without a host sync:
    # ``found_inf`` (1 skips the whole update: the NaN/inf guard) and ``grad_scale`` (gradients are
    # divided by it: gradient clipping folded into the optimizer kernel)
    optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True, capturable=use_graphs)
    optimizer.found_inf = torch.zeros((), device=device)
    optimizer.grad_scale = torch.ones((), device=device)

    def set_lr(value: float) -> None:
        for group in optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(value)
            else:
                group["lr"] = value

    # 2. resume --------------------------------------------------------------------------------
    step, epoch, in_epoch = 0, 0, 0
    metrics_path = output / METRICS_FILE
    checkpoint = latest_checkpoint(config.output) if config.resume else None
    if checkpoint is not None:
        # RNG states must stay CPU tensors; load_state_dict moves weights and optimizer state to the device
        state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        step, epoch, in_epoch = state["step"], state["epoch"], state["batches_in_epoch"]
        _set_rng_state(state["rng"], device)
        if dist.is_main and metrics_path.exists():  # drop lines written after the checkpoint
            kept = [line for line in metrics_path.read_text(encoding="utf-8").splitlines()
                    if json.loads(line)["step"] <= step]
            metrics_path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    elif dist.is_main and metrics_path.exists() and not config.resume:
        metrics_path.unlink()

    def save(reason: str) -> None:
        if not dist.is_main:
            return
        folder = output / CHECKPOINTS / f"step-{step}"
        folder.mkdir(parents=True, exist_ok=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                    "epoch": epoch, "batches_in_epoch": in_epoch, "rng": _rng_state(device), "reason": reason},
                   folder / "state.pt")
        write_json(folder / "config.json", config)
        (folder / "COMPLETE").write_text(reason, encoding="utf-8")
        done = sorted((p for p in (output / CHECKPOINTS).glob("step-*") if p != folder),
                      key=lambda p: int(p.name.split("-")[1]))
        for old in done[: max(0, len(done) - (config.keep_checkpoints - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    stop = {"signal": None}

    def request_stop(signum, _frame) -> None:
        stop["signal"] = signal.Signals(signum).name

    previous_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    # 3. one optimization step (eager), and its CUDA-graph replay ---------------------------------
    skipped = torch.zeros((), device=device)

    def eager_step(batch: dict[str, torch.Tensor]):
        optimizer.zero_grad(set_to_none=True)  # backward then writes gradients instead of adding to zeros
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            loss, parts = objective(step_model, batch)
        loss.backward()
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.nn.utils.get_total_norm(grads, foreach=True)
        bad = ~(torch.isfinite(loss) & torch.isfinite(norm))  # a NaN/inf step updates nothing
        optimizer.found_inf.copy_(bad)
        skipped.add_(optimizer.found_inf)
        if config.clip_norm > 0:  # clip to clip_norm: the optimizer divides by max(1, norm / clip_norm)
            optimizer.grad_scale.copy_(((norm + 1e-6) / config.clip_norm).clamp_min(1.0))
        optimizer.step()
        zero = torch.zeros_like(loss)  # a skipped step logs 0 for every term
        return torch.where(bad, zero, loss.detach()), {k: torch.where(bad, zero, v)
                                                         for k, v in {**parts, "grad_norm": norm.detach()}.items()}

    graphs: dict[tuple, dict[str, Any]] = {}
    pool = {"handle": None}
    warmup_started = time.perf_counter()
    warmup = {"seconds": None}

    def graph_step(host_batch: dict[str, torch.Tensor]):
        key = tuple((k, tuple(v.shape)) for k, v in sorted(host_batch.items()))
        entry = graphs.setdefault(key, {"static": {k: torch.empty_like(v, device=device) for k, v in host_batch.items()},
                                        "warm": 0, "graph": None})
        for name, value in host_batch.items():  # pinned host -> the graph's input buffers, asynchronously
            entry["static"][name].copy_(value, non_blocking=True)
        if entry["graph"] is None and entry["warm"] < 2:  # real steps that also create optimizer state
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = eager_step(entry["static"])
            torch.cuda.current_stream().wait_stream(side)
            entry["warm"] += 1
            return out
        if entry["graph"] is None:
            graph = torch.cuda.CUDAGraph()
            # thread_local: the prefetch thread's pinned-memory allocations must not void the capture
            with torch.cuda.graph(graph, pool=pool["handle"], capture_error_mode="thread_local"):
                entry["out"] = eager_step(entry["static"])
            pool["handle"] = graph.pool()
            entry["graph"] = graph
        entry["graph"].replay()
        return entry["out"]

    def to_device(host_batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(device, non_blocking=True) for k, v in host_batch.items()}

    # 4. the loop ------------------------------------------------------------------------------
    sums: dict[str, torch.Tensor] = {}
    window_steps, window_start, skipped_before = 0, time.perf_counter(), 0
    started = time.perf_counter()
    status = "finished"
    bar = tqdm(total=config.max_steps, initial=step, disable=not (config.progress and dist.is_main),
               desc=Path(config.output).name, unit="step", dynamic_ncols=True)
    # head size 26 (hidden 312 / 12 heads) rules out the flash and memory-efficient attention
    # kernels, and the math fallback upcasts bf16 to fp32 (casts + fp32 GEMMs: ~10% of a step on an
    # H200, bench/profile_step.py); bf16 reductions there are what HF's eager attention does anyway
    math_sdp_bf16 = torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()
    if use_bf16:
        torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(True)
    try:
        while step < config.max_steps:
            steps_at_epoch_start = step
            for batch in Prefetcher(batches.epoch(epoch, skip=in_epoch), device):
                set_lr(lr_at(step, config))
                loss, parts = graph_step(batch) if use_graphs else eager_step(to_device(batch))
                for name, value in (("loss", loss), *parts.items()):
                    if name not in sums:
                        sums[name] = torch.zeros((), device=device)
                    sums[name].add_(value)
                step, in_epoch, window_steps = step + 1, in_epoch + 1, window_steps + 1
                bar.update(1)
                if warmup["seconds"] is None and step >= min(config.max_steps, 20):
                    if device.type == "cuda":
                        torch.cuda.synchronize()
                    warmup["seconds"] = time.perf_counter() - warmup_started
                if step % config.log_every == 0 or step == config.max_steps:
                    means = {k: v.item() / window_steps for k, v in sums.items()}  # the one host sync
                    elapsed = time.perf_counter() - window_start
                    record = {"step": step, "epoch": epoch, "lr": lr_at(step - 1, config), **means,
                              "samples_per_s": window_steps * config.batch_size * dist.world_size / elapsed,
                              "skipped_nonfinite": int(skipped.item())}
                    window_skipped = record["skipped_nonfinite"] - skipped_before
                    if dist.is_main:
                        with metrics_path.open("a", encoding="utf-8") as handle:
                            handle.write(json.dumps(record) + "\n")
                    bar.set_postfix(loss=f"{means['loss']:.4f}")
                    if window_steps == config.log_every and window_skipped == window_steps:
                        raise FloatingPointError(
                            f"every step of the last {window_steps} had a non-finite loss or gradient and was "
                            "skipped; stopping. Fix: lower "
                            "--learning-rate, check the data for NaN teacher logits, or resume from a checkpoint."
                        )
                    sums, window_steps, window_start = {}, 0, time.perf_counter()
                    skipped_before = record["skipped_nonfinite"]
                if evaluate is not None and config.eval_every and step % config.eval_every == 0:
                    model.eval()
                    with torch.no_grad():
                        results = evaluate(model, step)
                    model.train()
                    if dist.is_main and results:
                        with metrics_path.open("a", encoding="utf-8") as handle:
                            handle.write(json.dumps({"step": step, **results}) + "\n")
                    if results.get("stop"):
                        status = "early_stopped"
                if config.save_every and step % config.save_every == 0:
                    save("every")
                if stop["signal"] is not None:
                    save(stop["signal"])
                    status = f"interrupted by {stop['signal']}"
                if config.max_minutes and status == "finished" and \
                        time.perf_counter() - started >= 60 * config.max_minutes:
                    status = "time_budget"
                if step >= config.max_steps or status != "finished":
                    break
            else:
                if step == steps_at_epoch_start and in_epoch == 0:
                    raise ValueError(
                        "the training split produced no batches. Fix: check that the dataset has rows in the "
                        "training split (see its _manifest.json rows_per_split)."
                    )
                epoch, in_epoch = epoch + 1, 0
                continue
            break
    finally:
        torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(math_sdp_bf16)
        bar.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - started
    if config.save_every and status in ("finished", "time_budget") and not (output / CHECKPOINTS / f"step-{step}").exists():
        save("final")
    return to_jsonable({"status": status, "steps": step, "epochs_started": epoch + 1, "seconds": wall,
                        "warmup_seconds": warmup["seconds"], "cuda_graphs": use_graphs, "bf16": use_bf16,
                        "device": str(device), "skipped_nonfinite": int(skipped.item())})


# --------------------------------------------------------------------------- command-line options


def add_loop_arguments(parser: argparse.ArgumentParser, *, max_steps: int, learning_rate: float) -> None:
    group = parser.add_argument_group("training loop")
    group.add_argument("--max-steps", type=int, default=max_steps)
    group.add_argument("--max-minutes", type=float, default=0.0,
                       help="also stop once this much wall time is spent (the schedule still assumes --max-steps)")
    group.add_argument("--batch-size", type=int, default=64)
    group.add_argument("--learning-rate", type=float, default=learning_rate)
    group.add_argument("--weight-decay", type=float, default=0.01)
    group.add_argument("--warmup-ratio", type=float, default=0.06)
    group.add_argument("--clip-norm", type=float, default=1.0)
    group.add_argument("--log-every", type=int, default=50)
    group.add_argument("--eval-every", type=int, default=0)
    group.add_argument("--save-every", type=int, default=0, help="write a resumable checkpoint every N steps")
    group.add_argument("--resume", action="store_true", help="continue from OUTPUT/checkpoints/ (latest)")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--device", default="auto")
    group.add_argument("--no-bf16", action="store_true")
    group.add_argument("--compile", action="store_true", help="torch.compile the model (long warm-up)")
    group.add_argument("--no-cuda-graphs", action="store_true")
    group.add_argument("--buckets", default=",".join(map(str, DEFAULT_BUCKETS)), help="sequence-length shapes")
    group.add_argument("--no-progress", action="store_true")


def loop_config(args: argparse.Namespace) -> LoopConfig:
    return LoopConfig(output=args.output, max_steps=args.max_steps, max_minutes=args.max_minutes, batch_size=args.batch_size,
                      learning_rate=args.learning_rate, weight_decay=args.weight_decay, warmup_ratio=args.warmup_ratio,
                      clip_norm=args.clip_norm, log_every=args.log_every, eval_every=args.eval_every,
                      save_every=args.save_every, seed=args.seed, device=args.device, bf16=not args.no_bf16,
                      compile=args.compile, cuda_graphs=not args.no_cuda_graphs,
                      buckets=tuple(int(b) for b in args.buckets.split(",")), resume=args.resume,
                      progress=not args.no_progress)

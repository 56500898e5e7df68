"""The one training loop (pretrain, finetune and distill all use it). :func:`train` reads top to bottom.

What it does, in order:
1. decide how to run (device, bf16, fused AdamW, CUDA graphs) and log each decision with its
   reason; wrap the model for DDP (under ``torchrun``) or ``torch.compile``;
2. resume exactly from the latest ``OUTPUT/checkpoints/step-N/`` when asked: weights, optimizer,
   step, data position (epoch, batches consumed) and every RNG (:class:`Checkpoints`; plain
   tensors and numbers, loaded with ``weights_only=True``: a crafted checkpoint runs no code);
3. for each fixed-shape batch (prefetched into pinned memory on a background thread): one
   optimization step (:class:`Stepper`: bf16 autocast on CUDA, backward, a NaN/inf guard and
   gradient clipping folded into fused AdamW without a host sync; on CUDA the whole step is
   captured once per batch shape as a CUDA graph and replayed);
4. every ``log_every`` steps one host sync logs the window's means (:class:`MetricsWindow`);
   every ``eval_every`` steps the evaluation callback; every ``save_every`` steps, on
   SIGINT/SIGTERM (:class:`StopSignals`) and at a ``max_minutes`` budget, a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import random
import re
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from kd.common import Distributed, pick_device, to_jsonable, write_json
from kd.data import DEFAULT_BUCKETS, BucketBatches, Prefetcher
from schemas.options import MalmoiError, int_tuple, option

LOG = logging.getLogger("kd.loop")
CHECKPOINTS = "checkpoints"
METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True, kw_only=True)
class LoopConfig:
    """How to train; saved into every checkpoint. A command states its own defaults by passing a
    ``LoopConfig`` instance as its field's default (``kd.distill``: 2000 steps at 5e-4)."""

    output: str = option(help="folder to write (checkpoints, metrics, the exported model)", metavar="DIR",
                         required=True)
    max_steps: int = option(1000, help="optimizer steps; the learning-rate schedule ends here")
    max_minutes: float = option(0.0, help="also stop (and export as usual) once this much wall time is spent; "
                                "the learning-rate schedule then follows whichever of steps and time is further "
                                "along, so its decay ends at the budget whatever the step rate")
    batch_size: int = option(64, help="rows per step (padding rows keep shapes fixed)")
    learning_rate: float = option(5e-4, help="peak learning rate (AdamW)")
    weight_decay: float = option(0.01, help="AdamW weight decay on matrices (not on biases and norms)")
    warmup_ratio: float = option(0.06, help="share of --max-steps spent warming the learning rate up")
    clip_norm: float = option(1.0, help="clip the gradient norm to this (0: off)")
    ema: float = option(0.0, help="keep an exponential moving average of the weights with this decay (e.g. 0.999: "
                        "about the last 1,000 steps) and evaluate, keep as best and export the average instead of "
                        "the last step's weights (0: off)")
    log_every: int = option(50, help="write means to metrics.jsonl every N steps (one host sync)")
    eval_every: int = option(0, help="evaluate on the valid split every N steps (0: never)")
    save_every: int = option(0, help="write a resumable checkpoint every N steps (0: only on a signal)")
    keep_checkpoints: int = option(2, help="how many checkpoints to keep")
    seed: int = option(0, help="seeds the model init, the data order and the masks")
    device: str = option("auto", help="auto (CUDA when present), cpu, cuda, cuda:N")
    bf16: bool = option(True, help="bf16 autocast on CUDA")
    compile: bool = option(False, help="torch.compile the model (long warm-up; CUDA graphs are then off)")
    cuda_graphs: bool = option(True, help="capture the whole step as one CUDA graph per batch shape (CUDA, one "
                               "process, not with --compile)")
    buckets: tuple[int, ...] = option(DEFAULT_BUCKETS, help="sequence-length shapes", parse=int_tuple)
    resume: bool = option(False, help="continue from OUTPUT/checkpoints/ (latest)")
    overwrite: bool = option(False, help="replace a model already exported to --output")
    progress: bool = option(True, help="show a progress bar")


#: the exit status of a command whose training a signal stopped (nothing exported; resume it)
EXIT_INTERRUPTED = 3


def interrupted(summary: dict) -> bool:
    """Whether a signal stopped the training (the checkpoint is saved; nothing may look finished)."""
    return str(summary.get("status", "")).startswith("interrupted")


def report_interruption(summary: dict, output: str) -> int:
    print(f"{summary['status']} at step {summary['steps']}: nothing exported; the checkpoint is in "
          f"{output}/{CHECKPOINTS}/. Fix: rerun the same command with --resume.")
    return EXIT_INTERRUPTED


def schedule_position(step: int, spent_seconds: float, config: LoopConfig, world_size: int = 1) -> float:
    """Where the schedule is: the step, or — with a ``max_minutes`` budget in a one-process run —
    the same fraction of ``max_steps`` as the fraction of the budget spent, whichever is further,
    so the decay ends at the budget on a fast or a slow (or busy) machine alike. Several processes
    keep steps only: their clocks would disagree, and so would their learning rates."""
    if not config.max_minutes or world_size > 1:
        return float(step)
    return max(float(step), spent_seconds / (60 * config.max_minutes) * config.max_steps)


def lr_at(step: float, config: LoopConfig) -> float:
    """Linear warmup to the peak, then linear decay to 0 at ``max_steps`` (``step`` may be a
    fractional schedule position, see :func:`schedule_position`)."""
    warmup = max(1, int(config.warmup_ratio * config.max_steps))
    if step < warmup:
        return config.learning_rate * (step + 1) / warmup
    return config.learning_rate * max(0.0, (config.max_steps - step) / max(1, config.max_steps - warmup))


# --------------------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decisions:
    """How this run trains, each choice with the reason it was made (logged and in the summary)."""

    device: torch.device
    bf16: bool
    cuda_graphs: bool
    reasons: dict[str, str]


def decide(config: LoopConfig, dist: Distributed) -> Decisions:
    device = pick_device(config.device)
    cuda = device.type == "cuda"
    bf16, graphs = config.bf16 and cuda, config.cuda_graphs and cuda and dist.world_size == 1 and not config.compile
    reasons = {
        "bf16": "on (CUDA)" if bf16 else "off (" + ("--no-bf16" if cuda else f"device is {device.type}") + ")",
        "fused_adamw": "on (clipping and the NaN guard run inside the optimizer kernel)",
        "cuda_graphs": "on (one graph per batch shape)" if graphs else "off (" + (
            f"device is {device.type}" if not cuda else "--no-cuda-graphs" if not config.cuda_graphs
            else "--compile is on" if config.compile else f"DDP over {dist.world_size} processes runs eagerly") + ")",
    }
    if config.max_minutes:
        reasons["schedule"] = (f"decay ends at {config.max_steps} steps or {config.max_minutes:g} minutes, whichever "
                               "comes first" if dist.world_size == 1 else
                               f"by steps only ({dist.world_size} processes' clocks would disagree)")
    for name, reason in reasons.items():
        LOG.info("%s: %s", name, reason)
    return Decisions(device, bf16, graphs, reasons)


# --------------------------------------------------------------------------- checkpoints


@dataclass
class Position:
    """Where training is: optimizer steps done, epoch, batches of that epoch consumed."""

    step: int = 0
    epoch: int = 0
    in_epoch: int = 0


def _rng_state(device: torch.device) -> dict[str, Any]:
    """Every RNG as plain tensors and numbers (loadable with ``weights_only=True``)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss,
                                                    cached), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


_STEP_DIR = re.compile(r"step-(\d+)")
#: LoopConfig fields that may change between a run and its resumption (how long, how often, where)
RESUMABLE_CHANGES = frozenset({"max_steps", "max_minutes", "log_every", "eval_every", "save_every", "keep_checkpoints",
                               "device", "resume", "progress", "overwrite"})


def _step_dirs(folder: Path) -> list[Path]:
    """Finished ``step-N`` folders, oldest first (a half-written ``.tmp`` one never counts)."""
    if not folder.exists():
        return []
    done = [p for p in folder.iterdir() if _STEP_DIR.fullmatch(p.name) and (p / "COMPLETE").exists()]
    return sorted(done, key=lambda p: int(p.name.split("-")[1]))


def latest_checkpoint(output: str) -> Path | None:
    done = _step_dirs(Path(output) / CHECKPOINTS)
    return done[-1] if done else None


class Checkpoints:
    """``OUTPUT/checkpoints/step-N/``: ``state.pt`` (tensors and numbers only), ``config.json`` and,
    last, ``COMPLETE`` (a folder without it is ignored); the oldest beyond ``keep`` are removed."""

    def __init__(self, config: LoopConfig, dist: Distributed) -> None:
        self.config, self.dist, self.folder = config, dist, Path(config.output) / CHECKPOINTS

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, position: Position,
             device: torch.device, reason: str, average: WeightAverage | None = None) -> None:
        """Write ``step-N/`` atomically: into ``step-N.tmp`` first, renamed once complete, so a kill
        mid-write leaves the previous checkpoint as the latest, never a half file beside COMPLETE."""
        if not self.dist.is_main:
            return
        folder = self.folder / f"step-{position.step}"
        partial = self.folder / f"step-{position.step}.tmp"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": position.step,
                    "epoch": position.epoch, "batches_in_epoch": position.in_epoch, "rng": _rng_state(device),
                    "reason": reason, **({"average": average.state_dict()} if average is not None else {})},
                   partial / "state.pt")
        write_json(partial / "config.json", self.config)
        (partial / "COMPLETE").write_text(reason, encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(partial, folder)
        done = [p for p in _step_dirs(self.folder) if p != folder]
        for old in done[: max(0, len(done) - (self.config.keep_checkpoints - 1))]:
            shutil.rmtree(old, ignore_errors=True)

    def clear(self) -> None:
        """A fresh run starts over: the checkpoints of a run before it in this output go (a later
        --resume would otherwise continue that run)."""
        if self.dist.is_main and self.folder.exists():
            LOG.info("fresh run: removing the earlier run's checkpoints in %s", self.folder)
            shutil.rmtree(self.folder)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: torch.device,
                average: WeightAverage | None = None) -> Position:
        """The latest complete checkpoint's state, loaded into ``model`` and ``optimizer``; a fresh
        :class:`Position` when there is none."""
        checkpoint = latest_checkpoint(self.config.output)
        if checkpoint is None:
            return Position()
        saved = json.loads((checkpoint / "config.json").read_text(encoding="utf-8"))
        current = json.loads(json.dumps(to_jsonable(self.config)))
        changed = sorted(k for k in current if k not in RESUMABLE_CHANGES and saved.get(k) != current[k])
        if changed:
            raise MalmoiError(
                f"--resume: {checkpoint} was written by another run: " + ", ".join(
                    f"{k} was {saved.get(k)!r}, now {current[k]!r}" for k in changed) + ".",
                "resume with the same options (only how long, how often and where may change), or start a fresh "
                "run without --resume.")
        # RNG states stay CPU tensors; load_state_dict moves weights and optimizer state to the device
        try:
            state = torch.load(checkpoint / "state.pt", map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as error:
            raise MalmoiError(f"--resume: {checkpoint / 'state.pt'} holds something other than tensors and numbers, or "
                              f"is damaged ({type(error).__name__}); it was not loaded (loading it could run code).",
                              "delete that checkpoint folder and resume from an earlier one, or start afresh.") from error
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if average is not None:  # --ema is part of the run's config, so a checkpoint of this run holds it
            average.load_state_dict(state["average"])
        _set_rng_state(state["rng"], device)
        LOG.info("resumed from %s (%s)", checkpoint, state.get("reason"))
        return Position(state["step"], state["epoch"], state["batches_in_epoch"])


class WeightAverage:
    """An exponential moving average of the trainable weights (Polyak averaging; ``--ema DECAY``).

    After each step ``average += (1 - d) * (weights - average)`` with ``d = min(DECAY, (1 + t) /
    (10 + t))`` at the ``t``-th update, so early steps are not dominated by the random start.
    :meth:`swapped` puts the average into the model for an evaluation (values are copied, so the
    parameters keep their storage: a captured CUDA graph and the optimizer still see them);
    :meth:`apply` leaves it there for the export."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise MalmoiError(f"--ema {decay}: the decay must lie strictly between 0 and 1.",
                              "pass e.g. --ema 0.999 (about the last 1,000 steps), or 0 to turn averaging off.")
        self.decay = decay
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.shadow = [p.detach().clone() for p in self.params]
        self.updates = 0

    def update(self) -> None:
        weight = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        torch._foreach_lerp_(self.shadow, [p.detach() for p in self.params], weight)
        self.updates += 1

    @contextlib.contextmanager
    def swapped(self) -> Iterator[None]:
        """The model holds the average inside the block and its own weights again after it."""
        backup = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.shadow)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, backup)

    def apply(self) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.shadow)

    def state_dict(self) -> dict[str, Any]:
        return {"shadow": self.shadow, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            torch._foreach_copy_(self.shadow, [t.to(s.device) for t, s in zip(state["shadow"], self.shadow,
                                                                               strict=True)])
        self.updates = int(state["updates"])


class BestSoFar:
    r"""The best model on the valid split so far, kept in ``OUTPUT/checkpoints/best/`` (score and step
    in ``best.json``) until the run ends, then :meth:`promote`\ d into OUTPUT — so a stopped run
    exports nothing, and a resumed one keeps comparing against the best before the stop. A fresh
    run's :meth:`Checkpoints.clear` removes it with the other checkpoints (read lazily for that)."""

    def __init__(self, output: str | Path) -> None:
        self.output = Path(output)
        self.folder = self.output / CHECKPOINTS / "best"
        self._state: dict | None = None

    @property
    def state(self) -> dict:
        if self._state is None:
            marker = self.folder / "best.json"
            self._state = json.loads(marker.read_text(encoding="utf-8")) if marker.exists() else {}
        return self._state

    @property
    def step(self) -> int:
        return int(self.state.get("step", 0))

    @property
    def score(self) -> float | None:
        return self.state.get("score")

    def offer(self, score: float, step: int, export: Callable[[Path], None], *, write: bool = True,
              metric: str = "macro_f1") -> bool:
        """Keep this model when ``score`` beats the best so far: ``export(folder)`` writes it (only
        where ``write``: the main process; the others only keep the score so every rank decides alike)."""
        if self.score is not None and not score > self.score:
            return False
        if not write:
            self._state = {"score": float(score), "step": int(step), "metric": metric}
            return True
        partial = self.folder.with_name("best.tmp")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        export(partial)
        self._state = {"score": float(score), "step": int(step), "metric": metric}
        write_json(partial / "best.json", self._state)
        shutil.rmtree(self.folder, ignore_errors=True)
        os.replace(partial, self.folder)
        return True

    def promote(self) -> bool:
        """Copy the kept model into OUTPUT (False when no evaluation ever kept one)."""
        if not (self.folder / "best.json").exists():
            return False
        for item in self.folder.iterdir():
            if item.name != "best.json" and item.is_file():
                shutil.copy2(item, self.output / item.name)
        return True


# --------------------------------------------------------------------------- one step, eager or graphed


class Stepper:
    """One optimization step: forward (bf16 autocast on CUDA), backward, NaN/inf guard and clipping
    folded into fused AdamW (no host sync), update. With ``graphs`` the whole step is captured as
    one CUDA graph per batch shape after two eager warm-up steps, then replayed."""

    def __init__(self, model: torch.nn.Module, step_model: torch.nn.Module, objective: Callable,
                 config: LoopConfig, decisions: Decisions) -> None:
        self.step_model, self.objective, self.config, self.decisions = step_model, objective, config, decisions
        device = decisions.device
        self.params = [p for p in model.parameters() if p.requires_grad]
        groups = [{"params": [p for p in self.params if p.ndim >= 2], "weight_decay": config.weight_decay},
                  {"params": [p for p in self.params if p.ndim < 2], "weight_decay": 0.0}]
        # a tensor learning rate under graphs, so each replay reads the value set_lr wrote
        lr = torch.tensor(lr_at(0, config), device=device) if decisions.cuda_graphs else lr_at(0, config)
        # fused AdamW (CUDA and CPU) reads two tensors each step is given without a host sync:
        # ``found_inf`` (1 skips the whole update: the NaN/inf guard) and ``grad_scale`` (gradients
        # are divided by it: clipping folded into the optimizer kernel)
        self.optimizer = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=True,
                                           capturable=decisions.cuda_graphs)
        self.optimizer.found_inf = torch.zeros((), device=device)
        self.optimizer.grad_scale = torch.ones((), device=device)
        self.skipped = torch.zeros((), device=device)
        self._graphs: dict[tuple, dict[str, Any]] = {}
        self._pool = None

    def set_lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            if isinstance(group["lr"], torch.Tensor):
                group["lr"].fill_(value)
            else:
                group["lr"] = value

    def __call__(self, host_batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.decisions.cuda_graphs:
            return self._graphed(host_batch)
        return self.eager({k: v.to(self.decisions.device, non_blocking=True) for k, v in host_batch.items()})

    def eager(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        optimizer = self.optimizer
        optimizer.zero_grad(set_to_none=True)  # backward then writes gradients instead of adding to zeros
        with torch.autocast(self.decisions.device.type, dtype=torch.bfloat16, enabled=self.decisions.bf16):
            loss, parts = self.objective(self.step_model, batch)
        loss.backward()
        norm = torch.nn.utils.get_total_norm([p.grad for p in self.params if p.grad is not None], foreach=True)
        bad = ~(torch.isfinite(loss) & torch.isfinite(norm))  # a NaN/inf step updates nothing
        optimizer.found_inf.copy_(bad)
        self.skipped.add_(optimizer.found_inf)
        if self.config.clip_norm > 0:  # clip to clip_norm: the optimizer divides by max(1, norm / clip_norm)
            optimizer.grad_scale.copy_(((norm + 1e-6) / self.config.clip_norm).clamp_min(1.0))
        optimizer.step()
        zero = torch.zeros_like(loss)  # a skipped step logs 0 for every term
        return torch.where(bad, zero, loss.detach()), {k: torch.where(bad, zero, v)
                                                         for k, v in {**parts, "grad_norm": norm.detach()}.items()}

    def _graphed(self, host_batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        key = tuple((k, tuple(v.shape)) for k, v in sorted(host_batch.items()))
        entry = self._graphs.setdefault(key, {"static": {k: torch.empty_like(v, device=self.decisions.device)
                                                         for k, v in host_batch.items()}, "warm": 0, "graph": None})
        for name, value in host_batch.items():  # pinned host -> the graph's input buffers, asynchronously
            entry["static"][name].copy_(value, non_blocking=True)
        if entry["graph"] is None and entry["warm"] < 2:  # real steps that also create optimizer state
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):
                out = self.eager(entry["static"])
            torch.cuda.current_stream().wait_stream(side)
            entry["warm"] += 1
            return out
        if entry["graph"] is None:
            graph = torch.cuda.CUDAGraph()
            # thread_local: the prefetch thread's pinned-memory allocations must not void the capture
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                entry["out"] = self.eager(entry["static"])
            self._pool = graph.pool()
            entry["graph"] = graph
        entry["graph"].replay()
        return entry["out"]


# --------------------------------------------------------------------------- metrics and signals


class MetricsWindow:
    """Sums each logged term on the device and writes their means to ``metrics.jsonl`` every
    ``log_every`` steps (the loop's one host sync); stops training when a whole window was skipped."""

    def __init__(self, config: LoopConfig, dist: Distributed, device: torch.device, resumed_at: int | None) -> None:
        self.config, self.dist, self.device = config, dist, device
        self.path = Path(config.output) / METRICS_FILE
        if dist.is_main and self.path.exists():
            if resumed_at is None:
                self.path.unlink()
            else:  # drop lines written after the checkpoint
                kept = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                        if json.loads(line)["step"] <= resumed_at]
                self.path.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
        self.sums: dict[str, torch.Tensor] = {}
        self.steps, self.skipped_before = 0, 0
        self.started = self.window_start = time.perf_counter()
        self.warmup_seconds: float | None = None
        self.lr = lr_at(resumed_at or 0, config)  # the learning rate of the step just taken

    def add(self, loss: torch.Tensor, parts: dict[str, torch.Tensor]) -> None:
        for name, value in (("loss", loss), *parts.items()):
            if name not in self.sums:
                self.sums[name] = torch.zeros((), device=self.device)
            self.sums[name].add_(value)
        self.steps += 1

    def after_step(self, position: Position, skipped: torch.Tensor, bar: tqdm) -> None:
        config = self.config
        if self.warmup_seconds is None and position.step >= min(config.max_steps, 20):
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            self.warmup_seconds = time.perf_counter() - self.started
        if position.step % config.log_every and position.step != config.max_steps:
            return
        means = {k: v.item() / self.steps for k, v in self.sums.items()}  # the one host sync
        record = {"step": position.step, "epoch": position.epoch, "lr": self.lr, **means,
                  "samples_per_s": self.steps * config.batch_size * self.dist.world_size
                  / (time.perf_counter() - self.window_start),
                  "skipped_nonfinite": int(skipped.item())}
        self.write(record)
        bar.set_postfix(loss=f"{means['loss']:.4f}")
        if self.steps == config.log_every and record["skipped_nonfinite"] - self.skipped_before == self.steps:
            raise FloatingPointError(
                f"every step of the last {self.steps} had a non-finite loss or gradient and was skipped; stopping. "
                "Fix: lower --learning-rate, check the data for NaN teacher logits, or resume from a checkpoint.")
        self.sums, self.steps, self.window_start = {}, 0, time.perf_counter()
        self.skipped_before = record["skipped_nonfinite"]

    def write(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


class StopSignals(contextlib.AbstractContextManager):
    """SIGINT / SIGTERM set :attr:`received` (the loop then checkpoints and stops) instead of killing."""

    def __enter__(self) -> StopSignals:
        self.received: str | None = None
        self._previous = {s: signal.signal(s, self._receive) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def _receive(self, signum, _frame) -> None:
        self.received = signal.Signals(signum).name

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def bf16_math_attention(enabled: bool) -> Iterator[None]:
    """bf16 reductions in PyTorch's math attention while training in bf16 (restored after).

    Head size 26 (hidden 312 / 12 heads) rules out the flash and memory-efficient kernels, and the
    math fallback upcasts to fp32 (~10% of a step on an H200, bench/profile_step.py); HF's eager
    attention reduces in bf16 anyway.
    """
    before = torch.backends.cuda.fp16_bf16_reduction_math_sdp_allowed()
    if enabled:
        torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(True)
    try:
        yield
    finally:
        torch.backends.cuda.allow_fp16_bf16_reduction_math_sdp(before)


def epochs(batches: BucketBatches, position: Position, device: torch.device) -> Iterator[dict[str, torch.Tensor]]:
    """Batches from ``position`` on, epoch after epoch (advancing ``position.epoch`` as each ends)."""
    while True:
        produced = 0
        for batch in Prefetcher(batches.epoch(position.epoch, skip=position.in_epoch), device):
            produced += 1
            yield batch
        if produced == 0 and position.in_epoch == 0:
            raise MalmoiError("the training split produced no batches.", "check that the dataset has rows in the "
                              "training split (see its _manifest.json rows_per_split).")
        position.epoch, position.in_epoch = position.epoch + 1, 0


# --------------------------------------------------------------------------- the loop


def train(*, model: torch.nn.Module, objective: Callable, batches: BucketBatches, config: LoopConfig,
          dist: Distributed, evaluate: Callable[[torch.nn.Module, int], dict[str, float]] | None = None) -> dict:
    """Train ``model`` with ``objective`` on ``batches``; returns a summary (steps, speed, status, decisions)."""
    # 1. how to run, and the model as each step sees it
    if dist.is_main and not (config.resume or config.overwrite) and (Path(config.output) / "config.json").exists():
        raise MalmoiError(f"--output {config.output} already holds an exported model (config.json).",
                          "choose a new folder, pass --overwrite to replace it, or --resume to continue its training.")
    decisions = decide(config, dist)
    device = decisions.device
    model.to(device).train()
    if dist.is_main:
        Path(config.output).mkdir(parents=True, exist_ok=True)
    step_model = model
    if dist.world_size > 1:
        step_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        step_model = torch.compile(step_model)
    stepper = Stepper(model, step_model, objective, config, decisions)
    average = WeightAverage(model, config.ema) if config.ema else None

    # 2. resume
    checkpoints = Checkpoints(config, dist)
    if not config.resume:
        checkpoints.clear()
    position = checkpoints.restore(model, stepper.optimizer, device, average) if config.resume else Position()
    metrics = MetricsWindow(config, dist, device, position.step if config.resume else None)

    # 3-4. steps, logging, evaluation, checkpoints
    status = "finished"
    bar = tqdm(total=config.max_steps, initial=position.step, disable=not (config.progress and dist.is_main),
               desc=Path(config.output).name, unit="step", dynamic_ncols=True)
    with bar, StopSignals() as signals, bf16_math_attention(decisions.bf16):
        for batch in epochs(batches, position, device) if position.step < config.max_steps else ():
            metrics.lr = lr_at(schedule_position(position.step, time.perf_counter() - metrics.started, config,
                                                 dist.world_size), config)
            stepper.set_lr(metrics.lr)
            metrics.add(*stepper(batch))
            if average is not None:
                average.update()
            position.step, position.in_epoch = position.step + 1, position.in_epoch + 1
            bar.update(1)
            metrics.after_step(position, stepper.skipped, bar)
            if evaluate is not None and config.eval_every and position.step % config.eval_every == 0:
                model.eval()
                with torch.no_grad(), average.swapped() if average is not None else contextlib.nullcontext():
                    results = evaluate(model, position.step)
                model.train()
                if results:
                    metrics.write({"step": position.step, **results})
                if results.get("stop"):
                    status = "early_stopped"
            if config.save_every and position.step % config.save_every == 0:
                checkpoints.save(model, stepper.optimizer, position, device, "every", average)
            if signals.received is not None:
                checkpoints.save(model, stepper.optimizer, position, device, signals.received, average)
                status = f"interrupted by {signals.received}"
            if status == "finished" and config.max_minutes and \
                    time.perf_counter() - metrics.started >= 60 * config.max_minutes:
                status = "time_budget"
            if position.step >= config.max_steps or status != "finished":
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    wall = time.perf_counter() - metrics.started
    final = Path(config.output) / CHECKPOINTS / f"step-{position.step}"
    if config.save_every and status in ("finished", "time_budget") and not final.exists():
        checkpoints.save(model, stepper.optimizer, position, device, "final", average)
    if average is not None and not interrupted({"status": status}):
        average.apply()  # the caller exports the averaged weights
    return to_jsonable({"status": status, "steps": position.step, "epochs_started": position.epoch + 1,
                        "seconds": wall, "warmup_seconds": metrics.warmup_seconds, "cuda_graphs": decisions.cuda_graphs,
                        "bf16": decisions.bf16, "device": str(device), "decisions": decisions.reasons,
                        "skipped_nonfinite": int(stepper.skipped.item())})

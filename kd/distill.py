"""``python -m kd.distill``: train a small student from kd shards and export it.

    python -m kd.distill --data out/kd --tokenizer out/tokenizer --output out/student \\
        [--teacher out/teacher] [--max-steps 2000] [--save-every 500] [--resume] \\
        [--kl 1 --ce 1 --mse 0 --cosine 0 --temperature 2] [--student-layers 4 --student-hidden 312]

Writes to OUTPUT: a Hugging Face model (safetensors, config with id2label, tokenizer,
``malmoi_normalizer.json``), ``metrics.jsonl``, ``metrics.png``, ``report.md``,
``evaluation.json`` and ``checkpoints/step-N/``. Several GPUs: ``torchrun --nproc_per_node N -m kd.distill …``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from transformers import AutoTokenizer

from kd.common import init_distributed, pick_device, tokenizer_hash, weights_hash, write_json
from kd.data import BucketBatches, kd_chunks, open_kd_dataset
from kd.evaluate import classification_metrics, cpu_speed, kd_split_metrics, predict_kd_split, split_texts
from kd.loop import LoopConfig, add_loop_arguments, loop_config, train
from kd.models import (
    DistillStudent,
    bert_student,
    count_parameters,
    export_pretrained,
    student_from_checkpoint,
    student_from_teacher,
)
from kd.objectives import DistillObjective, DistillWeights
from kd.report import plot_metrics, write_report


@dataclass(frozen=True)
class StudentConfig:
    """The student's shape, how many teacher layers to copy (``from_teacher``), or a pretrained
    checkpoint to start from (``init``: a small masked-LM or classifier with the same tokenizer)."""

    num_layers: int = 4
    hidden_size: int = 312
    num_heads: int = 12
    intermediate_size: int = 1200
    max_positions: int = 512
    from_teacher: bool = False
    init: str | None = None


@dataclass(frozen=True)
class DistillConfig:
    data: str
    tokenizer: str
    teacher: str | None = None
    student: StudentConfig = StudentConfig()
    weights: DistillWeights = DistillWeights()
    loop: LoopConfig = field(default_factory=lambda: LoopConfig(output="out/student"))
    train_split: str = "train"
    eval_split: str = "valid"
    test_split: str = "test"
    originals_only: bool = False  # train without the paraphrase rows


def build_student(config: DistillConfig, vocab_size: int, label_names: list[str], pad_id: int,
                  embedding_size: int) -> DistillStudent:
    torch.manual_seed(config.loop.seed)
    s = config.student
    if s.from_teacher and s.init:
        raise ValueError("--student-from-teacher and --student-init both say where the student starts; pick one")
    if s.init:
        model = student_from_checkpoint(s.init, config.tokenizer, label_names)
    elif s.from_teacher:
        if not config.teacher:
            raise ValueError("--student-from-teacher needs --teacher DIR")
        model = student_from_teacher(config.teacher, s.num_layers, label_names)
    else:
        model = bert_student(vocab_size=vocab_size, label_names=label_names, num_layers=s.num_layers,
                             hidden_size=s.hidden_size, num_heads=s.num_heads, intermediate_size=s.intermediate_size,
                             max_positions=s.max_positions, pad_token_id=pad_id)
    return DistillStudent(model, embedding_size)


def run(config: DistillConfig) -> dict[str, Any]:
    """Distill, export and evaluate; returns the summary (also in OUTPUT/evaluation.json)."""
    device = pick_device(config.loop.device)
    dist = init_distributed(device)
    if device.type == "cuda" and dist.world_size > 1:
        device = torch.device("cuda", dist.local_rank)
        torch.cuda.set_device(device)
        config = replace(config, loop=replace(config.loop, device=str(device)))
    expect = {"student_tokenizer_hash": tokenizer_hash(config.tokenizer)}
    if config.teacher:
        expect["teacher_weights_hash"] = weights_hash(config.teacher)
    opened = open_kd_dataset(config.data, expect)
    provenance = opened.provenance
    label_names = list(provenance["label_names"])
    tokenizer = AutoTokenizer.from_pretrained(config.tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    student = build_student(config, len(tokenizer), label_names, pad_id, int(provenance["embedding_size"]))

    loop = config.loop
    columns = config.weights.columns()
    batches = BucketBatches(lambda epoch: kd_chunks(opened, config.train_split, loop.seed, epoch, columns,
                                                    config.originals_only),
                            batch_size=loop.batch_size, buckets=loop.buckets, pad_id=pad_id, seed=loop.seed,
                            rank=dist.rank, world_size=dist.world_size)

    def evaluate(model: DistillStudent, step: int) -> dict[str, float]:
        if opened.manifest.get("rows_per_split", {}).get(config.eval_split, 0) == 0:
            return {}
        predictions = predict_kd_split(model.model, opened, config.eval_split, pad_id=pad_id)
        metrics = kd_split_metrics(predictions)
        return {f"eval/{k}": v for k, v in {
            "accuracy": metrics["student"].get("accuracy"), "macro_f1": metrics["student"].get("macro_f1"),
            "agreement_with_teacher": metrics.get("agreement_with_teacher")}.items() if v is not None}

    summary = train(model=student, objective=DistillObjective(config.weights), batches=batches, config=loop,
                    dist=dist, evaluate=evaluate)
    if not dist.is_main:
        return summary
    output = Path(loop.output)
    export_pretrained(student.model, tokenizer, output, normalizer_config=provenance.get("normalizer_config"),
                      training_config=config)
    predictions = predict_kd_split(student.model, opened, config.test_split, pad_id=pad_id)
    evaluation = kd_split_metrics(predictions)
    parameters = count_parameters(student.model)
    speed = cpu_speed(student.model, tokenizer, split_texts(opened, config.test_split)) if loop.extra.get(
        "measure_cpu_speed", True) else None
    student.model.to(device)
    plot = plot_metrics(output / "metrics.jsonl", output / "metrics.png", f"distill -> {output.name}")
    write_report(output / "report.md", title=f"Student {output.name}", summary=summary, evaluation=evaluation,
                 parameters=parameters, speed=speed, plot=str(plot) if plot else None)
    result = {"training": summary, "test": evaluation, "parameters": parameters, "cpu": speed,
              "label_names": label_names}
    write_json(output / "evaluation.json", result)
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m kd.distill", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="kd shards (beam_jobs.augment output)")
    parser.add_argument("--tokenizer", required=True, help="the student tokenizer the shards were made with")
    parser.add_argument("--output", required=True)
    parser.add_argument("--teacher", default=None, help="teacher dir: checks its weights hash; needed to copy layers")
    add_loop_arguments(parser, max_steps=2000, learning_rate=5e-4)
    group = parser.add_argument_group("student")
    group.add_argument("--student-layers", type=int, default=4)
    group.add_argument("--student-hidden", type=int, default=312)
    group.add_argument("--student-heads", type=int, default=12)
    group.add_argument("--student-intermediate", type=int, default=1200)
    group.add_argument("--student-from-teacher", action="store_true", help="copy embeddings and every k-th layer")
    group.add_argument("--student-init", default=None,
                       help="start from this pretrained checkpoint (a small masked-LM, same tokenizer as --tokenizer); "
                            "the --student-layers/hidden/heads/intermediate shape options are then ignored")
    group = parser.add_argument_group("objective")
    group.add_argument("--kl", type=float, default=1.0, help="weight of the soft-label KL (T^2-scaled)")
    group.add_argument("--ce", type=float, default=1.0, help="weight of the hard-label cross-entropy")
    group.add_argument("--mse", type=float, default=0.0, help="weight of the embedding MSE")
    group.add_argument("--cosine", type=float, default=0.0, help="weight of the embedding cosine loss")
    group.add_argument("--temperature", type=float, default=2.0)
    group.add_argument("--originals-only", action="store_true", help="ignore the paraphrase rows of the shards")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config = DistillConfig(
        data=args.data, tokenizer=args.tokenizer, teacher=args.teacher,
        student=StudentConfig(args.student_layers, args.student_hidden, args.student_heads, args.student_intermediate,
                              from_teacher=args.student_from_teacher, init=args.student_init),
        weights=DistillWeights(args.kl, args.ce, args.mse, args.cosine, args.temperature),
        loop=loop_config(args), originals_only=args.originals_only,
    )
    try:
        result = run(config)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    test = result.get("test", {})
    if test:
        print(f"test accuracy {test['student'].get('accuracy', float('nan')):.4f} "
              f"(teacher {test['teacher'].get('accuracy', float('nan')):.4f}); report: {args.output}/report.md")
    return 0


__all__ = ["DistillConfig", "StudentConfig", "classification_metrics", "main", "run"]

if __name__ == "__main__":
    sys.exit(main())

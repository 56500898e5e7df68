"""Pretrained checkpoints for the real-data benchmark: a teacher-sized and a student-sized masked LM.

No pretrained Korean checkpoint can be downloaded here, and a masked LM worth the name needs more
compute than this 2-core CPU has; a lent GPU has it. Three steps, the GPU only for the middle one:

    python -m bench.pretrain_checkpoints prepare --output .pretrain          # CPU: corpus + tokenizer
    python -m bench.pretrain_checkpoints train --prepared .pretrain --output ckpt --device cuda \\
        --minutes 3.5,1.5 && python -m bench.pretrain_checkpoints pack ckpt $OUT   # GPU
    python -m bench.pretrain_checkpoints unpack $OUT .pretrain/checkpoints    # back on the CPU

On the CPU, ``train --device cpu --shapes student_mlm --steps 6000 --batch-size 64 --minutes 0``
makes the small one alone (about 6 minutes on an idle 2-core CPU; with ``prepare --test-rows 3000``
for ``real_data --test-rows 3000``), the start of the only CPU run whose students beat the n-gram
model on 3i4K (docs/benchmarks.md). ``--shapes wide_mlm,stacked4_mlm --minutes 0,15 --steps 11000``
makes the CPU's teacher: two layers of 256, then four stacked from them (``kd.pretrain
--stack-layers``; ~40 minutes), whose 3i4K students beat the n-gram model on accuracy and macro-F1.
(The recorded stacked run was ``kd.pretrain`` itself with ``--max-steps 4000 --max-minutes 15``; here
one ``--steps`` serves every shape, so its warm-up, 6% of the steps, is longer.)

Then ``python -m bench.real_data --small --mlm .pretrain/checkpoints/teacher_mlm
--student-init .pretrain/checkpoints/student_mlm`` — the way a user runs malmoi: the teacher and
the student start from checkpoints they provide.

The corpus is every real Korean sentence in ``../shared/data`` that the benchmark neither trains its
task models on nor tests on: NSMC, 3i4K and BEEP! rows outside the ``--small`` selection, Chatbot
questions and answers, paraKQC, KorSTS and KorNLI sentences (StyleKQC is left out entirely, so the
informal-vs-formal gap is not learned from its own sentences; so is every text sharing a passage
with a KLUE-NER dev sentence, which ``bench.ner_klue`` trains and tests on: its colloquial half
came from NSMC reviews). It goes through the project's own
preprocess job (the normalizer the benchmark uses), and a WordPiece tokenizer is trained on it.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from bench.corpora import SharesText, colloquial_texts, klue_ner_sentences, require_shared_data

PART_BYTES = 15 * 1024 * 1024  # files that come back from a lent machine are capped at 16 MiB each
SHAPES = {"teacher_mlm": ["--layers", "6", "--hidden", "256", "--heads", "4", "--intermediate", "1024",
                          "--learning-rate", "5e-4"],
          # the benchmarks' 4-layer teacher shape: ~0.24 s a step of 64 on 2 cores, and at this rate still on the
          # unigram plateau after 4,800 steps there (docs/benchmarks.md): a GPU's, or a lower rate's, to try
          "teacher4_mlm": ["--layers", "4", "--hidden", "256", "--heads", "4", "--intermediate", "1024",
                           "--learning-rate", "1e-3"],
          "student_mlm": ["--layers", "2", "--hidden", "128", "--heads", "4", "--intermediate", "256",
                          "--learning-rate", "1e-3"],
          # the CPU's way to a teacher: two wide layers leave the plateau as two narrow ones do ...
          "wide_mlm": ["--layers", "2", "--hidden", "256", "--heads", "4", "--intermediate", "1024",
                       "--learning-rate", "1e-3"],
          # ... and are then stacked into four (kd.pretrain --stack-layers) and trained on from there;
          # "@name" is the output of the shape of that name (trained earlier in --shapes, or already there)
          "stacked4_mlm": ["--init", "@wide_mlm", "--stack-layers", "4", "--learning-rate", "5e-4"]}


def shape_arguments(name: str, output: Path) -> list[str]:
    """``SHAPES[name]`` with every ``@other`` replaced by ``output / other``, which must exist."""
    arguments = []
    for value in SHAPES[name]:
        if value.startswith("@"):
            folder = output / value[1:]
            if not (folder / "config.json").exists():
                raise SystemExit(f"{name} starts from {value[1:]}, but {folder} holds no checkpoint: train it first "
                                 f"(--shapes {value[1:]},{name})")
            value = str(folder)
        arguments.append(value)
    return arguments


def extra_texts() -> Iterator[str]:
    """paraKQC, KorSTS and KorNLI sentences (beyond ``bench.corpora.colloquial_texts``)."""
    root = require_shared_data()
    with open(root / "parakqc" / "paraKQC_v1.txt", encoding="utf-8") as handle:
        for line in handle:
            yield line.rstrip("\n").split("\t")[-1]
    for name in sorted((root / "kornlu").glob("*.tsv")):
        with open(name, encoding="utf-8") as handle:
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                yield row.get("sentence1") or ""
                yield row.get("sentence2") or ""


def held_out_texts(mode: str, test_rows: int = 0) -> set[str]:
    """Every text the real-data benchmark (in ``mode``, with ``--test-rows test_rows``) trains its
    task models on with labels or tests them on (its in-domain unlabeled pool may stay: a user
    pretrains on the unlabeled text they have)."""
    from bench import real_data

    size = real_data.SIZES[mode]
    held = {r["text"] for r in real_data.nsmc_rows(size["train_rows"] + test_rows)}
    held |= {r["text"] for r in real_data.kor3i4k_rows(size["train_rows"] + test_rows)}
    held |= {r["text"] for r in real_data.beep_pool(size["pool"])}
    held |= {r["text"] for split in ("train", "test") for r in real_data.stylekqc_rows(split)}
    return held


def prepare(output: Path, mode: str, vocab_size: int, test_rows: int = 0) -> dict:
    from beam_jobs import preprocess
    from kd.tokenizer import dataset_texts, train_tokenizer

    output.mkdir(parents=True, exist_ok=True)
    held = held_out_texts(mode, test_rows)
    shares_klue_text = SharesText(klue_ner_sentences())  # bench.ner_klue tests on KLUE-NER dev
    seen: set[str] = set()
    kept = dropped_held = dropped_klue = 0
    corpus = output / "corpus.jsonl"
    with open(corpus, "w", encoding="utf-8") as handle:
        for text in (*colloquial_texts(), *extra_texts()):
            text = text.strip()
            if not text or text in seen:
                continue
            seen.add(text)
            if text in held:
                dropped_held += 1
                continue
            if shares_klue_text(text):
                dropped_klue += 1
                continue
            handle.write(json.dumps({"id": f"p{kept}", "text": text}, ensure_ascii=False) + "\n")
            kept += 1
    preprocess.run(["--input", str(corpus), "--output", str(output / "utterances"), "--runner", "FnApiRunner",
                    "--split-ratios", "0.98,0.02,0.0"])
    corpus.unlink()
    train_tokenizer(dataset_texts(str(output / "utterances")), output / "tokenizer", vocab_size=vocab_size)
    record = {"date": time.strftime("%Y-%m-%d"), "held_out_for_mode": mode, "held_out_test_rows": test_rows,
              "sentences": kept,
              "held_out_sentences_dropped": dropped_held, "klue_ner_dev_sentences_dropped": dropped_klue,
              "vocab_size": vocab_size,
              "sources": "NSMC sample (CC0), 3i4K, BEEP!, paraKQC, KorSTS, KorNLI (CC BY-SA), Chatbot data (MIT)"}
    (output / "corpus.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def train(prepared: Path, output: Path, device: str, minutes: list[float], steps: int, batch_size: int,
          shapes: tuple[str, ...] = ("teacher_mlm", "student_mlm")) -> dict:
    from kd import pretrain

    output.mkdir(parents=True, exist_ok=True)
    corpus = json.loads((prepared / "corpus.json").read_text(encoding="utf-8"))
    report = {"corpus": corpus}
    if len(minutes) == 1:  # one budget for every shape (0: steps only)
        minutes = minutes * len(shapes)
    for name, budget in zip(shapes, minutes, strict=True):
        shape = shape_arguments(name, output)
        started = time.perf_counter()
        command = ["--data", str(prepared / "utterances"), "--tokenizer", str(prepared / "tokenizer"),
                   "--output", str(output / name), *shape, "--max-steps", str(steps), "--max-minutes", str(budget),
                   "--batch-size", str(batch_size),
                   "--eval-every", str(max(500, steps // 10)), "--no-progress", "--device", device]
        try:
            code = pretrain.main(command)
        except RuntimeError as error:  # a lent GPU's one chance: fall back to eager steps, and say so
            print(f"{name}: CUDA graphs failed ({error}); again without", flush=True)
            report[f"{name}_cuda_graphs_error"] = str(error)[:500]
            shutil.rmtree(output / name, ignore_errors=True)
            code = pretrain.main([*command, "--no-cuda-graphs"])
        if code:
            raise SystemExit(f"pretraining {name} failed (exit {code})")
        (output / name / "malmoi_pretrain_corpus.json").write_text(json.dumps(corpus, indent=2) + "\n")
        summary = json.loads((output / name / "training_summary.json").read_text())["summary"]
        report[name] = {**summary, "wall_minutes": (time.perf_counter() - started) / 60}
        print(name, json.dumps(report[name]), flush=True)
    (output / "pretrain_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def pack(source: Path, destination: Path) -> list[Path]:
    """Each checkpoint as a tar in parts under 16 MiB (``name.tar.000``, ``.001``…) + the report."""
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    for name in (n for n in SHAPES if (source / n).is_dir()):
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / f"{name}.tar"
            with tarfile.open(archive, "w") as tar:
                for path in sorted((source / name).iterdir()):
                    if path.is_file() and path.suffix != ".png":
                        tar.add(path, arcname=f"{name}/{path.name}")
            data = archive.read_bytes()
        for index in range(0, len(data), PART_BYTES):
            part = destination / f"{name}.tar.{index // PART_BYTES:03d}"
            part.write_bytes(data[index:index + PART_BYTES])
            written.append(part)
    shutil.copy(source / "pretrain_report.json", destination / "pretrain_report.json")
    return written


def unpack(source: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    names = [n for n in SHAPES if (source / f"{n}.tar.000").exists()]
    if not names:
        raise SystemExit(f"{source} has no <shape>.tar.000 for any of {', '.join(SHAPES)}: expected the output of `pack`")
    for name in names:
        parts = sorted(source.glob(f"{name}.tar.[0-9][0-9][0-9]"))
        with tempfile.TemporaryDirectory() as tmp:
            archive = Path(tmp) / f"{name}.tar"
            archive.write_bytes(b"".join(p.read_bytes() for p in parts))
            with tarfile.open(archive) as tar:
                tar.extractall(destination, filter="data")
    shutil.copy(source / "pretrain_report.json", destination / "pretrain_report.json")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    step = commands.add_parser("prepare", help="CPU: the corpus (preprocess job) and its tokenizer")
    step.add_argument("--output", default=".pretrain")
    step.add_argument("--mode", default="small", help="hold out the rows of this real_data mode")
    step.add_argument("--vocab-size", type=int, default=8000)
    step.add_argument("--test-rows", type=int, default=0, help="hold out real_data --test-rows rows as well")
    step = commands.add_parser("train", help="the two masked LMs (a GPU)")
    step.add_argument("--prepared", default=".pretrain")
    step.add_argument("--output", required=True)
    step.add_argument("--device", default="auto")
    step.add_argument("--minutes", default="3.5,1.5",
                      help="wall budget of each --shapes run, in order (one value: the same for all; 0: --steps only)")
    step.add_argument("--steps", type=int, default=20000)
    step.add_argument("--batch-size", type=int, default=256)
    step.add_argument("--shapes", default="teacher_mlm,student_mlm",
                      help=f"which masked LMs, in order, of {', '.join(SHAPES)}")
    step = commands.add_parser("pack", help="checkpoints -> tar parts under 16 MiB")
    step.add_argument("source")
    step.add_argument("destination")
    step = commands.add_parser("unpack", help="tar parts -> checkpoints")
    step.add_argument("source")
    step.add_argument("destination")
    args = parser.parse_args(argv)
    if args.command == "prepare":
        print(json.dumps(prepare(Path(args.output), args.mode, args.vocab_size, args.test_rows), indent=2))
    elif args.command == "train":
        minutes = [float(m) for m in args.minutes.split(",")]
        train(Path(args.prepared), Path(args.output), args.device, minutes, args.steps, args.batch_size,
              tuple(args.shapes.split(",")))
    elif args.command == "pack":
        print("\n".join(str(p) for p in pack(Path(args.source), Path(args.destination))))
    else:
        unpack(Path(args.source), Path(args.destination))
    return 0


if __name__ == "__main__":
    sys.exit(main())

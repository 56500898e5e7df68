"""``python -m kd.pipeline``: the whole path, raw corpus -> distilled student, in one command.

    python -m kd.pipeline --task data/demo/sentiment.jsonl --corpus data/samples --output out/demo

Stages (each output lands under OUTPUT, each a standard artifact you can open on its own):

1. ``utterances_corpus/`` — preprocess every file under ``--corpus`` (any supported format);
2. ``utterances/``        — preprocess the labeled ``--task`` file(s);
3. ``tokenizer/``         — a WordPiece vocabulary from both;
4. ``mlm/``               — a tiny masked-LM pretraining on both (from scratch: a real teacher
                            starts from a pretrained checkpoint *you* provide, via ``--teacher-init``);
5. ``teacher/``           — the teacher fine-tuned on the task;
6. ``kd/``                — teacher logits + embeddings, ``colloquial`` and ``mlm`` paraphrases;
7. ``student/``           — the distilled student (HF checkpoint, report.md, metrics.png);
8. ``evaluation.json``    — teacher vs student on the test split.

The default sizes are for a demo on a 2-core CPU (a few minutes); ``--scale`` multiplies steps.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

from beam_jobs.readers.base import ReaderOptions
from schemas.options import config_command, option, to_argv

#: what the pipeline writes under --output (all that --overwrite removes)
STAGE_OUTPUTS = ("utterances_corpus", "utterances", "tokenizer", "mlm", "teacher", "kd", "student", "evaluation.json")


def stage(number: int, title: str) -> float:
    print(f"\n[{number}/8] {title}", flush=True)
    return time.perf_counter()


def done(started: float, what: str) -> None:
    print(f"      -> {what} ({time.perf_counter() - started:.1f} s)", flush=True)


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    task: tuple[str, ...] = option(help="labeled file(s) or glob (jsonl/csv/tsv …); repeat for several",
                                   repeat=True, metavar="GLOB", required=True)
    corpus: tuple[str, ...] = option((), help="unlabeled corpus files/folders (any format); repeat for several",
                                     repeat=True, metavar="PATH")
    output: str = option(help="folder for every stage's output", metavar="DIR", required=True)
    teacher_init: str | None = option(None, help="a local pretrained checkpoint for the teacher", metavar="DIR")
    #: how the --task files are read (--text-column, --label-column, --format, --no-header, --split-column, …),
    #: handed on to their preprocess stage as given
    reader: ReaderOptions = ReaderOptions()
    scale: float = option(1.0, help="multiply every stage's steps")
    overwrite: bool = option(False, help="replace a non-empty --output")


def main(argv: list[str] | None = None) -> int:
    return config_command(PipelineConfig, run, argv, prog="python -m kd.pipeline", description=__doc__)


def run(args: PipelineConfig) -> int:
    """Every stage in order; returns 0, or the first failing stage's code and runs no stage after it
    (2: it refused its input, its message printed; 3: a signal stopped it, resumable)."""

    import transformers

    transformers.logging.set_verbosity_error()  # the MLM -> classifier head swap is expected, not news
    from beam_jobs import augment, preprocess
    from kd import distill, finetune, pretrain
    from kd import evaluate as kd_evaluate
    from kd.tokenizer import dataset_texts, train_tokenizer

    out = Path(args.output)
    if out.exists() and any(out.iterdir()):
        if not args.overwrite:
            print(f"error: --output {out} is not empty. Fix: pass --overwrite or another folder.", file=sys.stderr)
            return 2
        for name in STAGE_OUTPUTS:  # only what the pipeline writes; anything else in the folder stays
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    steps = lambda n: max(2, int(n * args.scale))  # noqa: E731
    runner = ["--runner", "FnApiRunner"]
    total = time.perf_counter()

    t = stage(1, "preprocess the corpus (every format)")
    if args.corpus:
        preprocess.run([a for c in args.corpus for a in ("--input", c)] + ["--output", str(out / "utterances_corpus")] + runner)
        done(t, str(out / "utterances_corpus"))
    else:
        done(t, "no --corpus given, skipped")

    t = stage(2, "preprocess the labeled task")
    reader = to_argv(args.reader) + ([] if args.reader.doc_id_column else ["--doc-id-column", "thread"])
    preprocess.run([a for c in args.task for a in ("--input", c)] + ["--output", str(out / "utterances")]
                   + reader + runner)
    done(t, str(out / "utterances"))

    t = stage(3, "train the tokenizer")
    sources = [out / "utterances"] + ([out / "utterances_corpus"] if args.corpus else [])
    tokenizer = train_tokenizer(chain.from_iterable(dataset_texts(str(s), split=None) for s in sources),
                                out / "tokenizer", vocab_size=2000, min_frequency=1)
    done(t, f"{out / 'tokenizer'} ({len(tokenizer)} tokens)")

    loop = ["--no-progress", "--device", "auto"]
    teacher_init = args.teacher_init
    t = stage(4, "pretrain a tiny masked LM" if not teacher_init else "teacher starts from --teacher-init")
    if not teacher_init:
        if code := pretrain.main(["--data", str(out / "utterances"), "--tokenizer", str(out / "tokenizer"), "--output",
                          str(out / "mlm"), "--layers", "2", "--hidden", "128", "--heads", "4", "--intermediate", "256",
                          "--max-steps", str(steps(150)), "--batch-size", "32", "--learning-rate", "1e-3",
                          "--log-every", "25", *loop]):
            return code
        teacher_init = str(out / "mlm")
    done(t, teacher_init)

    t = stage(5, "fine-tune the teacher")
    if code := finetune.main(["--data", str(out / "utterances"), "--init", teacher_init, "--output", str(out / "teacher"),
                      "--max-steps", str(steps(300)), "--batch-size", "32", "--learning-rate", "1e-3",
                      "--eval-every", str(steps(50)), "--patience", "4", "--log-every", "25", *loop]):
        return code
    done(t, str(out / "teacher"))

    t = stage(6, "augment: teacher signals + colloquial and mlm paraphrases")
    augment.run(["--input", str(out / "utterances"), "--output", str(out / "kd"), "--teacher", str(out / "teacher"),
                 "--student-tokenizer", str(out / "tokenizer"), "--paraphrase", "colloquial", "--paraphrase", "mlm",
                 "--mlm-model", teacher_init, "--min-cosine", "0.6"] + runner)
    counts = json.loads((out / "kd" / "_stats.json").read_text())["conservation"]
    done(t, f"{out / 'kd'} ({counts['records_out']} originals, {counts['paraphrases_kept']} of "
            f"{counts['paraphrases_generated']} paraphrases kept)")

    t = stage(7, "distill the student")
    if code := distill.main(["--data", str(out / "kd"), "--tokenizer", str(out / "tokenizer"), "--output", str(out / "student"),
                     "--teacher", str(out / "teacher"), "--student-layers", "1", "--student-hidden", "64",
                     "--student-heads", "2", "--student-intermediate", "128", "--max-steps", str(steps(400)),
                     "--batch-size", "32", "--learning-rate", "2e-3", "--log-every", "25", "--eval-every", str(steps(100)),
                     "--save-every", str(steps(200)), *loop]):
        return code
    done(t, str(out / "student"))

    t = stage(8, "evaluate teacher vs student")
    opened = kd_evaluate.open_kd_dataset(str(out / "kd"))
    result = kd_evaluate.evaluate_model_dir(str(out / "student"), opened, "test",
                                            kd_evaluate.split_texts(opened, "test"))
    (out / "evaluation.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"      test accuracy: teacher {result['teacher'].get('accuracy', float('nan')):.3f}, "
          f"student {result['student'].get('accuracy', float('nan')):.3f} (n={result['student'].get('n')}); "
          f"student {result['parameters']['non_embedding']:,} non-embedding parameters, "
          f"{result['latency_ms_batch1']:.2f} ms at batch 1 on one CPU thread "
          f"({result['latency_ms_batch1_torchscript']:.2f} ms as TorchScript)")
    done(t, str(out / "evaluation.json"))
    print(f"\nall stages done in {time.perf_counter() - total:.0f} s. Report: {out / 'student' / 'report.md'}")
    print(f"open any stage with pandas, e.g. pandas.read_parquet('{out / 'kd'}')")
    return 0


if __name__ == "__main__":
    sys.exit(main())

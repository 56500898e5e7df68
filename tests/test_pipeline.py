"""The whole path in one command (what `make demo` runs), at a reduced scale. Protects against: stages that no
longer fit together."""

from __future__ import annotations

import json

import pandas as pd
from transformers import AutoModelForSequenceClassification

from kd import pipeline
from tests.conftest import ROOT


def test_raw_corpus_to_distilled_student(tmp_path):
    out = tmp_path / "demo"
    assert pipeline.main(["--task", str(ROOT / "data" / "demo" / "sentiment.jsonl"), "--corpus",
                          str(ROOT / "data" / "samples"), "--output", str(out), "--scale", "0.3"]) == 0
    for folder in ("utterances_corpus", "utterances", "kd"):
        assert (out / folder / "_SUCCESS").exists() and len(pd.read_parquet(out / folder)) > 0
    kd = pd.read_parquet(out / "kd")
    assert {"original", "paraphrase:colloquial"} <= set(kd["origin"])
    student = AutoModelForSequenceClassification.from_pretrained(out / "student")
    assert set(student.config.id2label.values()) == {"negative", "positive"}
    assert (out / "student" / "report.md").exists() and (out / "student" / "metrics.png").exists()
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["student"]["n"] > 0 and "retention" in evaluation


def test_the_task_files_are_read_with_the_reader_options_given(tmp_path):
    # guards against kd.pipeline reading a headerless label<TAB>text task with the defaults (its first
    # row taken as a header, no text column: nothing to train on), or dropping a reader flag
    rows = [json.loads(line) for line in (ROOT / "data" / "demo" / "sentiment.jsonl").read_text().splitlines()]
    task = tmp_path / "intents.txt"
    task.write_text("".join(f"{r['label']}\t{r['text']}\n" for r in rows), encoding="utf-8")
    out = tmp_path / "run"
    assert pipeline.main(["--task", str(task), "--format", "tsv", "--no-header", "--text-column", "2",
                          "--label-column", "1", "--output", str(out), "--scale", "0.1"]) == 0
    utterances = pd.read_parquet(out / "utterances")
    assert len(utterances) == len(rows) and set(utterances["label"]) == {"negative", "positive"}
    assert set(utterances["text_raw"]) == {r["text"] for r in rows}
    student = AutoModelForSequenceClassification.from_pretrained(out / "student")
    assert set(student.config.id2label.values()) == {"negative", "positive"}


def test_reader_options_survive_the_hand_on_to_preprocess():
    # guards against to_argv dropping or mistyping a flag (the options a pipeline user gave would
    # silently not reach the job that reads the files)
    import argparse

    from beam_jobs.readers.base import ReaderOptions
    from schemas.options import add_options, from_args, to_argv

    given = ReaderOptions(format="tsv", text_column="2", label_column="1", doc_id_column="thread", header=False,
                          delimiter="|", split_column="fold", corpus_name="mine")
    parser = argparse.ArgumentParser()
    add_options(parser, ReaderOptions)
    assert from_args(ReaderOptions, parser.parse_args(to_argv(given))) == given
    assert to_argv(ReaderOptions()) == []

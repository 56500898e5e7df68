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

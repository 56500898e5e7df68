"""Optional Kiwi morphs. Protects against: non-Sejong tag names, placeholders split by the analyzer, and a morphs
column that is not filled."""

from __future__ import annotations

import pandas as pd

from beam_jobs.text.morphs import KiwiMorphs, sejong_tag
from tests.conftest import run_preprocess


def test_sejong_tag_mapping():
    assert [sejong_tag(t) for t in ("VV-I", "VA-R", "W_URL", "Z_CODA", "USER0", "NNG")] == \
        ["VV", "VA", "SW", "NA", "NNP", "NNG"]


def test_placeholders_stay_whole_and_tags_are_sejong():
    morphs = KiwiMorphs()("&name&이가 했어용 https://a.com")
    assert morphs[0] == {"form": "&name&", "tag": "NNP"}
    tags = {m["tag"] for m in morphs}
    assert not any(t.startswith(("W_", "Z_")) or "-" in t for t in tags)


def test_preprocess_fills_the_morphs_column(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("영화 재밌다\n", encoding="utf-8")
    run_preprocess([src], tmp_path / "out", "--runner", "FnApiRunner", "--kiwi-morphs")
    morphs = list(pd.read_parquet(tmp_path / "out")["morphs"][0])
    assert [m["form"] for m in morphs][:2] == ["영화", "재밌"]

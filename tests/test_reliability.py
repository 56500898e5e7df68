"""Hostile inputs (issue 13). Protects against: one bad file failing a whole run, records lost or
merged silently, inputs that hang the job, regexes that go quadratic, and checkpoints or outputs
that let a stopped or foreign run look finished."""

from __future__ import annotations

import codecs
import datetime
import decimal
import io
import json
import os
import re
import subprocess
import sys
import zipfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_jobs.readers import RawUtterance, ReaderOptions, Reject, parse_file
from beam_jobs.records import SplitRatios
from beam_jobs.text.normalizer import Normalizer, replay_edits
from tests.conftest import read_json, run_preprocess


def parse(data: bytes, name: str, **options) -> list:
    return list(parse_file(io.BytesIO(data), name, ReaderOptions(**options)))


def texts(items) -> list[str]:
    return [i.text for i in items if isinstance(i, RawUtterance)]


# --------------------------------------------------------------------------- one bad file, never the run


def test_parquet_with_dates_decimals_and_bytes_is_read():
    table = pa.table({"text": ["좋아요", "별로"], "when": [datetime.datetime(2024, 1, 2), None],
                      "day": [datetime.date(2024, 1, 2), datetime.date(2024, 1, 3)],
                      "price": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2")], pa.decimal128(5, 2)),
                      "blob": [b"\x00\x01", b"x"]})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    items = parse(sink.getvalue(), "t.parquet")
    assert texts(items) == ["좋아요", "별로"]
    assert items[0].meta["day"] == "2024-01-02" and items[0].meta["blob"] == "0001" and items[0].meta["price"] == "1.50"


def test_json_nested_too_deep_is_that_files_reject():
    deep = ("[" * 20000 + "]" * 20000).encode()
    (reject,) = parse(deep, "deep.json")
    assert isinstance(reject, Reject) and reject.level == "file" and reject.reason == "parse_failed:RecursionError"


def _workbook(rows: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_rows_past_a_stale_dimension_are_read():
    data = _workbook([["SPEAKER", "SENTENCE"]] + [["A", f"문장 {i}"] for i in range(7)])
    source, patched = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename == "xl/worksheets/sheet1.xml":
                body = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B3"/>', body)
                assert b'ref="A1:B3"' in body
            out.writestr(info, body)
    assert len(texts(parse(patched.getvalue(), "d.xlsx"))) == 7


def test_xlsx_decompression_bomb_is_rejected_before_it_is_opened():
    data = io.BytesIO(_workbook([["SENTENCE"], ["하나"]]))
    with zipfile.ZipFile(data, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * (8 << 20))  # 8 MB in ~8 KB: a ratio over 200
    (reject,) = parse(data.getvalue(), "bomb.xlsx")
    assert reject.reason == "xlsx_too_large"


def test_a_fifo_in_the_input_is_rejected_not_opened(tmp_path):
    corpus = tmp_path / "in"
    corpus.mkdir()
    (corpus / "a.txt").write_text("좋아요\n", encoding="utf-8")
    os.mkfifo(corpus / "pipe.txt")
    # in a child process with a time limit: opening the FIFO would block the job forever
    subprocess.run([sys.executable, "-m", "beam_jobs.preprocess", "--input", str(corpus), "--output",
                    str(tmp_path / "out"), "--runner", "FnApiRunner"], check=True, timeout=300, capture_output=True)
    stats = read_json(tmp_path / "out" / "_stats.json")
    assert stats["counts"]["files.rejected.not_a_regular_file"] == 1 and stats["conservation"]["records_out"] == 1


# --------------------------------------------------------------------------- nothing merged or lost


def test_cr_only_line_endings_are_lines():
    assert texts(parse(b"one\rtwo\rthree\r", "mac.txt")) == ["one", "two", "three"]
    assert texts(parse(b"a\r\nb\nc\rd", "mixed.txt")) == ["a", "b", "c", "d"]


def test_a_txt_with_a_double_colon_is_not_read_as_kspon():
    items = parse("C++ :: 언어 공부\nC# :: 다음\n".encode(), "notes.txt")
    assert texts(items) == ["C++ :: 언어 공부", "C# :: 다음"] and items[0].markup is None
    kspon = parse("KsponSpeech_01/KsponSpeech_0001/KsponSpeech_000001.pcm :: 아/ 그래\n".encode(), "a.txt")
    assert texts(kspon) == ["아/ 그래"] and kspon[0].markup == "kspon"


def test_cp949_file_with_a_long_ascii_head_keeps_its_korean_lines():
    data = b"".join(b"ascii line %d\n" % i for i in range(8000)) + "한국어 줄입니다\n좋아요\n".encode("cp949")
    assert len(data) > 1 << 16
    items = parse(data, "mixed.txt")
    assert not [i for i in items if isinstance(i, Reject)]
    assert texts(items)[-2:] == ["한국어 줄입니다", "좋아요"]


def test_one_nul_byte_does_not_reject_a_text_file():
    assert texts(parse("앞\x00줄\n좋아요\n".encode(), "nul.txt")) == ["앞\x00줄", "좋아요"]
    (reject,) = parse(b"\x00\x01\x02" * 100, "binary.txt")
    assert reject.reason == "undecodable_file"


def test_utf16_lines_break_at_newlines_only():
    data = codecs.BOM_UTF16_LE + "하나\u2028여전히 하나\n둘\n".encode("utf-16-le")
    assert texts(parse(data, "u16.txt")) == ["하나\u2028여전히 하나", "둘"]


def test_split_ratios_must_be_finite():
    with pytest.raises(ValueError, match="non-negative fractions"):
        SplitRatios.parse("nan,nan,nan")


# --------------------------------------------------------------------------- pathological text


@pytest.mark.parametrize("text", ["a-" * 50_000 + ".", "a." * 50_000 + "@", "낼 " * 20_000, "젤 " * 20_000,
                                  "ㅋ" * 100_000, "가" * 100_000, "https://" + "a" * 100_000, "지이" * 50_000])
def test_hostile_text_normalizes_and_its_edits_replay(text):
    # quadratic regexes took minutes on these shapes (bench/hostile_text.py records the time)
    normalized, edits = Normalizer().normalize(text)
    assert replay_edits(text, edits) == normalized


def test_masks_still_mask():
    normalizer = Normalizer()
    assert normalizer("메일 hong.gil-dong@example.co.kr 로") == "메일 &email& 로"
    assert normalizer("naver.com/abc 봐") == "&url& 봐"
    assert json.dumps(normalizer("www.a-b.com에서")) == json.dumps("&url&에서")


# --------------------------------------------------------------------------- properties of the normalizer

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

#: the characters of spoken Korean text: syllables (common and any), jamo, ASCII, punctuation,
#: spaces, placeholders and emoji, mixed the way comments mix them
_PIECES = st.one_of(
    st.sampled_from(list("가나다라마바사아자차카타파하요용당네넘걍여친은이가을를ㅋㅎㅠㅜㅡㄱㅅㅇ .!?~…^;,")),
    st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3),
    st.characters(min_codepoint=0x3131, max_codepoint=0x3163),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.sampled_from(["&name&", "&url&", " ", "  ", "😀", "http://a.co/x", "010-1234-5678", "10000원", "3.5"]),
)
TEXTS = st.lists(_PIECES, max_size=60).map("".join)
NORMALIZER = Normalizer()
_PLACEHOLDER = re.compile(r"&[a-z][a-z0-9-]*&")


def _outside_masks(text: str, pattern: str) -> list[str]:
    return re.findall(pattern, _PLACEHOLDER.sub(" ", text))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_replaying_the_edits_reproduces_the_text(text):
    normalized, edits = NORMALIZER.normalize(text)
    assert replay_edits(text, edits) == normalized


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_placeholders_survive_and_no_digit_or_latin_word_changes_outside_masks(text):
    normalized, edits = NORMALIZER.normalize(text)
    for placeholder in _PLACEHOLDER.findall(text):
        assert placeholder in normalized
    if not any(e.rule.startswith("mask_") for e in edits):
        assert _outside_masks(normalized, r"\d+") == _outside_masks(text, r"\d+")
        assert _outside_masks(normalized, "[A-Za-z]+") == _outside_masks(text, "[A-Za-z]+")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TEXTS)
def test_normalizing_twice_changes_nothing(text):
    once = NORMALIZER(text)
    assert NORMALIZER(once) == once


# --------------------------------------------------------------------------- outputs of stopped runs


def test_overwrite_removes_what_a_killed_run_left_and_nothing_else(tmp_path):
    out = tmp_path / "out"
    (out / "beam-temp-part-0123").mkdir(parents=True)
    (out / "beam-temp-part-0123" / "tmp.parquet").write_bytes(b"half")
    (out / "notes.md").write_text("mine", encoding="utf-8")
    corpus = tmp_path / "a.txt"
    corpus.write_text("좋아요\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="already holds"):
        run_preprocess([corpus], out, "--runner", "FnApiRunner")
    run_preprocess([corpus], out, "--runner", "FnApiRunner", "--overwrite")
    assert not list(out.glob("beam-temp-*")) and (out / "notes.md").read_text(encoding="utf-8") == "mine"
    from schemas import UTTERANCES, read_dataset

    assert read_dataset(str(out), UTTERANCES).column("text").to_pylist() == ["좋아요"]


def test_kd_shards_with_labels_or_logits_out_of_range_are_refused(tmp_path):
    from kd.data import ProvenanceMismatchError, open_kd_dataset
    from tests.kd_fixtures import make_kd_shards, make_tokenizer

    make_tokenizer(tmp_path / "tok")
    folder = make_kd_shards(tmp_path / "kd", tmp_path / "tok")
    table = pq.read_table(next(folder.glob("train-*.parquet")))
    labels = table.column("label").to_pylist()
    labels[0] = -3
    bad = table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int32()))
    pq.write_table(bad, next(folder.glob("train-*.parquet")))
    with pytest.raises(ProvenanceMismatchError, match=r"labels from -3 to 1, expected -1 \(unlabeled\) .. 1"):
        open_kd_dataset(str(folder))


# --------------------------------------------------------------------------- the trainer on bad rows and foreign models


def _tiny_kd(tmp_path, **kwargs):
    from tests.kd_fixtures import make_kd_shards, make_teacher, make_tokenizer

    tokenizer = make_tokenizer(tmp_path / "tok")
    make_teacher(tmp_path / "teacher", len(tokenizer))
    return make_kd_shards(tmp_path / "kd", tmp_path / "tok", **kwargs)


def test_nan_teacher_rows_are_left_out_not_their_batches(tmp_path):
    from kd import distill

    folder = _tiny_kd(tmp_path)
    path = next(folder.glob("train-*.parquet"))
    table = pq.read_table(path)
    logits = table.column("teacher_logits").to_pylist()
    for i in range(0, len(logits), 20):  # 5% of the rows
        logits[i] = [float("nan"), 0.0]
    column = pa.array(logits, table.schema.field("teacher_logits").type)
    pq.write_table(table.set_column(table.schema.get_field_index("teacher_logits"), "teacher_logits", column), path)
    config = distill.DistillConfig(
        data=str(folder), tokenizer=str(tmp_path / "tok"),
        student=distill.StudentConfig(num_layers=1, hidden_size=16, num_heads=2, intermediate_size=32),
        loop=distill.LoopConfig(output=str(tmp_path / "s"), max_steps=12, batch_size=8, device="cpu", progress=False,
                                log_every=4), measure_cpu_speed=False)
    result = distill.run(config)
    assert result["training"]["skipped_nonfinite"] == 0  # no step was voided
    assert result["training"]["rows_skipped"]["nonfinite_teacher"] > 0


def test_evaluate_refuses_a_model_whose_labels_differ_from_the_shards(tmp_path):
    from kd.data import open_kd_dataset
    from kd.evaluate import evaluate_model_dir
    from kd.models import bert_student
    from schemas.options import MalmoiError

    folder = _tiny_kd(tmp_path)
    swapped = bert_student(vocab_size=200, label_names=["positive", "negative"], num_layers=1, hidden_size=16,
                           num_heads=2, intermediate_size=32)
    swapped.save_pretrained(tmp_path / "swapped")
    with pytest.raises(MalmoiError, match=r"its labels are \['positive', 'negative'\]"):
        evaluate_model_dir(str(tmp_path / "swapped"), open_kd_dataset(str(folder)), "test", ["좋아요"])


def test_an_unclosed_csv_quote_is_a_reject_that_says_what_it_swallowed():
    (reject,) = parse(b'text,label\n"hello,1\nworld,0\nnext,1\n', "a.csv")
    assert reject.reason == "malformed_csv" and reject.position == "lines 2-4" and "3 line(s)" in reject.detail
    assert texts(parse(b'text,label\n"multi\nline",1\nok,0\n', "b.csv")) == ["multi\nline", "ok"]


def test_pipeline_overwrite_removes_only_its_own_stages(tmp_path):
    from kd import pipeline

    out = tmp_path / "demo"
    (out / "kd").mkdir(parents=True)
    (out / "kd" / "old.parquet").write_bytes(b"x")
    (out / "my_notes.txt").write_text("keep", encoding="utf-8")
    assert pipeline.main(["--task", str(tmp_path / "missing.jsonl"), "--output", str(out)]) == 2  # not empty
    pipeline.main(["--task", str(tmp_path / "missing.jsonl"), "--output", str(out), "--overwrite"])
    assert not (out / "kd").exists() and (out / "my_notes.txt").read_text(encoding="utf-8") == "keep"


def test_same_file_name_in_two_inputs_gives_two_ids_and_one_file_is_read_once(tmp_path, monkeypatch):
    import pandas as pd

    for folder, line in (("a", "첫째 폴더"), ("b", "둘째 폴더")):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "x.txt").write_text(line + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    run_preprocess(["a", "./b/", "a/x.txt"], tmp_path / "out", "--runner", "FnApiRunner")
    frame = pd.read_parquet(tmp_path / "out")
    assert sorted(frame["source"]) == ["a/x.txt", "b/x.txt"] and frame["id"].nunique() == 2  # a/x.txt once
    run_preprocess([str(tmp_path / "a"), str(tmp_path / "b")], tmp_path / "again", "--runner", "FnApiRunner")
    assert sorted(pd.read_parquet(tmp_path / "again")["id"]) == sorted(frame["id"])  # spelling changes nothing


def test_commands_refuse_to_overwrite_an_exported_model_or_tokenizer(tmp_path, capsys):
    from kd import distill
    from kd import tokenizer as kd_tokenizer

    folder = _tiny_kd(tmp_path)
    args = ["--data", str(folder), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "s"),
            "--student-layers", "1", "--student-hidden", "16", "--student-heads", "2", "--student-intermediate", "32",
            "--max-steps", "2", "--batch-size", "8", "--no-progress", "--device", "cpu", "--no-cpu-speed"]
    assert distill.main(args) == 0
    assert distill.main(args) == 2 and "already holds an exported model" in capsys.readouterr().err
    assert distill.main([*args, "--overwrite"]) == 0
    run_preprocess([tmp_path / "kd" / "_manifest.json"], tmp_path / "utt", "--runner", "FnApiRunner",
                   "--format", "txt")  # any utterances dataset will do
    assert kd_tokenizer.main(["--data", str(tmp_path / "utt"), "--output", str(tmp_path / "tok")]) == 2
    assert "already holds a tokenizer" in capsys.readouterr().err


def test_a_stray_part_file_added_after_the_job_is_refused(tmp_path):
    import shutil

    from kd.data import open_kd_dataset
    from schemas import SchemaMismatchError

    folder = _tiny_kd(tmp_path)
    shutil.copy(next(folder.glob("train-*.parquet")), folder / "train-00009-of-00010.parquet")
    with pytest.raises(SchemaMismatchError, match=r"extra \['train-00009-of-00010.parquet'\]"):
        open_kd_dataset(str(folder))


def test_token_ids_beyond_the_student_vocabulary_are_refused(tmp_path, capsys):
    from kd import distill

    folder = _tiny_kd(tmp_path)
    path = next(folder.glob("train-*.parquet"))
    table = pq.read_table(path)
    ids = table.column("input_ids").to_pylist()
    ids[0] = [2, 99_999, 3]
    column = pa.array(ids, table.schema.field("input_ids").type)
    pq.write_table(table.set_column(table.schema.get_field_index("input_ids"), "input_ids", column), path)
    assert distill.main(["--data", str(folder), "--tokenizer", str(tmp_path / "tok"), "--output", str(tmp_path / "s"),
                         "--max-steps", "2", "--no-progress", "--device", "cpu"]) == 2
    assert "input_ids from" in capsys.readouterr().err


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="지이인짜ㅋㅎ넘낼 여친이가 좋아요1a", min_size=1, max_size=40), st.data())
def test_entities_never_cut_and_edits_still_replay(text, data):
    # Protects against: an entity boundary crossed by an edit, or remapped offsets that no longer
    # point at the entity's (possibly normalized) text
    from beam_jobs.text.edits import normalize_keeping_spans, remap_spans

    start = data.draw(st.integers(0, len(text) - 1))
    end = data.draw(st.integers(start + 1, len(text)))
    normalize = Normalizer().normalize
    out, edits, spans, _ = normalize_keeping_spans(normalize, text, [(start, end, "X")])
    assert replay_edits(text, edits) == out
    moved = remap_spans([(start, end, "X")], edits)
    assert moved is not None  # no edit of the final list crosses the entity's boundary
    assert spans == [span for span in moved if span[1] > span[0]]
    assert all(0 <= s < e <= len(out) for s, e, _ in spans)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="지이인짜ㅋㅎ넘낼 여친이가 좋아요1a", min_size=1, max_size=40), st.data())
def test_a_span_of_the_normalized_text_maps_back_onto_the_raw_text_that_made_it(text, data):
    # Protects against: served entity spans that point at the wrong characters of the raw input
    from beam_jobs.text.edits import remap_spans, unmap_span

    out, edits = Normalizer().normalize(text)
    if not out:
        return
    start = data.draw(st.integers(0, len(out) - 1))
    end = data.draw(st.integers(start + 1, len(out)))
    raw_start, raw_end = unmap_span(start, end, edits)
    assert 0 <= raw_start < raw_end <= len(text)
    moved = remap_spans([(raw_start, raw_end, "X")], edits)
    assert moved is not None and moved[0][0] <= start and end <= moved[0][1]  # it covers what it maps from

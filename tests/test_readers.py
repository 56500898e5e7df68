"""Every corpus format read from its sample. Protects against: a bad file that raises instead of becoming a
reject, encodings guessed wrong, and fields read from the wrong place."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from beam_jobs.readers import RawUtterance, ReaderOptions, Reject, detect_format, parse_file, sniff_encoding


def parse(path, **options):
    with open(path, "rb") as handle:
        items = list(parse_file(handle, path.name, ReaderOptions(**options)))
    return [i for i in items if isinstance(i, RawUtterance)], [i for i in items if isinstance(i, Reject)]


def parse_bytes(data: bytes, name: str, **options):
    items = list(parse_file(io.BytesIO(data), name, ReaderOptions(**options)))
    return [i for i in items if isinstance(i, RawUtterance)], [i for i in items if isinstance(i, Reject)]


def test_nikl_daily_conversation(samples):
    rows, rejects = parse(samples / "nikl" / "SDRW2000000001.json")
    assert not rejects
    assert len(rows) == 11
    first = rows[0]
    assert first.corpus == "nikl" and first.doc_id == "SDRW2000000001.1" and first.turn == 0
    assert first.position == "document[0].utterance[0]"
    assert first.speaker == "SD2000001"
    assert first.meta["speaker_age"] == "20대" and first.meta["topic"] == "먹거리 > 좋아하는 음식"
    assert first.meta["start"] == "0.0" and first.meta["relation"] == "친구"
    # the form is the text; a differing original_form is kept in meta
    changed = rows[3]
    assert changed.text.endswith("-불완전 발화-") and "original_form" in changed.meta
    assert {r.doc_id for r in rows} == {"SDRW2000000001.1", "SDRW2000000001.2"}


def test_nikl_messenger_keeps_time_and_markup(samples):
    rows, rejects = parse(samples / "nikl" / "MDRW2100000002.json")
    assert not rejects and len(rows) == 7
    assert rows[0].meta["time"] == "20210304141215"
    assert rows[3].text == "{share:photo}"


def test_aihub_emotion_labels_each_turn_and_skips_unused_slots(samples):
    rows, rejects = parse(samples / "aihub" / "emotion_dialogue_sample.json")
    assert not rejects
    first_talk = [r for r in rows if r.doc_id == "Pro_90001_00001"]
    assert [r.speaker for r in first_talk] == ["human", "system", "human", "system"]  # HS03/SS03 empty
    assert {r.label for r in first_talk} == {"E18"}
    assert [r.turn for r in first_talk] == [0, 1, 2, 3]
    assert first_talk[0].meta["emotion_id"] == "S06_D02_E18"


def test_aihub_summary_keeps_summary_and_participants(samples):
    rows, rejects = parse(samples / "aihub" / "dialogue_summary_sample.json")
    assert not rejects and len(rows) == 7
    assert rows[0].doc_id == "a1b2c3d4-0001" and rows[0].speaker == "P01"
    assert rows[0].meta["summary"].startswith("두 사람이")
    assert rows[0].meta["speaker_gender"] == "여성" and rows[0].meta["topic"] == "식음료"


def test_aihub_sns_body_is_a_list(samples):
    rows, rejects = parse(samples / "aihub" / "sns_sample.json")
    assert not rejects and len(rows) == 5
    assert rows[1].position == "data[0].body[1]" and rows[1].doc_id == "sns-0001"


def test_aihub_dialogue_xlsx_groups_rows_by_dialogue(samples):
    rows, rejects = parse(samples / "aihub" / "korean_dialogue_sample.xlsx")
    assert not rejects
    assert len(rows) == 7  # the all-empty row is not an utterance
    assert rows[0].speaker == "손님" and rows[0].doc_id == "D0001"
    assert [r.turn for r in rows if r.doc_id == "D0002"] == [0, 1, 2]
    assert rows[0].meta["DOMAIN"] == "카페"


def test_kspon_trn_lines_and_cp949_single_file(samples):
    rows, rejects = parse(samples / "kspon" / "KsponSpeech_sample.trn")
    assert not rejects and len(rows) == 6
    assert rows[0].meta["utterance_id"].endswith("KsponSpeech_000001.pcm")
    assert rows[0].doc_id == "KsponSpeech_01/KsponSpeech_0001"
    assert rows[0].text.startswith("아/ 몬 소리야")  # markup is the normalizer's job
    single = samples / "kspon" / "KsponSpeech_0003" / "KsponSpeech_002001.txt"
    assert sniff_encoding(single.read_bytes()) == "cp949"
    rows, rejects = parse(single)
    assert not rejects and rows[0].text.startswith("그래서 어/") and rows[0].meta["utterance_id"] == "KsponSpeech_002001"


@pytest.mark.parametrize(
    "name, expected",
    [("comments.jsonl", 8), ("reviews.csv", 5), ("intents.tsv", 4), ("chat.txt", 4), ("reviews.parquet", 4)],
)
def test_generic_formats(samples, name, expected):
    rows, rejects = parse(samples / "generic" / name)
    assert not rejects
    assert len(rows) == expected


def test_generic_columns_label_id_and_meta(samples):
    rows, _ = parse(samples / "generic" / "comments.jsonl", doc_id_column="thread")
    assert rows[0].label == "positive" and rows[0].meta["record_id"] == "c-0001"
    assert rows[0].doc_id == "t1" and [r.turn for r in rows[:2]] == [0, 1]
    assert rows[7].label is None  # JSON null label: unlabeled, not the string "None"
    csv_rows, _ = parse(samples / "generic" / "reviews.csv")
    assert csv_rows[0].text == "배송 빨라서 좋아용, 담에 또 살게요"  # quoted comma stays in the text


def test_utf8_bom_is_stripped():
    rows, rejects = parse_bytes("\ufeff첫 줄\n둘째 줄\n".encode(), "a.txt")
    assert not rejects and rows[0].text == "첫 줄"


def test_cp949_jsonl_is_decoded():
    data = '{"text": "넘 좋아요ㅋㅋ"}\n'.encode("cp949")
    rows, rejects = parse_bytes(data, "a.jsonl")
    assert not rejects and rows[0].text == "넘 좋아요ㅋㅋ"


def test_binary_file_is_rejected_as_undecodable():
    _, rejects = parse_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image.txt")
    assert [(r.reason, r.level) for r in rejects] == [("undecodable_file", "file")]


def test_malformed_json_file_is_one_file_reject_with_position():
    _, rejects = parse_bytes(b'{"document": [ {"id": "x", }', "SDRW9.json")
    assert len(rejects) == 1
    assert rejects[0].reason == "malformed_json" and rejects[0].position.startswith("line 1 column")


def test_empty_and_unknown_files_are_rejected():
    assert parse_bytes(b"", "a.jsonl")[1][0].reason == "empty_file"
    assert parse_bytes(b"hello", "notes.docx")[1][0].reason == "unknown_format"
    _, rejects = parse_bytes(b'{"foo": 1}', "other.json")
    assert rejects[0].reason == "unknown_format" and "--format" in rejects[0].detail


def test_bad_records_are_rejected_one_by_one():
    data = '{"text": "좋아"}\n{bad json\n[1, 2]\n{"text": {"a": 1}}\n{"body": "x"}\n{"text": 42}\n'.encode()
    rows, rejects = parse_bytes(data, "a.jsonl")
    assert [r.text for r in rows] == ["좋아", "42"]
    assert [r.reason for r in rejects] == ["malformed_json", "malformed_record", "bad_text_type", "missing_field"]
    assert rejects[0].position == "line 2"


def test_csv_missing_column_names_the_fix_and_short_rows_are_rejected():
    _, rejects = parse_bytes("id,body\n1,좋아\n".encode(), "a.csv")
    assert rejects[0].reason == "missing_column" and "--text-column" in rejects[0].detail
    rows, rejects = parse_bytes("id,text,label\n1,좋아,pos\n2\n".encode(), "a.csv")
    assert len(rows) == 1 and rejects[0].reason == "malformed_row" and rejects[0].position == "line 3"


def test_the_default_text_columns_find_the_public_sets_text_and_text_still_comes_first():
    # guards against NSMC's own file (id, document, label) rejected for want of a 'text' column,
    # and against a candidate taking precedence over an explicit 'text' column
    rows, rejects = parse_bytes("id\tdocument\tlabel\n9976970\t아 더빙.. 진짜 짜증나네요 목소리\t0\n".encode(), "nsmc.tsv")
    assert not rejects and [(r.text, r.label) for r in rows] == [("아 더빙.. 진짜 짜증나네요 목소리", "0")]
    rows, _ = parse_bytes("review,text\n별로,넘 좋아\n".encode(), "a.csv")
    assert [r.text for r in rows] == ["넘 좋아"] and rows[0].meta == {"review": "별로"}


def test_tsv_quotes_are_text_and_one_open_quote_swallows_nothing():
    # guards against CSV quoting on TSV: NSMC's reviews quote freely, and one open quote swallowed
    # up to 20 following reviews into a reject (818 of the sample's 25,000)
    data = ('id\tdocument\tlabel\n1\t딱 한마디 " 아! 나도 사랑 받고 싶다\t1\n2\t"쓰레기영화"\t0\n'
            '3\t"그냥 ""최고"" 영화"\t1\n4\t한 마디로 "사랑은 타이밍"\t1\n').encode()
    rows, rejects = parse_bytes(data, "nsmc.tsv")
    assert not rejects
    assert [r.text for r in rows] == ['딱 한마디 " 아! 나도 사랑 받고 싶다', '"쓰레기영화"', '그냥 "최고" 영화',
                                      '한 마디로 "사랑은 타이밍"']
    # CSV keeps RFC 4180 quoting, and --format csv reads a tab-separated file with it
    rows, rejects = parse_bytes('text,label\n"좋아, 진짜",1\n'.encode(), "a.csv")
    assert not rejects and rows[0].text == "좋아, 진짜"
    rows, rejects = parse_bytes('text\tlabel\n"좋아\t진짜"\t1\n'.encode(), "a.tsv", format="csv", delimiter="\t")
    assert not rejects and rows[0].text == "좋아\t진짜"


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(st.text(alphabet=st.sampled_from('가나 "ㅋ.'), min_size=1, max_size=12).filter(
    lambda t: t.strip() and not (t.startswith('"') and t.endswith('"') and '""' in t[1:-1])), min_size=1, max_size=8))
def test_a_tsv_of_raw_texts_reads_back_exactly(texts):
    # guards against any quote in a TSV text changing the text or the rows around it
    data = ("text\n" + "".join(t + "\n" for t in texts)).encode()
    rows, rejects = parse_bytes(data, "a.tsv")
    assert not rejects and [r.text for r in rows] == texts


def test_an_undecodable_line_in_a_utf8_file_is_a_record_reject():
    good = [f"{i}번째 문장" for i in range(20)]
    data = "\n".join(good[:10]).encode() + b"\n\xff\xfe\xfa broken\n" + "\n".join(good[10:]).encode()
    rows, rejects = parse_bytes(data, "a.txt", format="txt")
    assert [r.text for r in rows] == good
    assert rejects[0].reason == "undecodable_line" and rejects[0].level == "record"


def test_auto_detection():
    assert detect_format("x/a.trn", b"") == "kspon"
    assert detect_format("x/a.txt", "KsponSpeech_000001.pcm :: 아/ 뭐".encode()) == "kspon"
    assert detect_format("x/a.txt", "그냥 문장".encode()) == "txt"
    assert detect_format("x/a.xlsx", b"") == "aihub-dialogue"
    assert detect_format("x/a.bin", b"") is None


def test_line_formats_stream_large_files():
    # A file larger than the sniffing window is read line by line across chunk boundaries.
    lines = [f"문장 {i}번 ㅋㅋ" for i in range(20000)]
    rows, rejects = parse_bytes(("\n".join(lines) + "\n").encode(), "big.txt")
    assert not rejects and [r.text for r in rows] == lines


def test_klue_ner_is_recognized_and_read_with_character_spans():
    # guards against KLUE-NER's .tsv read as a plain TSV (one column, every line rejected) and
    # against BIO tags turned into spans that miss a character or split an entity at its spaces
    import io

    from beam_jobs.readers import detect_format, parse_file
    from tests.conftest import SAMPLES

    path = SAMPLES / "klue" / "klue_ner_sample.tsv"
    data = path.read_bytes()
    assert detect_format(path.name, data[:65536]) == "klue-ner"
    rows = list(parse_file(io.BytesIO(data), path.name, ReaderOptions()))
    assert all(isinstance(r, RawUtterance) for r in rows) and len(rows) == 3
    first = rows[0]
    assert first.text == "톰 행크스면 믿고 봅니당ㅋㅋㅋㅋ" and first.entities == ((0, 5, "PS"),)
    assert [first.text[s:e] for s, e, _ in first.entities] == ["톰 행크스"]
    news = rows[2]
    assert [(news.text[s:e], label) for s, e, label in news.entities] == [("서울시", "OG"), ("3일", "DT"), ("2시", "TI")]
    assert news.meta["guid"].endswith("-wikitree") and news.doc_id == news.meta["guid"]


def test_klue_dp_sentences_are_read_from_their_headers_not_rejected_word_by_word():
    # guards against KLUE-DP's .tsv (the same comment header as KLUE-NER) read as KLUE-NER: every
    # word line rejected as a malformed character line and not one sentence kept
    from tests.conftest import SAMPLES

    path = SAMPLES / "klue" / "klue_dp_sample.tsv"
    data = path.read_bytes()
    assert detect_format(path.name, data[:65536]) == "klue-ner"  # the KLUE family's reader reads both
    rows, rejects = parse_bytes(data, path.name)
    assert not rejects
    assert [(r.corpus, r.text, r.meta["guid"]) for r in rows] == [
        ("klue-dp", "낼 영화 보러 갈래?", "malmoi-dp-sample_00000_chat"),
        ("klue-dp", "넘 재밌었어요.", "malmoi-dp-sample_00001_chat")]
    assert all(r.entities is None for r in rows)


def test_a_klue_sentence_with_no_lines_or_both_kinds_of_lines_is_a_reject():
    # guards against a sentence header with nothing under it vanishing without a count
    empty = "## 주석 : ##\n## s-0\t혼자 남은 머리글\n\n## s-1\t낼 봐\n낼\tO\n \tO\n봐\tO\n".encode()
    rows, rejects = parse_bytes(empty, "x.tsv", format="klue-ner")
    assert [r.text for r in rows] == ["낼 봐"]
    assert [(r.reason, r.position) for r in rejects] == [("malformed_sentence", "line 2")]
    mixed = "## s-0\t낼 봐\n낼\tO\n1\t봐\t보 아\tVV+EF\t0\tVP\n".encode()
    rows, rejects = parse_bytes(mixed, "x.tsv", format="klue-dp")
    assert not rows and [r.reason for r in rejects] == ["malformed_sentence"]


@settings(max_examples=200, deadline=None)
@given(codes=st.lists(st.from_regex(r"[0-9A-Za-z_.:\-]{1,16}", fullmatch=True), max_size=3),
       text=st.text(alphabet=st.sampled_from("가나다ㅋㅠ 0a.?\t"), min_size=1, max_size=30))
def test_leading_codes_of_a_txt_line_go_to_meta_and_nothing_is_lost(codes, text):
    # guards against a label column of a headerless file (3i4K's "0<TAB>그냥 빌") merged into the
    # text, and against a split that loses or reorders a character
    from beam_jobs.readers.plain import split_leading_codes

    line = "".join(c + "\t" for c in codes) + text
    found, rest = split_leading_codes(line)
    assert "".join(c + "\t" for c in found) + rest == line
    if codes and any(ch in "가나다ㅋㅠ" for ch in text.split("\t")[0]):
        assert found[: len(codes)] == codes


def test_a_txt_of_label_tab_text_lines_keeps_the_label_out_of_the_text():
    rows, rejects = parse_bytes("0\t그냥 빌\n12\t3\t넘 좋아ㅋㅋ\n낼\t봐\n".encode(), "fci.txt")
    assert not rejects
    assert [(r.text, r.meta) for r in rows] == [("그냥 빌", {"field_1": "0"}),
                                                ("넘 좋아ㅋㅋ", {"field_1": "12", "field_2": "3"}),
                                                ("낼\t봐", {})]  # Korean before the tab: one text


def test_no_header_reads_every_row_and_names_the_columns_by_position():
    # guards against the first row of a headerless file taken as its header (one row lost, and the
    # text column named after a sentence)
    data = "0\t그냥 빌\n3\t대도시\n".encode()
    rows, rejects = parse_bytes(data, "fci.txt", format="tsv", header=False, text_column="2", label_column="1")
    assert not rejects and [(r.text, r.label, r.position) for r in rows] == [("그냥 빌", "0", "line 1"),
                                                                             ("대도시", "3", "line 2")]
    rows, rejects = parse_bytes(data, "fci.txt", format="tsv", header=False)
    assert not rows and rejects[0].reason == "missing_column" and "['1', '2']" in rejects[0].detail


def test_a_json_list_of_records_is_read_like_jsonl():
    # guards against the most common JSON export ([{"text": …, "label": …}, …]) rejected as an
    # unknown corpus, and against a wrong --text-column rejecting every record one by one
    from tests.conftest import SAMPLES

    path = SAMPLES / "generic" / "labeled_records.json"
    rows, rejects = parse_bytes(path.read_bytes(), path.name)
    assert not rejects
    assert [(r.corpus, r.text, r.label, r.position) for r in rows][:2] == [
        ("json-records", "배송 넘 빨라요 ㅋㅋ 담에 또 살게용", "positive", "[0]"),
        ("json-records", "포장이 다 찢어져서 왔네요.. 별로", "negative", "[1]")]
    assert rows[2].meta["source"] == "app" and rows[2].doc_id == "r3"  # other fields kept, the id as in jsonl
    rows, rejects = parse_bytes(path.read_bytes(), path.name, text_column="sentence")
    assert not rows and [(r.reason, r.level) for r in rejects] == [("missing_column", "file")]
    assert "['id', 'label', 'source', 'text']" in rejects[0].detail
    rows, rejects = parse_bytes('[{"text": "낼 봐"}, "낼 봐"]'.encode(), "x.json")
    assert [r.text for r in rows] == ["낼 봐"] and [r.reason for r in rejects] == ["malformed_record"]


def test_jsonl_entities_are_checked():
    from beam_jobs.readers.base import entity_spans

    assert entity_spans([{"start": 3, "end": 5, "label": "LC"}], "낼 부산에서")[0] == ((3, 5, "LC"),)
    assert "expected 0 <= start < end" in entity_spans([{"start": 4, "end": 40, "label": "LC"}], "낼 부산에서")[1]
    assert "overlap" in entity_spans([{"start": 0, "end": 3, "label": "A"}, {"start": 2, "end": 4, "label": "B"}],
                                     "가나다라마")[1]


@pytest.mark.parametrize(("path", "options", "rows_expected"), [
    ("nsmc_sample/nsmc_raw_sample.tsv", {}, 25000),           # free quotes in reviews
    ("klue_dev/klue-dp-v1.1_dev.tsv", {}, 2000),              # KLUE-DP, KLUE-NER's header
    ("klue_dev/klue-ner-v1.1_dev.tsv", {}, 5000),
    ("kor_3i4k/fci_test.txt", {}, 6121),                      # label<TAB>text lines
    ("kornlu/KorNLI__xnli.dev.ko.tsv", {"text_column": "sentence1"}, 2490),
    ("klue_dev/klue-sts-v1.1_dev.json", {"text_column": "sentence1"}, 519),  # a JSON list of records
    ("korean_hate_speech_beep/labeled_train.tsv", {}, 7896),
])
def test_public_korean_files_read_whole_as_they_are_published(path, options, rows_expected):
    # guards against a published file losing rows to rejects, or labels to its text, under the
    # default options (the files are in ../shared/data; skipped where they are not)
    from tests.conftest import SHARED_DATA

    if not (SHARED_DATA / path).is_file():
        pytest.skip(f"{path} is not in ../shared/data")
    rows, rejects = parse_bytes((SHARED_DATA / path).read_bytes(), path, **options)
    assert not rejects and len(rows) == rows_expected
    assert not any(r.text[:2] in {f"{d}\t" for d in "0123456789"} | {f"{d} " for d in "0123456789"}
                   for r in rows if path.endswith(".txt"))

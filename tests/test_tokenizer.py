"""Tokenizer pieces and soynlp word splitting. Protects against: placeholders, jamo runs or numbers split apart,
and a tokenizer hash that does not follow its word scores."""

from __future__ import annotations

import pytest

from beam_jobs.text.tokenizer import Tokenizer, TokenizerConfig, pieces
from beam_jobs.text.word_scores import artifact_bytes


def test_pieces_split_off_laughter_placeholders_numbers_and_punctuation():
    assert pieces("&name&이가 10,000원 냈어ㅋㅋ!!! 😀") == ["&name&", "이가", "10,000", "원", "냈어", "ㅋㅋ", "!!!", "😀"]
    assert pieces("OST 3.5점 70%") == ["OST", "3.5", "점", "70%"]


def test_whitespace_tokenizer_keeps_hangul_runs_whole():
    assert Tokenizer().tokenize("배우들연기가 좋았다ㅋㅋ") == ["배우들연기가", "좋았다", "ㅋㅋ"]


@pytest.fixture
def scores_file(tmp_path):
    scores = {"배우": 2.0, "연기": 2.0, "영화": 2.0, "정말": 1.5, "좋았": 1.0}
    path = tmp_path / "scores.json"
    path.write_bytes(artifact_bytes(scores, {"learned_from": ["test"]}))
    return path


def test_soynlp_maxscore_splits_with_corpus_scores(scores_file):
    tokenizer = Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="maxscore", scores_path=str(scores_file)))
    assert tokenizer.tokenize("배우연기정말 좋았다ㅋㅋ") == ["배우", "연기", "정말", "좋았", "다", "ㅋㅋ"]


def test_soynlp_ltokenizer_splits_eojeol_into_left_and_right(scores_file):
    tokenizer = Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="ltokenizer", scores_path=str(scores_file)))
    assert tokenizer.tokenize("영화는 정말로") == ["영화", "는", "정말", "로"]


def test_tokenizer_hash_follows_the_scores(scores_file, tmp_path):
    first = Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="maxscore", scores_path=str(scores_file))).hash()
    other = tmp_path / "other.json"
    other.write_bytes(artifact_bytes({"배우": 1.0}, {}))
    assert first != Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="maxscore", scores_path=str(other))).hash()
    assert first == Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="maxscore", scores_path=str(scores_file))).hash()


def test_soynlp_without_scores_is_a_clear_error():
    with pytest.raises(ValueError, match="--word-scores"):
        TokenizerConfig(method="soynlp")


def test_foreign_scores_file_is_refused(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}', encoding="utf-8")
    with pytest.raises(ValueError, match="expected format malmoi.word_scores"):
        Tokenizer(TokenizerConfig(method="soynlp", soynlp_tokenizer="maxscore", scores_path=str(bad)))


def test_a_tokenizer_used_with_truncation_and_saved_again_keeps_its_hash(tmp_path):
    # guards against the model folder's copy of the tokenizer (save_pretrained writes the truncation
    # and padding a training run set) failing the shards' tokenizer check although its ids are the
    # same: kd.evaluate refused every fine-tuned teacher of bench/real_data.py that way
    from beam_jobs.text.subwords import load_subword_tokenizer
    from kd.tokenizer import train_tokenizer
    from schemas.provenance import files_hash, tokenizer_hash, tokenizer_hashes

    train_tokenizer(iter(["안녕하세요 반갑습니다", "좋은 하루", "영화 재밌다"] * 50), tmp_path / "tok", vocab_size=200)
    tokenizer = load_subword_tokenizer(str(tmp_path / "tok"))
    tokenizer(["안녕하세요 반갑습니다"], truncation=True, max_length=4, padding="max_length")
    tokenizer.save_pretrained(str(tmp_path / "saved"))
    assert files_hash([tmp_path / "saved" / "tokenizer.json"]) != files_hash([tmp_path / "tok" / "tokenizer.json"])
    assert tokenizer_hash(str(tmp_path / "saved")) == tokenizer_hash(str(tmp_path / "tok"))
    # a dataset recorded with the whole-file hash malmoi used before still matches its tokenizer
    assert files_hash([tmp_path / "tok" / "tokenizer.json"]) in tokenizer_hashes(str(tmp_path / "tok"))


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_input_ids_fast_path_gives_the_hugging_face_calls_ids(tmp_path, kind):
    # guards against the augment job's fast path (ids read from the Rust encodings) drifting from
    # what the Hugging Face call gives: other special tokens, truncation at another length or side
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from kd.tokenizer import train_tokenizer

    corpus = ["안녕하세요 반갑습니다", "좋은 하루 되세요ㅋㅋ", "영화 재밌다!!", "톰 행크스면 믿고 봅니당"] * 40
    tokenizer = train_tokenizer(iter(corpus), tmp_path / "tok", kind=kind, vocab_size=120, min_frequency=1)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.text(alphabet="안녕하세요 좋은영화재밌다ㅋ!?a1 ", max_size=60), max_size=6),
           st.integers(min_value=2, max_value=24))
    def same(texts, max_length):
        expected = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
        assert tokenizer.input_ids(texts, max_length) == expected

    same()
    tokenizer(corpus[:2], truncation=True, max_length=5, padding="max_length")  # the call's own state changes nothing
    assert tokenizer.input_ids(corpus[:2], 64) == tokenizer(corpus[:2], truncation=True, max_length=64)["input_ids"]

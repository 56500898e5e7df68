"""The learn_words job. Protects against: scores that preprocess cannot apply, and bad files or records dropped
without a count or a reject."""

from __future__ import annotations

import json

import pandas as pd

from beam_jobs import learn_words
from tests.conftest import run_preprocess

CORPUS = ["영화 정말 재밌다", "영화가 정말 좋았다ㅋㅋㅋ", "배우 연기가 좋았다", "정말 재밌는 영화",
          "연기가 정말 좋다", "영화는 재밌다", "배우는 좋다", "영화를 봤다"] * 8


def test_job_writes_scores_and_preprocess_applies_them(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    scores_path = tmp_path / "scores"
    learn_words.run(["--input", str(corpus), "--output", str(scores_path), "--min-count", "3",
                     "--runner", "FnApiRunner", "--direct_running_mode", "multi_processing",
                     "--direct_num_workers", "2"])
    assert (scores_path / "_SUCCESS").exists()
    artifact = json.loads((scores_path / "word_scores.json").read_text(encoding="utf-8"))
    assert artifact["format"] == "malmoi.word_scores" and "영화" in artifact["scores"]
    assert artifact["normalizer_hash"]
    # the shards, scored apart on two workers, give the scores of the whole corpus's counts
    from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
    from beam_jobs.text.word_scores import count_substrings, hangul_words, scores_from_counts

    normalizer = Normalizer(NormalizerConfig())
    whole = scores_from_counts(count_substrings([hangul_words(normalizer.normalize(t)[0]) for t in CORPUS]),
                               min_count=3)
    assert artifact["scores"] == whole and len(whole) > 5

    out = tmp_path / "utterances"
    run_preprocess([corpus], out, "--runner", "FnApiRunner", "--tokenizer", "soynlp",
                   "--word-scores", str(scores_path), "--soynlp-tokenizer", "ltokenizer")
    frame = pd.read_parquet(out)
    row = frame[frame["text"] == "영화가 정말 좋았다ㅋㅋ"].iloc[0]
    assert list(row["tokens"])[:2] == ["영화", "가"]
    manifest = json.loads((out / "_manifest.json").read_text(encoding="utf-8"))
    assert manifest["provenance"]["tokenizer_config"]["method"] == "soynlp"


def test_bad_files_and_records_are_counted_and_rejected_not_dropped(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("\n".join(CORPUS) + "\n", encoding="utf-8")
    (corpus / "binary.txt").write_bytes(b"\x00\x01\x02 not text")
    (corpus / "lines.jsonl").write_text('{"text": "영화 정말 재밌다"}\n{not json\n', encoding="utf-8")
    scores_path = tmp_path / "scores"
    learn_words.run(["--input", str(corpus), "--output", str(scores_path), "--min-count", "3",
                     "--runner", "FnApiRunner"])
    stats = json.loads((scores_path / "_stats.json").read_text(encoding="utf-8"))
    assert stats["conservation"] == json.loads((scores_path / "word_scores.json").read_text())["conservation"]
    conservation = stats["conservation"]
    assert (conservation["files_matched"], conservation["files_read"], conservation["files_rejected"]) == (3, 2, 1)
    assert conservation["records_in"] == len(CORPUS) + 2 and conservation["records_rejected"] == 1
    rejects = [json.loads(line) for path in (scores_path / "_rejects").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert sorted(r["reason"] for r in rejects) == ["malformed_json", "undecodable_file"]


def test_an_input_without_words_is_an_error_not_an_empty_scores_file(tmp_path):
    # guards against a wrong --text-column or a Latin-only corpus producing an empty artifact that
    # preprocess would then apply without a word
    import pytest

    from schemas.options import MalmoiError

    corpus = tmp_path / "latin.txt"
    corpus.write_text("hello world\nno hangul here\n", encoding="utf-8")
    with pytest.raises(MalmoiError, match="learned no word scores"):
        learn_words.run(["--input", str(corpus), "--output", str(tmp_path / "scores"), "--runner", "FnApiRunner"])
    assert not (tmp_path / "scores" / "_SUCCESS").exists() and not (tmp_path / "scores" / "word_scores.json").exists()
    assert json.loads((tmp_path / "scores" / "_stats.json").read_text())["counts"]["sentences.counted"] == 2
    with pytest.raises(FileExistsError):  # a rerun into it must say so, and --overwrite replaces it
        learn_words.run(["--input", str(corpus), "--output", str(tmp_path / "scores"), "--runner", "FnApiRunner"])


def test_counts_cross_the_shuffle_at_their_own_size_and_unchanged():
    """Protects against the shuffle carrying whole parent buffers: pickling the 16 zero-copy
    shard slices of one batch's counts (or a merged table's chunks) wrote every slice's parent
    table in full — 16x the data, gigabytes of memory on a 170k-utterance corpus."""
    import pyarrow as pa

    from beam_jobs.beam_io import ArrowTablesCoder
    from beam_jobs.text.word_scores import as_dict, count_substrings, merge_counts, split_by_shard

    sentences = [f"{w}{i % 97} 영화{i % 13}가 정말 좋았다{i % 7}".split() for i, w in enumerate(CORPUS * 40)]
    counts = count_substrings(sentences)
    shards = list(split_by_shard(counts, 16).values())
    merged = merge_counts([counts, count_substrings(sentences[:100])])
    coder = learn_words.MergeCountsFn().get_accumulator_coder()
    assert isinstance(coder, ArrowTablesCoder)
    plain = ArrowTablesCoder(compression=None)  # sizes of the rows themselves, before compression
    whole = len(plain.encode([counts]))
    assert len(plain.encode(shards)) < 1.2 * whole  # pickle wrote ~16x: every slice's parent in full
    # the job's coder compresses what crosses the runner (twice, with local workers): a coder
    # that silently stopped compressing would send 2-3x the bytes
    assert len(coder.encode(shards)) < 0.6 * len(plain.encode(shards))
    assert plain.decode(coder.encode([counts]))[0].equals(counts)  # a stream names its own codec
    decoded = coder.decode(coder.encode(shards + [merged, counts.slice(0, 0)]))
    assert [t.num_rows for t in decoded] == [t.num_rows for t in shards] + [merged.num_rows, 0]
    assert as_dict(pa.concat_tables(decoded[:len(shards)])) == as_dict(counts)
    assert as_dict(decoded[len(shards)]) == as_dict(merged) and coder.decode(coder.encode([])) == []
    assert isinstance(learn_words.CollectTablesFn().get_accumulator_coder(), ArrowTablesCoder)
    # Beam's byte metrics measure every element: the estimate must be the slices' own size (no
    # parent buffers) and must not encode the value a second time
    assert coder.estimate_size(shards) == sum(t.nbytes for t in shards) < 1.2 * counts.nbytes

"""Word scores. Protects against: partial counts that do not add up to soynlp's own, and a scorer that does not
give soynlp's scores for them, so combined scores would not be soynlp's."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from soynlp.word import WordExtractor

from beam_jobs.text.word_scores import (
    KINDS,
    as_dict,
    count_substrings,
    merge_counts,
    prune,
    scores_from_counts,
    shard_ids,
    split_by_shard,
)

SENTENCES = [
    "영화 정말 재밌다", "영화가 정말 좋았다", "배우 연기가 좋았다", "이 영화 배우가 좋다", "정말 재밌는 영화",
    "연기가 정말 좋다", "영화는 재밌다", "배우는 좋다", "영화를 봤다", "정말 재밌게 봤다",
] * 6


def soynlp_counts(sentences):
    extractor = WordExtractor(min_frequency=2, verbose_points=0)
    extractor.train(sentences)
    return extractor


def test_counts_equal_soynlp_train_after_pruning():
    extractor = soynlp_counts(SENTENCES)
    ours = as_dict(prune(count_substrings([s.split() for s in SENTENCES]), 2))
    tables = {kind: {t: n for (k, t), n in ours.items() if k == kind} for kind in ("L", "R", "aL", "aR")}
    assert tables["L"] == extractor.L and tables["R"] == extractor.R
    assert tables["aL"] == extractor._aL and tables["aR"] == extractor._aR


def test_counts_from_parts_add_up_to_the_whole():
    whole = as_dict(count_substrings([s.split() for s in SENTENCES]))
    parts = [count_substrings([s.split() for s in SENTENCES[start:start + 7]]) for start in range(0, len(SENTENCES), 7)]
    assert as_dict(merge_counts(parts)) == whole
    summed = Counter()
    for part in parts:
        summed.update(as_dict(part))
    assert summed == whole


WORDS = st.text(alphabet="영화가정말좋다배우", min_size=1, max_size=14)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=5), min_size=1, max_size=30), st.integers(1, 8))
def test_merging_any_partition_of_the_corpus_gives_the_whole_counts(sentences, step):
    # guards against the merge (dictionary-encoded sums per kind) losing, doubling or mixing up
    # counts across kinds, also when merged tables are merged again (the combine's tree)
    whole = as_dict(count_substrings(sentences))
    parts = [count_substrings(sentences[i:i + step]) for i in range(0, len(sentences), step)]
    assert as_dict(merge_counts(parts)) == whole
    halves = [merge_counts(parts[:len(parts) // 2]), merge_counts(parts[len(parts) // 2:])]
    assert as_dict(merge_counts(halves + [parts[0].slice(0, 0)])) == whole


def reference_counts(sentences, max_left, max_right):
    """soynlp 0.0.493's ``WordExtractor.train`` loop, unpruned, written out in plain Python."""
    counts = Counter()
    for words in sentences:
        for word in words:
            if len(word) > 1:
                counts.update(("L", word[:i]) for i in range(1, min(max_left + 1, len(word)) + 1))
                counts.update(("R", word[-i:]) for i in range(1, min(max_right + 1, len(word))))
        if len(words) > 1:
            for left, word, right in zip([words[-1], *words[:-1]], words, [*words[1:], words[0]], strict=True):
                counts.update([("aL", f"{word} {right[0]}"), ("aR", f"{left[-1]} {word}")])
                counts.update(("aL", f"{word[-i:]} {right[0]}") for i in range(1, min(max_right + 1, len(word))))
                counts.update(("aR", f"{left[-1]} {word[:i]}") for i in range(1, min(max_left + 1, len(word))))
    return dict(counts)


ANY_WORDS = st.text(alphabet=st.sampled_from("영화가정말a1é😀ㅋ"), min_size=1, max_size=14)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(ANY_WORDS, max_size=5), max_size=12), st.integers(1, 11), st.integers(1, 8))
def test_byte_range_counting_equals_the_plain_python_loop_on_any_characters(sentences, max_left, max_right):
    # guards against the byte-range substrings cutting a multi-byte character (2-, 3- and 4-byte
    # UTF-8 here), an off-by-one at either end of a word, or the circular neighbours going wrong
    assert as_dict(count_substrings(sentences, max_left, max_right)) == reference_counts(sentences, max_left, max_right)


def test_a_kind_the_merge_does_not_know_is_an_error_not_a_drop():
    part = count_substrings([["영화가", "좋다"]])
    odd = pa.table({"kind": ["X"], "text": ["영"], "n": [1]}, schema=part.schema)
    with pytest.raises(ValueError, match="'X'"):
        merge_counts([part, odd])


def test_a_substring_lands_in_the_same_shard_whatever_the_batch():
    # guards against partial counts of one substring landing in two shards (pruned apart, undercounted)
    shard_of = {}
    for start in range(0, len(SENTENCES), 5):
        part = count_substrings([s.split() for s in SENTENCES[start:start + 5]])
        for kind, text, shard in zip(part.column("kind").to_pylist(), part.column("text").to_pylist(),
                                     shard_ids(part, 16).tolist(), strict=True):
            assert shard_of.setdefault((kind, text), shard) == shard
    assert len(set(shard_of.values())) > 4  # and the shards are actually spread


def test_shards_of_empty_strings_and_empty_tables():
    # guards against a crash on a counts table with no string bytes at all (no data buffer)
    empty = pa.table({"kind": ["L"] * 0, "text": pa.array([], pa.string()), "n": pa.array([], pa.int64())})
    assert shard_ids(empty, 16).tolist() == [] and split_by_shard(empty, 16) == {}
    blank = pa.table({"kind": ["L", "L"], "text": ["", ""], "n": [1, 1]})
    assert shard_ids(blank, 16).tolist() == [0, 0]
    mixed = pa.table({"kind": ["L"] * 3, "text": ["ab", "ac", "a"], "n": [1, 1, 1]})
    assert len(set(shard_ids(mixed, 16).tolist())) == 1  # the first character alone decides


def test_scores_prefer_real_words():
    scores = scores_from_counts(count_substrings([s.split() for s in SENTENCES]), min_count=2)
    # a noun scores above the noun + particle it also appears as (cohesion and branching entropy)
    assert scores["영화"] > max(scores["영화가"], scores["영화는"], scores["영화를"])
    assert scores["배우"] > max(scores["배우가"], scores["배우는"])
    assert "정말" in scores and all(len(word) >= 2 for word in scores)  # single syllables are never words


def soynlp_scores(counts, min_count, max_left_length, max_right_length, min_cohesion_forward):
    """The scores as soynlp 0.0.493's ``WordExtractor.extract`` gives them (how learn_words scored before)."""
    extractor = WordExtractor(max_left_length=max_left_length, max_right_length=max_right_length,
                              min_frequency=min_count, min_cohesion_forward=min_cohesion_forward, verbose_points=0)
    tables = {kind: {} for kind in KINDS}
    for (kind, text), n in as_dict(prune(counts, min_count)).items():
        tables[kind][text] = n
    extractor.L, extractor.R, extractor._aL, extractor._aR = tables["L"], tables["R"], tables["aL"], tables["aR"]
    return {word: float(s.cohesion_forward * math.exp(s.right_branching_entropy))
            for word, s in extractor.extract().items() if len(word) >= 2 and s.cohesion_forward > 0}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(WORDS, min_size=1, max_size=5), min_size=1, max_size=30), st.integers(1, 4),
       st.integers(1, 11), st.integers(1, 8), st.sampled_from([0.0, 0.05, 0.3]))
def test_the_column_scorer_gives_soynlps_scores(sentences, min_count, max_left, max_right, min_cohesion):
    # guards against the vectorized scorer drifting from soynlp's extract: a word soynlp keeps and
    # it drops (or the reverse), or a different cohesion / branching entropy, at any thresholds
    counts = count_substrings(sentences, 10, 6)
    expected = soynlp_scores(counts, min_count, max_left, max_right, min_cohesion)
    found = scores_from_counts(counts, min_count=min_count, max_left_length=max_left, max_right_length=max_right,
                               min_cohesion_forward=min_cohesion)
    assert set(found) == set(expected)
    assert all(math.isclose(found[w], expected[w], rel_tol=1e-12) for w in expected)
    # learn_words counts only the rows the scorer reads: a subset of the full counts, same scores
    scored = count_substrings(sentences, max_left, max_right, scored_only=True)
    full = as_dict(count_substrings(sentences, max_left, max_right))
    assert as_dict(scored).items() <= full.items() and "aR" not in scored.column("kind").to_pylist()
    assert scores_from_counts(scored, min_count=min_count, max_left_length=max_left, max_right_length=max_right,
                              min_cohesion_forward=min_cohesion) == scores_from_counts(
        count_substrings(sentences, max_left, max_right), min_count=min_count, max_left_length=max_left,
        max_right_length=max_right, min_cohesion_forward=min_cohesion)


#: 1-, 2-, 3- and 4-byte UTF-8 characters, so a shard must be decided by the first character's bytes
MIXED_WORDS = st.text(alphabet="영화가정말ㅋab\u00e9\u0444\U0001f600", min_size=1, max_size=8)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.lists(MIXED_WORDS, min_size=1, max_size=5), min_size=1, max_size=30), st.integers(1, 3),
       st.sampled_from([2, 3, 16]))
def test_each_shard_scored_alone_gives_the_corpus_scores(sentences, min_count, shards):
    # guards against learn_words scoring shards apart and losing or changing words: a word whose
    # first-character L count, right extensions or R entry sat in another shard would score
    # differently there (or not at all), and a word scored in two shards would be merged silently
    counts = count_substrings(sentences, 10, 6)
    whole = scores_from_counts(counts, min_count=min_count)
    parts = [scores_from_counts(part, min_count=min_count) for part in split_by_shard(counts, shards).values()]
    assert sum(len(p) for p in parts) == len(whole)
    assert {w: s for p in parts for w, s in p.items()} == whole


def test_the_column_scorer_gives_soynlps_scores_on_real_sentences():
    counts = count_substrings([s.split() for s in SENTENCES] + [["영화는", "좋았다"], ["배우가", "정말", "좋다"]])
    expected = soynlp_scores(counts, 2, 10, 6, 0.05)
    found = scores_from_counts(counts, min_count=2)
    assert set(found) == set(expected) and len(found) > 10
    assert all(math.isclose(found[w], expected[w], rel_tol=1e-12) for w in expected)


def test_scores_do_not_depend_on_the_order_the_counts_were_merged_in():
    # guards against the artifact's bytes (and the provenance digest downstream) changing with the
    # number of workers: merging in another order reorders the rows, and float sums follow rows
    counts = count_substrings([s.split() for s in SENTENCES] + [["영화는", "좋았다"], ["배우가", "정말", "좋다"]])
    shuffled = counts.take(pa.array(np.random.default_rng(0).permutation(counts.num_rows)))
    assert scores_from_counts(shuffled, min_count=2) == scores_from_counts(counts, min_count=2)

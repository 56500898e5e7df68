"""Quality and speed of the Korean text core on real data (issue 3). Not a test.

    .venv/bin/python -m bench.text_quality [--sample 10000] [--only speed|kiwi|boundaries|endings]

1. speed — utterances/s on one core: malmoi's normalizer alone, normalizer + whitespace
   tokenizer, normalizer + soynlp tokenizer; baseline in the same run: soynlp's own
   ``emoticon_normalize`` + ``repeat_normalize`` (which corrupt numbers and syllables).
2. kiwi — Kiwi's out-of-vocabulary and symbol-token rates on BEEP! unlabeled comments and
   NSMC, before vs after normalization.
3. boundaries — token boundary precision / recall / F1 against KLUE-DP dev gold morphemes for
   whitespace, soynlp (corpus-learned scores) and Kiwi, split by source (airbnb reviews vs news).
4. endings — how often Kiwi (Z_CODA) agrees with the lexicon's ending rewrites, and what the
   Kiwi judge changes beyond the lexicon.
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import random
import time
from collections import Counter

from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from beam_jobs.text.tokenizer import Tokenizer, pieces
from beam_jobs.text.word_scores import (
    count_substrings,
    hangul_words,
    make_soynlp_splitter,
    scores_from_counts,
)
from bench.corpora import colloquial_texts, require_shared_data

SYMBOL_TAGS = ("SF", "SP", "SS", "SSO", "SSC", "SE", "SO", "SW", "W_EMOJI")


def per_second(fn, items) -> float:
    start = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - start)


def learn_scores(texts: list[str], normalizer: Normalizer) -> dict[str, float]:
    return scores_from_counts(count_substrings(hangul_words(normalizer(t)) for t in texts))


def soynlp_word_tokenizer(scores: dict[str, float], kind: str):
    split = make_soynlp_splitter(scores, kind)

    def tokenize(text: str) -> list[str]:
        out = []
        for piece in pieces(text):
            out.extend(split(piece) if "가" <= piece[0] <= "힣" and len(piece) > 1 else [piece])
        return out

    return tokenize


# --------------------------------------------------------------------------- 1. speed


def bench_speed(texts: list[str], scores: dict[str, float]) -> dict:
    from soynlp.normalizer import emoticon_normalize, repeat_normalize

    normalizer = Normalizer()
    whitespace = Tokenizer()
    soy = soynlp_word_tokenizer(scores, "ltokenizer")
    results = {
        "baseline_soynlp_emoticon+repeat_normalize": per_second(
            lambda t: repeat_normalize(emoticon_normalize(t, num_repeats=2), num_repeats=2), texts),
        "malmoi_normalize": per_second(normalizer.normalize, texts),
        "malmoi_normalize+whitespace_tokenize": per_second(lambda t: whitespace.tokenize(normalizer(t)), texts),
        "malmoi_normalize+soynlp_ltokenizer": per_second(lambda t: soy(normalizer(t)), texts),
    }
    base = results["baseline_soynlp_emoticon+repeat_normalize"]
    return {k: {"utt_per_s": round(v), "vs_soynlp_normalizers": round(v / base, 2)} for k, v in results.items()}


# --------------------------------------------------------------------------- 2. Kiwi OOV


def read_beep(limit: int, rng: random.Random) -> list[str]:
    root = require_shared_data()
    lines = [line.strip() for line in open(root / "korean_hate_speech_beep" / "unlabeled_comments_5.txt", encoding="utf-8")
             if line.strip()]
    return rng.sample(lines, min(limit, len(lines)))


def read_nsmc(limit: int, rng: random.Random) -> list[str]:
    root = require_shared_data()
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        texts = [r["document"] for r in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE) if r["document"]]
    return rng.sample(texts, min(limit, len(texts)))


def kiwi_rates(kiwi, texts: list[str]) -> dict:
    tokens = oov = symbols = 0
    for analysis in kiwi.tokenize(texts):
        for token in analysis:
            tokens += 1
            oov += bool(token.oov)
            symbols += token.tag in SYMBOL_TAGS
    return {"tokens": tokens, "oov_rate": round(oov / tokens, 4), "symbol_rate": round(symbols / tokens, 4)}


def bench_kiwi(sample: int) -> dict:
    from kiwipiepy import Kiwi

    kiwi = Kiwi(num_workers=1)
    normalizer = Normalizer()
    rng = random.Random(20261128)
    results = {}
    for name, texts in (("BEEP! unlabeled comments", read_beep(sample, rng)), ("NSMC sample", read_nsmc(sample, rng))):
        normalized = [normalizer(t) for t in texts]
        changed = [i for i, (a, b) in enumerate(zip(texts, normalized, strict=True)) if a != b]
        results[name] = {
            "sentences": len(texts), "raw": kiwi_rates(kiwi, texts), "normalized": kiwi_rates(kiwi, normalized),
            "changed_sentences": len(changed),
            "changed_raw": kiwi_rates(kiwi, [texts[i] for i in changed]),
            "changed_normalized": kiwi_rates(kiwi, [normalized[i] for i in changed]),
        }
    return results


# --------------------------------------------------------------------------- 3. boundaries


def read_klue_dp() -> list[tuple[str, str, list[tuple[str, list[str]]]]]:
    """(source, sentence, [(word_form, lemmas)]) for each KLUE-DP dev sentence."""
    root = require_shared_data()
    sentences, current, source, text = [], [], "", ""
    for line in open(root / "klue_dev" / "klue-dp-v1.1_dev.tsv", encoding="utf-8"):
        line = line.rstrip("\n")
        if line.startswith("## klue-dp"):
            guid, text = line[3:].split("\t", 1)
            source = guid.rsplit("_", 1)[-1]
        elif line.startswith("##"):
            continue
        elif not line.strip():
            if current:
                sentences.append((source, text, current))
            current = []
        else:
            cells = line.split("\t")
            current.append((cells[1], cells[2].split(" ")))
    if current:
        sentences.append((source, text, current))
    return sentences


def gold_boundaries(words: list[tuple[str, list[str]]]) -> tuple[set[int], set[int]]:
    """Boundaries as offsets in the sentence without spaces, and the offsets that can be judged.

    Eojeol boundaries are always gold. Inside an eojeol, morpheme boundaries are gold only
    where the morphemes spell the surface form (no contraction such as 흘렸 = 흘리+었); the
    inside of the other eojeols is left out of scoring.
    """
    gold, judged, offset = set(), set(), 0
    for form, lemmas in words:
        end = offset + len(form)
        gold.add(end)
        judged.add(end)
        if "".join(lemmas) == form:
            position = offset
            for lemma in lemmas[:-1]:
                position += len(lemma)
                gold.add(position)
            judged.update(range(offset + 1, end))
        offset = end
    return gold, judged


def predicted_boundaries(tokens: list[str]) -> set[int]:
    ends, offset = set(), 0
    for token in tokens:
        offset += len(token.replace(" ", ""))
        ends.add(offset)
    return ends


def bench_boundaries(scores: dict[str, float]) -> dict:
    from kiwipiepy import Kiwi

    kiwi = Kiwi(num_workers=1)
    sentences = read_klue_dp()
    tokenizers = {
        "whitespace": str.split,
        "malmoi pieces (whitespace + punctuation/number split)": pieces,
        "soynlp LTokenizer (corpus scores)": soynlp_word_tokenizer(scores, "ltokenizer"),
        "soynlp MaxScoreTokenizer (corpus scores)": soynlp_word_tokenizer(scores, "maxscore"),
        "Kiwi": lambda text: [text[t.start:t.start + t.len] for t in kiwi.tokenize(text)],
    }
    results: dict = {}
    aligned = sum(1 for _, _, words in sentences for form, lemmas in words if "".join(lemmas) == form)
    total_words = sum(len(words) for _, _, words in sentences)
    for name, tokenize in tokenizers.items():
        per_source: dict[str, Counter] = {}
        for source, _text, words in sentences:
            surface = " ".join(form for form, _ in words)
            gold, judged = gold_boundaries(words)
            predicted = predicted_boundaries(tokenize(surface)) & judged
            counts = per_source.setdefault(source, Counter())
            counts["tp"] += len(predicted & gold)
            counts["fp"] += len(predicted - gold)
            counts["fn"] += len(gold - predicted)
        results[name] = {}
        for source, c in sorted(per_source.items()):
            precision = c["tp"] / max(1, c["tp"] + c["fp"])
            recall = c["tp"] / max(1, c["tp"] + c["fn"])
            f1 = 2 * precision * recall / max(1e-9, precision + recall)
            results[name][source] = {"precision": round(precision, 3), "recall": round(recall, 3), "f1": round(f1, 3)}
    results["_coverage"] = {"sentences": len(sentences), "eojeols": total_words,
                            "eojeols_with_surface_aligned_morphemes": aligned}
    return results


# --------------------------------------------------------------------------- 4. endings


def bench_endings(texts: list[str]) -> dict:
    from kiwipiepy import Kiwi

    kiwi = Kiwi(num_workers=1)
    rules = Normalizer()
    judged = Normalizer(NormalizerConfig(ending_judge="kiwi"))
    rule_edits = Counter()
    agree = 0
    kiwi_only = Counter()
    disagree = Counter()
    for text in texts:
        _, edits = rules.normalize(text)
        for edit in edits:
            if edit.rule != "cute_ending":
                continue
            rule_edits[edit.before] += 1
            # Kiwi's verdict on the whole eojeol that holds the ending
            word = next((w for w in text.split() if edit.before in w), edit.before)
            word = "".join(ch for ch in word if "가" <= ch <= "힣")
            tokens = kiwi.tokenize(word)
            confirmed = bool(tokens) and tokens[-1].tag == "Z_CODA"
            agree += confirmed
            if not confirmed:
                disagree[word] += 1
        _, judged_edits = judged.normalize(text)
        for edit in judged_edits:
            if edit.rule == "kiwi_coda":
                kiwi_only[f"{edit.before}->{edit.after}"] += 1
    total = sum(rule_edits.values())
    return {
        "lexicon_ending_rewrites": total,
        "kiwi_confirms_share": round(agree / max(1, total), 3),
        "kiwi_does_not_confirm_examples": disagree.most_common(20),
        "kiwi_judge_extra_rewrites": sum(kiwi_only.values()),
        "kiwi_judge_extra_examples": kiwi_only.most_common(25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=10_000, help="sentences per corpus for the Kiwi rates")
    parser.add_argument("--only", choices=("speed", "kiwi", "boundaries", "endings"))
    args = parser.parse_args()
    texts = list(colloquial_texts())
    normalizer = Normalizer()
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, Python {platform.python_version()}"}
    scores = None
    if args.only in (None, "speed", "boundaries"):
        dp_text = [" ".join(form for form, _ in words) for _, _, words in read_klue_dp()]
        started = time.perf_counter()
        scores = learn_scores(texts + dp_text, normalizer)
        report["soynlp_scores"] = {"words": len(scores), "learned_on_sentences": len(texts) + len(dp_text),
                                   "seconds": round(time.perf_counter() - started, 1)}
    if args.only in (None, "speed"):
        report["speed"] = bench_speed(texts[:50_000], scores)
    if args.only in (None, "kiwi"):
        report["kiwi"] = bench_kiwi(args.sample)
    if args.only in (None, "boundaries"):
        report["boundaries"] = bench_boundaries(scores)
    if args.only in (None, "endings"):
        rng = random.Random(7)
        report["endings"] = bench_endings(read_nsmc(25_000, rng) + read_beep(33_893, rng))
    print(json.dumps(report, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()

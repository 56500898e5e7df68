"""The normalizer arena: malmoi next to the normalizers Korean users already have, on real text.

    .venv/bin/python -m bench.normalizer_arena [--sample N] [--json docs/results/normalizer_arena.json]
    make bench-setup   # the peers (soynlp ships with malmoi; kss, KoNLPy + a Java runtime)

Peers, run on the same sentences in the same process:

* ``malmoi`` (default config: Kiwi judge) and ``malmoi-nojudge`` (``lexical_judge="none"``);
* ``soynlp``: ``emoticon_normalize`` then ``repeat_normalize`` (num_repeats 2);
* ``kcbert-clean``: the cleaning the KcBERT README describes (drop characters outside Korean,
  ASCII and common punctuation/emoji, remove URLs, then soynlp ``repeat_normalize``), written
  here from that description;
* ``kss``: ``kss.normalize`` with character and emoticon repeats capped at two (its defaults
  change nothing);
* ``kiwi-typos``: Kiwi's typo-tolerant tokenize (``typos="basic_with_continual"``) re-joined;
* ``okt``: open-korean-text's normalizer via KoNLPy (``Okt().normalize``; needs a JVM).
A peer whose package or runtime is missing is skipped with a message.

Pools: BEEP! unlabeled comments (CC BY-SA) and the NSMC sample (CC0) from ../shared/data —
58,893 sentences. Per peer: sentences changed, sentences whose digits or Latin words changed,
sentences that lost a syllable written next to jamo (안녕ㅋㅋ -> 안ㅋㅋ), sentences with a run
of 4+ identical characters left, and sentences/s on one core. For malmoi, a per-rule audit on
the full pools: edits per rule and a random sample of each rule's edits in context
(``docs/results/normalizer_audit_samples.tsv``), for review by hand.

``--speed``: the default path's speed on one core, each against soynlp's in the same run:
a first pass over the pools from empty caches (every Hangul run the judge is asked about is
new to Kiwi), a second pass (caches warm), and one pass over the 167,794 utterances of
``bench.corpora.colloquial_texts()`` from empty caches (a corpus-scale job: the caches fill as
it goes).

The gold set (``bench/gold/normalizer_gold.tsv``: NSMC ids and the expected normalization,
annotated by hand; the texts are read from ../shared/data, never copied) gives per peer the
share of sentences exactly right, and for malmoi edit precision and recall per rule: edits are
character spans of the raw text (difflib opcodes raw -> output and raw -> expected); an edit of
the output is right when the expected text makes the same edit, and is charged to the rule of
the edit-log entry that covers it.
"""

from __future__ import annotations

import argparse
import csv
import difflib
import json
import platform
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from beam_jobs.text.edits import Edit
from beam_jobs.text.normalizer import Normalizer, NormalizerConfig
from bench.corpora import colloquial_texts, require_shared_data

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "bench" / "gold" / "normalizer_gold.tsv"
_RUN4 = re.compile(r"(.)\1{3,}")
_NEXT_TO_JAMO = re.compile("([가-힣])(?=[ㄱ-ㅣ])")


# --------------------------------------------------------------------------- pools


def pools() -> list[str]:
    root = require_shared_data()
    texts = []
    with open(root / "korean_hate_speech_beep" / "unlabeled_comments_5.txt", encoding="utf-8") as handle:
        texts += [line.rstrip("\n") for line in handle if line.strip()]
    texts += list(nsmc_by_id().values())
    return texts


def nsmc_by_id() -> dict[str, str]:
    root = require_shared_data()
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        return {row["id"]: row["document"] for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
                if row["document"]}


# --------------------------------------------------------------------------- peers


def kcbert_clean() -> Callable[[str], str]:
    """KcBERT's README cleaning, as described there: keep Korean, ASCII, a few punctuation marks
    and emoji; remove URLs; collapse repeats with soynlp (2)."""
    from soynlp.normalizer import repeat_normalize

    url = re.compile(r"https?://(?:www\.)?[-a-zA-Z0-9@:%._+~#=]{1,256}\.[a-zA-Z0-9()]{1,6}\b[-a-zA-Z0-9()@:%_+.~#?&/=]*")
    keep = re.compile("[^ .,?!/@$%~％·∼()\x00-\x7Fㄱ-ㅣ가-힣\U0001f000-\U0001faff\u2600-\u27bf]+")

    def clean(text: str) -> str:
        text = url.sub("", keep.sub(" ", text)).strip()
        return repeat_normalize(text, num_repeats=2)

    return clean


def make_peers() -> dict[str, Callable[[str], str] | str]:
    """Each peer's normalize function, or why it is skipped."""
    peers: dict[str, Callable[[str], str] | str] = {
        "malmoi": Normalizer(),
        "malmoi-nojudge": Normalizer(NormalizerConfig(lexical_judge="none")),
    }
    try:
        from soynlp.normalizer import emoticon_normalize, repeat_normalize

        peers["soynlp"] = lambda t: repeat_normalize(emoticon_normalize(t, num_repeats=2), num_repeats=2)
        peers["kcbert-clean"] = kcbert_clean()
    except ImportError as error:
        peers["soynlp"] = peers["kcbert-clean"] = f"skipped: {error}"
    try:
        import kss

        # its defaults change nothing; cap repeats at two as the other peers do
        peers["kss"] = lambda t: kss.normalize(t, reduce_char_repeats_over=2, reduce_emoticon_repeats_over=2,
                                               num_workers=1)
    except ImportError as error:
        peers["kss"] = f"skipped: {error} (make bench-setup)"
    from kiwipiepy import Kiwi

    kiwi = Kiwi()
    peers["kiwi-typos"] = lambda t: kiwi.join(kiwi.tokenize(t, typos="basic_with_continual")) if t.strip() else t
    try:
        from konlpy.tag import Okt

        okt = Okt()
        peers["okt"] = okt.normalize
    except Exception as error:  # noqa: BLE001 - ImportError, or no JVM (JVMNotFoundException)
        peers["okt"] = f"skipped: {type(error).__name__}: {error} (needs a Java runtime: make bench-setup)"
    return peers


# --------------------------------------------------------------------------- measures


def lost_next_to_jamo(text: str, out: str) -> bool:
    """A syllable written right before jamo (안녕ㅋㅋ: 녕) is gone from the output (coda changes allowed)."""
    available = Counter(out)
    for match in _NEXT_TO_JAMO.finditer(text):
        syllable = match.group(1)
        bare = chr(0xAC00 + (ord(syllable) - 0xAC00) // 28 * 28)
        if available[syllable]:
            available[syllable] -= 1
        elif available[bare]:
            available[bare] -= 1
        else:
            return True
    return False


def damage_counts(texts: list[str], outputs: list[str]) -> dict[str, int]:
    counts = Counter()
    for text, out in zip(texts, outputs, strict=True):
        counts["changed"] += out != text
        counts["digits_altered"] += re.findall(r"\d+", out) != re.findall(r"\d+", text)
        counts["latin_altered"] += re.findall("[A-Za-z]+", out) != re.findall("[A-Za-z]+", text)
        counts["syllable_lost_next_to_jamo"] += lost_next_to_jamo(text, out)
        counts["runs_of_4_left"] += bool(_RUN4.search(out))
    return dict(counts)


def timed(fn: Callable[[str], str], texts: list[str]) -> tuple[list[str], float]:
    for text in texts[:200]:  # warm-up (Kiwi / JVM load, caches)
        fn(text)
    start = time.perf_counter()
    outputs = [fn(t) for t in texts]
    return outputs, len(texts) / (time.perf_counter() - start)


def fresh_malmoi() -> Normalizer:
    """A default normalizer with empty caches (the judge's and the rules' own), Kiwi loaded."""
    from beam_jobs.text.judge import shared_judge

    shared_judge.cache_clear()
    normalizer = Normalizer()
    normalizer("먹엇다")  # loads Kiwi (its start-up is not a per-sentence cost)
    normalizer.judge._cache.clear()
    return Normalizer()


def default_path_speed(texts: list[str]) -> dict[str, float]:
    """Sentences/s of the default path (cold, warm, corpus) and of soynlp, on one core."""
    from soynlp.normalizer import emoticon_normalize, repeat_normalize

    def soynlp(t: str) -> str:
        return repeat_normalize(emoticon_normalize(t, num_repeats=2), num_repeats=2)

    def rate(fn: Callable[[str], object], items: list[str]) -> float:
        start = time.perf_counter()
        for item in items:
            fn(item)
        return len(items) / (time.perf_counter() - start)

    corpus = list(colloquial_texts())
    out = {"soynlp_pools": rate(soynlp, texts)}
    malmoi = fresh_malmoi()
    out["malmoi_pools_cold"] = rate(malmoi, texts)
    out["kiwi_analyses_pools"] = len(malmoi.judge._cache)
    out["malmoi_pools_warm"] = rate(malmoi, texts)
    out["soynlp_corpus"] = rate(soynlp, corpus)
    out["malmoi_corpus_cold"] = rate(fresh_malmoi(), corpus)
    out["corpus_sentences"] = len(corpus)
    for key in ("pools_cold", "pools_warm", "corpus_cold"):
        out[f"ratio_{key}_vs_soynlp"] = out[f"malmoi_{key}"] / out["soynlp_" + key.split("_")[0]]
    return out


# --------------------------------------------------------------------------- per-rule audit


def raw_spans(text_raw: str, edits: list[Edit]) -> list[tuple[str, int, int]]:
    """Each edit's span in the raw text's coordinates (edits are sequential)."""
    origin = list(range(len(text_raw)))  # raw index of each current character
    spans = []
    for edit in edits:
        raw_start = origin[edit.start] if edit.start < len(origin) else len(text_raw)
        raw_end = origin[edit.end - 1] + 1 if edit.end > edit.start else raw_start
        spans.append((edit.rule, raw_start, raw_end))
        origin[edit.start:edit.end] = [raw_start] * len(edit.after)
    return spans


def audit(texts: list[str], normalizer: Normalizer, per_rule: int, seed: int) -> tuple[dict[str, int], list[dict]]:
    counts: Counter = Counter()
    examples: dict[str, list[dict]] = defaultdict(list)
    rng = random.Random(seed)
    for index, text in enumerate(texts):
        _, edits = normalizer.normalize(text)
        for edit in edits:
            counts[edit.rule] += 1
            bucket = examples[edit.rule]
            row = {"rule": edit.rule, "before": edit.before, "after": edit.after, "sentence": index, "text": text[:160]}
            if len(bucket) < per_rule:
                bucket.append(row)
            elif rng.random() < per_rule / counts[edit.rule]:
                bucket[rng.randrange(per_rule)] = row
    return dict(counts), [row for rule in sorted(examples) for row in examples[rule]]


# --------------------------------------------------------------------------- gold set


def read_gold() -> list[tuple[str, str, str]]:
    """(id, raw text from ../shared/data, expected) for every gold row."""
    by_id = nsmc_by_id()
    rows = []
    with open(GOLD, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            nsmc_id, expected = line.rstrip("\n").split("\t", 1)
            rows.append((nsmc_id, by_id[nsmc_id], expected))
    return rows


def opcodes(a: str, b: str) -> set[tuple[int, int, str]]:
    """The edits that turn ``a`` into ``b``, as (start, end, replacement) spans of ``a``; a deletion
    inside a run of one character is moved to the run's start, so "...." -> "..." counts as one edit
    wherever the aligner put it."""
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    out = set()
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if tag == "delete":
            while i1 > 0 and a[i1 - 1] == a[i2 - 1]:
                i1, i2 = i1 - 1, i2 - 1
        out.add((i1, i2, b[j1:j2]))
    return out


def gold_scores(gold: list[tuple[str, str, str]], peers: dict[str, Callable[[str], str]],
                normalizer: Normalizer) -> dict:
    exact = {name: sum(fn(text) == expected for _, text, expected in gold) / len(gold) for name, fn in peers.items()}
    unchanged = sum(text == expected for _, text, expected in gold) / len(gold)
    right, made, needed = Counter(), Counter(), Counter()
    total_right = total_made = total_needed = 0
    for _, text, expected in gold:
        out, edits = normalizer.normalize(text)
        spans = raw_spans(text, edits)
        wanted = opcodes(text, expected)
        done = opcodes(text, out)
        total_needed += len(wanted)
        total_made += len(done)
        total_right += len(done & wanted)
        for op in done:
            rules = {r for r, s, e in spans if s <= op[0] <= e or s <= op[1] <= e or op[0] <= s < op[1]} or {"?"}
            for rule in rules:
                made[rule] += 1
                right[rule] += op in wanted
        for op in wanted:
            rules = {r for r, s, e in spans if s <= op[0] <= e or s <= op[1] <= e or op[0] <= s < op[1]}
            for rule in rules:
                needed[rule] += 1
    per_rule = {rule: {"edits": made[rule], "right": right[rule], "precision": right[rule] / made[rule]}
                for rule in sorted(made)}
    return {"sentences": len(gold), "exact_match": exact, "unchanged_baseline": unchanged,
            "malmoi_edit_precision": total_right / max(1, total_made), "malmoi_edit_recall": total_right / max(1, total_needed),
            "malmoi_edits": {"made": total_made, "needed": total_needed, "right": total_right}, "malmoi_per_rule": per_rule}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sample", type=int, default=0, help="measure on N random sentences of the pools (0: all)")
    parser.add_argument("--per-rule", type=int, default=40, help="audit examples kept per rule")
    parser.add_argument("--gold-only", action="store_true", help="only the gold set (fast)")
    parser.add_argument("--speed", action="store_true", help="only the default path's speed (cold, warm, corpus)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--audit-tsv", default=str(ROOT / "docs" / "results" / "normalizer_audit_samples.tsv"))
    args = parser.parse_args(argv)
    texts = pools()
    if args.sample:
        texts = random.Random(0).sample(texts, args.sample)
    if args.speed:
        speed = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "sentences": len(texts),
                 **default_path_speed(texts)}
        text = json.dumps(speed, indent=2)
        if args.json:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
        print(text)
        return 0
    peers = make_peers()
    runnable = {name: fn for name, fn in peers.items() if callable(fn)}
    results: dict = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "sentences": len(texts),
                     "skipped": {name: why for name, why in peers.items() if not callable(why)}, "peers": {}}
    for name, fn in runnable.items() if not args.gold_only else ():
        outputs, speed = timed(fn, texts)
        results["peers"][name] = {**damage_counts(texts, outputs), "sentences_per_s": speed}
        print(name, json.dumps(results["peers"][name], ensure_ascii=False), flush=True)
    if not args.gold_only:
        counts, examples = audit(texts, runnable["malmoi"], args.per_rule, seed=0)
        results["malmoi_edits_per_rule"] = counts
        with open(args.audit_tsv, "w", encoding="utf-8") as handle:
            handle.write("rule\tbefore\tafter\tsentence\ttext\n")
            for row in examples:
                handle.write("\t".join(str(row[k]).replace("\t", " ")
                                        for k in ("rule", "before", "after", "sentence", "text")) + "\n")
    if GOLD.exists():
        results["gold"] = gold_scores(read_gold(), runnable, runnable["malmoi"])
        print("gold", json.dumps(results["gold"], ensure_ascii=False, indent=1))
    text = json.dumps(results, indent=2, ensure_ascii=False)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

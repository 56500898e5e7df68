"""Real Korean text from ../shared/data for benchmarks (read in place, never copied into the repo).

Sources (see each folder's SOURCE.md): NSMC sample (CC0), 3i4K (CC BY-SA), BEEP! unlabeled
comments (CC BY-SA), Chatbot data (MIT), StyleKQC (CC BY-SA).
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def require_shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        raise SystemExit(f"benchmarks need the real datasets at {SHARED_DATA} (see ../shared/data/README.md)")
    return SHARED_DATA


def colloquial_texts() -> Iterator[str]:
    """About 170k short real utterances, most of them colloquial."""
    root = require_shared_data()
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["document"]:
                yield row["document"]
    for name in ("fci_train_val.txt", "fci_test.txt"):
        with open(root / "kor_3i4k" / name, encoding="utf-8") as handle:
            for line in handle:
                parts = line.rstrip("\n").split("\t", 1)
                if len(parts) == 2 and parts[1]:
                    yield parts[1]
    with open(root / "korean_hate_speech_beep" / "unlabeled_comments_5.txt", encoding="utf-8") as handle:
        yield from (line.rstrip("\n") for line in handle if line.strip())
    with open(root / "chatbot_data" / "ChatbotData.csv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield row["Q"]
            yield row["A"]
    with open(root / "stylekqc" / "act__train.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            yield row["sentence"]


def text_key(text: str) -> str:
    """The Hangul syllables, Latin letters and digits of ``text``: what two copies of a sentence
    share whatever their spacing, punctuation, emoji or markup."""
    return re.sub(r"[^가-힣0-9A-Za-z]", "", text)


class SharesText:
    """Whether a text shares a passage with any of ``sentences``: its key (``text_key``) contains
    a sentence's key or is contained in one, for keys of ``min_chars`` or more (shorter ones, such
    as 최고, occur everywhere). Indexed by ``min_chars``-grams, so a corpus of hundreds of thousands
    of texts is checked in seconds rather than by comparing every pair."""

    def __init__(self, sentences: Iterable[str], min_chars: int = 6) -> None:
        self.n = min_chars
        self.keys = sorted({k for k in map(text_key, sentences) if len(k) >= min_chars})
        self.by_prefix: dict[str, list[str]] = defaultdict(list)
        self.by_window: dict[str, set[int]] = defaultdict(set)
        for index, key in enumerate(self.keys):
            self.by_prefix[key[:min_chars]].append(key)
            for start in range(len(key) - min_chars + 1):
                self.by_window[key[start:start + min_chars]].add(index)

    def __call__(self, text: str) -> bool:
        key, n = text_key(text), self.n
        if len(key) < n:
            return False
        for start in range(len(key) - n + 1):  # a sentence inside the text
            if any(key.startswith(sentence, start) for sentence in self.by_prefix.get(key[start:start + n], ())):
                return True
        return any(key in self.keys[i] for i in self.by_window.get(key[:n], ()))  # the text inside a sentence


def klue_ner_sentences() -> list[str]:
    """The plain text of KLUE-NER dev's 5,000 sentences (its ``## guid\t<word:TAG> markup`` lines
    with the markup removed); their colloquial half was drawn from NSMC reviews."""
    root = require_shared_data()
    sentences = []
    with open(root / "klue_dev" / "klue-ner-v1.1_dev.tsv", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("## klue-ner") and "\t" in line:
                sentences.append(re.sub(r"<([^<>:]*):[A-Z]{2}>", r"\1", line.rstrip("\n").split("\t", 1)[1]))
    return sentences


def write_jsonl_corpus(folder: Path, num_utterances: int, num_files: int = 8) -> list[Path]:
    """``num_utterances`` real utterances (cycled when more are asked for) in ``num_files`` JSONL files."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = list(colloquial_texts())
    paths = [folder / f"part-{i:03d}.jsonl" for i in range(num_files)]
    handles = [p.open("w", encoding="utf-8") for p in paths]
    for index in range(num_utterances):
        record = {"id": f"u{index}", "text": texts[index % len(texts)]}
        handles[index % num_files].write(json.dumps(record, ensure_ascii=False) + "\n")
    for handle in handles:
        handle.close()
    return paths

"""Real Korean text from ../shared/data for benchmarks (read in place, never copied into the repo).

Sources (see each folder's SOURCE.md): NSMC sample (CC0), 3i4K (CC BY-SA), BEEP! unlabeled
comments (CC BY-SA), Chatbot data (MIT), StyleKQC (CC BY-SA).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
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

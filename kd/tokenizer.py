"""``python -m kd.tokenizer``: train a WordPiece or Unigram vocabulary from an utterances dataset.

    python -m kd.tokenizer --data out/utterances --output out/tokenizer [--kind wordpiece] \\
        [--vocab-size 8000] [--pre-split tokens]

Hangul is kept as syllables: no lower-casing and no accent stripping (both decompose Hangul
into jamo and turn Korean into [UNK]s). De-identification and masking placeholders (&name&,
&url&, …) are single tokens. ``--pre-split tokens`` trains on the dataset's ``tokens`` column
(soynlp or whitespace pieces) so subwords never cross those boundaries; the choice is saved in
``malmoi_tokenizer.json`` and the text should be pre-split the same way at inference.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from kd.common import write_json
from kd.data import open_dataset
from schemas import UTTERANCES

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
PLACEHOLDERS = ["&name&", "&tel-num&", "&account&", "&address&", "&affiliation&", "&card-num&", "&num&",
                "&social-security-num&", "&email&", "&url&", "&mention&", "&emoji&", "&etc&"]
METADATA_FILE = "malmoi_tokenizer.json"


def train_tokenizer(texts: Iterable[str], output: str | Path, *, kind: str = "wordpiece", vocab_size: int = 8000,
                    min_frequency: int = 2, pre_split: str = "none") -> PreTrainedTokenizerFast:
    """Train and save a Hugging Face fast tokenizer; returns it loaded back from disk."""
    if kind not in ("wordpiece", "unigram"):
        raise ValueError(f"--kind: expected wordpiece or unigram, found {kind!r}")
    if kind == "wordpiece":
        tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency,
                                            special_tokens=SPECIAL_TOKENS)
        tokenizer.decoder = decoders.WordPiece()
    else:
        tokenizer = Tokenizer(models.Unigram())
        trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]")
        tokenizer.decoder = decoders.Metaspace()
    tokenizer.normalizer = normalizers.NFC()  # no Lowercase / StripAccents: they break Hangul
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer() if kind == "wordpiece" else pre_tokenizers.Metaspace()
    tokenizer.train_from_iterator(texts, trainer=trainer)
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_input_names=["input_ids", "attention_mask"])
    fast.add_tokens(PLACEHOLDERS)
    output = Path(output)
    fast.save_pretrained(output)
    write_json(output / METADATA_FILE, {"kind": kind, "vocab_size": vocab_size, "pre_split": pre_split})
    return PreTrainedTokenizerFast.from_pretrained(output)


def dataset_texts(folder: str, pre_split: str = "none", split: str | None = "train") -> Iterator[str]:
    """Normalized texts of an utterances dataset (or its ``tokens`` joined by spaces)."""
    opened = open_dataset(folder, UTTERANCES)
    column = "tokens" if pre_split == "tokens" else "text"
    for path in opened.files:
        table = pq.read_table(path, columns=[column, "split"])
        for value, row_split in zip(table.column(column).to_pylist(), table.column("split").to_pylist(), strict=True):
            if split is None or row_split == split:
                yield " ".join(value) if column == "tokens" else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kd.tokenizer", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="utterances dataset (beam_jobs.preprocess output)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--kind", default="wordpiece", choices=("wordpiece", "unigram"))
    parser.add_argument("--vocab-size", type=int, default=8000)
    parser.add_argument("--min-frequency", type=int, default=2)
    parser.add_argument("--pre-split", default="none", choices=("none", "tokens"))
    parser.add_argument("--all-splits", action="store_true", help="train on every split, not only train")
    args = parser.parse_args(argv)
    try:
        tokenizer = train_tokenizer(dataset_texts(args.data, args.pre_split, None if args.all_splits else "train"),
                                    args.output, kind=args.kind, vocab_size=args.vocab_size,
                                    min_frequency=args.min_frequency, pre_split=args.pre_split)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.output}: {len(tokenizer)} tokens ({args.kind})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

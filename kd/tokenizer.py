"""``python -m kd.tokenizer``: train a WordPiece or Unigram vocabulary from an utterances dataset.

    python -m kd.tokenizer --data out/utterances --output out/tokenizer [--kind wordpiece] \\
        [--vocab-size 8000] [--pre-split tokens]

Hangul is kept as syllables: no lower-casing and no accent stripping (both decompose Hangul
into jamo and turn Korean into [UNK]s). De-identification and masking placeholders (&name&,
&url&, …) are single tokens. ``--pre-split tokens`` trains on the dataset's ``tokens`` column
(soynlp or whitespace pieces) so subwords never cross those boundaries; the choice and the
dataset's word tokenizer are saved in ``malmoi_tokenizer.json`` (word scores copied beside it),
and every later stage that loads the directory (:func:`beam_jobs.text.subwords.load_subword_tokenizer`:
augment, distill, predict) pre-splits the same way.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from beam_jobs.text.placeholders import PLACEHOLDERS
from beam_jobs.text.subwords import PRE_SPLITS, SubwordTokenizer, load_subword_tokenizer, write_metadata
from kd.data import open_dataset
from schemas import UTTERANCES, storage
from schemas.options import MalmoiError, config_command, option

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


@dataclass(frozen=True, kw_only=True)
class TokenizerTrainConfig:
    """Everything that decides a student vocabulary; recorded in ``malmoi_tokenizer.json``."""

    data: str = option(help="utterances dataset (beam_jobs.preprocess output)", metavar="DIR", required=True)
    output: str = option(help="tokenizer folder to write", metavar="DIR", required=True)
    kind: str = option("wordpiece", help="subword model", choices=("wordpiece", "unigram"))
    vocab_size: int = option(8000, help="vocabulary size")
    min_frequency: int = option(2, help="rarer pieces are not in the vocabulary")
    pre_split: str = option("none", help="tokens: train on (and later apply) the dataset's word tokens",
                            choices=PRE_SPLITS)
    all_splits: bool = option(False, help="train on every split, not only train")
    overwrite: bool = option(False, help="replace a tokenizer already in --output")


def train_tokenizer(texts: Iterable[str], output: str | Path, *, kind: str = "wordpiece", vocab_size: int = 8000,
                    min_frequency: int = 2, pre_split: str = "none",
                    word_tokenizer: dict | None = None) -> SubwordTokenizer:
    """Train and save a Hugging Face fast tokenizer; returns it loaded back from disk.

    With ``pre_split="tokens"`` the ``texts`` must already be word tokens joined by spaces, and
    ``word_tokenizer`` is the :class:`TokenizerConfig` (as a dict) that made them: it is recorded,
    so every stage that loads this directory splits new text the same way.
    """
    if kind not in ("wordpiece", "unigram"):
        raise MalmoiError(f"--kind: expected wordpiece or unigram, found {kind!r}.", "pick one of the two.")
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
    fast.add_tokens(list(PLACEHOLDERS))
    output = Path(output)
    fast.save_pretrained(output)
    write_metadata(output, pre_split=pre_split, word_tokenizer=word_tokenizer, kind=kind, vocab_size=vocab_size)
    return load_subword_tokenizer(output)


def word_tokenizer_of(folder: str) -> dict:
    """The word tokenizer (TokenizerConfig as a dict) that made an utterances dataset's ``tokens``."""
    config = open_dataset(folder, UTTERANCES).provenance.get("tokenizer_config")
    if not config:
        raise MalmoiError(f"'{folder}': its manifest does not record the tokenizer that made the tokens column.",
                          "re-run beam_jobs.preprocess with this malmoi version, or train with --pre-split none.")
    return config


def dataset_texts(folder: str, pre_split: str = "none", split: str | None = "train") -> Iterator[str]:
    """Normalized texts of an utterances dataset (or its ``tokens`` joined by spaces)."""
    opened = open_dataset(folder, UTTERANCES)
    column = "tokens" if pre_split == "tokens" else "text"
    for path in opened.files:
        table = storage.read_table(path, columns=[column, "split"])
        for value, row_split in zip(table.column(column).to_pylist(), table.column("split").to_pylist(), strict=True):
            if split is None or row_split == split:
                yield " ".join(value) if column == "tokens" else value


def main(argv: list[str] | None = None) -> int:
    def command(config: TokenizerTrainConfig) -> None:
        if not config.overwrite and (Path(config.output) / "tokenizer.json").exists():
            raise MalmoiError(f"--output {config.output} already holds a tokenizer (tokenizer.json).",
                              "choose a new folder, or pass --overwrite to replace it.")
        words = word_tokenizer_of(config.data) if config.pre_split == "tokens" else None
        tokenizer = train_tokenizer(dataset_texts(config.data, config.pre_split, None if config.all_splits else "train"),
                                    config.output, kind=config.kind, vocab_size=config.vocab_size,
                                    min_frequency=config.min_frequency, pre_split=config.pre_split,
                                    word_tokenizer=words)
        print(f"{config.output}: {len(tokenizer)} tokens ({config.kind})")

    return config_command(TokenizerTrainConfig, command, argv, prog="python -m kd.tokenizer", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())

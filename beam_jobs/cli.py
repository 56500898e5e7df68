"""Command-line pieces shared by the Beam jobs: reader and normalizer options."""

from __future__ import annotations

import argparse

from beam_jobs.readers import FORMATS, ReaderOptions
from beam_jobs.text.normalizer import NormalizerConfig


def add_reader_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", action="append", required=True, metavar="GLOB",
                        help="file, folder or glob; repeat for several (quote globs)")
    parser.add_argument("--format", default="auto", choices=FORMATS)
    parser.add_argument("--text-column", default="text", help="jsonl/csv/tsv/parquet: the text field")
    parser.add_argument("--label-column", default="label",
                        help="jsonl/csv/tsv/parquet: the label field, used when present")
    parser.add_argument("--id-column", default="id",
                        help="jsonl/csv/tsv/parquet: a record id field (kept in meta), used when present")
    parser.add_argument("--doc-id-column", default=None, help="field grouping rows into documents/dialogues")
    parser.add_argument("--corpus-name", default=None, help="value of the corpus column (default: the format)")
    parser.add_argument("--normalizer-config", default=None, metavar="JSON",
                        help="a NormalizerConfig as JSON (see beam_jobs.text.normalizer)")


def reader_options(args: argparse.Namespace) -> ReaderOptions:
    return ReaderOptions(args.format, args.text_column, args.label_column, args.id_column,
                         args.doc_id_column, args.corpus_name)


def normalizer_config(args: argparse.Namespace) -> NormalizerConfig:
    return NormalizerConfig.from_file(args.normalizer_config) if args.normalizer_config else NormalizerConfig()

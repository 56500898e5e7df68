"""``python -m schemas.inspect DIR``: summarize a malmoi dataset folder (counts, rejects, a few rows)."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

from schemas.dataset import STATS_NAME, read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder")
    parser.add_argument("--rows", type=int, default=5, help="how many rows to show")
    args = parser.parse_args(argv)
    manifest = read_manifest(args.folder)
    print(f"{args.folder}: schema {manifest['schema']} v{manifest['schema_version']}, "
          f"{manifest['num_rows']} rows {manifest['rows_per_split']}")
    with open(f"{args.folder.rstrip('/')}/{STATS_NAME}", encoding="utf-8") as handle:
        stats = json.load(handle)
    print("stats:", json.dumps(stats.get("counts", stats), ensure_ascii=False, sort_keys=True))
    frame = pd.read_parquet(args.folder)
    with pd.option_context("display.max_colwidth", 40, "display.width", 160):
        print(frame[[c for c in ("corpus", "doc_id", "turn", "text_raw", "text", "split") if c in frame]].head(args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m schemas.inspect DIR``: summarize (DIR may be gs:// or s3://) a malmoi dataset folder (counts, rejects, a few rows)."""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd
import pyarrow as pa

from schemas import storage
from schemas.dataset import STATS_NAME, part_files, read_manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.inspect", description=__doc__)
    parser.add_argument("folder", help="a malmoi dataset folder (local, gs:// or s3://)")
    parser.add_argument("--rows", type=int, default=5, help="how many rows to show (default: 5)")
    args = parser.parse_args(argv)
    manifest = read_manifest(args.folder)
    print(f"{args.folder}: schema {manifest['schema']} v{manifest['schema_version']}, "
          f"{manifest['num_rows']} rows {manifest['rows_per_split']}")
    stats = storage.read_json(storage.join(args.folder, STATS_NAME))
    print("stats:", json.dumps(stats.get("counts", stats), ensure_ascii=False, sort_keys=True))
    files = part_files(args.folder)  # through malmoi's storage layer: local, gs:// and s3:// alike
    frame = pa.concat_tables([storage.read_table(f) for f in files]).to_pandas() if files else pd.DataFrame()
    with pd.option_context("display.max_colwidth", 40, "display.width", 160):
        print(frame[[c for c in ("corpus", "doc_id", "turn", "text_raw", "text", "split") if c in frame]].head(args.rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

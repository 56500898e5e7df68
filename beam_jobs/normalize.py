"""``python -m beam_jobs.normalize``: the normalizer as a shell filter, stdin -> stdout.

One normalized line per input line (empty lines stay empty, so line numbers match).
``--edits`` prints one JSON object per line instead: ``{"text": ..., "edits": [...]}``.

    echo '넘 좋아용ㅋㅋㅋㅋ' | python -m beam_jobs.normalize        # -> 너무 좋아요ㅋㅋ
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from beam_jobs.text.normalizer import Normalizer, NormalizerConfig


def main(argv: list[str] | None = None, stdin=None, stdout=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_jobs.normalize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=None, help="a NormalizerConfig as JSON")
    parser.add_argument("--edits", action="store_true", help="print JSON lines with the text and its edits")
    parser.add_argument("--corpus", default=None, help="enable corpus-specific rules, e.g. kspon")
    parser.add_argument("--print-config", action="store_true", help="print the resolved config and its hash")
    args = parser.parse_args(argv)
    try:
        config = NormalizerConfig.from_file(args.config) if args.config else NormalizerConfig()
    except (OSError, ValueError) as error:
        print(f"error: --config {args.config}: {error}", file=sys.stderr)
        return 2
    stdin = stdin or io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    stdout = stdout or sys.stdout
    if args.print_config:
        stdout.write(json.dumps({"config": config.to_dict(), "hash": config.hash()}, ensure_ascii=False) + "\n")
        return 0
    normalizer = Normalizer(config)
    for line in stdin:
        text, edits = normalizer.normalize(line.rstrip("\n"), args.corpus)
        if args.edits:
            stdout.write(json.dumps({"text": text, "edits": [e.as_dict() for e in edits]}, ensure_ascii=False) + "\n")
        else:
            stdout.write(text + "\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

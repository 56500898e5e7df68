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
from dataclasses import dataclass

from beam_jobs.text.normalizer import MARKUPS, Normalizer, NormalizerConfig
from schemas.options import add_options, from_args, option


@dataclass(frozen=True, kw_only=True)
class NormalizeConfig:
    normalizer: NormalizerConfig = option(NormalizerConfig(), help="a NormalizerConfig as JSON", flag="--config",
                                          parse=NormalizerConfig.from_file, metavar="JSON")
    edits: bool = option(False, help="print JSON lines with the text and its edits")
    corpus: str | None = option(None, help="the input's transcription conventions: run that corpus's markup rules "
                                "(none by default: generic text keeps {…}, -…-, / and #@…# as written)", choices=MARKUPS)
    print_config: bool = option(False, help="print the resolved config and its hash")


def main(argv: list[str] | None = None, stdin=None, stdout=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_jobs.normalize", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_options(parser, NormalizeConfig)
    config = from_args(NormalizeConfig, parser.parse_args(argv))
    stdin = stdin or io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")
    stdout = stdout or sys.stdout
    if config.print_config:
        stdout.write(json.dumps({"config": config.normalizer.to_dict(), "hash": config.normalizer.hash()},
                                ensure_ascii=False) + "\n")
        return 0
    normalizer = Normalizer(config.normalizer)
    for line in stdin:
        text, edits = normalizer.normalize(line.rstrip("\n"), config.corpus)
        if config.edits:
            stdout.write(json.dumps({"text": text, "edits": [e.as_dict() for e in edits]}, ensure_ascii=False) + "\n")
        else:
            stdout.write(text + "\n")
    stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Benchmark: the normalizer on hostile text (issue 13). Not a test.

    .venv/bin/python -m bench.hostile_text [--length 100000] [--json FILE]

Each shape is a string of ``--length`` characters built to trip backtracking regexes (a URL or
e-mail that never ends, one contraction repeated, one jamo, a stretched syllable …). Reported:
milliseconds per string for malmoi's default normalizer, and the ratio to a baseline run on the
same string in the same process — one linear regex pass that collapses whitespace, the least a
text filter does — so a quadratic rule shows as a ratio that grows with the length.
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

from beam_jobs.text.normalizer import Normalizer

SHAPES = {
    "url_label_run": lambda n: "a-" * (n // 2) + ".",
    "email_local_run": lambda n: "a." * (n // 2) + "@",
    "at_signs": lambda n: "a@" * (n // 2),
    "scheme_then_letters": lambda n: "https://" + "a" * n,
    "contraction_nael": lambda n: "낼 " * (n // 2),
    "contraction_jel": lambda n: "젤 " * (n // 2),
    "adverb_neom": lambda n: "넘 " * (n // 2),
    "one_jamo": lambda n: "ㅋ" * n,
    "one_syllable": lambda n: "가" * n,
    "stretch_pairs": lambda n: "지이" * (n // 2),
    "unit_pairs": lambda n: "가나" * (n // 2),
    "placeholder_like": lambda n: "&a" * (n // 2),
    "mixed_comment": lambda n: ("넘 재밋엇어용ㅋㅋㅋ http://a.co/x 여친이 " * (n // 40 + 1))[:n],
}


def best_of(fn, text: str, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn(text)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=100_000)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    normalizer = Normalizer()
    normalizer("먹엇다 회산가")  # load Kiwi before timing
    spaces = re.compile(r"\s+")
    rows = {}
    for name, make in SHAPES.items():
        text = make(args.length)
        ours = best_of(normalizer, text)
        base = best_of(lambda t: spaces.sub(" ", t), text)
        rows[name] = {"ms": 1000 * ours, "baseline_ms": 1000 * base, "ratio": ours / max(base, 1e-9)}
        print(f"{name:22s} {1000 * ours:8.1f} ms  baseline {1000 * base:6.2f} ms  ratio {ours / max(base, 1e-9):7.0f}")
    result = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "length": args.length, "shapes": rows}
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

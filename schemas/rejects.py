"""The reject record: every input file or record that did not make it, with why and where.

Jobs write them as JSON lines under a dataset's ``_rejects/`` folder and count them per reason
in ``_stats.json``; nothing is dropped without one.
"""

from __future__ import annotations

import json
from typing import NamedTuple

#: ``level`` of a reject that loses a whole file, and of one that loses one record
FILE, RECORD = "file", "record"


class Reject(NamedTuple):
    """Something that did not make it, with why (``reason``, ``detail``) and where (``source``, ``position``)."""

    reason: str
    source: str
    position: str
    detail: str
    excerpt: str = ""
    #: "file" when the whole file is lost (undecodable, unknown format, malformed JSON
    #: document, missing column); "record" for one utterance or line.
    level: str = RECORD

    def as_dict(self) -> dict[str, str]:
        return self._asdict()

    def to_json(self) -> str:
        """One ``_rejects/*.jsonl`` line."""
        return json.dumps(self.as_dict(), ensure_ascii=False, sort_keys=True)


def FileReject(reason: str, source: str, position: str, detail: str, excerpt: str = "") -> Reject:  # noqa: N802
    """A reject for a whole file."""
    return Reject(reason, source, position, detail, excerpt, FILE)

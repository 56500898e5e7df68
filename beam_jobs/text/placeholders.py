"""Placeholder tokens: de-identification marks (NIKL ``&name&``, AI Hub ``#@이름#``) and masks.

One list, used by the normalizer (what it writes), the tokenizers (never split them) and the
student vocabulary (one token each).
"""

from __future__ import annotations

import re

#: any placeholder, as the normalizer writes them
PLACEHOLDER_RE = re.compile(r"&[a-z][a-z0-9-]*&")

#: AI Hub's de-identification marks (``#@이름#``) -> NIKL-style placeholders
AIHUB_PLACEHOLDERS = {
    "이름": "&name&", "주소": "&address&", "전화번호": "&tel-num&", "계좌번호": "&account&",
    "소속": "&affiliation&", "번호": "&num&", "카드번호": "&card-num&", "주민번호": "&social-security-num&",
    "이메일": "&email&", "url": "&url&", "기타": "&etc&",
}

#: what the masking rules and the emoji policy write
MASKS = ("&email&", "&url&", "&mention&", "&tel-num&", "&emoji&")

#: every placeholder the normalizer can produce; this order fixes their ids in a student vocabulary
PLACEHOLDERS: tuple[str, ...] = ("&name&", "&tel-num&", "&account&", "&address&", "&affiliation&", "&card-num&",
                                 "&num&", "&social-security-num&", "&email&", "&url&", "&mention&", "&emoji&",
                                 "&etc&")

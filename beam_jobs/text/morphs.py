"""Optional Kiwi morpheme analysis for the ``morphs`` column, with Sejong tag names.

Kiwi's tags are Sejong's plus a few of its own; those are mapped to the names the ETRI
analyzer (Sejong tag set) uses: irregular-conjugation suffixes (``VV-I``, ``VA-R``) drop the
suffix, web tokens (``W_URL``, ``W_EMOJI``…) become ``SW``, an extra coda (``Z_CODA``) and
other unanalyzable pieces become ``NA``, user words ``NNP``. Placeholders such as ``&name&``
are passed to Kiwi as pre-tokenized proper nouns so they stay whole.
"""

from __future__ import annotations

from beam_jobs.text.placeholders import PLACEHOLDER_RE

_SPECIAL_TAGS = {"Z_CODA": "NA", "Z_SIOT": "NA", "UN": "NA"}


def sejong_tag(tag: str) -> str:
    """Kiwi tag -> Sejong / ETRI tag name."""
    if tag in _SPECIAL_TAGS:
        return _SPECIAL_TAGS[tag]
    if tag.startswith("W_"):
        return "SW"
    if tag.startswith("USER"):
        return "NNP"
    if "-" in tag:  # VV-I, VA-R, XSA-I …
        return tag.split("-", 1)[0]
    return tag


class KiwiMorphs:
    """``text -> [{"form", "tag"}]``; build once per process (loading Kiwi takes seconds)."""

    def __init__(self, typos: str | None = None) -> None:
        from kiwipiepy import Kiwi

        self._kiwi = Kiwi()
        self._typos = typos

    def __call__(self, text: str) -> list[dict[str, str]]:
        pretokenized = [(m.start(), m.end(), "NNP") for m in PLACEHOLDER_RE.finditer(text)]
        kwargs = {"pretokenized": pretokenized} if pretokenized else {}
        if self._typos:
            kwargs["typos"] = self._typos
        return [{"form": t.form, "tag": sejong_tag(t.tag)} for t in self._kiwi.tokenize(text, **kwargs)]

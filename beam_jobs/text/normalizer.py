"""The colloquial Korean normalizer: ``str -> (str, edits)``, pure Python, no Beam or torch.

Every change is recorded as an :class:`Edit` so it can be audited; replaying the edits in
order on the raw text gives the normalized text (:func:`replay_edits`). Offsets of an edit
refer to the text as it was just before that edit was applied.

Must-keep guarantees (tested): no rule deletes a Hangul syllable, changes a digit, or touches
a Latin word, except the masking rules (URLs, e-mails, mentions, phone numbers) which replace
whole matches by a placeholder when their policy asks for it.

Rules run in a fixed order; each can be switched off in :class:`NormalizerConfig`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

from beam_jobs.text.colloquial import colloquial_rules
from beam_jobs.text.config import RULES_VERSION, NormalizerConfig
from beam_jobs.text.edits import Edit, Rule, replay_edits, sub_rule
from beam_jobs.text.hangul import HANGUL_SYLLABLE, JAMO, KIEUK_FINAL, compose, decompose, has_jamo
from beam_jobs.text.placeholders import AIHUB_PLACEHOLDERS, PLACEHOLDER_RE

__all__ = ["RULES_VERSION", "Edit", "Normalizer", "NormalizerConfig", "PLACEHOLDER_RE", "replay_edits"]

# --------------------------------------------------------------------------- character classes

_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_CONTROL_RE = re.compile(f"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f{_ZERO_WIDTH}]")
_SPACE_LIKE_RE = re.compile("[\t\n\r\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")
_FULLWIDTH_RE = re.compile("[\uff01-\uff5e]+")
_WHITESPACE_RUN_RE = re.compile(r" {2,}")
_EDGE_SPACE_RE = re.compile(r"^ +| +$")

# NIKL markup.
_NIKL_BRACE_RE = re.compile(r"\{([a-z_]+)(?::[^{}]*)?\}")
_NIKL_UNCLEAR_RE = re.compile(r"\(\(([^()]*)\)\)")
_NIKL_DASH_NOTE_RE = re.compile(r"(?:(?<=\s)|^)-[가-힣][가-힣 ]*-(?=\s|$)")

# AI Hub de-identification and system markup: #@이름#, #@주소#, #@시스템#사진#.
_AIHUB_MARK_RE = re.compile(r"#@([^#\s]+)#(?:([^#\s]+)#)?")


def _aihub_mark(match: re.Match[str]) -> str:
    if match.group(1) == "시스템":  # system events (photo, sticker, file) are not speech
        return ""
    if match.group(2):  # an unknown two-part mark: keep it as written
        return match.group(0)
    return AIHUB_PLACEHOLDERS.get(match.group(1), "&etc&")


# KsponSpeech markup.
_KSPON_DUAL_RE = re.compile(r"\(([^()/]*)\)/\(([^()/]*)\)")
_KSPON_NOISE_RE = re.compile(r"(?:(?<=\s)|^)([blonu])/(?=\s|$)")
_KSPON_WORD_MARK_RE = re.compile(r"(?<=[가-힣A-Za-z0-9])[/+*]+(?=\s|$|[.,?!])")

# Runs.
_LAUGH_CLASS = "ㅋㅎ"
_CRY_CLASS = "ㅠㅜㅡ"


def _jamo_run_re(max_run: int) -> re.Pattern[str]:
    # The same jamo repeated, or a mixed laughter (ㅋㅎ) or crying (ㅠㅜ) run.
    return re.compile(
        f"([{JAMO}])\\1{{{max_run},}}|[{_LAUGH_CLASS}]{{{max_run + 1},}}|[{_CRY_CLASS}]{{{max_run + 1},}}"
    )


def _punct_run_re(max_run: int) -> re.Pattern[str]:
    return re.compile(f"([!?.,~;^♥♡★☆♪♬ㆍ·])\\1{{{max_run},}}|[!?]{{{max_run + 1},}}|…{{2,}}")


# A syllable whose coda is ㅋ (U+11BF as final) followed by ㅋ jamo: the coda is laughter.
_GLUED_LAUGH_RE = re.compile(f"([{HANGUL_SYLLABLE}])(?=ㅋ)")
_REAL_KIEUK_WORDS = ("부엌", "녘", "키읔")  # words whose ㅋ coda is real

_URL_RE = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|\b[a-z0-9-]+\.(?:com|net|org|kr|io|me|ly|co\.kr)(?:/[^\s]*)?\b",
                     re.IGNORECASE)
_EMAIL_RE = re.compile(r"\b[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+\b")
_MENTION_RE = re.compile(r"(?<![\w@])@[A-Za-z0-9_.]{2,}")
_PHONE_RE = re.compile(r"(?<!\d)(?:01[016789]|0[2-6][0-9]?)[-. ]?\d{3,4}[-. ]?\d{4}(?!\d)")

_EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff\ufe0f\u200d\U0001f1e6-\U0001f1ff]+"
)


def _strip_kieuk_coda(match: re.Match[str]) -> str:
    syllable = match.group(1)
    initial, vowel, final = decompose(syllable)
    if final != KIEUK_FINAL:
        return syllable
    text = match.string
    start = match.start(1)
    for word in _REAL_KIEUK_WORDS:
        if text[max(0, start - len(word) + 1): start + 1].endswith(word):
            return syllable
    return compose(initial, vowel) + "ㅋ"


class Normalizer:
    """Applies the configured rules in order. Build once, call :meth:`normalize` many times."""

    def __init__(self, config: NormalizerConfig | None = None) -> None:
        self.config = config or NormalizerConfig()
        self._rules: list[tuple[str, Rule, bool]] = self._build_rules()  # (name, rule, kspon-only)
        self._kiwi = None

    # The order matters: markup before runs (so `{laughing}` → ㅋㅋ is capped with its
    # neighbours), masking before runs (URLs keep their dots), whitespace last.
    def _build_rules(self) -> list[tuple[str, Rule, bool]]:
        c = self.config
        rules: list[tuple[str, Rule, bool]] = []

        def add(name: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
                trigger: Callable[[str], bool] | None = None, kspon_only: bool = False) -> None:
            rules.append((name, sub_rule(name, pattern, replace, trigger), kspon_only))

        if c.unicode_nfc:
            rules.append(("unicode_nfc", _nfc_rule, False))
        if c.strip_control:
            add("control_chars", _CONTROL_RE, lambda m: "")
            add("space_chars", _SPACE_LIKE_RE, lambda m: " ")
        if c.fullwidth_to_ascii:
            add("fullwidth", _FULLWIDTH_RE, lambda m: "".join(chr(ord(ch) - 0xFEE0) for ch in m.group(0)))
        if c.kspon_markup:
            keep = 1 if c.kspon_dual == "spelling" else 2
            add("kspon_dual", _KSPON_DUAL_RE, lambda m: m.group(keep), lambda t: ")/(" in t)
            laugh = c.laughter_event_as
            add("kspon_noise", _KSPON_NOISE_RE, lambda m: laugh if m.group(1) == "l" else "",
                lambda t: "/" in t, kspon_only=True)
            add("kspon_word_mark", _KSPON_WORD_MARK_RE, lambda m: "",
                lambda t: "/" in t or "+" in t or "*" in t, kspon_only=True)
        if c.nikl_markup:
            laugh = c.laughter_event_as
            add("nikl_event", _NIKL_BRACE_RE, lambda m: laugh if m.group(1) == "laughing" else "",
                lambda t: "{" in t)
            add("nikl_unclear", _NIKL_UNCLEAR_RE,
                lambda m: "" if m.group(1) in ("", "xx", "XX") else m.group(1), lambda t: "((" in t)
            add("nikl_note", _NIKL_DASH_NOTE_RE, lambda m: "", lambda t: "-" in t)
            add("aihub_mark", _AIHUB_MARK_RE, _aihub_mark, lambda t: "#@" in t)
        if c.mask_emails:
            add("mask_email", _EMAIL_RE, lambda m: "&email&", lambda t: "@" in t)
        if c.mask_urls:
            add("mask_url", _URL_RE, lambda m: "&url&", lambda t: "." in t)
        if c.mask_mentions:
            add("mask_mention", _MENTION_RE, lambda m: "&mention&", lambda t: "@" in t)
        if c.mask_phone_numbers:
            add("mask_phone", _PHONE_RE, lambda m: "&tel-num&", lambda t: "0" in t)
        if c.emoji != "keep":
            replacement = "" if c.emoji == "drop" else "&emoji&"
            add(f"emoji_{c.emoji}", _EMOJI_RE, lambda m: replacement)
        if c.split_glued_laughter:
            add("glued_laughter", _GLUED_LAUGH_RE, _strip_kieuk_coda, lambda t: "ㅋ" in t)
        if c.colloquial:
            for name, rule in colloquial_rules(c):
                rules.append((name, rule, False))
        max_jamo = c.max_jamo_run
        add("jamo_run", _jamo_run_re(max_jamo),
            lambda m: m.group(0)[:max_jamo], has_jamo)
        max_punct = c.max_punct_run
        add("punct_run", _punct_run_re(max_punct),
            lambda m: "…" if m.group(0)[0] == "…" else m.group(0)[:max_punct])
        if c.whitespace:
            add("whitespace_run", _WHITESPACE_RUN_RE, lambda m: " ", lambda t: "  " in t)
            add("whitespace_edge", _EDGE_SPACE_RE, lambda m: "",
                lambda t: bool(t) and (t[0] == " " or t[-1] == " "))
        return rules

    def normalize(self, text: str, corpus: str | None = None) -> tuple[str, list[Edit]]:
        """Return the normalized text and the edits that produced it.

        ``corpus`` enables corpus-specific rules: KsponSpeech word marks (``아/``, ``그+``)
        only run for ``corpus == "kspon"``, since ``/ + *`` mean other things in chat.
        """
        edits: list[Edit] = []
        is_kspon = corpus == "kspon"
        for _name, rule, kspon_only in self._rules:
            if kspon_only and not is_kspon:
                continue
            text = rule(text, edits)
        if self.config.kiwi_spacing and text:
            text = self._kiwi_space(text, edits)
        return text, edits

    def __call__(self, text: str, corpus: str | None = None) -> str:
        return self.normalize(text, corpus)[0]

    def _kiwi_space(self, text: str, edits: list[Edit]) -> str:
        if self._kiwi is None:
            from kiwipiepy import Kiwi

            self._kiwi = Kiwi()
        spaced = self._kiwi.space(text, reset_whitespace=False)
        if spaced != text:
            edits.append(Edit("kiwi_spacing", 0, len(text), text, spaced))
        return spaced


def _nfc_rule(text: str, edits: list[Edit]) -> str:
    if unicodedata.is_normalized("NFC", text):
        return text
    normalized = unicodedata.normalize("NFC", text)
    edits.append(Edit("unicode_nfc", 0, len(text), text, normalized))
    return normalized

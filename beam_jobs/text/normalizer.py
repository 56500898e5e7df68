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

from beam_jobs.text.colloquial import MAX_JUDGED_RUN, colloquial_rules
from beam_jobs.text.config import RULES_VERSION, NormalizerConfig
from beam_jobs.text.edits import Edit, Rule, replay_edits, sub_rule
from beam_jobs.text.hangul import (
    HANGUL_SYLLABLE,
    JAMO,
    KIEUK_FINAL,
    VOWEL_ONLY_INITIAL,
    compose,
    decompose,
    has_jamo,
)
from beam_jobs.text.judge import Judge, shared_judge
from beam_jobs.text.placeholders import AIHUB_PLACEHOLDERS, PLACEHOLDER_RE

#: transcription conventions with markup rules of their own (``Normalizer.normalize(text, markup)``)
MARKUPS = ("nikl", "kspon", "aihub")

__all__ = ["MARKUPS", "RULES_VERSION", "Edit", "Normalizer", "NormalizerConfig", "PLACEHOLDER_RE", "replay_edits"]

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
_CRY_CLASS = "ㅠㅜㅡ"


def _jamo_run_re(max_run: int) -> re.Pattern[str]:
    # A mixed crying run (ㅠㅜㅡ: one sound, capped whole, ㅠㅠㅠㅜ -> ㅠㅠ), the same jamo repeated
    # (ㅋㅋㅋㅋ -> ㅋㅋ), or a unit of 2-4 jamo repeated (ㅋㅎㅋㅎㅋㅎ -> ㅋㅎㅋㅎ, group 2): mixed
    # laughter keeps its mix (ㅎㅎㅎㅋㅋ -> ㅎㅎㅋㅋ). Linear: a long scan ends in a match it consumes.
    return re.compile(
        f"[{_CRY_CLASS}]{{{max_run + 1},}}|([{JAMO}])\\1{{{max_run},}}|([{JAMO}]{{2,4}}?)\\2{{{max_run},}}"
    )


def _cap_jamo_run(max_run: int) -> Callable[[re.Match[str]], str]:
    def cap(match: re.Match[str]) -> str:
        unit = match.group(2)
        return unit * max_run if unit else match.group(0)[:max_run]

    return cap


def _punct_run_re(max_run: int) -> re.Pattern[str]:
    # A run of ! and ? mixed (?!?!), of one mark (....), or of ellipses. The first character is a
    # class, so the regex engine skips to it fast; the branches then read what it was.
    return re.compile(f"([!?.,~;^♥♡★☆♪♬ㆍ·…])(?:(?<=[!?])[!?]{{{max_run},}}|(?<=…)…+|\\1{{{max_run},}})")


# A syllable whose coda is ㅋ (U+11BF as final) followed by ㅋ jamo: the coda is laughter.
# A laughter consonant typed into the last syllable's coda (먹었엌ㅋㅋ, 좋았닿ㅎㅎ), or a crying
# vowel's consonant pulled from the syllable before (머금ㅠㅠ typed as 머그뮤ㅠ).
_GLUED_CONSONANT_RE = re.compile(f"([{HANGUL_SYLLABLE}])(?=[ㅋㅎ])")
_GLUED_VOWEL_RE = re.compile(f"[{HANGUL_SYLLABLE}]+(?=[ㅠㅜ])")
_REAL_CODA_WORDS = ("부엌", "녘", "키읔", "히읗")  # words whose ㅋ / ㅎ coda is real
_HIEUH_FINAL = 27
#: the syllables an ㅎ typed into their coda can belong to (좋았닿ㅎ: 다); not stems such as 좋, 놓, 넣
_HIEUH_HOSTS = frozenset("다요지네까자야죠게래니나해어아고라데서여거군")
#: initial consonant index -> the same consonant's final index (ㄸ ㅃ ㅉ cannot be finals)
_INITIAL_TO_FINAL = {0: 1, 1: 2, 2: 4, 3: 7, 5: 8, 6: 16, 7: 17, 9: 19, 10: 20, 12: 22, 14: 23, 15: 24, 16: 25,
                     17: 26, 18: 27}
_VOWEL_JAMO = {13: "ㅜ", 17: "ㅠ"}

# Masks end at the first Hangul character (http://naver.com에서 -> &url&에서): URLs and e-mail
# addresses are written in ASCII (IDNs aside), the Hangul glued to them is the sentence's.
# Linear on hostile input: a domain or local part may start only where no character of its own
# class precedes it (else 'a-a-a-…' retries from every position), and the parts have bounded lengths.
_URL_RE = re.compile(r"(?:https?://|www\.)(?:(?!&[a-z][a-z0-9-]{0,30}&)[^\s<>\"'가-힣ㄱ-ㅣ]){1,2000}"
                     r"|(?<![a-z0-9.-])(?:[a-z0-9][a-z0-9-]{0,62}\.){1,6}(?:com|net|org|kr|io|me|ly|co\.kr)(?![a-z0-9-])"
                     r"(?:/[^\s가-힣ㄱ-ㅣ]{0,2000})?", re.IGNORECASE)
_EMAIL_RE = re.compile(r"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}\b")
_MENTION_RE = re.compile(r"(?<![\w@&])@[A-Za-z0-9_.]{2,64}")  # not right after a placeholder (idempotence)
_PHONE_RE = re.compile(r"(?<!\d)(?:01[016789]|0[2-6][0-9]?)[-. ]?\d{3,4}[-. ]?\d{4}(?!\d)")

_EMOJI_RE = re.compile(
    "[\U0001f000-\U0001faff\u2600-\u27bf\u2300-\u23ff\u2b00-\u2bff\ufe0f\u200d\U0001f1e6-\U0001f1ff]+"
)


_URL_CUES = ("http", "www.", *(f".{tld}" for tld in ("com", "net", "org", "kr", "io", "me", "ly")))


def _may_hold_url(text: str) -> bool:
    """What every URL the mask knows contains (a scheme, www. or a known top-level domain)."""
    if "." not in text:
        return False
    lowered = text.lower()
    return any(cue in lowered for cue in _URL_CUES)


def _glued_consonant(match: re.Match[str]) -> str:
    """먹었엌ㅋ -> 먹었어ㅋㅋ, 좋았닿ㅎ -> 좋았다ㅎㅎ (부엌, 녘 and stems such as 좋 stay)."""
    syllable = match.group(1)
    initial, vowel, final = decompose(syllable)
    jamo = match.string[match.end()]
    if (final, jamo) not in ((KIEUK_FINAL, "ㅋ"), (_HIEUH_FINAL, "ㅎ")):
        return syllable
    if final == _HIEUH_FINAL and compose(initial, vowel) not in _HIEUH_HOSTS:
        return syllable
    text, start = match.string, match.start(1)
    for word in _REAL_CODA_WORDS:
        if text[max(0, start - len(word) + 1): start + 1].endswith(word):
            return syllable
    return compose(initial, vowel) + jamo


def undo_liaison(word: str) -> str:
    """The last two syllables respelled without liaison (머금 -> 먹음): the second's initial
    consonant becomes the first's coda and the second starts with ㅇ."""
    first, second = word[-2], word[-1]
    f_initial, f_vowel, f_final = decompose(first)
    s_initial, s_vowel, s_final = decompose(second)
    if f_final or s_initial not in _INITIAL_TO_FINAL:
        return word
    return word[:-2] + compose(f_initial, f_vowel, _INITIAL_TO_FINAL[s_initial]) + compose(VOWEL_ONLY_INITIAL, s_vowel,
                                                                                            s_final)


def _glued_vowel(judge: Judge) -> Callable[[re.Match[str]], str]:
    """머그뮤ㅠ -> 먹음ㅠㅠ, 머구뮤ㅠ -> 먹음ㅠㅠ: the consonant of a last syllable that is only consonant + ㅠ/ㅜ before a
    ㅠ/ㅜ run belongs to the syllable before it (머그뮤 = 머금 + ㅠ, and 머금 is 먹음 spelled as
    pronounced), when the judge reads the word better that way (나무ㅜㅜ stays)."""

    def replace(match: re.Match[str]) -> str:
        run = match.group(0)
        if len(run) < 2 or len(run) > MAX_JUDGED_RUN or not judge.analyzes:
            return run
        f_initial, f_vowel, f_final = decompose(run[-2])
        s_initial, s_vowel, s_final = decompose(run[-1])
        if f_final or s_final or s_vowel not in _VOWEL_JAMO or s_initial not in _INITIAL_TO_FINAL:
            return run
        moved = run[:-2] + compose(f_initial, f_vowel, _INITIAL_TO_FINAL[s_initial])
        candidates = [moved]
        if len(moved) >= 2:
            unlinked = undo_liaison(moved)
            candidates.append(unlinked)
            if unlinked[-1] == "움":  # the nominal ending written as the ㅜ before it (머구뮤 = 먹음)
                candidates.append(unlinked[:-1] + "음")
        analyses = {word: judge.analyze(word) for word in candidates}
        best = max(candidates, key=lambda word: (analyses[word].valid, analyses[word].score))
        return best + _VOWEL_JAMO[s_vowel] if judge.better(run, best) else run

    return replace


class Normalizer:
    """Applies the configured rules in order. Build once, call :meth:`normalize` many times."""

    def __init__(self, config: NormalizerConfig | None = None) -> None:
        self.config = config or NormalizerConfig()
        self.judge = shared_judge(self.config.lexical_judge)  # loads Kiwi on its first question only
        self._rules: list[tuple[str, Rule, str | None]] = self._build_rules()  # (name, rule, markup it needs)
        #: the rules that run for each markup (None: generic text), in order
        self._rules_for = {markup: [rule for _, rule, needs in self._rules if needs in (None, markup)]
                           for markup in (None, *MARKUPS)}
        self._kiwi = None

    # The order matters: markup before runs (so `{laughing}` → ㅋㅋ is capped with its
    # neighbours), masking before runs (URLs keep their dots), whitespace last.
    def _build_rules(self) -> list[tuple[str, Rule, str | None]]:
        c = self.config
        rules: list[tuple[str, Rule, str | None]] = []

        def add(name: str, pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str],
                trigger: Callable[[str], bool] | None = None, markup: str | None = None) -> None:
            rules.append((name, sub_rule(name, pattern, replace, trigger), markup))

        if c.unicode_nfc:
            rules.append(("unicode_nfc", _nfc_rule, None))
        if c.strip_control:
            add("control_chars", _CONTROL_RE, lambda m: "")
            add("space_chars", _SPACE_LIKE_RE, lambda m: " ")
        if c.fullwidth_to_ascii:
            add("fullwidth", _FULLWIDTH_RE, lambda m: "".join(chr(ord(ch) - 0xFEE0) for ch in m.group(0)))
        if c.kspon_markup:
            keep = 1 if c.kspon_dual == "spelling" else 2
            add("kspon_dual", _KSPON_DUAL_RE, lambda m: m.group(keep), lambda t: ")/(" in t, markup="kspon")
            laugh = c.laughter_event_as
            add("kspon_noise", _KSPON_NOISE_RE, lambda m: laugh if m.group(1) == "l" else "",
                lambda t: "/" in t, markup="kspon")
            add("kspon_word_mark", _KSPON_WORD_MARK_RE, lambda m: "",
                lambda t: "/" in t or "+" in t or "*" in t, markup="kspon")
        if c.nikl_markup:
            laugh = c.laughter_event_as
            add("nikl_event", _NIKL_BRACE_RE, lambda m: laugh if m.group(1) == "laughing" else "",
                lambda t: "{" in t, markup="nikl")
            add("nikl_unclear", _NIKL_UNCLEAR_RE,
                lambda m: "" if m.group(1) in ("", "xx", "XX") else m.group(1), lambda t: "((" in t, markup="nikl")
            add("nikl_note", _NIKL_DASH_NOTE_RE, lambda m: "", lambda t: "-" in t, markup="nikl")
            add("aihub_mark", _AIHUB_MARK_RE, _aihub_mark, lambda t: "#@" in t, markup="aihub")
        if c.mask_emails:
            add("mask_email", _EMAIL_RE, lambda m: "&email&", lambda t: "@" in t)
        if c.mask_urls:
            add("mask_url", _URL_RE, lambda m: "&url&", _may_hold_url)
        if c.mask_mentions:
            add("mask_mention", _MENTION_RE, lambda m: "&mention&", lambda t: "@" in t)
        if c.mask_phone_numbers:
            add("mask_phone", _PHONE_RE, lambda m: "&tel-num&", lambda t: "0" in t)
        if c.emoji != "keep":
            replacement = "" if c.emoji == "drop" else "&emoji&"
            add(f"emoji_{c.emoji}", _EMOJI_RE, lambda m: replacement)
        if c.split_glued_laughter:
            add("glued_laughter", _GLUED_CONSONANT_RE, _glued_consonant, lambda t: "ㅋ" in t or "ㅎ" in t)
            add("glued_crying", _GLUED_VOWEL_RE, _glued_vowel(self.judge), lambda t: "ㅠ" in t or "ㅜ" in t)
        if c.colloquial:
            for name, rule in colloquial_rules(c, self.judge):
                rules.append((name, rule, None))
        max_jamo = c.max_jamo_run
        add("jamo_run", _jamo_run_re(max_jamo), _cap_jamo_run(max_jamo), has_jamo)
        max_punct = c.max_punct_run
        add("punct_run", _punct_run_re(max_punct),
            lambda m: "…" if m.group(0)[0] == "…" else m.group(0)[:max_punct])
        if c.whitespace:
            add("whitespace_run", _WHITESPACE_RUN_RE, lambda m: " ", lambda t: "  " in t)
            add("whitespace_edge", _EDGE_SPACE_RE, lambda m: "",
                lambda t: bool(t) and (t[0] == " " or t[-1] == " "))
        return rules

    def normalize(self, text: str, markup: str | None = None) -> tuple[str, list[Edit]]:
        """Return the normalized text and the edits that produced it.

        ``markup`` names the transcription conventions of the text's corpus (:data:`MARKUPS`:
        ``nikl``, ``kspon``, ``aihub``; the readers set it): only then do that corpus's markup
        rules run. Generic text (None) keeps ``{…}``, ``-…-``, ``/`` and ``#@…#`` as written.
        """
        if markup is not None and markup not in MARKUPS:
            raise ValueError(f"markup: expected one of {MARKUPS} or None, found {markup!r}")
        edits: list[Edit] = []
        for rule in self._rules_for[markup]:
            text = rule(text, edits)
        if self.config.kiwi_spacing and text:
            text = self._kiwi_space(text, edits)
        return text, edits

    def __call__(self, text: str, markup: str | None = None) -> str:
        return self.normalize(text, markup)[0]

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

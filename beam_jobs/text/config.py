"""``NormalizerConfig``: which normalizer rules run and with which policy (pure, hashable).

Its :meth:`NormalizerConfig.hash` (configuration, rule-code version and lexicon content) goes
into every manifest, so outputs of different normalizers are never mixed silently.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from beam_jobs.text import lexicons


@dataclass(frozen=True)
class NormalizerConfig:
    """Which rules run and with which policy. Its :meth:`hash` goes into every manifest."""

    unicode_nfc: bool = True
    strip_control: bool = True
    fullwidth_to_ascii: bool = True
    whitespace: bool = True
    #: NIKL markup: {laughing}, {emoji}, {share:…}, ((xx)), (()), -불완전 발화- (NIKL files only), and
    #: AI Hub marks #@이름# (AI Hub files only): markup rules never run on generic text.
    nikl_markup: bool = True
    #: KsponSpeech markup: (spelling)/(pronunciation), b/ l/ o/ n/ u/, word/ word+ word* (KsponSpeech only).
    kspon_markup: bool = True
    #: Which side of a KsponSpeech dual transcription to keep: "spelling" or "pronunciation".
    kspon_dual: str = "spelling"
    #: What a laughter event ({laughing}, l/) becomes; "" drops it.
    laughter_event_as: str = "ㅋㅋ"
    #: Laughter / crying / other jamo runs longer than this are capped (ㅋㅋㅋㅋ -> ㅋㅋ).
    max_jamo_run: int = 2
    #: Punctuation runs (!!!!, ????, ~~~~, ......) longer than this are capped.
    max_punct_run: int = 3
    #: Split a laughter/crying jamo glued into the last syllable (먹었엌ㅋㅋ -> 먹었어ㅋㅋㅋ,
    #: 좋았닿ㅎㅎ -> 좋았다ㅎㅎㅎ, 머그뮤ㅠ -> 먹음ㅠㅠ).
    split_glued_laughter: bool = True
    #: Masking policies: replace by a placeholder token (&url&, &email&, &mention&, &tel-num&).
    mask_urls: bool = True
    mask_emails: bool = True
    mask_mentions: bool = True
    mask_phone_numbers: bool = True
    #: Emoji policy: "keep", "drop", or "placeholder" (each emoji run becomes &emoji&).
    emoji: str = "keep"
    #: Colloquial rewriting (see beam_jobs.text.colloquial): lengthening, repeats, 애교 endings,
    #: contractions, typos, copula.
    colloquial: bool = True
    #: The lexical judge asked before a rewrite that could hit a real word: "kiwi" (Kiwi's
    #: analysis of the Hangul run, cached per run) or "none" (the shape rules alone; they damage
    #: real words such as 자기이익, and the analysis-driven rules do not run).
    lexical_judge: str = "kiwi"
    #: Extra-coda endings: "kiwi" also strips a coda wherever the judge's analysis reads an extra
    #: one (Z_CODA: 귀엽당 -> 귀엽다, 배고프닷 -> 배고프다); "rules": the endings lexicon only.
    ending_judge: str = "kiwi"
    #: A unit of 1-4 syllables repeated three times or more is cut to this many (짱짱짱짱 -> 짱짱).
    max_unit_repeat: int = 2
    #: Typo fixes: 됬 -> 됐, 되서 -> 돼서 / 돼는 -> 되는 and 아니였 -> 아니었 always (grammar); with the
    #: judge, typo-form endings (먹엇다 -> 먹었다, 하겄다 -> 하겠다, 먹것니 -> 먹겠니, 않앗던 -> 않았던)
    #: and one-syllable spellings (재밋어 -> 재밌어, 했즤 -> 했지; 재미잇다 -> 재미있다 and 재미없내 ->
    #: 재미없네 by the judge's margin where the original reads too).
    typos: bool = True
    #: Noun + copula contractions, nouns known to the judge only (회산가 -> 회사인가).
    copula: bool = True
    #: Expand contractions (넘 -> 너무, 근데 -> 그런데: a change of register); phonetic spellings
    #: (마니 -> 많이, kind "spelling" in the lexicon) are fixed either way.
    expand_contractions: bool = True
    #: Initialisms (ㄱㅅ, ㅇㅇ, …): "keep" as tokens or "expand" to words.
    initialisms: str = "keep"
    #: Spacing correction with Kiwi's ``space`` (slow; needs kiwipiepy).
    kiwi_spacing: bool = False
    #: Extra lexicon files (TSV) merged over the shipped ones.
    extra_lexicons: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        choices = {"kspon_dual": ("spelling", "pronunciation"), "emoji": ("keep", "drop", "placeholder"),
                   "initialisms": ("keep", "expand"), "ending_judge": ("rules", "kiwi"),
                   "lexical_judge": ("kiwi", "none")}
        for name, allowed in choices.items():
            value = getattr(self, name)
            if value not in allowed:
                raise ValueError(f"NormalizerConfig.{name}: expected one of {allowed}, found {value!r}")
        if self.max_jamo_run < 1 or self.max_punct_run < 1 or self.max_unit_repeat < 1:
            raise ValueError(
                f"NormalizerConfig: max_jamo_run, max_punct_run and max_unit_repeat must be >= 1, found "
                f"{self.max_jamo_run}, {self.max_punct_run} and {self.max_unit_repeat}"
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> NormalizerConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"normalizer config: unknown key(s) {unknown}; expected a subset of {sorted(known)}"
            )
        values = dict(data)
        if "extra_lexicons" in values:
            values["extra_lexicons"] = tuple(values["extra_lexicons"])  # type: ignore[arg-type]
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_file(cls, path: str) -> NormalizerConfig:
        with open(path, encoding="utf-8") as handle:
            return cls.from_dict(json.load(handle))

    def hash(self) -> str:
        """Stable hash of the configuration, the rule code version and the lexicons' content."""
        payload = json.dumps(
            {"config": self.to_dict(), "rules_version": RULES_VERSION,
             "lexicons": lexicons.content_hash(self.extra_lexicons)},
            sort_keys=True, ensure_ascii=False,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


#: Bump when a rule's behaviour changes, so manifests tell old and new outputs apart.
RULES_VERSION = 4

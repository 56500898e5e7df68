"""Colloquial rewriting rules for the normalizer: lengthening, repeats, 애교 endings, contractions,
typos and noun + copula contractions.

Each rule proposes a rewrite from a narrow shape (a lexicon row, a lengthening pattern with at
least two extension syllables, a unit repeated three times or more, a typo class) and, where
the shape also fits real words, asks the lexical judge (:mod:`beam_jobs.text.judge`) about the
Hangul run it would change: 자기이익 stays (자기 + 이익 is valid Korean, 자긱 is not), 지이인짜
becomes 진짜. The analysis-driven rules (typos, copula, extra codas) run only with a judge
that analyzes (``lexical_judge = "kiwi"``). A rewrite that changes a word's last sound also
changes its particle (:mod:`beam_jobs.text.particles`). Every rule writes its own name into the
edit log.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from beam_jobs.text import lexicons
from beam_jobs.text.config import NormalizerConfig
from beam_jobs.text.edits import Rule, cue_rule, run_rule, sub_rule
from beam_jobs.text.hangul import (
    NO_CODA_SYLLABLES,
    VOWEL_ONLY_INITIAL,
    compose,
    decompose,
    has_hangul,
    has_jamo,
    is_syllable,
    without_final,
)
from beam_jobs.text.judge import Analysis, Judge
from beam_jobs.text.particles import COPULA_FORMS, agree
from beam_jobs.text.particles import FORMS as PARTICLES

#: Hangul runs longer than this are not sent to the judge (hostile input); their rewrites are not made
MAX_JUDGED_RUN = 40


def run_bounds(text: str, start: int, end: int) -> tuple[int, int]:
    """The Hangul run around ``text[start:end]`` (what the judge is asked about)."""
    while start > 0 and is_syllable(text[start - 1]):
        start -= 1
    while end < len(text) and is_syllable(text[end]):
        end += 1
    return start, end


def judged(judge: Judge, match: re.Match[str], proposed: str) -> str:
    """``proposed`` when the judge prefers the run with it to the run as written, else the match."""
    original = match.group(0)
    if proposed == original:
        return original
    start, end = run_bounds(match.string, match.start(), match.end())
    run = match.string[start:end]
    if not run or len(run) > MAX_JUDGED_RUN:
        return original
    rewritten = run[: match.start() - start] + proposed + run[match.end() - start:]
    return proposed if judge.better(run, rewritten) else original


# Vowel indices (jungseong order: ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ).
# An extension syllable ㅇ+V lengthens a syllable whose vowel "ends in" V.
_LENGTHENS = {
    0: {0, 2, 9},  # 아 after ㅏ ㅑ ㅘ
    4: {4, 6, 14},  # 어 after ㅓ ㅕ ㅝ
    8: {8, 12},  # 오 after ㅗ ㅛ
    13: {13, 17},  # 우 after ㅜ ㅠ
    18: {18},  # 으 after ㅡ
    20: {20, 16, 19},  # 이 after ㅣ ㅟ ㅢ
    5: {5, 7, 15},  # 에 after ㅔ ㅖ ㅞ
    1: {1, 3, 10},  # 애 after ㅐ ㅒ ㅙ
}
_MIN_EXTENSIONS = 2  # 지인, 누우면, 기이하다 have one; 지이인짜, 좋아아아 have two or more

_LENGTHENING_RE = re.compile(f"([{NO_CODA_SYLLABLES}])([아어오우으이에애]+[가-힣]?)")

def _lengthening(matched: str, minimum: int = _MIN_EXTENSIONS) -> str:
    """지이인짜 -> 진짜, 좋아아아 -> 좋아, 우와아아아 -> 우와; fewer than ``minimum`` extensions: unchanged."""
    base, tail = matched[0], matched[1:]  # the pattern's two groups: one base syllable, the rest
    initial, vowel, final = decompose(base)
    if final:
        return matched
    count = 0
    carried_final = 0
    for ch in tail:
        ext_initial, ext_vowel, ext_final = decompose(ch)
        if ext_initial != VOWEL_ONLY_INITIAL or vowel not in _LENGTHENS.get(ext_vowel, ()):
            break
        count += 1
        if ext_final:  # 인 in 지이인짜: its coda belongs to the base syllable
            carried_final = ext_final
            break
    if count < minimum:
        return matched
    rest = tail[count:]
    if carried_final and initial == VOWEL_ONLY_INITIAL:
        # 오오오옹: the base is itself a bare vowel; keep the final syllable as written (오옹).
        return base + tail[count - 1:]
    return compose(initial, vowel, carried_final) + rest


def _ends_run(match: re.Match[str]) -> bool:
    """The match is the base syllable and one extension other than 에/애 (원조교제에: the particle), and
    no syllable follows it (싶다아!)."""
    end = match.end()
    return (len(match.group(2)) == 1 and match.group(2) not in "에애"
            and (end == len(match.string) or not is_syllable(match.string[end])))


def _ends_in_ending(judge: Judge, match: re.Match[str]) -> bool:
    """Without its last syllable the run ends in an ending (싶다, 하더니, 재밌어요), not a name or a
    noun (호노카아 보이, 키타노 키이 stay)."""
    start, _ = run_bounds(match.string, match.start(), match.end())
    run = match.string[start:match.end() - 1]
    if len(run) > MAX_JUDGED_RUN:
        return False
    morphemes = judge.analyze(run).morphemes
    return bool(morphemes) and morphemes[-1].tag.startswith("E")


#: a unit of 1-4 syllables written three times or more in a row (짱짱짱짱 -> 짱짱, 헐헐헐헐 -> 헐헐)
_REPEAT_RE = re.compile("([가-힣]{1,4}?)\\1{2,}")


def _repeat_rule(max_repeat: int) -> Rule:
    return sub_rule("repeat_unit", _REPEAT_RE, lambda m: m.group(1) * max_repeat, has_hangul)


def _eojeol_bounds(text: str, start: int, end: int) -> tuple[str, str]:
    """The previous and next whitespace-separated words around ``text[start:end]`` (found without
    copying the text: a copy per match made 낼/젤 quadratic on long texts)."""
    i = start
    while i > 0 and text[i - 1] == " ":
        i -= 1
    before = text[text.rfind(" ", 0, i) + 1:i]
    j = end
    while j < len(text) and text[j] == " ":
        j += 1
    stop = text.find(" ", j)
    after = text[j:stop if stop >= 0 else len(text)]
    return before, after


def _next_char(text: str, end: int) -> str:
    """The first non-space character after ``end`` ("." at the end of the text)."""
    while end < len(text) and text[end] == " ":
        end += 1
    return text[end] if end < len(text) else "."


def _contraction_rule(config: NormalizerConfig, judge: Judge) -> Rule:
    rows = lexicons.load("contractions.tsv", 6, config.extra_lexicons)
    table = {form: (standard, attach, not_before, not_after) for form, standard, attach, not_before, not_after, kind
             in rows if config.expand_contractions or kind == "spelling"}
    # an adverb needs a word to modify: 10만원이 넘... is the verb 넘다, not 너무
    adverbs = {form for form, *_, kind in rows if kind == "adverb"}
    forms = sorted(table, key=len, reverse=True)
    # a "stem" row is the start of a longer word whose rest is kept (잼없는 -> 재미없는); the others
    # are whole words, with a particle or copula ending where the row is "josa"
    stems = [f for f in forms if table[f][1] == "stem"]
    words = [f for f in forms if table[f][1] != "stem"]
    follows = "|".join((*PARTICLES, *COPULA_FORMS))
    alternatives = [f"(?<![가-힣])({'|'.join(map(re.escape, words))})({follows})?(?![가-힣])"]
    if stems:
        alternatives.append(f"(?<![가-힣])({'|'.join(map(re.escape, stems))})(?=[가-힣])")
    pattern = re.compile("|".join(alternatives))
    cue = re.compile(f"[{''.join(sorted({re.escape(f[0]) for f in forms}))}](?<![가-힣].)")  # a word start the lexicon knows
    guards = {
        form: (re.compile(nb) if nb else None, re.compile(na) if na else None)
        for form, (_, _, nb, na) in table.items()
    }

    def replace(match: re.Match[str]) -> str:
        if match.group(1) is None:  # a stem row: the word's rest follows unchanged
            return judged(judge, match, table[match.group(3)][0])
        form, particle = match.group(1), match.group(2) or ""
        standard, attach, _, _ = table[form]
        if particle and (attach != "josa" or judge.is_one_word(form + particle)):  # 첨가 is a word, not 첨 + 가
            return match.group(0)
        not_before, not_after = guards[form]
        if form in adverbs and not _next_char(match.string, match.end()).isalnum():
            return match.group(0)
        if not_before or not_after:
            prev_word, next_word = _eojeol_bounds(match.string, match.start(), match.end())
            if not_before and next_word and not_before.search(next_word):
                return match.group(0)
            if not_after and prev_word and not_after.search(prev_word):
                return match.group(0)
        return standard + agree(standard, particle)

    return cue_rule("contraction", cue, pattern, replace, starts=forms)


def _ending_rule(config: NormalizerConfig) -> Rule:
    rows = lexicons.load("endings.tsv", 4, config.extra_lexicons)
    table = {ending: (standard, int(min_prefix or 0), re.compile(not_after) if not_after else None)
             for ending, standard, min_prefix, not_after in rows}
    endings = sorted(table, key=len, reverse=True)
    pattern = re.compile(f"({'|'.join(map(re.escape, endings))})(?![가-힣])")
    # the ending's last syllable at a run's end (용, 당, 염 … are rare there); the ending starts up
    # to its length before it
    cue = re.compile(f"[{''.join(sorted({re.escape(e[-1]) for e in endings}))}](?![가-힣])")
    back = max(map(len, endings)) - 1

    def replace(match: re.Match[str]) -> str:
        standard, min_prefix, not_after = table[match.group(1)]
        text, start = match.string, match.start()
        prefix = 0
        while start - prefix - 1 >= 0 and is_syllable(text[start - prefix - 1]):
            prefix += 1
        if prefix < min_prefix:
            return match.group(0)
        if not_after is not None and not_after.search(text[start - prefix:start]):
            return match.group(0)
        return standard

    return cue_rule("cute_ending", cue, pattern, replace, back, endings)


def _initialism_rule(config: NormalizerConfig) -> tuple[re.Pattern[str], Callable[[re.Match[str]], str]]:
    table = dict(row[:2] for row in lexicons.load("initialisms.tsv", 2, config.extra_lexicons))
    pattern = re.compile(f"(?<![ㄱ-ㅣ가-힣])({'|'.join(sorted(table, key=len, reverse=True))})(?![ㄱ-ㅣ가-힣])")
    return pattern, lambda m: table[m.group(1)]


# --------------------------------------------------------------------------- endings by rule

#: 여 for 요 after these ending syllables (맛있네여 -> 맛있네요, 했어여 -> 했어요); not after 하 (하여)
_YEO_RE = re.compile("(?<=[가-힣][네어아해에예세래데게지나까고죠])여(?![가-힣])")
#: codas that 애교 spelling adds to an ending (귀엽당, 배고프닷, 했엉, 감사합니당)
_EXTRA_CODAS = {21: "ᆼ", 16: "ᆷ", 17: "ᆸ", 19: "ᆺ"}


def _extra_coda(judge: Judge, lexicon_forms: frozenset[str]) -> Callable[[re.Match[str]], str]:
    """Strip the last syllable's coda where the analysis reads it as an extra coda (Z_CODA); a
    contraction the lexicon lists (그닷 -> 그다지) is left to the lexicon."""

    def replace(run: str) -> str:
        if len(run) > MAX_JUDGED_RUN or run in lexicon_forms:
            return run
        analysis = judge.analyze(run)
        if analysis is None or not analysis.morphemes:
            return run
        last = analysis.morphemes[-1]
        if last.tag != "Z_CODA" or last.form != _EXTRA_CODAS[decompose(run[-1])[2]]:
            return run
        return run[:-1] + without_final(run[-1])

    return _by_run(replace)


# --------------------------------------------------------------------------- typos and the copula

_DWAET_RE = re.compile("됬")
#: 되 + an ending that starts with 어 is 돼 (되서 -> 돼서, 안되요 -> 안돼요, 되야지 -> 돼야지, 안되! -> 안돼!);
#: 돼 before an ending that does not is 되 (돼는 -> 되는, 돼면 -> 되면; 돼지 is a word and stays)
_DWAE_RE = re.compile("되(?=서(?![가-힣])|서[요도는]|요(?![가-힣])|야(?![가-힣])|야[지겠해하])"
                      "|(?<=[안잘다])되(?![가-힣])|돼(?=[는면고기](?![가-힣])|는[데지것거]|면서|고서)")
#: 아니 + 었 is 아니었 (아니였다 -> 아니었다: 였 is 이 + 었, and 아니 has no 이)
_ANI_EOT_RE = re.compile("(?<=아니)였")
_FINAL_S, _FINAL_SS, _FINAL_B, _FINAL_BS, _FINAL_N = 19, 20, 17, 18, 4
#: ㄴ-final syllables that are verb or adjective forms far more often than a noun's contracted copula,
#: or a bound noun's (건데, 건지: 거 + ㄴ; 텐데: 터 + 이 + ㄴ), 아닌 or 뭔 (뭐 + ㄴ)
_VERB_N = frozenset("한는인런은운던된간온본준난탄친낸쓴큰른린픈쁜든진긴신던선단잔안건텐닌뭔")


def _syllables(keep: Callable[[int, int, int], bool]) -> str:
    """Every syllable whose (initial, vowel, final) ``keep`` accepts, as a regex class body."""
    return "".join(chr(code) for code in range(0xAC00, 0xD7A4) if keep(*decompose(chr(code))))


#: the vowels a tense ㅆ follows when 았/었/였 is contracted into the stem (갔 봤 했 됐 셨 줬 …);
#: ㅗ ㅜ ㅡ ㅣ … + ㅅ (못, 웃, 긋, 짓) is a word's own ㅅ, never a misspelt tense
_TENSE_VOWELS = frozenset({0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 14, 15})
#: syllables whose ㅅ is nearly always their own: nouns (맛 탓 곳), numerals (셋 넷), prefixes (옛 헛 첫),
#: loanwords (티켓 로켓 핫), a verb stem with no ㅆ reading (벗다: no verb 버다); 하 + 였 is 했, never 핬
_OWN_S = "것맛멋곳옷첫옛탓헛셋넷켓핫벗"
_S_FINAL = _syllables(lambda i, v, f: f == _FINAL_S and v in _TENSE_VOWELS and compose(i, v, f) not in _OWN_S)
_S_FINAL_SET = frozenset(_S_FINAL)
_SS_FINAL = _syllables(lambda i, v, f: f == _FINAL_SS)


#: the ending syllables an extra coda is added to (귀엽당: 다 + ㅇ); 요, 자, 서, 해 … are left to the
#: endings lexicon (좋아용), since so many nouns end in 용, 장, 성, 행
_ENDING_SYLLABLES = frozenset("다지네죠게래니냐어라데여까나거군걸줘봐워와져써돼")
#: ㅁ only on 나 (하남, 말리남 -> 하나, 말리나): elsewhere a ㅁ coda is mostly 다음 or a word (그럼담)
_CODA_CANDIDATES = _syllables(lambda i, v, f: (f in (21, 17, 19) and compose(i, v) in _ENDING_SYLLABLES
                                               and compose(i, v, f) not in "답랑것")  # 한답: hearsay (한답니다)
                              or (f == 16 and compose(i, v) == "나"))
# The cues of the analysis-driven rules: the judge is asked about the Hangul runs that contain one
# (edits.run_rule). Each starts with a character class, so the regex engine skips to it fast.
#: a run of two syllables or more ending in a syllable with a candidate extra coda; 랑 only where it
#: cannot be the particle 랑, which follows a vowel (몰랑, 예쁘더랑; not 해랑, 친구랑); 것 is the noun
_L_FINAL = _syllables(lambda i, v, f: f == 8)
_EXTRA_CODA_CUE = re.compile(f"[{_CODA_CANDIDATES}랑](?<=[가-힣].)(?<![^더{_L_FINAL}]랑)(?![가-힣])")
#: a tense vowel + ㅅ before a syllable (먹엇다, 갓다; not 댓글, the word of comment data), 겄, 것 before an ending (먹것니, 하것더라), ㅆ
#: before 서/써 (먹겠서)
_TYPO_ENDING_CUE = re.compile(f"([{_S_FINAL}{_SS_FINAL}것])"
                              f"(?:(?<=[{_S_FINAL}])[가-힣](?<!댓글)|(?<=겄)|(?<=것)(?=[니냐다어지더네구군])|(?<=[{_SS_FINAL}])[서써])")
#: ㅢ syllables of real verbs (띄다, 씌우다, 틔다): a misspelling of them is not their ㅣ spelling
_OWN_UI = "띄씌틔"
#: 잇/밋 (ㅅ for ㅆ), 업 (ㅂ for ㅄ) before an ending (재미업어; not 수업을, 기업), 쟝 챵 쨩, 즤 긔 … (희 at a
#: run's end only: 충분희; 희망, 이건희 are words); 내 at the end of a run of three, 대 after 는 은 던 인
_SPELLING_CUE = re.compile("([잇밋업내대희" + _syllables(lambda i, v, f: (v == 2 and i in (12, 13, 14) and f == 21)
                                                      or (v == 19 and i != VOWEL_ONLY_INITIAL and not f
                                                          and compose(i, v) not in _OWN_UI))
                           + "])(?:(?<![내대업희])|(?<=업)(?=[어었다고는지게네음을으냐니])|(?<=희)(?![가-힣])"
                           "|(?<=[가-힣]{2}내)(?![가-힣])|(?<=[가-힣][는은던인]대)(?![가-힣]))")
#: a contracted copula (회산가: 사 + ㄴ) after at least one syllable of its noun (the rule wants a noun of two
#: syllables or more: 손가락, 전지현 are not asked about); the ㄴ of verbs and adjectives (한데, 가는, 좋은,
#: 간지) is left out
_COPULA_CUE = re.compile(f"[{_syllables(lambda i, v, f: f == _FINAL_N and compose(i, v, f) not in _VERB_N)}]"
                         "(?<=[가-힣].)[가지데]")
_TYPO_EP_FIXES = {"엇": "었", "앗": "았", "엿": "였", "겄": "겠", "것": "겠"}
#: ending syllables whose ㅐ is a misspelt ㅔ (재미없내 -> 재미없네, 같은대 -> 같은데), at a run's end
_AE_FOR_E = {"내": "네", "대": "데"}


def per_run(fn: Callable[..., object], limit: int = 200_000) -> Callable[..., object]:
    """``fn`` of a Hangul run (and any further hashable arguments), cached up to ``limit``
    entries (the judge is deterministic, and a corpus repeats its words: the warm path is then a
    dictionary lookup)."""
    cache: dict[tuple, object] = {}

    def cached(*key: object) -> object:
        found = cache.get(key)
        if found is None:
            found = fn(*key)
            if len(cache) < limit:
                cache[key] = found
        return found

    return cached


def _by_run(fn: Callable[[str], str]) -> Callable[[re.Match[str]], str]:
    """A run rule's replacement that depends on the run alone, cached per run."""
    cached = per_run(fn)
    return lambda match: cached(match.group(0))


def _analysis_of(judge: Judge, run: str, min_length: int) -> Analysis | None:
    """The judge's analysis of a run of ``min_length`` .. MAX_JUDGED_RUN syllables, else None."""
    return judge.analyze(run) if min_length <= len(run) <= MAX_JUDGED_RUN else None


def _swap_final(syllable: str, old: int, new: int) -> str:
    initial, vowel, final = decompose(syllable)
    return compose(initial, vowel, new) if final == old else syllable


def _best(judge: Judge, run: str, candidates: list[str]) -> str:
    """The candidate the judge prefers to ``run`` with the highest score (``run`` when none is)."""
    best, best_score = run, None
    for candidate in candidates:
        if candidate != run and judge.better(run, candidate):
            score = judge.analyze(candidate).score
            if best_score is None or score > best_score:
                best, best_score = candidate, score
    return best


def _with_liaison(run: str, index: int) -> list[str]:
    """``run`` and, where the syllable at ``index`` ends in ㅆ before 서/써, the spelling with the ㅆ
    kept in the coda (먹겠서 -> 먹겠어: the onset wrote the coda's second ㅅ)."""
    out = [run]
    if index + 1 < len(run) and decompose(run[index])[2] == _FINAL_SS and run[index + 1] in "서써":
        out.append(run[:index + 1] + "어" + run[index + 2:])
    return out


def _double_s(syllable: str) -> str:
    """The ㅅ coda doubled (갓 -> 갔), with 됫 -> 됐 (not the typo 됬)."""
    doubled = _swap_final(syllable, _FINAL_S, _FINAL_SS)
    return "됐" if doubled == "됬" else doubled


def _tense_before_ending(analysis: Analysis, positions: list[int]) -> bool:
    """Every ㅆ written at ``positions`` reads as a pre-final ending (었 았 였 겠) followed by an ending."""
    morphemes = analysis.morphemes
    found = {i for m, after in zip(morphemes, morphemes[1:], strict=False) if m.tag == "EP" and after.tag.startswith("E")
             for i in range(m.start, m.start + max(1, m.length))}
    return all(i in found for i in positions)


#: content morphemes that a tense ending cannot be part of
_WORD_TAGS = frozenset({"NNG", "NNP", "NNB", "NR", "NP", "XR", "MAG", "MAJ", "MM", "IC"})


def _known_words(analysis: Analysis) -> set[int]:
    """Positions covered by a known content word of two syllables or more (뒷북 NNG, 지긋지긋 XR)."""
    return {i for m in analysis.morphemes if m.tag in _WORD_TAGS and not m.oov and m.length >= 2
            and len(m.form) == m.length for i in range(m.start, m.start + m.length)}


def _typo_ending(judge: Judge) -> Callable[[re.Match[str]], str]:
    """먹엇다 -> 먹었다, 갓다 -> 갔다, 하겄다 -> 하겠다, 먹것니 -> 먹겠니: where the analysis reads a
    typo-form pre-final ending (엇 앗 엿 겄 것), the syllable that carries it gets the standard
    spelling; where it reads the ㅅ coda as a verb of its own (않앗던: 앗다), the ㅆ spelling the
    judge prefers. A ㅆ written across two syllables is joined (먹겄서 -> 먹겠어)."""

    def replace(run: str) -> str:
        analysis = _analysis_of(judge, run, 2)
        if analysis is None:
            return run
        chars, fixed_at = list(run), []
        for m in analysis.morphemes:
            if m.tag == "EP" and m.form in _TYPO_EP_FIXES and m.start < len(chars):
                syllable = chars[m.start]
                if m.form in ("겄", "것"):
                    chars[m.start] = "겠" if syllable == m.form else syllable
                else:
                    chars[m.start] = _swap_final(syllable, _FINAL_S, _FINAL_SS)
                fixed_at.append(m.start)
        fixed = "".join(chars)
        if fixed != run:
            return _best(judge, run, [c for i in fixed_at[-1:] for c in _with_liaison(fixed, i)])
        words = _known_words(analysis)  # 뒷북, 지긋지긋: the ㅅ is the word's own, not a tense
        at = [i for i, syllable in enumerate(run[:-1]) if syllable in _S_FINAL_SET and i not in words]
        candidates = [(c, [i]) for i in at for c in _with_liaison(run[:i] + _double_s(run[i]) + run[i + 1:], i)]
        if len(at) > 1:  # 잘됫음좋겟다: both
            candidates.append(("".join(_double_s(c) if i in at else c for i, c in enumerate(run)), at))
        candidates += [(c, [i]) for i, syllable in enumerate(run[:-1]) if decompose(syllable)[2] == _FINAL_SS
                       for c in _with_liaison(run, i)[1:]]  # 봤서 -> 봤어
        # the ㅆ must make a tense ending that an ending follows (않았던: 았 + 던; 그럿짓 is not 그렀짓)
        return _best(judge, run, [c for c, where in candidates if _tense_before_ending(judge.analyze(c), where)])

    return _by_run(replace)


def _spelling_candidates(syllable: str, last: bool, oov: bool) -> list[str]:
    """One-syllable spelling fixes: 잇/밋 -> 있/밌 (ㅅ -> ㅆ), 업 -> 없, at a run's end 내/대 -> 네/데;
    and only inside a run the analysis cannot read, 쟝 -> 장 (ㅑ -> ㅏ after ㅈ ㅉ ㅊ, with ㅇ coda)
    and 즤 -> 지 (ㅢ -> ㅣ after a consonant, no coda: 틔다 is a verb)."""
    initial, vowel, final = decompose(syllable)
    out = []
    if final == _FINAL_S:
        out.append(compose(initial, vowel, _FINAL_SS))
    if final == _FINAL_B:
        out.append(compose(initial, vowel, _FINAL_BS))
    if oov and vowel == 2 and initial in (12, 13, 14) and final == 21:  # 쟝 챵 쨩 (쟈 is often a name: 토니쟈)
        out.append(compose(initial, 0, final))
    if (oov and vowel == 19 and initial != VOWEL_ONLY_INITIAL and not final  # 즤 긔 (싑 is 쉽, not 십)
            and syllable not in _OWN_UI):
        out.append(compose(initial, 20, final))
    if last and syllable in _AE_FOR_E:
        out.append(_AE_FOR_E[syllable])
    return out


def _ae_for_e_applies(run: str) -> bool:
    """내 -> 네 after two syllables or more (괜찮내; 존내, 안내 stay), 대 -> 데 after 는 은 던 인
    (하는대, 같은대; 군대, 근대, 시간대 stay)."""
    return (run[-1] == "내" and len(run) >= 3) or (run[-1] == "대" and len(run) >= 3 and run[-2] in "는은던인")


def _typo_spelling(judge: Judge) -> Callable[[re.Match[str]], str]:
    """재밋어 -> 재밌어, 사쟝님 -> 사장님, 했즤 -> 했지, 재미없내 -> 재미없네: the one-syllable fix
    the judge prefers most — inside a run the analysis cannot read (an out-of-vocabulary piece),
    any fix that reads better; inside a run that already reads as valid (재미잇다: 재미 + 잇다),
    only a fix that reads better by the judge's margin (선을 잇다 stays)."""

    def replace(run: str) -> str:
        analysis = _analysis_of(judge, run, 2)
        if analysis is None:
            return run
        oov = any(m.oov for m in analysis.morphemes)
        if not analysis.valid and not oov:
            return run
        candidates = [run[:index] + candidate + run[index + 1:] for index, syllable in enumerate(run)
                      for candidate in _spelling_candidates(syllable, index == len(run) - 1 and _ae_for_e_applies(run),
                                                            oov)]
        # 네/데 must read as an ending (괜찮네, 하는데), not a suffix or noun (장민호씨네, 동네)
        candidates = [c for c in candidates if c[-1] not in "네데" or run[-1] not in "내대"
                      or judge.analyze(c).morphemes[-1].tag.startswith("E")]
        if analysis.valid:
            return _best(judge, run, candidates)
        best, best_score = run, analysis.score
        for fixed in candidates:
            after = judge.analyze(fixed)
            if after.valid and after.score > best_score:
                best, best_score = fixed, after.score
        return best

    return _by_run(replace)


#: what follows an indirect question (무슨 영환지 모르겠다, 의산지 궁금해): a run that ends in ㄴ지 is
#: read as noun + 인지 only before one of these (이윤지 착하니까: a name, stays)
_ASKING = ("모르", "몰라", "몰랐", "궁금", "알", "아는", "아니", "의문", "확인", "기억", "생각", "헷갈", "물어", "싶", "봐", "보")


def _asks(match: re.Match[str], particle_follows: bool) -> bool:
    if particle_follows:  # 문젠지도, 영환지를
        return True
    text, start = match.string, match.end()
    while start < len(text) and text[start] == " ":
        start += 1
    return text.startswith(_ASKING, start)


def _copula(judge: Judge) -> Callable[[re.Match[str]], str]:
    """회산가 -> 회사인가, 의산지 -> 의사인지: a known noun (two syllables or more) whose copula 이
    was contracted into its last syllable's ㄴ; 그런가, 편한데 (no copula) and 가는건데 (a bound
    noun) stay."""

    def readings(run: str) -> tuple[tuple[str, bool, bool], ...]:
        """(rewrite, whether it is an indirect question in ㄴ지, whether a particle follows it)."""
        analysis = _analysis_of(judge, run, 3)
        if analysis is None:
            return ()
        morphemes, out = analysis.morphemes, []
        for noun, copula, ending in zip(morphemes, morphemes[1:], morphemes[2:], strict=False):
            end = noun.start + noun.length
            if (noun.tag in ("NNG", "NNP") and not noun.oov and noun.length >= 2 and len(noun.form) == noun.length
                    and copula.tag == "VCP" and copula.form == "이" and copula.start == end - 1
                    and ending.form.startswith("ᆫ") and run[end - 1] == compose(*decompose(noun.form[-1])[:2], _FINAL_N)):
                out.append((run[:noun.start] + noun.form + "인" + run[end:], ending.form == "ᆫ지", end + 1 < len(run)))
        return tuple(out)

    cached = per_run(readings)

    def replace(match: re.Match[str]) -> str:
        for rewrite, question, particle_follows in cached(match.group(0)):
            if not question or _asks(match, particle_follows):
                return rewrite
        return match.group(0)

    return replace


def colloquial_rules(config: NormalizerConfig, judge: Judge) -> list[tuple[str, Rule]]:
    """The colloquial rules in the order they run, as (name, rule) pairs for the normalizer."""

    lengthen = per_run(_lengthening, 100_000)

    def lengthening(match: re.Match[str]) -> str:
        proposed = lengthen(match.group(0), _MIN_EXTENSIONS)
        if proposed == match.group(0) and judge.analyzes and _ends_run(match):
            single = lengthen(match.group(0), 1)  # one extension after an ending, at a run's end: 싶다아!!, 가자아
            if single != proposed and _ends_in_ending(judge, match):  # Kiwi asked only about a real cut
                proposed = single
        return judged(judge, match, proposed)

    rules = [("lengthening", sub_rule("lengthening", _LENGTHENING_RE, lengthening, has_hangul)),
             ("repeat_unit", _repeat_rule(config.max_unit_repeat))]
    rules.append(("cute_ending", _ending_rule(config)))
    analyzes = judge.analyzes
    if config.ending_judge == "kiwi" and analyzes:
        forms = frozenset(row[0] for row in lexicons.load("contractions.tsv", 6, config.extra_lexicons))
        rules.append(("extra_coda", run_rule("extra_coda", _EXTRA_CODA_CUE, _extra_coda(judge, forms))))
    # after the extra codas (봤어영 -> 봤어여 -> 봤어요), before the lexicon (조아여 -> 조아요 -> 좋아요)
    rules.append(("cute_yeo", sub_rule("cute_yeo", _YEO_RE, lambda m: "요", lambda t: "여" in t)))
    # contractions before the analysis-driven rules: 여친가 is 여친 + 가, not 여치 + the copula
    rules.append(("contraction", _contraction_rule(config, judge)))
    if config.typos:
        rules.append(("typo_dwaet", sub_rule("typo_dwaet", _DWAET_RE, lambda m: "됐", lambda t: "됬" in t)))
        rules.append(("typo_dwae", sub_rule("typo_dwae", _DWAE_RE, lambda m: "돼" if m.group(0) == "되" else "되",
                                            lambda t: "되" in t or "돼" in t)))
        rules.append(("typo_anieot", sub_rule("typo_anieot", _ANI_EOT_RE, lambda m: "었", lambda t: "아니였" in t)))
        if analyzes:
            rules.append(("typo_ending", run_rule("typo_ending", _TYPO_ENDING_CUE, _typo_ending(judge))))
            rules.append(("typo_spelling", run_rule("typo_spelling", _SPELLING_CUE, _typo_spelling(judge))))
    if config.copula and analyzes:
        rules.append(("copula", run_rule("copula", _COPULA_CUE, _copula(judge))))
    if config.initialisms == "expand":
        pattern, replace = _initialism_rule(config)
        rules.append(("initialism", sub_rule("initialism", pattern, replace, has_jamo)))
    return rules

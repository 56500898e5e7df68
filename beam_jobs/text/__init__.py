"""The pure Korean text core: normalizer, colloquial rules, lexicons, tokenizer, word scores, morphs.

``str -> str`` / ``str -> list`` functions with no apache_beam or torch import: the Beam jobs
wrap them, and serving code (``kd.predict``) imports them directly. This package is the only
part of ``beam_jobs`` that serving code needs.

Layers, bottom up (no cycles): ``hangul`` (syllable arithmetic, character classes) and
``edits`` (the auditable edit record and the substitution-rule machinery) → ``placeholders``,
``pieces`` and ``lexicons`` → ``config`` (``NormalizerConfig``) → ``colloquial`` →
``normalizer``; ``pieces`` → ``word_scores`` → ``tokenizer``; ``morphs`` (optional Kiwi).
"""

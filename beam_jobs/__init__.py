"""malmoi's Beam jobs, their readers and the Korean text core they share.

``beam_jobs.text`` (normalizer, colloquial rules, lexicons, tokenizers, word scores, morphs) and
``beam_jobs.readers`` / ``beam_jobs.records`` import neither apache_beam nor torch; serving code
imports ``beam_jobs.text`` only. The jobs (``preprocess``, ``learn_words``, ``augment``) are wiring
over the shared Beam shell in ``beam_jobs.beam_io``.
"""

"""malmoi's Beam jobs and the Korean text core they share.

The text core (``normalizer``, ``colloquial``, ``lexicons``, ``tokenizer``, ``readers``,
``records``) imports neither apache_beam nor torch, so serving code can reuse it.
"""

"""Moved to ``beam_jobs.text.tokenizer``; this alias of it stays for one release (until malmoi 0.3)."""
import sys

from beam_jobs.text import tokenizer as _moved

sys.modules[__name__] = _moved

"""Moved to ``beam_jobs.text.lexicons``; this alias of it stays for one release (until malmoi 0.3)."""
import sys

from beam_jobs.text import lexicons as _moved

sys.modules[__name__] = _moved

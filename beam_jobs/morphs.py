"""Moved to ``beam_jobs.text.morphs``; this alias of it stays for one release (until malmoi 0.3)."""
import sys

from beam_jobs.text import morphs as _moved

sys.modules[__name__] = _moved

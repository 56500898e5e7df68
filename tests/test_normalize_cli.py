"""The normalizer as a line filter. Protects against: lines merged or dropped (numbering must match), and a bad
config accepted."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from beam_jobs import normalize


def test_one_output_line_per_input_line():
    out = io.StringIO()
    assert normalize.main([], stdin=io.StringIO("넘 좋아용ㅋㅋㅋㅋ\n\n걍 가자\n"), stdout=out) == 0
    assert out.getvalue().splitlines() == ["너무 좋아요ㅋㅋ", "", "그냥 가자"]


def test_edits_as_json_lines():
    out = io.StringIO()
    normalize.main(["--edits"], stdin=io.StringIO("넘 좋아\n"), stdout=out)
    record = json.loads(out.getvalue())
    assert record["text"] == "너무 좋아" and record["edits"][0]["rule"] == "contraction"


def test_config_file_and_bad_config(tmp_path):
    config = tmp_path / "n.json"
    config.write_text('{"max_jamo_run": 3}', encoding="utf-8")
    out = io.StringIO()
    normalize.main(["--config", str(config)], stdin=io.StringIO("ㅋㅋㅋㅋㅋ\n"), stdout=out)
    assert out.getvalue() == "ㅋㅋㅋ\n"
    config.write_text('{"max_laugh": 3}', encoding="utf-8")
    with pytest.raises(SystemExit) as stopped:  # argparse's usage error, exit status 2
        normalize.main(["--config", str(config)], stdin=io.StringIO(""), stdout=io.StringIO())
    assert stopped.value.code == 2


def test_runs_as_a_module_in_a_shell():
    done = subprocess.run([sys.executable, "-m", "beam_jobs.normalize"], input="낼 봐용\n".encode(),
                          capture_output=True, check=True)
    assert done.stdout.decode() == "내일 봐요\n"

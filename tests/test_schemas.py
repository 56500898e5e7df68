"""The data contracts. Protects against: validation that misses a problem or does not name it, readers that
accept unfinished or foreign data, and option declarations that generate the wrong command line."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import UTTERANCES, DatasetNotReadyError, SchemaMismatchError, read_dataset, validate
from schemas.dataset import build_manifest, dumps_json


def a_row(**overrides):
    row = {
        "id": "x1", "corpus": "txt", "source": "a.txt", "position": "line 1", "doc_id": "d", "turn": 0,
        "speaker": None, "text_raw": "넘 좋아", "text": "너무 좋아",
        "edits": [{"rule": "contraction", "start": 0, "end": 1, "before": "넘", "after": "너무"}],
        "tokens": ["너무", "좋아"], "morphs": None, "label": None, "split": "train", "meta": [{"key": "k", "value": "v"}],
    }
    row.update(overrides)
    return row


def test_valid_table_passes():
    validate(pa.Table.from_pylist([a_row()], schema=UTTERANCES.schema), UTTERANCES)


def test_wrong_type_is_named_with_expected_and_found():
    table = pa.Table.from_pylist([a_row()], schema=UTTERANCES.schema)
    table = table.set_column(table.schema.get_field_index("turn"), "turn", pa.array([0], pa.int64()))
    with pytest.raises(SchemaMismatchError, match=r"column 'turn': expected int32 \(not null\), found int64"):
        validate(table, UTTERANCES)


def test_missing_column_and_bad_split_value_are_reported():
    table = pa.Table.from_pylist([a_row(split="training")], schema=UTTERANCES.schema).drop_columns(["meta"])
    with pytest.raises(SchemaMismatchError) as error:
        validate(table, UTTERANCES)
    assert "missing column(s) ['meta']" in str(error.value)
    assert "found ['training']" in str(error.value)


def test_nulls_in_required_column_are_reported():
    schema = UTTERANCES.schema.set(UTTERANCES.schema.get_field_index("text"), pa.field("text", pa.string()))
    table = pa.Table.from_pylist([a_row(text=None)], schema=schema)
    with pytest.raises(SchemaMismatchError, match="column 'text': expected no nulls, found 1 null"):
        validate(table.cast(schema), UTTERANCES)


def write_dataset(folder, rows, *, success=True, num_rows=None):
    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=UTTERANCES.schema_with_metadata({"normalizer_hash": "h"}))
    pq.write_table(table, folder / "part-00000-of-00001.parquet")
    manifest = build_manifest(UTTERANCES, created_by="test", rows_per_split={"train": num_rows or len(rows)},
                              files=["part-00000-of-00001.parquet"], options={}, provenance={})
    (folder / "_manifest.json").write_bytes(dumps_json(manifest))
    if success:
        (folder / "_SUCCESS").write_bytes(b"")


def test_read_dataset_round_trip(tmp_path):
    write_dataset(tmp_path / "ds", [a_row(), a_row(id="x2")])
    table = read_dataset(str(tmp_path / "ds"), UTTERANCES)
    assert table.num_rows == 2
    assert table.schema.metadata[b"malmoi.schema"] == b"utterances"


def test_read_refuses_folder_without_success(tmp_path):
    write_dataset(tmp_path / "ds", [a_row()], success=False)
    with pytest.raises(DatasetNotReadyError, match="has no _SUCCESS"):
        read_dataset(str(tmp_path / "ds"), UTTERANCES)


def test_read_refuses_other_schema_and_row_count_drift(tmp_path):
    write_dataset(tmp_path / "ds", [a_row()], num_rows=5)
    with pytest.raises(SchemaMismatchError, match="manifest says 5"):
        read_dataset(str(tmp_path / "ds"), UTTERANCES)
    manifest = json.loads((tmp_path / "ds" / "_manifest.json").read_text())
    manifest["schema"] = "kd"
    (tmp_path / "ds" / "_manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SchemaMismatchError, match="holds schema 'kd'"):
        read_dataset(str(tmp_path / "ds"), UTTERANCES)


# --------------------------------------------------------------------------- option declarations


def test_config_fields_generate_the_command_line_once():
    import argparse

    from beam_jobs.preprocess import PreprocessConfig
    from kd.distill import DistillConfig
    from schemas.options import add_options, from_args

    parser = argparse.ArgumentParser()
    add_options(parser, DistillConfig)
    flags = {a for action in parser._actions for a in action.option_strings}
    # the flags users know, from nested configs too (student, weights, loop), bools negated where they default on
    assert {"--data", "--output", "--student-layers", "--kl", "--max-steps", "--no-bf16", "--no-cuda-graphs",
            "--resume", "--buckets", "--no-cpu-speed"} <= flags
    config = from_args(DistillConfig, parser.parse_args(["--data", "d", "--tokenizer", "t", "--output", "o"]))
    assert config.loop.max_steps == 2000 and config.loop.output == "o"  # the command's own defaults
    config = from_args(DistillConfig, parser.parse_args(["--data", "d", "--tokenizer", "t", "--output", "o",
                                                         "--no-bf16", "--buckets", "8,16", "--kl", "0.5"]))
    assert (config.loop.bf16, config.loop.buckets, config.weights.kl) == (False, (8, 16), 0.5)
    assert "(default: 2000)" in parser.format_help()

    parser = argparse.ArgumentParser()
    add_options(parser, PreprocessConfig)
    config = from_args(PreprocessConfig, parser.parse_args(["--input", "a", "--input", "b", "--input", "a",
                                                            "--output", "o", "--tokenizer", "whitespace"]))
    assert config.inputs == ("a", "b") and config.tokenizer.method == "whitespace"
    with pytest.raises(SystemExit):
        parser.parse_args(["--output", "o"])  # --input is required


def test_one_error_type_prints_its_fix_and_keeps_tracebacks_for_bugs(capsys):
    from schemas.options import MalmoiError, cli_main

    def bad_input(_argv):
        raise MalmoiError("--teacher 'x' holds no weights.", "pass a save_pretrained directory.")

    assert cli_main(bad_input, []) == 2
    assert capsys.readouterr().err == "error: --teacher 'x' holds no weights. Fix: pass a save_pretrained directory.\n"

    def bug(_argv):
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        cli_main(bug, [])


@pytest.mark.parametrize("module", ["beam_jobs.preprocess", "beam_jobs.learn_words", "beam_jobs.augment",
                                    "beam_jobs.normalize", "kd.tokenizer", "kd.pretrain", "kd.finetune",
                                    "kd.distill", "kd.evaluate", "kd.predict", "kd.pipeline", "schemas.inspect"])
def test_every_command_prints_its_help_with_defaults(module, capsys):
    # guards against --help itself failing: argparse %-formats help strings, and one that said
    # "~3% padding" made `augment --help` end in "unsupported format character"
    import importlib

    with pytest.raises(SystemExit) as stopped:
        importlib.import_module(module).main(["--help"])
    shown = capsys.readouterr().out
    assert stopped.value.code == 0 and "usage:" in shown
    # normalize's options are all switches or "none by default", so it has no default to show
    assert "(default:" in shown or module == "beam_jobs.normalize"


def test_a_switch_that_turns_something_off_says_so_in_its_help(capsys):
    # guards against --no-progress reading "show a progress bar" and --export-last reading
    # "export the best student": the help of an on-by-default field describes what the flag stops
    from kd import distill

    with pytest.raises(SystemExit):
        distill.main(["--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--no-progress turn off what is on by default: show a progress bar" in shown
    assert "--export-last turn off what is on by default: export the student that scored best" in shown
    assert "--labeled-only train on rows with a gold label only" in shown  # an off-by-default switch is unchanged

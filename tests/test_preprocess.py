"""The preprocess job. Protects against: lost or silently dropped records, counts that do not add up, turns of
one dialogue in two splits, unstable ids, and options that Dataflow would not accept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile

import apache_beam as beam
import pandas as pd
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import beam_io, preprocess
from beam_jobs.readers import RawUtterance, ReaderOptions
from beam_jobs.records import assign_split
from beam_jobs.text.normalizer import replay_edits
from schemas import UTTERANCES, read_dataset
from schemas.options import MalmoiError
from tests.conftest import ROOT, read_json, run_preprocess

RUNNER = ["--runner", "FnApiRunner"]


def raw(text, doc="d1", turn=0, position=None, markup=None):
    return RawUtterance("txt", "a.txt", position or f"line {turn + 1}", doc, turn, text, None, None, {}, markup)


# --------------------------------------------------------------------------- transforms


def test_parse_files_fn_batches_records_and_counts_files(tmp_path):
    (tmp_path / "a.txt").write_text("하나\n둘\n셋\n", encoding="utf-8")
    (tmp_path / "b.bin").write_bytes(b"\x00\x01")
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create([("a.txt", str(tmp_path / "a.txt")), ("b.bin", str(tmp_path / "b.bin"))])
            | beam.ParDo(preprocess.ParseFilesFn(ReaderOptions(), batch_size=2)).with_outputs(
                "rejects", "stats", main="batches")
        )
        assert_that(out.batches | beam.Map(lambda b: [r.text for r in b]), equal_to([["하나", "둘"], ["셋"]]),
                    label="batches")
        assert_that(out.rejects | beam.Map(lambda r: (r.source, r.reason)), equal_to([("b.bin", "unknown_format")]),
                    label="rejects")
        assert_that(out.stats | beam.CombinePerKey(sum),
                    equal_to([("files.matched", 2), ("files.read", 1), ("files.rejected", 1),
                              ("files.rejected.unknown_format", 1), ("records.in", 3)]), label="stats")


def test_build_rows_fn_normalizes_and_rejects_empty(tmp_path):
    config = preprocess.PreprocessConfig(inputs=(), output=str(tmp_path))
    with BeamTestPipeline(runner="FnApiRunner") as p:
        out = (
            p
            | beam.Create([[raw("넘 좋앙ㅋㅋㅋㅋ"), raw("{laughing}", turn=1, markup="nikl"), raw("   ", turn=2),
                             raw("{laughing}", turn=3)]])
            | beam.ParDo(preprocess.BuildRowsFn(config)).with_outputs("rejects", "stats", main="rows")
        )
        split = assign_split("txt", "d1", config.rows.ratios)
        assert_that(out.rows | beam.FlatMap(lambda rows: [(r["text"], r["split"]) for r in rows]),
                    equal_to([("너무 좋아ㅋㅋ", split), ("ㅋㅋ", split), ("{laughing}", split)]), label="rows")
        assert_that(out.rejects | beam.Map(lambda r: r.reason), equal_to(["empty_text"]), label="rejects")


def test_deduplicate_keeps_smallest_id_and_counts_the_rest():
    rows = [{"id": "b", "text": "네"}, {"id": "a", "text": "네"}, {"id": "c", "text": "아니"}, {"id": "d", "text": "네"}]
    with BeamTestPipeline(runner="FnApiRunner") as p:
        kept, stats = p | beam.Create([rows[:2], rows[2:]]) | preprocess.Deduplicate(batch_size=10)
        assert_that(kept | beam.FlatMap(lambda b: [r["id"] for r in b]), equal_to(["a", "c"]), label="kept")
        assert_that(stats | beam.CombinePerKey(sum), equal_to([("records.deduplicated", 2)]), label="stats")


# --------------------------------------------------------------------------- the job end to end


@pytest.fixture(scope="module")
def sample_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "utterances"
    run_preprocess([ROOT / "data" / "samples"], out, *RUNNER)
    return out


def test_job_writes_a_valid_dataset_from_every_sample_format(sample_run):
    frame = pd.read_parquet(sample_run)
    assert set(frame["corpus"]) == {"nikl", "aihub-emotion", "aihub-summary", "aihub-sns", "aihub-dialogue",
                                    "kspon", "jsonl", "csv", "tsv", "txt", "parquet", "klue-ner", "klue-dp",
                                    "json-records"}
    table = read_dataset(str(sample_run), UTTERANCES)  # validates schema, manifest and counts
    assert table.num_rows == len(frame)
    manifest = read_json(sample_run / "_manifest.json")
    assert manifest["provenance"]["normalizer_hash"] and manifest["provenance"]["tokenizer_hash"]
    assert sum(manifest["rows_per_split"].values()) == len(frame)
    assert (sample_run / "_SUCCESS").exists()


def test_rows_are_normalized_tokenized_and_auditable(sample_run):
    frame = pd.read_parquet(sample_run)
    row = frame[frame["text_raw"] == "사이즈가 넘 작아요. 반품 어케 해요?"].iloc[0]
    assert row["text"] == "사이즈가 너무 작아요. 반품 어떻게 해요?"
    assert list(row["tokens"]) == ["사이즈가", "너무", "작아요", ".", "반품", "어떻게", "해요", "?"]
    for text_raw, text, edits in zip(frame["text_raw"], frame["text"], frame["edits"], strict=True):
        assert replay_edits(text_raw, list(edits)) == text


def test_turns_of_one_dialogue_share_a_split(sample_run):
    frame = pd.read_parquet(sample_run)
    assert (frame.groupby(["corpus", "doc_id"])["split"].nunique() == 1).all()


def test_conservation_rows_in_equal_out_plus_rejected_plus_deduplicated(sample_run):
    stats = read_json(sample_run / "_stats.json")
    c = stats["conservation"]
    assert c["records_in"] == c["records_out"] + c["records_rejected"] + c["records_deduplicated"]
    rejects = [json.loads(line) for f in (sample_run / "_rejects").glob("*.jsonl") for line in f.open()]
    assert len([r for r in rejects if r["level"] == "record"]) == c["records_rejected"] == 3
    assert c["records_out"] == len(pd.read_parquet(sample_run))


def test_counts_that_do_not_balance_fail_the_job_before_success():
    # the job raises instead of writing _SUCCESS for a dataset whose counts do not add up
    stats = {"records.in": 5, "records.out": 3, "records.rejected.empty_text": 1, "files.matched": 1, "files.read": 1}
    with pytest.raises(RuntimeError, match="records_in 5 != records_out 3"):
        beam_io.conservation(stats, preprocess.BALANCES)
    assert beam_io.conservation({**stats, "records.deduplicated": 1}, preprocess.BALANCES)["records_rejected"] == 1


def test_rerun_gives_identical_ids_and_splits(sample_run, tmp_path):
    run_preprocess([ROOT / "data" / "samples"], tmp_path / "again", *RUNNER)
    first = pd.read_parquet(sample_run).sort_values("id")[["id", "split", "text"]].reset_index(drop=True)
    second = pd.read_parquet(tmp_path / "again").sort_values("id")[["id", "split", "text"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)


@pytest.mark.slow  # two worker processes: ~4 s
def test_multi_process_run_gives_the_same_rows(sample_run, tmp_path):
    run_preprocess([ROOT / "data" / "samples"], tmp_path / "mp", *RUNNER,
                   "--direct_running_mode", "multi_processing", "--direct_num_workers", "2")
    columns = ["id", "split", "text", "doc_id", "turn"]
    first = pd.read_parquet(sample_run).sort_values("id")[columns].reset_index(drop=True)
    second = pd.read_parquet(tmp_path / "mp").sort_values("id")[columns].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, second)


def test_bad_files_land_in_rejects_and_the_run_goes_on(tmp_path):
    bad = tmp_path / "in"
    bad.mkdir()
    (bad / "good.txt").write_text("넘 좋아요\n", encoding="utf-8")
    (bad / "broken.json").write_text('{"document": [', encoding="utf-8")
    (bad / "legacy.txt").write_bytes("옛날 파일이에요ㅋㅋㅋ\n".encode("cp949"))
    (bad / "empty.jsonl").write_bytes(b"")
    (bad / "notes.docx").write_bytes(b"PK\x03\x04")
    out = tmp_path / "out"
    run_preprocess([bad], out, *RUNNER)
    frame = pd.read_parquet(out)
    assert sorted(frame["text"]) == ["너무 좋아요", "옛날 파일이에요ㅋㅋ"]
    rejects = {json.loads(line)["source"]: json.loads(line)["reason"]
               for f in (out / "_rejects").glob("*.jsonl") for line in f.open()}
    assert rejects == {"broken.json": "malformed_json", "empty.jsonl": "empty_file", "notes.docx": "unknown_format"}
    stats = read_json(out / "_stats.json")
    assert stats["conservation"]["files_rejected"] == 3 and stats["conservation"]["files_read"] == 2


def test_dedup_drops_exact_duplicates_of_normalized_text(tmp_path):
    src = tmp_path / "dup.txt"
    src.write_text("넘 좋아\n너무 좋아\n다른 말\n넘 좋아\n", encoding="utf-8")
    run_preprocess([src], tmp_path / "out", *RUNNER, "--dedup")
    frame = pd.read_parquet(tmp_path / "out")
    assert sorted(frame["text"]) == ["너무 좋아", "다른 말"]
    c = read_json(tmp_path / "out" / "_stats.json")["conservation"]
    assert (c["records_in"], c["records_out"], c["records_deduplicated"]) == (4, 2, 2)


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("하나\n", encoding="utf-8")
    run_preprocess([src], tmp_path / "out", *RUNNER)
    with pytest.raises(FileExistsError, match="--overwrite"):
        run_preprocess([src], tmp_path / "out", *RUNNER)
    run_preprocess([src], tmp_path / "out", *RUNNER, "--overwrite")
    assert len(pd.read_parquet(tmp_path / "out")) == 1


def test_input_matching_nothing_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="matched no files"):
        run_preprocess([tmp_path / "nothing*.json"], tmp_path / "out", *RUNNER)


def test_bad_split_ratios_are_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_preprocess([ROOT / "data" / "samples"], tmp_path / "out", "--split-ratios", "0.8,0.3,0.1")
    assert stopped.value.code == 2 and "summing to 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- Dataflow readiness


def test_dataflow_options_parse_unchanged():
    from apache_beam.options.pipeline_options import GoogleCloudOptions, SetupOptions, StandardOptions

    argv = ["--input", "gs://bucket/nikl/*.json", "--output", "gs://bucket/out", "--runner", "DataflowRunner",
            "--project", "my-project", "--region", "asia-northeast3", "--temp_location", "gs://bucket/tmp",
            "--setup_file", "./setup.py", "--max_num_workers", "8"]
    config, beam_args = preprocess.beam_io.parse_job(preprocess.PreprocessConfig, argv, prog="t", description="")
    assert config.inputs == ("gs://bucket/nikl/*.json",)
    options = preprocess.beam_io.pipeline_options(beam_args)
    assert options.view_as(StandardOptions).runner == "DataflowRunner"
    cloud = options.view_as(GoogleCloudOptions)
    assert (cloud.project, cloud.region, cloud.temp_location) == ("my-project", "asia-northeast3", "gs://bucket/tmp")
    assert options.view_as(SetupOptions).setup_file == "./setup.py"
    # the graph builds with those options (nothing is submitted)
    pipeline = beam.Pipeline(runner="FnApiRunner", options=options)
    preprocess.build(pipeline, config)


def test_sdist_carries_the_lexicons(tmp_path):
    tree = tmp_path / "src"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(".venv", ".git", "out", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "setup.py", "-q", "sdist", "--dist-dir", str(tmp_path / "dist")],
                   cwd=tree, check=True, capture_output=True)
    (archive,) = (tmp_path / "dist").glob("malmoi-*.tar.gz")
    names = tarfile.open(archive).getnames()
    for lexicon in ("contractions.tsv", "endings.tsv", "initialisms.tsv"):
        assert any(n.endswith(f"beam_jobs/text/lexicons/{lexicon}") for n in names), lexicon
    assert any(n.endswith("beam_jobs/preprocess.py") for n in names)


# --------------------------------------------------------------------------- the user's own data


def test_a_misspelt_option_is_an_error_naming_the_nearest_one(tmp_path):
    # guards against Beam silently dropping an option it cannot parse (--split-colunm ran to the end,
    # ignored, and changed the splits without a word)

    (tmp_path / "a.txt").write_text("하나\n", encoding="utf-8")
    with pytest.raises(MalmoiError, match=r"unknown option '--split-colunm' \(did you mean --split-column\?\)"):
        preprocess.run(["--input", str(tmp_path / "a.txt"), "--output", str(tmp_path / "out"), "--split-colunm", "s",
                        *RUNNER])
    assert not (tmp_path / "out").exists()


def test_split_column_delimiter_and_text_column_candidates(tmp_path):
    # guards against a user's own split landing in meta, a '|' file read as one column, and two
    # corpora with different text column names needing two conversions
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.csv").write_text("sentence|label|fold\n좋아요|pos|train\n별로|neg|dev\n그냥|neg|TEST\n이상해|neg|holdout\n",
                                  encoding="utf-8")
    (folder / "b.jsonl").write_text('{"document": "재밌다", "label": "pos", "fold": "valid"}\n', encoding="utf-8")
    out = tmp_path / "out"
    run_preprocess([folder], out, "--delimiter", "|", "--text-column", "text,sentence,document",
                   "--split-column", "fold", *RUNNER)
    frame = pd.read_parquet(out)
    assert dict(zip(frame["text_raw"], frame["split"], strict=True)) == {
        "좋아요": "train", "별로": "valid", "그냥": "test", "재밌다": "valid"}
    assert all("fold" not in {item["key"] for item in meta} for meta in frame["meta"])
    rejects = [json.loads(line) for path in (out / "_rejects").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(r["reason"], r["position"]) for r in rejects] == [("bad_split", "line 5")]
    assert "holdout" in rejects[0]["detail"]


def test_a_wrong_delimiter_is_named_in_the_reject(tmp_path):
    (tmp_path / "a.csv").write_text("text|label\n좋아요|pos\n", encoding="utf-8")
    out = tmp_path / "out"
    run_preprocess([tmp_path / "a.csv"], out, *RUNNER)
    rejects = [json.loads(line) for path in (out / "_rejects").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert rejects[0]["reason"] == "missing_column" and "--delimiter" in rejects[0]["detail"]


def test_outputs_open_with_pandas_and_hugging_face_datasets_and_old_datasets_still_read(tmp_path):
    # guards against meta as map<string,string> (no datasets type) and a schema change that orphans
    # every utterances dataset written before it
    import datasets
    import pyarrow as pa

    from schemas.dataset import write_local_dataset
    from schemas.utterances import UTTERANCES_SCHEMA_V1

    out = tmp_path / "utterances"
    run_preprocess([ROOT / "data" / "samples"], out, *RUNNER)
    # the README's recipe, as a Hugging Face user writes it: the folder, no file pattern; the
    # side-cars (_SUCCESS, _manifest.json, _stats.json, _rejects/) must not be read as data
    (out / "_rejects").mkdir(exist_ok=True)
    (out / "_rejects" / "rejects-00000-of-00001.jsonl").write_text('{"reason": "x"}\n', encoding="utf-8")
    splits = datasets.load_dataset("parquet", data_dir=str(out))
    manifest = read_json(out / "_manifest.json")
    names = {"train": "train", "valid": "validation", "test": "test"}
    assert {split: len(rows) for split, rows in splits.items()} == {
        names[split]: n for split, n in manifest["rows_per_split"].items() if n}
    assert all(set(rows.unique("split")) == {split} for split, rows in
               ((s, splits[names[s]]) for s in manifest["rows_per_split"] if manifest["rows_per_split"][s]))
    loaded = splits["train"]
    assert {"text", "split", "meta"} <= set(loaded.column_names)
    assert isinstance(loaded[0]["meta"], list) and set(loaded[0]["meta"][0]) == {"key", "value"}
    assert len(pd.read_parquet(out)) == manifest["num_rows"]

    current = read_dataset(str(out), UTTERANCES)
    v1_meta = pa.array([[(m["key"], m["value"]) for m in row] for row in current.column("meta").to_pylist()],
                       pa.map_(pa.string(), pa.string()))
    v1 = current.set_column(current.schema.get_field_index("meta"), UTTERANCES_SCHEMA_V1.field("meta"), v1_meta)
    v1 = v1.drop_columns(["entities"])  # v1 had no entities column
    old_spec = type(UTTERANCES)(name="utterances", version=1, schema=UTTERANCES_SCHEMA_V1,
                                allowed_values=UTTERANCES.allowed_values)
    write_local_dataset(str(tmp_path / "v1"), v1, old_spec, created_by="malmoi 0.1", provenance={})
    again = read_dataset(str(tmp_path / "v1"), UTTERANCES)
    assert again.schema.field("meta").type == UTTERANCES.schema.field("meta").type
    assert again.column("meta").to_pylist() == current.column("meta").to_pylist()
    assert again.column("id").to_pylist() == current.column("id").to_pylist()
    assert again.column("entities").null_count == again.num_rows


def test_long_stages_log_their_progress(caplog):
    # guards against long stages (augment, learn_words) running for hours without a word
    import logging
    import pickle

    progress = beam_io.Progress("augment.teacher", "rows", every=0.0)
    with caplog.at_level(logging.INFO, logger="beam_jobs.beam_io"):
        progress.add(2048)
        progress.add(2048)
    assert "augment.teacher: 4,096 rows" in caplog.text
    copy = pickle.loads(pickle.dumps(progress))  # what a DoFn carries to a worker
    assert copy.count == 0 and copy.stage == "augment.teacher"


def test_entities_survive_normalization_and_no_edit_cuts_through_one(tmp_path):
    # guards against entity offsets left pointing at the raw text after edits moved it, and against
    # an edit that would cut an entity (a stretched syllable collapsed across its boundary)
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(ROOT / "data" / "samples" / "klue" / "klue_ner_sample.tsv", folder)
    (folder / "spans.jsonl").write_text(
        json.dumps({"id": "a", "text": "지이인짜 좋아", "entities": [{"start": 0, "end": 2, "label": "XX"}]},
                   ensure_ascii=False) + "\n"
        + json.dumps({"id": "b", "text": "그냥 별로", "entities": [{"start": 3, "end": 9, "label": "XX"}]},
                     ensure_ascii=False) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    run_preprocess([folder], out, *RUNNER)
    frame = pd.read_parquet(out)
    surfaces = {row.text: [(row.text[e["start"]:e["end"]], e["label"]) for e in row.entities]
                for row in frame.itertuples() if row.entities is not None}
    assert surfaces["톰 행크스면 믿고 봅니다ㅋㅋ"] == [("톰 행크스", "PS")]
    assert surfaces["내일 부산에서 너무 재밌게 봤어요"] == [("부산", "LC")]
    # the collapse 지이인짜 -> 진짜 would cut the entity 지이: not made; the text is normalized around it
    assert surfaces["지이인짜 좋아"] == [("지이", "XX")]
    for text_raw, text, edits in zip(frame["text_raw"], frame["text"], frame["edits"], strict=True):
        assert replay_edits(text_raw, list(edits)) == text
    stats = read_json(out / "_stats.json")["counts"]
    assert stats["entities.normalized_around"] == 1 and stats["entities.kept"] == 6
    rejects = [json.loads(line) for path in (out / "_rejects").glob("*.jsonl")
               for line in path.read_text(encoding="utf-8").splitlines()]
    assert [r["reason"] for r in rejects] == ["bad_entities"]


def test_stratify_by_splits_every_label_in_the_ratios(tmp_path):
    # guards against a hash split whose test set has another label mix than train (38.8% positive vs
    # 34.6%), and against a stratified split that depends on arrival order or cuts a dialogue in two
    rows = [{"text": f"문장 {i}", "label": "pos" if i % 3 == 0 else "neg", "id": str(i)} for i in range(600)]
    rows += [{"text": f"대화 {i}", "label": "pos", "dialogue": "d7"} for i in range(5)]
    (tmp_path / "a.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n",
                                      encoding="utf-8")
    out = tmp_path / "out"
    run_preprocess([tmp_path / "a.jsonl"], out, "--stratify-by", "label", "--doc-id-column", "dialogue", *RUNNER)
    frame = pd.read_parquet(out)
    assert len(frame) == len(rows)
    shares = frame.groupby("label")["split"].value_counts(normalize=True).unstack()
    for label in ("pos", "neg"):
        assert abs(shares.loc[label, "train"] - 0.8) < 0.02 and abs(shares.loc[label, "test"] - 0.1) < 0.02, shares
    assert frame[frame["doc_id"] == "d7"]["split"].nunique() == 1
    assert read_json(out / "_stats.json")["counts"]["split.strata"] == 2

    from beam_jobs.records import SplitRatios, stratified_splits

    docs = [("c", str(i), 1 + i % 4) for i in range(50)]
    assert stratified_splits(docs, SplitRatios()) == stratified_splits(list(reversed(docs)), SplitRatios())

    with pytest.raises(MalmoiError, match="--stratify-by 'label' and --split-column 'fold'"):
        preprocess.run(["--input", str(tmp_path / "a.jsonl"), "--output", str(tmp_path / "x"),
                        "--stratify-by", "label", "--split-column", "fold"])


def test_a_one_value_option_given_twice_is_an_error(tmp_path, capsys):
    # guards against argparse's last-one-wins: `--teacher A --teacher B` on a one-value option (or a
    # --split-column repeated by a script) dropped the first value without a word
    (tmp_path / "a.txt").write_text("하나\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        preprocess.run(["--input", str(tmp_path / "a.txt"), "--output", str(tmp_path / "out"), "--split-column", "a",
                        "--split-column", "b", *RUNNER])
    assert "--split-column takes one value; found 'a', then 'b'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    from kd import distill

    with pytest.raises(SystemExit):
        distill.main(["--data", "d", "--tokenizer", "t", "--output", "o", "--teacher", "A", "--teacher", "B"])
    assert "--teacher takes one value" in capsys.readouterr().err

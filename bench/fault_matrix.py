"""The fault matrix (issue 13): hostile cases replayed end to end through the real commands.

    .venv/bin/python -m bench.fault_matrix [--only NAME] [--json docs/results/fault_matrix.json]

Every case builds its inputs in a fresh folder, runs a command in a child process with a time
limit (a hang is a timeout, a crash a traceback or an unexpected exit status), then checks what
the command left: rows, rejects, counts, files. Printed per case: expected, observed, and the
verdict (ok / crash / hang / silent loss / wrong). The figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import codecs
import datetime
import decimal
import io
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
LIMIT_S = 240


@dataclass
class Outcome:
    verdict: str  # ok, crash, hang, silent_loss, wrong
    observed: str


def run(args: list[str], cwd: Path, timeout: int = LIMIT_S) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run([PY, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        return None


def preprocess(work: Path, *inputs: str, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess | None:
    argv = ["-m", "beam_jobs.preprocess", *[a for i in inputs for a in ("--input", i)], "--output", "out",
            "--runner", "FnApiRunner", *extra]
    return run(argv, work)


def judge(done: subprocess.CompletedProcess | None, check: Callable[[], tuple[bool, str]],
          expect_status: int = 0) -> Outcome:
    if done is None:
        return Outcome("hang", f"no answer in {LIMIT_S} s")
    if "Traceback (most recent call last)" in done.stderr or done.returncode not in (expect_status,):
        tail = (done.stderr.strip().splitlines() or [""])[-1][:160]
        return Outcome("crash", f"exit {done.returncode}: {tail}")
    good, observed = check()
    return Outcome("ok" if good else "wrong", observed)


def stats(work: Path) -> dict:
    return json.loads((work / "out" / "_stats.json").read_text(encoding="utf-8"))


def rows(work: Path, folder: str = "out") -> list[dict]:
    return pq.read_table(work / folder).to_pylist() if (work / folder / "_SUCCESS").exists() else []


def balanced_with(work: Path, reason: str | None = None, out_rows: int | None = None) -> tuple[bool, str]:
    s = stats(work)
    c, counts = s["conservation"], s["counts"]
    ok = c["balanced"] and (reason is None or any(k.endswith(reason) for k in counts)) and \
        (out_rows is None or c["records_out"] == out_rows)
    return ok, f"out {c['records_out']}, rejected {c['records_rejected']} records / {c['files_rejected']} files " \
               f"{sorted(k for k in counts if 'rejected.' in k)}"


# --------------------------------------------------------------------------- the cases


def parquet_odd_types(work: Path) -> Outcome:
    table = pa.table({"text": ["좋아요", "별로"], "when": [datetime.datetime(2024, 1, 2), None],
                      "price": pa.array([decimal.Decimal("1.5"), None], pa.decimal128(5, 2)), "blob": [b"\x00", b"x"]})
    pq.write_table(table, work / "odd.parquet")
    return judge(preprocess(work, "odd.parquet"), lambda: balanced_with(work, out_rows=2))


def json_too_deep(work: Path) -> Outcome:
    (work / "deep.json").write_text("[" * 20000 + "]" * 20000)
    (work / "ok.txt").write_text("멀쩡한 줄\n", encoding="utf-8")
    return judge(preprocess(work, "."), lambda: balanced_with(work, "parse_failed:RecursionError", 1))


def xlsx_bomb(work: Path) -> Outcome:
    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["SENTENCE"])
    data = io.BytesIO()
    book.save(data)
    with zipfile.ZipFile(data, "a", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/media/padding.bin", b"\0" * (64 << 20))
    (work / "bomb.xlsx").write_bytes(data.getvalue())
    return judge(preprocess(work, "bomb.xlsx"), lambda: balanced_with(work, "xlsx_too_large", 0))


def xlsx_stale_dimension(work: Path) -> Outcome:
    import re

    import openpyxl

    book = openpyxl.Workbook()
    for row in [["SPEAKER", "SENTENCE"]] + [["A", f"문장 {i}"] for i in range(7)]:
        book.active.append(row)
    data = io.BytesIO()
    book.save(data)
    source, patched = zipfile.ZipFile(data), io.BytesIO()
    with zipfile.ZipFile(patched, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            body = source.read(info.filename)
            if info.filename.endswith("sheet1.xml"):
                body = re.sub(rb'<dimension ref="[^"]*"\s*/>', b'<dimension ref="A1:B3"/>', body)
            out.writestr(info, body)
    (work / "d.xlsx").write_bytes(patched.getvalue())
    return judge(preprocess(work, "d.xlsx"), lambda: balanced_with(work, out_rows=7))


def fifo_in_input(work: Path) -> Outcome:
    (work / "in").mkdir()
    (work / "in" / "a.txt").write_text("좋아요\n", encoding="utf-8")
    os.mkfifo(work / "in" / "pipe.txt")
    return judge(preprocess(work, "in"), lambda: balanced_with(work, "not_a_regular_file", 1))


def csv_unclosed_quote(work: Path) -> Outcome:
    (work / "q.csv").write_text('text,label\n"hello,1\nworld,0\nnext,1\n', encoding="utf-8")
    return judge(preprocess(work, "q.csv"), lambda: balanced_with(work, "malformed_csv", 0))


def cr_only_lines(work: Path) -> Outcome:
    (work / "mac.txt").write_bytes("하나\r둘\r셋\r".encode())
    return judge(preprocess(work, "mac.txt"), lambda: balanced_with(work, out_rows=3))


def colon_txt_not_kspon(work: Path) -> Outcome:
    (work / "notes.txt").write_text("C++ :: 언어\n", encoding="utf-8")
    return judge(preprocess(work, "notes.txt"),
                 lambda: (rows(work)[0]["text"] == "C++ :: 언어", repr(rows(work)[0]["text"])))


def same_name_two_inputs(work: Path) -> Outcome:
    for name in ("a", "b"):
        (work / name).mkdir()
        (work / name / "x.txt").write_text(f"{name} 폴더\n", encoding="utf-8")

    def check() -> tuple[bool, str]:
        ids = {r["id"] for r in rows(work)}
        return len(ids) == 2, f"{len(ids)} distinct ids for 2 rows"

    return judge(preprocess(work, "a", "./b/", "a/x.txt"), check)


def nan_split_ratios(work: Path) -> Outcome:
    (work / "a.txt").write_text("좋아요\n", encoding="utf-8")
    done = run(["-m", "beam_jobs.preprocess", "--input", "a.txt", "--output", "out", "--split-ratios", "nan,nan,nan"],
               work)
    return judge(done, lambda: (not (work / "out").exists(), "refused, nothing written"), expect_status=2)


def cp949_ascii_head(work: Path) -> Outcome:
    data = b"".join(b"ascii line %d\n" % i for i in range(8000)) + "한국어 줄\n".encode("cp949")
    (work / "m.txt").write_bytes(data)
    return judge(preprocess(work, "m.txt"), lambda: balanced_with(work, out_rows=8001))


def nul_byte_early(work: Path) -> Outcome:
    (work / "n.txt").write_bytes("앞\x00줄\n좋아요\n".encode())
    return judge(preprocess(work, "n.txt"), lambda: balanced_with(work, out_rows=2))


def utf16_line_separator(work: Path) -> Outcome:
    (work / "u.txt").write_bytes(codecs.BOM_UTF16_LE + "하나\u2028여전히\n둘\n".encode("utf-16-le"))
    return judge(preprocess(work, "u.txt"), lambda: balanced_with(work, out_rows=2))


def binary_and_empty_files(work: Path) -> Outcome:
    (work / "in").mkdir()
    (work / "in" / "bin.txt").write_bytes(bytes(range(256)) * 50)
    (work / "in" / "empty.jsonl").write_bytes(b"")
    (work / "in" / "ok.txt").write_text("좋아요\n", encoding="utf-8")
    return judge(preprocess(work, "in"), lambda: balanced_with(work, "empty_file", 1))


def leftover_beam_temp(work: Path) -> Outcome:
    (work / "a.txt").write_text("좋아요\n", encoding="utf-8")
    (work / "out" / "beam-temp-part-1").mkdir(parents=True)
    (work / "out" / "beam-temp-part-1" / "x.parquet").write_bytes(b"half")
    refused = preprocess(work, "a.txt")
    if refused is None or refused.returncode != 2:
        return Outcome("wrong", "a killed run's leftovers were not refused")
    done = preprocess(work, "a.txt", extra=("--overwrite",))
    return judge(done, lambda: (not list((work / "out").glob("beam-temp-*")) and len(rows(work)) == 1,
                                "temp folder removed, 1 row"))


def hostile_text(work: Path) -> Outcome:
    text = "a-" * 50_000 + ". " + "a." * 50_000 + "@ " + "낼 " * 20_000 + "ㅋ" * 50_000
    (work / "h.txt").write_text(text + "\n", encoding="utf-8")
    started = time.perf_counter()
    done = run(["-m", "beam_jobs.normalize"], work)
    if done is None:
        return Outcome("hang", "normalize did not answer")
    return Outcome("ok", f"{len(text):,} characters in {time.perf_counter() - started:.1f} s (process start included)")


# trainer cases share tiny artifacts (tokenizer, teacher, kd shards) built once


def _artifacts(work: Path) -> Path:
    script = (f"import sys; from pathlib import Path; sys.path.insert(0, {str(ROOT)!r})\n"
              "from tests.kd_fixtures import make_kd_shards, make_teacher, make_tokenizer\n"
              f"w = Path({str(work)!r}); t = make_tokenizer(w / 'tok'); make_teacher(w / 'teacher', len(t))\n"
              "make_kd_shards(w / 'kd', w / 'tok', rows=160)\n")
    subprocess.run([PY, "-c", script], check=True, capture_output=True)
    return work


TINY = ["--student-layers", "1", "--student-hidden", "16", "--student-heads", "2", "--student-intermediate", "32",
        "--batch-size", "8", "--no-progress", "--device", "cpu", "--no-cpu-speed"]


def distill_args(work: Path, output: str, *extra: str) -> list[str]:
    return ["-m", "kd.distill", "--data", str(work / "kd"), "--tokenizer", str(work / "tok"), "--output", output,
            *TINY, *extra]


def crafted_checkpoint(work: Path) -> Outcome:
    _artifacts(work)
    first = run(distill_args(work, "s", "--max-steps", "4", "--save-every", "2"), work)
    if first is None or first.returncode:
        return Outcome("crash", "the first run failed")
    marker = work / "pwned"
    state = next((work / "s" / "checkpoints").glob("step-*/state.pt"))
    payload = ("import os, torch\nclass X:\n    def __reduce__(self):\n"
               f"        return (os.system, ('touch {marker}',))\n"
               f"torch.save({{'model': X()}}, {str(state)!r})\n")
    subprocess.run([PY, "-c", payload], check=True)
    done = run(distill_args(work, "s", "--max-steps", "6", "--resume"), work)
    if done is None:
        return Outcome("hang", "resume did not answer")
    clear = done.returncode == 2 and "Traceback" not in done.stderr
    return Outcome("ok" if not marker.exists() and clear else "wrong",
                   f"exit {done.returncode} ({'a clear refusal' if clear else 'no clear message'}), "
                   f"code ran: {marker.exists()}")


def sigterm_distill(work: Path) -> Outcome:
    _artifacts(work)
    child = subprocess.Popen([PY, *distill_args(work, "s", "--max-steps", "1000000", "--log-every", "1")], cwd=work,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 120
    while not (work / "s" / "metrics.jsonl").exists() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    try:
        child.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        child.kill()
        return Outcome("hang", "did not stop after SIGTERM")
    exported = (work / "s" / "model.safetensors").exists()
    return Outcome("ok" if child.returncode == 3 and not exported else "wrong",
                   f"exit {child.returncode}, model exported: {exported}")


def resume_other_run(work: Path) -> Outcome:
    _artifacts(work)
    run(distill_args(work, "s", "--max-steps", "4", "--save-every", "2"), work)
    (work / "s" / "model.safetensors").unlink(missing_ok=True)
    (work / "s" / "config.json").unlink(missing_ok=True)
    done = run(distill_args(work, "s", "--max-steps", "6", "--resume", "--seed", "7"), work)
    return judge(done, lambda: (True, "refused: " + (done.stderr.strip().splitlines() or [""])[-1][:100]),
                 expect_status=2)


def nan_teacher_rows(work: Path) -> Outcome:
    _artifacts(work)
    path = next((work / "kd").glob("train-*.parquet"))
    table = pq.read_table(path)
    logits = table.column("teacher_logits").to_pylist()
    for i in range(0, len(logits), 20):
        logits[i] = [float("nan"), 0.0]
    column = pa.array(logits, table.schema.field("teacher_logits").type)
    pq.write_table(table.set_column(table.schema.get_field_index("teacher_logits"), "teacher_logits", column), path)
    done = run(distill_args(work, "s", "--max-steps", "30", "--log-every", "10"), work)

    def check() -> tuple[bool, str]:
        training = json.loads((work / "s" / "evaluation.json").read_text())["training"]
        return (training["skipped_nonfinite"] == 0 and training["rows_skipped"].get("nonfinite_teacher", 0) > 0,
                f"steps voided {training['skipped_nonfinite']}, rows left out {training['rows_skipped']}")

    return judge(done, check)


def labels_out_of_range(work: Path) -> Outcome:
    _artifacts(work)
    path = next((work / "kd").glob("train-*.parquet"))
    table = pq.read_table(path)
    labels = table.column("label").to_pylist()
    labels[0] = -5
    pq.write_table(table.set_column(table.schema.get_field_index("label"), "label", pa.array(labels, pa.int32())), path)
    done = run(distill_args(work, "s", "--max-steps", "2"), work)
    return judge(done, lambda: (True, "refused: " + (done.stderr.strip().splitlines() or [""])[-1][:100]),
                 expect_status=2)


def evaluate_swapped_labels(work: Path) -> Outcome:
    _artifacts(work)
    script = ("import sys; sys.path.insert(0, {!r})\nfrom kd.models import bert_student\n"
              "bert_student(vocab_size=300, label_names=['positive', 'negative'], num_layers=1, hidden_size=16, "
              "num_heads=2, intermediate_size=32).save_pretrained({!r})\n").format(str(ROOT), str(work / "swapped"))
    subprocess.run([PY, "-c", script], check=True, capture_output=True)
    done = run(["-m", "kd.evaluate", "--data", str(work / "kd"), "--model", str(work / "swapped")], work)
    return judge(done, lambda: (True, "refused: " + (done.stderr.strip().splitlines() or [""])[-1][:100]),
                 expect_status=2)


def overwrite_existing_model(work: Path) -> Outcome:
    _artifacts(work)
    run(distill_args(work, "s", "--max-steps", "2"), work)
    done = run(distill_args(work, "s", "--max-steps", "2"), work)
    return judge(done, lambda: (True, "refused without --overwrite"), expect_status=2)


def stray_part_file(work: Path) -> Outcome:
    import shutil

    _artifacts(work)
    shutil.copy(next((work / "kd").glob("train-*.parquet")), work / "kd" / "train-00009-of-00010.parquet")
    done = run(distill_args(work, "s", "--max-steps", "2"), work)
    return judge(done, lambda: (True, "refused: " + (done.stderr.strip().splitlines() or [""])[-1][:100]),
                 expect_status=2)


CASES: dict[str, Callable[[Path], Outcome]] = {
    "parquet with timestamp/decimal/binary columns": parquet_odd_types,
    "JSON nested 20k levels": json_too_deep,
    "xlsx decompression bomb (64 MB unpacked)": xlsx_bomb,
    "xlsx with a stale <dimension>": xlsx_stale_dimension,
    "FIFO in the input folder": fifo_in_input,
    "CSV with an unclosed quote": csv_unclosed_quote,
    "CR-only line endings": cr_only_lines,
    "txt whose first line holds ' :: '": colon_txt_not_kspon,
    "same file name under two inputs, one file twice": same_name_two_inputs,
    "--split-ratios nan,nan,nan": nan_split_ratios,
    "CP949 file with 64 KB of ASCII first": cp949_ascii_head,
    "one NUL byte early in a text file": nul_byte_early,
    "UTF-16 text with U+2028": utf16_line_separator,
    "binary and empty files beside a good one": binary_and_empty_files,
    "leftover beam-temp from a killed run": leftover_beam_temp,
    "hostile text (URL, e-mail, 낼, jamo runs)": hostile_text,
    "crafted checkpoint on --resume": crafted_checkpoint,
    "SIGTERM during distill": sigterm_distill,
    "--resume with another run's checkpoint": resume_other_run,
    "NaN teacher logits in 5% of rows": nan_teacher_rows,
    "label ids below -1": labels_out_of_range,
    "kd.evaluate with swapped labels": evaluate_swapped_labels,
    "distill into an output that holds a model": overwrite_existing_model,
    "a part file added after the job finished": stray_part_file,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    results = {}
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory() as folder:
            started = time.perf_counter()
            try:
                outcome = case(Path(folder))
            except Exception as error:  # noqa: BLE001 - a case that cannot even be set up is reported, not fatal
                outcome = Outcome("crash", f"{type(error).__name__}: {error}"[:160])
            results[name] = {"verdict": outcome.verdict, "observed": outcome.observed,
                             "seconds": round(time.perf_counter() - started, 1)}
        print(f"{outcome.verdict:6s} {name}: {outcome.observed}", flush=True)
    verdicts = [r["verdict"] for r in results.values()]
    summary = {v: verdicts.count(v) for v in ("ok", "crash", "hang", "silent_loss", "wrong")}
    print("summary:", summary)
    if args.json:
        Path(args.json).write_text(json.dumps({"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(),
                                               "summary": summary, "cases": results}, indent=2, ensure_ascii=False)
                                   + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

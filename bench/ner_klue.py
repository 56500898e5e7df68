"""Benchmark: token-level distillation on KLUE-NER dev (CC BY-SA), through the real commands.

    .venv/bin/python -m bench.ner_klue [--seeds 1] [--teacher-steps 1500] [--student-steps 1500] [--pool 5000]

KLUE-NER dev (5,000 sentences: news and NSMC reviews) is preprocessed by the real job (its
hash split by sentence id: ~80/10/10); a WordPiece vocabulary for the teacher and a Unigram
vocabulary of another size for the student (so the character alignment is exercised); the
teacher is a small BERT pretrained from scratch on the texts (masked LM) and fine-tuned with
``kd.finetune --task token-classification``; ``augment`` writes kd_token shards. Students
(same shape), each from scratch: gold tags only (``--kl 0``), KD + gold, KD + gold + the BEEP!
comments as a pseudo-labelled pool (``--pool`` comments through preprocess and augment), and KD +
gold with the teacher's own tokenizer (the same-tokenizer reference for the character alignment);
optional regimes add an in-domain NSMC pool and thin either pool with ``--unlabeled-share``, and
``--teachers N`` fine-tunes N teachers (seeds 0..N-1, each from its own start) so that ``kdens``
distils from augment's fitted token-level ensemble of all of them (``kd`` keeps the first alone).
Reported: entity F1 (exact span and type) on the test split, overall and for the colloquial
(``nsmc``) and formal (``wikitree``) halves, teacher vs students, non-embedding parameters and
batch-1 CPU latency. From-scratch models on a 2-core CPU are far below a pretrained Korean
checkpoint: the figures compare the training regimes, not the state of the art.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from bench.corpora import require_shared_data

SMALL = ["--no-progress", "--device", "cpu", "--batch-size", "32"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="students use seeds first-seed .. first-seed+seeds-1 (more seeds for a kept --reuse draw)")
    parser.add_argument("--pretrain-steps", type=int, default=800)
    parser.add_argument("--teacher-steps", type=int, default=1500)
    parser.add_argument("--student-steps", type=int, default=1500)
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--teacher-lr", default="1e-3")
    parser.add_argument("--kd-kl", default="1.0", help="the KD regimes' --kl (the KL term's weight beside CE 1)")
    parser.add_argument("--no-mlm", action="store_true",
                        help="no masked-LM pretraining: the teacher starts from random weights of the same shape "
                             "(a short CPU pretraining on 5,000 sentences collapsed the encoder: every sentence "
                             "got the same vector, and the teacher fine-tuned from it stayed at all-O)")
    parser.add_argument("--mlm", help="start every teacher from this masked LM (a local checkpoint with its tokenizer "
                                      "beside it, e.g. bench.pretrain_checkpoints' CPU teacher4_mlm) instead of "
                                      "pretraining one here; the teachers then use its tokenizer")
    parser.add_argument("--student-init", help="start every student from this small pretrained checkpoint (its "
                                               "tokenizer is then the students'; learning rate 1e-3 instead of 2e-3)")
    parser.add_argument("--regimes", default="gold,kd,pool,same",
                        help="students to train: gold (gold tags only), kd (KD + gold), pool (KD + gold + the "
                             "pseudo-labelled BEEP! pool), same (KD + gold with the teacher's tokenizer), "
                             "kdmean (KD + gold with --token-target mean, beside kd's --token-target), nsmcpool "
                             "(KD + gold + --pool NSMC reviews, in-domain for the colloquial half, pseudo-labelled; "
                             "reviews sharing text with KLUE-NER dev are left out), poolshare and nsmcshare "
                             "(the two pools with kd.distill --unlabeled-share --pool-share: the pool rows thinned "
                             "afresh each epoch to that share of its rows), kdens (KD + gold from the fitted "
                             "ensemble of --teachers teachers), ensnsmcshare (kdens + the NSMC pool pseudo-labelled "
                             "by the ensemble at --pool-share)")
    parser.add_argument("--pool-share", default="0.25", help="the *share regimes' kd.distill --unlabeled-share")
    parser.add_argument("--token-target", default="first", choices=("first", "mean"),
                        help="the KD regimes' kd.distill --token-target")
    parser.add_argument("--teachers", type=int, default=1,
                        help="teachers to fine-tune (seeds 0..N-1, each from its own start); with 2 or more the "
                             "kdens regime distils from all of them, augment's fitted token-level ensemble")
    parser.add_argument("--keep", help="copy the utterances, tokenizers and teachers here once they are made")
    parser.add_argument("--reuse", help="take the utterances, tokenizers and teachers from a --keep folder instead of "
                                        "making them (the same draw of teachers for other regimes or augment code)")
    parser.add_argument("--json", default="docs/results/ner_klue.json")
    args = parser.parse_args(argv)

    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    from beam_jobs import augment, preprocess
    from kd import distill, finetune, pretrain
    from kd.evaluate import cpu_speed
    from kd.models import count_parameters
    from kd.tokenizer import dataset_texts, train_tokenizer

    root = require_shared_data()
    runner = ["--runner", "FnApiRunner"]
    report: dict = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()} CPU, "
                    f"{torch.get_num_threads()} threads", "args": vars(args)}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        made = ["utt", "mlm", "student_tok", *(("teacher" if i == 0 else f"teacher{i}") for i in range(args.teachers))]
        if args.reuse:
            for name in made:
                shutil.copytree(Path(args.reuse) / name, tmp / name)
        else:
            preprocess.run(["--input", str(root / "klue_dev" / "klue-ner-v1.1_dev.tsv"), "--output", str(tmp / "utt"),
                            *runner])
        with open(root / "korean_hate_speech_beep" / "unlabeled_comments_5.txt", encoding="utf-8") as handle:
            pool = [line.strip() for line in handle if line.strip()][: args.pool]
        (tmp / "pool").mkdir()
        (tmp / "pool" / "comments.txt").write_text("\n".join(pool) + "\n", encoding="utf-8")
        preprocess.run(["--input", str(tmp / "pool"), "--output", str(tmp / "pool_utt"), *runner])
        texts = list(dataset_texts(str(tmp / "utt"), split=None)) + list(dataset_texts(str(tmp / "pool_utt"), split=None))
        if args.mlm and not args.reuse:  # the provided checkpoint's tokenizer is the teachers'
            _copy_tokenizer(Path(args.mlm), tmp / "mlm")
            report["teacher_init"] = _provided(args.mlm)
        elif not args.reuse:
            train_tokenizer(texts, tmp / "mlm", vocab_size=8000, min_frequency=2)
        if args.student_init:  # the students' tokenizer is their checkpoint's (also over a --reuse folder's)
            _copy_tokenizer(Path(args.student_init), tmp / "student_tok")
            report["student_init"] = _provided(args.student_init)
        elif not args.reuse:
            train_tokenizer(texts, tmp / "student_tok", vocab_size=4000, min_frequency=2, kind="unigram")
        teacher_shape = ["--layers", "4", "--hidden", "256", "--heads", "4", "--intermediate", "1024"]
        teachers = [tmp / ("teacher" if i == 0 else f"teacher{i}") for i in range(args.teachers)]
        report["teacher_seconds"], report["teacher_members"] = [], []
        for number, folder in enumerate(teachers):
            started = time.perf_counter()
            if args.reuse:
                report["teacher_seconds"].append(None)
                report["teacher_members"].append(_teacher_test(folder))
                continue
            init = tmp / f"mlm_model{number}"
            if args.mlm:  # every teacher from the provided checkpoint, fine-tuned with its own seed
                init = Path(args.mlm)
            elif args.no_mlm:  # each teacher its own random start
                from bench.real_data import random_masked_lm

                random_masked_lm(tmp / "mlm", init, teacher_shape)
            elif number == 0:
                assert pretrain.main(["--data", str(tmp / "utt"), "--tokenizer", str(tmp / "mlm"), "--output",
                                      str(init), *teacher_shape, "--max-steps", str(args.pretrain_steps),
                                      "--learning-rate", "1e-3", *SMALL]) == 0
            else:
                init = tmp / "mlm_model0"
            assert finetune.main(["--data", str(tmp / "utt"), "--init", str(init), "--output",
                                  str(folder), "--task", "token-classification", "--max-steps",
                                  str(args.teacher_steps), "--eval-every", str(max(1, args.teacher_steps // 5)),
                                  "--patience", "9", "--learning-rate", args.teacher_lr, "--seed", str(number),
                                  *SMALL]) == 0
            report["teacher_seconds"].append(time.perf_counter() - started)
            report["teacher_members"].append(_teacher_test(folder))
        report["teacher"] = {"test": report["teacher_members"][0]}
        if args.keep and not args.reuse:
            for name in made:
                shutil.copytree(tmp / name, Path(args.keep) / name, dirs_exist_ok=True)

        def teacher_shards(utterances: str, out: str, tokenizer: str = "student_tok", members: int = 1,
                           extra: tuple[str, ...] = ()) -> None:
            augment.run(["--input", str(tmp / utterances), "--output", str(tmp / out),
                         *(a for t in teachers[:members] for a in ("--teacher", str(t))),
                         "--student-tokenizer", str(tmp / tokenizer), *extra, *runner])

        teacher_shards("utt", "kd")
        wanted = set(args.regimes.split(","))
        if wanted & {"kdens", "ensnsmcshare"}:
            if args.teachers < 2:
                parser.error("the kdens regime needs --teachers 2 or more")
            teacher_shards("utt", "kd_ens", members=args.teachers)
            report["ensemble"] = json.loads((tmp / "kd_ens" / "_manifest.json").read_text())["provenance"]["ensemble"]
        if wanted & {"pool", "poolshare"}:
            teacher_shards("pool_utt", "kd_pool")
            _merge_shards([tmp / "kd", tmp / "kd_pool"], tmp / "kd_merged")
        if wanted & {"nsmcpool", "nsmcshare", "ensnsmcshare"}:
            reviews, left_out = _nsmc_pool(root, tmp / "utt", args.pool)
            report["nsmc_pool"] = {"rows": len(reviews), "left_out_sharing_klue_text": left_out}
            (tmp / "nsmc_pool").mkdir()
            (tmp / "nsmc_pool" / "reviews.txt").write_text("\n".join(reviews) + "\n", encoding="utf-8")
            preprocess.run(["--input", str(tmp / "nsmc_pool"), "--output", str(tmp / "nsmc_pool_utt"), *runner])
            teacher_shards("nsmc_pool_utt", "kd_nsmc_pool")
            _merge_shards([tmp / "kd", tmp / "kd_nsmc_pool"], tmp / "kd_nsmc_merged")
            if "ensnsmcshare" in wanted:  # the pool has no gold: the weights fitted on KLUE's valid split
                teacher_shards("nsmc_pool_utt", "kd_ens_nsmc_pool", members=args.teachers,
                               extra=("--ensemble-from", str(tmp / "kd_ens")))
                _merge_shards([tmp / "kd_ens", tmp / "kd_ens_nsmc_pool"], tmp / "kd_ens_nsmc_merged")
        if "same" in wanted:
            teacher_shards("utt", "kd_same", tokenizer="mlm")
        merged = tmp / "kd_merged"

        # (shards, student tokenizer, extra flags): the Unigram student tokenizer differs from the
        # teacher's WordPiece one in kind and size; the last regime gives the student the teacher's
        kd = ["--kl", args.kd_kl, "--token-target", args.token_target]
        regimes = {name: regime for key, name, regime in (
            ("gold", "gold only", (tmp / "kd", tmp / "student_tok", ["--kl", "0"])),
            ("kd", "KD + gold", (tmp / "kd", tmp / "student_tok", kd)),
            ("pool", "KD + gold + BEEP! pool", (merged, tmp / "student_tok", kd)),
            ("same", "KD + gold, teacher's tokenizer", (tmp / "kd_same", tmp / "mlm", kd)),
            ("kdens", f"KD + gold, ensemble of {args.teachers} teachers", (tmp / "kd_ens", tmp / "student_tok", kd)),
            ("kdmean", "KD + gold, mean target", (tmp / "kd", tmp / "student_tok",
                                                  ["--kl", args.kd_kl, "--token-target", "mean"])),
            ("nsmcpool", "KD + gold + NSMC pool", (tmp / "kd_nsmc_merged", tmp / "student_tok", kd)),
            ("poolshare", f"KD + gold + BEEP! pool at share {args.pool_share}",
             (merged, tmp / "student_tok", [*kd, "--unlabeled-share", args.pool_share])),
            ("ensnsmcshare", f"KD + gold + NSMC pool at share {args.pool_share}, ensemble of {args.teachers} teachers",
             (tmp / "kd_ens_nsmc_merged", tmp / "student_tok", [*kd, "--unlabeled-share", args.pool_share])),
            ("nsmcshare", f"KD + gold + NSMC pool at share {args.pool_share}",
             (tmp / "kd_nsmc_merged", tmp / "student_tok", [*kd, "--unlabeled-share", args.pool_share])))
            if key in wanted}
        rows: dict[str, list] = {name: [] for name in regimes}
        student_shape = (["--student-init", args.student_init] if args.student_init else
                         ["--student-layers", "2", "--student-hidden", "128", "--student-heads", "2",
                          "--student-intermediate", "512"])
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            for number, (name, (data, tokenizer, extra)) in enumerate(regimes.items()):
                out = tmp / f"student_seed{seed}_regime{number}"
                began = time.perf_counter()
                assert distill.main(["--data", str(data), "--tokenizer", str(tokenizer), "--output", str(out),
                                     "--max-steps", str(args.student_steps), "--eval-every",
                                     str(max(1, args.student_steps // 5)), "--learning-rate",
                                     "1e-3" if args.student_init else "2e-3", "--seed",
                                     str(seed), *student_shape, *extra, *SMALL]) == 0
                result = json.loads((out / "evaluation.json").read_text())
                rows[name].append({"seed": seed, "f1": result["test"]["student"]["f1"], "seconds": time.perf_counter() - began,
                                   "by_domain": _by_domain(out, tmp / ("kd_same" if tokenizer == tmp / "mlm" else
                                                                       "kd_ens" if "kd_ens" in data.name else "kd"),
                                                           tmp / "utt"),
                                   "teacher_f1_same_rows": result["test"]["teacher"]["f1"],
                                   "non_embedding_parameters": result["parameters"]["non_embedding"],
                                   "train_rows": result["training"]["train_rows"], "cpu": result["cpu"]})
                if args.json:  # partial results survive a run stopped part-way
                    report["students_so_far"] = rows
                    Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                               encoding="utf-8")
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        teacher_model = AutoModelForTokenClassification.from_pretrained(tmp / "teacher")
        teacher_speed = cpu_speed(teacher_model, AutoTokenizer.from_pretrained(tmp / "teacher"),
                                  [t for t in texts[:64]])
        report["teacher"] = {**report["teacher"], "non_embedding_parameters": count_parameters(teacher_model)["non_embedding"],
                             "cpu": teacher_speed}
        report.pop("students_so_far", None)
        report["students"] = {name: {"runs": runs, "f1_mean": statistics.fmean(r["f1"] for r in runs),
                                     "f1_std": statistics.pstdev([r["f1"] for r in runs]) if len(runs) > 1 else 0.0}
                              for name, runs in rows.items()}
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return 0


def _copy_tokenizer(checkpoint: Path, folder: Path) -> None:
    """A checkpoint's tokenizer files, byte for byte (so its hash is the checkpoint's), as ``folder``."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
                 "malmoi_tokenizer.json"):
        if (checkpoint / name).exists():
            shutil.copy(checkpoint / name, folder / name)


def _provided(folder: str) -> dict:
    """The provided masked LM: its shape and, where bench.pretrain_checkpoints made it, its
    pretraining record and corpus (which holds out every KLUE-NER dev sentence)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(folder)
    out = {"path": folder, "layers": config.num_hidden_layers, "hidden": config.hidden_size}
    for key, name in (("pretraining", "training_summary.json"), ("corpus", "malmoi_pretrain_corpus.json")):
        if (Path(folder) / name).exists():
            record = json.loads((Path(folder) / name).read_text())
            out[key] = record.get("summary", record)
    if "klue_ner_dev_sentences_dropped" not in out.get("corpus", {}):
        print(f"warning: {folder} has no record of holding out KLUE-NER dev: its pretraining may have seen the "
              "test sentences", flush=True)
    return out


def _teacher_test(folder: Path) -> dict:
    """A fine-tuned teacher's test scores from its evaluation.json."""
    test = json.loads((folder / "evaluation.json").read_text())["test"]
    return {k: test[k] for k in ("f1", "precision", "recall", "n", "by_domain")}


def _nsmc_pool(root: Path, klue_utterances: Path, size: int) -> tuple[list[str], int]:
    """The first ``size`` NSMC reviews that share no text with a KLUE-NER dev sentence (KLUE's
    colloquial half was drawn from NSMC): compared on their Hangul, Latin letters and digits, a
    review is left out when it contains a KLUE sentence or is contained in one. Returns the
    reviews and how many were left out."""
    import csv

    from bench.corpora import SharesText, text_key
    from kd.tokenizer import dataset_texts

    shares_klue_text = SharesText(dataset_texts(str(klue_utterances), split=None))
    kept, left_out = [], 0
    with open(root / "nsmc_sample" / "nsmc_raw_sample.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            review = (row["document"] or "").strip()
            if len(text_key(review)) < shares_klue_text.n:
                continue
            if shares_klue_text(review):
                left_out += 1
                continue
            kept.append(review)
            if len(kept) == size:
                break
    return kept, left_out


def _merge_shards(folders: list[Path], out: Path) -> None:
    """Two kd_token datasets as one (the pool rows keep their own split: augment wrote them)."""
    import pyarrow as pa

    from kd.data import open_dataset
    from schemas import storage
    from schemas.dataset import write_local_dataset
    from schemas.kd_token import KD_TOKEN

    tables, provenance = [], None
    for folder in folders:
        opened = open_dataset(str(folder), KD_TOKEN)
        provenance = provenance or opened.provenance
        tables += [storage.read_table(path) for path in opened.files]
    table = pa.concat_tables([t.cast(KD_TOKEN.schema) for t in tables])
    write_local_dataset(str(out), table, KD_TOKEN, created_by="bench.ner_klue", provenance=provenance)


def _by_domain(student_dir: Path, kd_dir: Path, utterances: Path) -> dict:
    """The student's test entity F1 on the colloquial (nsmc) and formal (wikitree) halves."""
    from transformers import AutoModelForTokenClassification

    from kd.data import open_dataset
    from kd.ner import entity_scores, predict_token_split
    from schemas.kd_token import KD_TOKEN

    opened = open_dataset(str(kd_dir), KD_TOKEN)
    model = AutoModelForTokenClassification.from_pretrained(student_dir).eval()
    predictions = predict_token_split(model, opened, "test")
    guid = _guids(utterances)
    ids = [guid.get(row_id, "") for row_id in _test_ids(opened)]
    out = {}
    for domain in ("nsmc", "wikitree"):
        picked = [i for i, row_id in enumerate(ids) if row_id.endswith(domain)]
        out[domain] = {"n": len(picked), "student_f1": entity_scores(
            [predictions["gold"][i] for i in picked], [predictions["student"][i] for i in picked])["f1"],
                       "teacher_f1": entity_scores([predictions["gold"][i] for i in picked],
                                                   [predictions["teacher"][i] for i in picked])["f1"]}
    return out


def _guids(utterances: Path) -> dict[str, str]:
    """Utterance id -> KLUE guid (its suffix names the half: ``-nsmc``, ``-wikitree``)."""
    from schemas import UTTERANCES, read_dataset

    table = read_dataset(str(utterances), UTTERANCES, columns=["id", "meta"])
    return {row["id"]: {m["key"]: m["value"] for m in row["meta"]}.get("guid", "") for row in table.to_pylist()}


def _test_ids(opened) -> list[str]:
    """The guid of each annotated test row, in predict_token_split's order."""
    import pyarrow.compute as pc

    from schemas import storage

    ids = []
    for path in opened.files:
        table = storage.read_table(path, columns=["id", "split", "entities", "text"])
        table = table.filter(pc.and_(pc.equal(table.column("split"), "test"), pc.is_valid(table.column("entities"))))
        ids += table.column("id").to_pylist()
    return ids


if __name__ == "__main__":
    raise SystemExit(main())

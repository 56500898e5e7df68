"""Named entities in the trainer. Protects against: entity scores that differ from seqeval's,
BIO tags that do not map back to the character spans they came from, and a token-classification
teacher that cannot be trained or reloaded."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import f1_score, precision_score, recall_score

from kd.ner import bio_labels, entities_from_tags, entity_scores, token_tags
from tests.conftest import run_preprocess


@st.composite
def spans(draw, length=24):
    cuts = sorted(draw(st.sets(st.integers(0, length), max_size=8)))
    out = []
    for start, end in zip(cuts[::2], cuts[1::2], strict=False):
        if end > start:
            out.append((start, end, draw(st.sampled_from(["PS", "LC"]))))
    return out


def as_bio(entities, length=24):
    tags = ["O"] * length
    for start, end, label in entities:
        tags[start] = f"B-{label}"
        for i in range(start + 1, end):
            tags[i] = f"I-{label}"
    return tags


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(spans(), spans()), min_size=1, max_size=6))
def test_entity_scores_equal_seqeval_on_character_tags(pairs):
    gold, predicted = [g for g, _ in pairs], [p for _, p in pairs]
    ours = entity_scores(gold, predicted)
    true, pred = [as_bio(g) for g in gold], [as_bio(p) for p in predicted]
    if not any(gold) and not any(predicted):
        return
    assert abs(ours["precision"] - precision_score(true, pred, zero_division=0)) < 1e-9
    assert abs(ours["recall"] - recall_score(true, pred, zero_division=0)) < 1e-9
    assert abs(ours["f1"] - f1_score(true, pred, zero_division=0)) < 1e-9


@pytest.mark.parametrize("kind", ["wordpiece", "unigram"])
def test_tags_on_subwords_map_back_to_the_character_spans(tmp_path, kind):
    # a Unigram (SentencePiece-style) tokenizer reports ▁행크스 from the space before the word and
    # writes bare ▁ tokens: untrimmed, every word-initial entity token was tagged O and decoded one
    # character early (the students of the KLUE-NER benchmark sat at F1 0.13 because of it)
    from kd.ner import encoded_spans
    from kd.tokenizer import train_tokenizer

    texts = ["톰 행크스면 믿고 봅니다", "내일 부산에서 봐요", "서울시는 3일 발표했다"] * 5
    tokenizer = train_tokenizer(texts, tmp_path / "tok", vocab_size=120, min_frequency=1, kind=kind)
    labels = bio_labels(["PS", "LC", "OG", "DT"])
    label2id = {name: i for i, name in enumerate(labels)}
    for text, entities in (("톰 행크스면 믿고 봅니다", [(0, 5, "PS")]), ("내일 부산에서 봐요", [(3, 5, "LC")]),
                           ("서울시는 3일 발표했다", [(0, 3, "OG"), (5, 7, "DT")])):
        encoded = tokenizer([text], return_offsets_mapping=True)
        offsets = encoded_spans(tokenizer, [text], encoded)[0]
        assert all(not text[s:e].startswith(" ") and not text[s:e].endswith(" ") for s, e in offsets)
        tags = token_tags(offsets, entities, label2id)
        assert tags[0] == -100 and tags[-1] == -100  # [CLS], [SEP]
        assert sum(t == label2id[f"B-{label}"] for t in tags for _, _, label in entities[:1]) >= 1
        decoded = entities_from_tags(offsets, tags, dict(enumerate(labels)))
        ends = {end for _, end in offsets}
        # an entity whose end falls inside a token (행크스|면) comes back to that token's end
        expected = [(s, e if e in ends else min(x for x in ends if x > e), label) for s, e, label in entities]
        assert decoded == expected


@pytest.fixture(scope="module")
def ner_teacher(tmp_path_factory):
    """Annotated rows (and a few without entities), a tiny masked LM, and a token teacher on them."""
    from transformers import BertConfig, BertForMaskedLM

    from kd import finetune
    from kd.tokenizer import train_tokenizer

    root = tmp_path_factory.mktemp("ner")
    lines = []
    names = ["민수", "지영", "철수", "영희"]
    places = ["부산", "서울", "대구", "광주"]
    for i in range(48):
        name, place = names[i % 4], places[(i // 4) % 4]
        text = f"{name} 오늘 {place} 갔어요"  # entity ends on word ends: what word-level tokens can tag exactly
        lines.append(json.dumps({"id": f"r{i}", "text": text, "entities": [
            {"start": 0, "end": len(name), "label": "PS"},
            {"start": len(name) + 4, "end": len(name) + 4 + len(place), "label": "LC"}]}, ensure_ascii=False))
    lines += [json.dumps({"id": f"u{i}", "text": f"{names[i % 4]} 내일 {places[i % 4]} 가요"}, ensure_ascii=False)
              for i in range(8)]  # no gold: a pseudo-labelled pool
    (root / "ner.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_preprocess([root / "ner.jsonl"], root / "utt", "--runner", "FnApiRunner", "--split-ratios", "0.6,0.2,0.2")
    texts = [json.loads(line)["text"] for line in lines]
    tokenizer = train_tokenizer(texts, root / "mlm", vocab_size=200, min_frequency=1)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(root / "mlm")
    assert finetune.main(["--data", str(root / "utt"), "--init", str(root / "mlm"), "--output", str(root / "tagger"),
                          "--task", "token-classification", "--max-steps", "60", "--eval-every", "20",
                          "--patience", "9", "--learning-rate", "5e-3", "--batch-size", "8", "--no-progress",
                          "--device", "cpu"]) == 0
    train_tokenizer(texts, root / "student_tok", vocab_size=150, min_frequency=1, kind="unigram")
    return root


def test_finetune_trains_a_token_classification_teacher(ner_teacher):
    from transformers import AutoModelForTokenClassification

    out = ner_teacher / "tagger"
    model = AutoModelForTokenClassification.from_pretrained(out)
    assert model.config.id2label[0] == "O" and set(model.config.label2id) == {"O", "B-LC", "I-LC", "B-PS", "I-PS"}
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["test"]["n"] > 0 and evaluation["best_valid"]["step"] in (20, 40, 60)
    assert evaluation["test"]["f1"] > 0.5  # a regular pattern a tiny tagger learns in 60 steps
    assert set(evaluation["test"]["by_domain"]) == {"jsonl"}

    import io

    from kd import predict

    out_json = io.StringIO()
    raw = "민수 오늘 부산 갔어용ㅋㅋㅋㅋ"  # raw text, normalized before tagging (the spans come back raw)
    assert predict.main(["--model", str(out), "--json"], stdin=io.StringIO(raw + "\n"), stdout=out_json) == 0
    result = json.loads(out_json.getvalue())
    assert result["normalized"] == "민수 오늘 부산 갔어요ㅋㅋ"
    found = {(e["text"], e["label"], e["description"]) for e in result["entities"]}
    assert found == {("민수", "PS", "사람 이름"), ("부산", "LC", "지역/장소")}
    assert all(raw[e["start"]:e["end"]] == e["text"] for e in result["entities"])  # spans in the raw input
    table = io.StringIO()
    assert predict.main(["--model", str(out)], stdin=io.StringIO(raw + "\n"), stdout=table) == 0
    assert "민수\tPS\t사람 이름\t0-2\t" in table.getvalue()


def test_token_signals_per_character_distill_into_a_student_with_another_tokenizer(ner_teacher, tmp_path):
    # guards against token-level teacher signals tied to the teacher's tokenizer, pseudo-labelled
    # rows that feed a gold-tag loss, and a token student that cannot be exported or served
    import numpy as np
    import pandas as pd
    from transformers import AutoModelForTokenClassification

    from beam_jobs import augment
    from kd import distill

    shards = tmp_path / "kd_token"
    augment.run(["--input", str(ner_teacher / "utt"), "--output", str(shards), "--teacher",
                 str(ner_teacher / "tagger"), "--student-tokenizer", str(ner_teacher / "student_tok"),
                 "--runner", "FnApiRunner"])
    manifest = json.loads((shards / "_manifest.json").read_text())
    assert manifest["schema"] == "kd_token" and manifest["provenance"]["label_names"][0] == "O"
    frame = pd.read_parquet(shards)
    assert len(frame) == 56 and frame["entities"].isna().sum() == 8  # the pool has no gold, only the teacher's
    width = len(manifest["provenance"]["label_names"])
    assert all(len(p) == len(t) * width for p, t in zip(frame["teacher_char_probs"], frame["text"], strict=True))
    probs = np.asarray(frame["teacher_char_probs"][0], np.float32).reshape(len(frame["text"][0]), width)
    assert np.allclose(probs.sum(1), 1.0, atol=1e-2)
    pool = frame[frame["entities"].isna()]
    assert pool["teacher_entities"].map(len).sum() > 0  # pseudo-labels for the unannotated rows
    from kd.data import open_dataset
    from kd.ner import kd_token_chunks
    from schemas.kd_token import KD_TOKEN

    opened = open_dataset(str(shards), KD_TOKEN)
    train = frame[frame["split"] == "train"]
    gold_rows = int(train["entities"].notna().sum())
    assert gold_rows < len(train)  # some pool rows train
    assert sum(len(c) for c in kd_token_chunks(opened, "train", 0, 0)) == len(train)
    assert sum(len(c) for c in kd_token_chunks(opened, "train", 0, 0, unlabeled_keep=0.0)) == gold_rows

    # a sentence-level option on entity shards is refused, not silently ignored
    assert distill.main(["--data", str(shards), "--tokenizer", str(ner_teacher / "student_tok"), "--output",
                         str(tmp_path / "refused"), "--prior-correction", "0.5", "--no-progress"]) == 2
    out = tmp_path / "student"
    assert distill.main(["--data", str(shards), "--tokenizer", str(ner_teacher / "student_tok"), "--output", str(out),
                         "--student-layers", "1", "--student-hidden", "32", "--student-heads", "2",
                         "--student-intermediate", "64", "--max-steps", "80", "--eval-every", "20",
                         "--learning-rate", "5e-3", "--batch-size", "8", "--no-progress", "--device", "cpu",
                         "--no-cpu-speed"]) == 0
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert evaluation["task"] == "token-classification" and evaluation["test"]["n"] > 0
    assert evaluation["training"]["train_rows"] == {"labeled": gold_rows, "unlabeled": len(train) - gold_rows,
                                                    "unlabeled_keep": 1.0, "unlabeled_share": 1.0}
    assert evaluation["test"]["student"]["f1"] > 0.5, evaluation["test"]
    assert AutoModelForTokenClassification.from_pretrained(out).config.num_labels == width


def test_a_served_span_maps_back_through_the_edits():
    from beam_jobs.text.edits import unmap_span
    from beam_jobs.text.normalizer import Normalizer

    raw = "넘 좋았던 부산 여행ㅋㅋㅋㅋ"
    text, edits = Normalizer().normalize(raw)
    start = text.index("부산")
    assert text.startswith("너무 ") and start == raw.index("부산") + 1
    assert unmap_span(start, start + 2, edits) == (raw.index("부산"), raw.index("부산") + 2)
    assert unmap_span(0, 2, edits) == (0, 1)  # 너무 came from 넘


def test_per_character_distributions_and_student_token_targets():
    # guards against a teacher subword's B- mass given to its later characters (they are inside
    # the entity), and --token-target first/mean computing the same thing
    import numpy as np

    from beam_jobs.text.entities import char_distributions, token_targets

    labels = ["O", "B-PS", "I-PS"]
    probs = np.array([[0.0, 0.0, 0.0], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7], [0.0, 0.0, 0.0]], np.float32)
    chars = char_distributions([(0, 0), (0, 2), (3, 5), (0, 0)], probs, 6, labels)  # "톰행 크스면"
    assert np.allclose(chars[0], [0.1, 0.8, 0.1]) and np.allclose(chars[1], [0.1, 0.0, 0.9])  # B moved to I
    assert np.allclose(chars[2], [1, 0, 0]) and np.allclose(chars[5], [1, 0, 0])  # outside every token: O
    assert np.allclose(chars[3], [0.2, 0.1, 0.7]) and np.allclose(chars[4], [0.2, 0.0, 0.8])
    first = token_targets(chars, [(0, 0), (0, 1), (1, 4), (0, 0)], "first")
    mean = token_targets(chars, [(0, 0), (0, 1), (1, 4), (0, 0)], "mean")
    assert np.allclose(first[0], 0) and np.allclose(first[2], chars[1])
    assert np.allclose(mean[2], chars[1:4].mean(0)) and not np.allclose(mean[2], first[2])


def test_a_tagger_stuck_at_all_o_is_warned_about_once():
    # guards against a token teacher that predicts O everywhere (entity F1 0 at every evaluation)
    # exporting its "best" model without a word (the KLUE-NER benchmark's from-scratch teacher)
    from kd.ner import silent_tagger

    silent = [{"step": s, "precision": 0.0, "recall": 0.0} for s in (10, 20, 30, 40)]
    assert silent_tagger(silent[:2]) is None
    assert "all-O" in silent_tagger(silent[:3]) and "[10, 20, 30]" in silent_tagger(silent[:3])
    assert silent_tagger(silent) is None  # said once
    assert silent_tagger([*silent[:2], {"step": 30, "precision": 0.2, "recall": 0.1}]) is None


def _permuted_tagger(source, out, order, o_bias=None):
    """``source``'s tagger with its classes stored in another ``order`` (same predictions), or,
    given ``o_bias``, one pushed towards O by that much."""
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    model = AutoModelForTokenClassification.from_pretrained(source)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    with torch.no_grad():
        model.classifier.weight.copy_(model.classifier.weight[order])
        model.classifier.bias.copy_(model.classifier.bias[order])
        if o_bias is not None:
            model.classifier.bias[order.index(labels.index("O"))] += o_bias
    model.config.id2label = {i: labels[j] for i, j in enumerate(order)}
    model.config.label2id = {name: i for i, name in model.config.id2label.items()}
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


def test_several_token_teachers_combine_per_character_with_weights_fitted_on_valid(ner_teacher, tmp_path):
    # guards against an ensemble of taggers mixing classes stored in different orders, a combined
    # distribution that is not the documented product, weights nobody fitted (a member that
    # tags nothing must count less), and a second --teacher silently replacing the first
    import numpy as np
    import pandas as pd

    from beam_jobs import augment
    from beam_jobs.augment_tokens import TokenTagger

    tagger = ner_teacher / "tagger"
    width = 5
    order = list(range(width))[::-1]
    same = _permuted_tagger(tagger, tmp_path / "same", order)
    all_o = _permuted_tagger(tagger, tmp_path / "all_o", order, o_bias=50.0)

    def run(name, *teachers, extra=()):
        out = tmp_path / name
        augment.run(["--input", str(ner_teacher / "utt"), "--output", str(out), *extra,
                     *(a for t in teachers for a in ("--teacher", str(t))),
                     "--student-tokenizer", str(ner_teacher / "student_tok"), "--runner", "FnApiRunner"])
        frame = pd.read_parquet(out).sort_values("id").reset_index(drop=True)
        return json.loads((out / "_manifest.json").read_text())["provenance"], frame

    _, alone = run("alone", tagger)
    provenance, pair = run("pair", tagger, same)
    ensemble = provenance["ensemble"]
    assert [m["teacher"] for m in ensemble["members"]] == [str(tagger), str(same)]
    assert ensemble["fitted_on_valid_characters"] > 0 and min(ensemble["weights"]) > 0
    labels = provenance["label_names"]
    texts = list(alone["text"])
    direct = TokenTagger(str(tagger), labels, "cpu", 16, 128).run(texts)
    for k, text in enumerate(texts):
        p = direct[k][1].astype(np.float64)
        single = np.asarray(alone["teacher_char_probs"][k], np.float32).reshape(len(text), width)
        assert np.allclose(single, p, atol=2e-3)
        product = np.clip(p, 1e-6, None) ** sum(ensemble["weights"])  # two identical members: p^(w1 + w2)
        combined = np.asarray(pair["teacher_char_probs"][k], np.float32).reshape(len(text), width)
        assert np.allclose(combined, product / product.sum(1, keepdims=True), atol=2e-3)
        spans = [(e["start"], e["end"], e["label"]) for e in alone["teacher_entities"][k]]
        assert spans == [(e["start"], e["end"], e["label"]) for e in pair["teacher_entities"][k]]
    assert alone["teacher_entities"].map(len).sum() > 0

    provenance, _ = run("with_all_o", tagger, all_o)
    weights = provenance["ensemble"]["weights"]
    assert weights[0] > weights[1], weights  # the member that tags nothing counts less

    # a corpus without gold takes the weights fitted elsewhere, for the same members only
    from schemas.options import MalmoiError

    again, _ = run("reused", tagger, same, extra=("--ensemble-from", str(tmp_path / "pair")))
    assert again["ensemble"]["weights"] == ensemble["weights"]
    assert again["ensemble"]["weights_from"] == str(tmp_path / "pair")
    with pytest.raises(MalmoiError, match="are not this run's"):
        run("mismatched", tagger, all_o, extra=("--ensemble-from", str(tmp_path / "pair")))


def test_ensemble_pieces_combine_decode_and_gold_character_tags():
    # guards against the one-teacher path changing under the ensemble code (its entities must stay
    # its token argmax) and gold character tags that tag whitespace or run past an entity
    import numpy as np

    from beam_jobs.augment_tokens import combine_chars, gold_char_tags, predicted_entities
    from beam_jobs.text.entities import char_distributions, entities_from_tags

    labels = ["O", "B-PS", "I-PS"]
    probs = np.array([[0.4, 0.3, 0.3], [0.1, 0.8, 0.1], [0.2, 0.1, 0.7]], np.float32)
    offsets = [(0, 2), (3, 4), (4, 6)]
    chars = char_distributions(offsets, probs, 6, labels)
    assert combine_chars([chars], [1.0]) is chars
    found = predicted_entities(offsets, chars, labels)
    expected = entities_from_tags(offsets, probs.argmax(1).tolist(), dict(enumerate(labels)))
    assert [(e["start"], e["end"], e["label"]) for e in found] == expected == [(3, 6, "PS")]
    assert np.isclose(found[0]["confidence"], (0.8 + 0.7) / 2)
    other = np.tile(np.array([[1.0, 0.0, 0.0]], np.float32), (6, 1))
    both = combine_chars([chars, other], [1.5, 0.5])
    manual = np.clip(chars, 1e-6, None) ** 1.5 * np.clip(other, 1e-6, None) ** 0.5
    assert np.allclose(both, manual / manual.sum(1, keepdims=True), atol=1e-5)
    tags = gold_char_tags("민수 오늘 부산", [{"start": 0, "end": 2, "label": "PS"}], labels)
    assert tags.tolist() == [1, 2, -1, 0, 0, -1, 0, 0]

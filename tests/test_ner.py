"""Named entities in the trainer. Protects against: entity scores that differ from seqeval's,
BIO tags that do not map back to the character spans they came from, and a token-classification
teacher that cannot be trained or reloaded."""

from __future__ import annotations

import json

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


def test_tags_on_subwords_map_back_to_the_character_spans(tmp_path):
    from kd.tokenizer import train_tokenizer

    texts = ["톰 행크스면 믿고 봅니다", "내일 부산에서 봐요", "서울시는 3일 발표했다"] * 5
    tokenizer = train_tokenizer(texts, tmp_path / "tok", vocab_size=120, min_frequency=1)
    labels = bio_labels(["PS", "LC", "OG", "DT"])
    label2id = {name: i for i, name in enumerate(labels)}
    for text, entities in (("톰 행크스면 믿고 봅니다", [(0, 5, "PS")]), ("내일 부산에서 봐요", [(3, 5, "LC")]),
                           ("서울시는 3일 발표했다", [(0, 3, "OG"), (5, 7, "DT")])):
        encoded = tokenizer(text, return_offsets_mapping=True)
        offsets = encoded["offset_mapping"]
        tags = token_tags(offsets, entities, label2id)
        assert tags[0] == -100 and tags[-1] == -100  # [CLS], [SEP]
        decoded = entities_from_tags(offsets, tags, dict(enumerate(labels)))
        ends = {end for _, end in offsets}
        # an entity whose end falls inside a token (행크스|면) comes back to that token's end
        expected = [(s, e if e in ends else min(x for x in ends if x > e), label) for s, e, label in entities]
        assert decoded == expected


def test_finetune_trains_a_token_classification_teacher(tmp_path):
    from transformers import AutoModelForTokenClassification, BertConfig, BertForMaskedLM

    from kd import finetune
    from kd.tokenizer import train_tokenizer

    lines = []
    names = ["민수", "지영", "철수", "영희"]
    places = ["부산", "서울", "대구", "광주"]
    for i in range(48):
        name, place = names[i % 4], places[(i // 4) % 4]
        text = f"{name} 오늘 {place} 갔어요"  # entity ends on word ends: what word-level tokens can tag exactly
        lines.append(json.dumps({"id": f"r{i}", "text": text, "entities": [
            {"start": 0, "end": len(name), "label": "PS"},
            {"start": len(name) + 4, "end": len(name) + 4 + len(place), "label": "LC"}]}, ensure_ascii=False))
    (tmp_path / "ner.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    run_preprocess([tmp_path / "ner.jsonl"], tmp_path / "utt", "--runner", "FnApiRunner", "--split-ratios",
                   "0.6,0.2,0.2")
    texts = [json.loads(line)["text"] for line in lines]
    tokenizer = train_tokenizer(texts, tmp_path / "mlm", vocab_size=200, min_frequency=1)
    BertForMaskedLM(BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                               intermediate_size=64)).save_pretrained(tmp_path / "mlm")
    out = tmp_path / "tagger"
    assert finetune.main(["--data", str(tmp_path / "utt"), "--init", str(tmp_path / "mlm"), "--output", str(out),
                          "--task", "token-classification", "--max-steps", "60", "--eval-every", "20",
                          "--patience", "9", "--learning-rate", "5e-3", "--batch-size", "8", "--no-progress",
                          "--device", "cpu"]) == 0
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


def test_a_served_span_maps_back_through_the_edits():
    from beam_jobs.text.edits import unmap_span
    from beam_jobs.text.normalizer import Normalizer

    raw = "넘 좋았던 부산 여행ㅋㅋㅋㅋ"
    text, edits = Normalizer().normalize(raw)
    start = text.index("부산")
    assert text.startswith("너무 ") and start == raw.index("부산") + 1
    assert unmap_span(start, start + 2, edits) == (raw.index("부산"), raw.index("부산") + 2)
    assert unmap_span(0, 2, edits) == (0, 1)  # 너무 came from 넘

"""Writes the binary and non-UTF-8 samples in data/samples (xlsx, parquet, CP949 text).

The text samples are hand-written files; these few are generated so they stay reviewable:
run `python data/make_samples.py` after editing the rows below.
"""

from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent / "samples"

DIALOGUE_ROWS = [
    ("SPEAKER", "SENTENCE", "DOMAINID", "DOMAIN", "CATEGORY", "SPEAKERID", "SENTENCEID", "MAINID"),
    ("손님", "안녕하세요 아메리카노 한 잔 테이크아웃 되나요?", 1, "카페", "주문", 1, 1, "D0001"),
    ("점원", "네 가능합니다. 사이즈는 어떻게 해 드릴까요?", 1, "카페", "주문", 2, 2, "D0001"),
    ("손님", "젤 큰 걸로 주세요 샷 추가도 되죠?", 1, "카페", "주문", 1, 3, "D0001"),
    ("점원", "네 샷 추가는 500원 추가됩니다.", 1, "카페", "결제", 2, 4, "D0001"),
    ("손님", "이 바지 다른 색도 있나요?", 2, "의류", "상품 문의", 1, 1, "D0002"),
    ("점원", "검정이랑 베이지 있어요 입어 보실래요?", 2, "의류", "상품 문의", 2, 2, "D0002"),
    (None, None, None, None, None, None, None, None),
    ("손님", "환불은 영수증 있으면 되나요?", 2, "의류", "환불", 1, 3, "D0002"),
]

PARQUET_ROWS = {
    "review_id": ["p-001", "p-002", "p-003", "p-004"],
    "text": ["연출 미쳤다 진짜ㅋㅋㅋ 두 번 봄", "기대 이하... 돈 아까움", "배우들 케미 최고!!!!!", "그닥 별로였어요ㅠ"],
    "label": [1, 0, 1, 0],
}

# A small sentiment task for the end-to-end demo: written here from templates, colloquial on purpose.
DEMO_SUBJECTS = ["이 영화", "배우 연기", "스토리", "음악", "결말", "연출", "이 드라마", "주인공", "액션", "영상미"]
DEMO_PREDICATES = {
    "positive": ["진짜 재밌어요", "너무 좋았어요", "최고였다", "감동적이었어요", "완전 강추합니다", "또 보고 싶다",
                 "대박이에요", "인생작임", "몰입감 최고예요", "볼만했어요"],
    "negative": ["너무 지루했어요", "별로였다", "시간 아까움", "최악이에요", "실망했어요", "재미없다", "돈 아까워요",
                 "엉망이었음", "노잼이었어요", "보다가 잠들었어요"],
}
DEMO_STYLES = [
    lambda t, p: t.replace("너무", "넘").replace("그냥", "걍") + (" ㅋㅋㅋㅋ" if p else " ㅡㅡ"),
    lambda t, p: t.replace("어요", "어용").replace("에요", "에용") + ("!!!!" if p else "..."),
    lambda t, p: t.replace("진짜", "지이인짜") + (" ㅎㅎ" if p else " ㅠㅠㅠ"),
    lambda t, p: t,
]


def demo_rows() -> list[dict]:
    rows = []
    for label, predicates in DEMO_PREDICATES.items():
        for i, subject in enumerate(DEMO_SUBJECTS):
            for j, predicate in enumerate(predicates):
                style = DEMO_STYLES[(i + j) % len(DEMO_STYLES)]
                text = style(f"{subject} {predicate}", label == "positive")
                rows.append({"id": f"demo-{label[:3]}-{i}-{j}", "text": text, "label": label, "thread": f"t{i}-{j % 5}"})
    return rows


KSPON_SINGLE = "그래서 어/ 그거 어떻게 됐냐면 b/ 결국 (2)/(두) 번 다시 갔어."


def main() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "대화"
    for row in DIALOGUE_ROWS:
        sheet.append(list(row))
    (HERE / "aihub").mkdir(parents=True, exist_ok=True)
    workbook.save(HERE / "aihub" / "korean_dialogue_sample.xlsx")

    (HERE / "generic").mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(PARQUET_ROWS), HERE / "generic" / "reviews.parquet", compression="zstd")

    demo = HERE.parent / "demo"
    demo.mkdir(parents=True, exist_ok=True)
    import json

    with open(demo / "sentiment.jsonl", "w", encoding="utf-8") as handle:
        for row in demo_rows():
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")

    folder = HERE / "kspon" / "KsponSpeech_0003"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "KsponSpeech_002001.txt").write_bytes((KSPON_SINGLE + "\n").encode("cp949"))


if __name__ == "__main__":
    main()

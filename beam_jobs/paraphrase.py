"""Paraphrase candidates for the augment job, and the filters that keep only faithful ones.

Methods (each named in the ``origin`` column as ``paraphrase:<method>``):

* ``colloquial`` — rule-based variants that make text *more* spoken: polite endings shifted to
  casual speech with Kiwi (알려주세요 → 알려줘, 입니까 → 이냐; lexicons/speech_levels.tsv), the
  normalizer's lexicons run backwards (너무 → 넘, 그냥 → 걍, 했어요 → 했어용), laughter runs,
  dropped spaces and common typos (했다 → 햇다, 않 → 안).
* ``eda`` — eojeol-level swap of two neighbours and random deletion. Pure Python.
* ``mlm`` — contextual word replacement with a masked-LM checkpoint (torch).
* ``seq2seq`` — sampling from any Hugging Face seq2seq checkpoint (torch).

Randomness is seeded per source id, so a rerun gives the same candidates.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from beam_jobs.text import lexicons
from beam_jobs.text.hangul import ends_in_consonant
from schemas.options import MalmoiError, option
from schemas.provenance import stable_seed

METHODS = ("colloquial", "eda", "mlm", "seq2seq")


def rng_for(source_id: str, method: str, seed: int) -> random.Random:
    return random.Random(stable_seed(str(seed), method, source_id))


def _distinct(source: str, candidates: Sequence[str], limit: int) -> list[str]:
    seen, out = {source.strip()}, []
    for candidate in candidates:
        candidate = re.sub(r"\s+", " ", candidate).strip()
        if candidate and candidate not in seen:
            seen.add(candidate)
            out.append(candidate)
        if len(out) >= limit:
            break
    return out


# --------------------------------------------------------------------------- colloquial


class SpeechLevelShift:
    """Polite speech (존댓말) -> casual speech (반말), on Kiwi morphemes.

    Drops the honorific 시 before an ending, replaces the polite endings and words listed in
    ``lexicons/speech_levels.tsv`` (세요 → 어, ᆸ니까 → 냐, 요/JX dropped, 저 → 나), turns 드리다
    into 하다 after a noun (부탁드립니다 → 부탁해) and into 주다 elsewhere, and lets
    ``Kiwi.join`` re-conjugate (알리+어+주+어 → 알려줘). Spacing follows the original text.
    """

    def __init__(self) -> None:
        from kiwipiepy import Kiwi

        self._kiwi = Kiwi()
        self._map: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
        for form, tag, casual, after_closed in lexicons.load("speech_levels.tsv", 4):
            choices = tuple(c for c in casual.split(",") if c)
            self._map[(form, tag)] = (choices, after_closed or (choices[0] if choices else ""))

    def tokenize(self, text: str) -> list:
        return self._kiwi.tokenize(text)

    def __call__(self, tokens: list, rng: random.Random) -> str | None:
        """The casual version of tokenized ``text``; None when nothing in it is polite."""
        out: list[tuple[str, str, bool]] = []
        changed, previous_end = False, None
        for i, token in enumerate(tokens):
            space = previous_end is not None and token.start > previous_end
            previous_end = token.end
            following = tokens[i + 1] if i + 1 < len(tokens) else None
            if token.tag == "EP" and token.form == "시" and following is not None and following.tag in ("EP", "EF", "EC"):
                changed = True
                continue
            if (token.form, token.tag) in self._map:
                choices, after_closed = self._map[(token.form, token.tag)]
                changed = True
                if not choices:  # dropped (요 after an ending)
                    continue
                closed = bool(out) and (out[-1][1] == "EP" or ends_in_consonant(out[-1][0]))
                out.append((after_closed if closed and token.tag == "EF" else rng.choice(choices), token.tag, space))
                continue
            if token.tag in ("VV", "VX") and token.form == "드리":
                out.append(("하" if i and tokens[i - 1].tag == "NNG" else "주", token.tag, space))
                changed = True
                continue
            out.append((token.form, token.tag, space))
        return self._kiwi.join(out) if changed else None


@lru_cache(maxsize=1)
def speech_level_shift() -> SpeechLevelShift:
    """One Kiwi-backed shifter per process (Kiwi takes about a second to load)."""
    return SpeechLevelShift()


class ColloquialParaphraser:
    """Standard -> spoken: casual speech level, reverse contractions and endings, laughter,
    dropped spaces, typos. ``speech_level`` is the share of candidates shifted to 반말 (0: never,
    and Kiwi is not loaded)."""

    _TYPOS = ((re.compile("했"), "햇"), (re.compile("됐"), "됬"), (re.compile("않"), "안"), (re.compile("어떻게"), "어떡게"),
              (re.compile("있"), "잇"), (re.compile("없"), "업"))

    def __init__(self, num_candidates: int = 2, speech_level: float = 0.5) -> None:
        self.num_candidates = num_candidates
        self.speech_level = speech_level
        self._shift = speech_level_shift() if speech_level > 0 else None
        rows = lexicons.load("contractions.tsv", 6)
        reverse: dict[str, str] = {}
        for form, standard, attach, *_ in rows:
            if " " not in standard and attach in ("word", "josa") and len(form) < len(standard):
                reverse.setdefault(standard, form)
        self._words = reverse
        endings = lexicons.load("endings.tsv", 4)
        self._endings = sorted({(standard, ending) for ending, standard, *_ in endings
                                if ending.endswith(("용", "당", "넹", "졍"))}, key=lambda p: -len(p[0]))

    def _one(self, text: str, rng: random.Random) -> str:
        words = text.split(" ")
        out = []
        for word in words:
            core = word.rstrip(".,!?~")
            tail = word[len(core):]
            if core in self._words and rng.random() < 0.8:
                core = self._words[core]
            elif rng.random() < 0.5:
                for standard, cute in self._endings:
                    if core.endswith(standard) and len(core) > len(standard):
                        core = core[: -len(standard)] + cute
                        break
            if rng.random() < 0.15:
                for pattern, typo in self._TYPOS:
                    if pattern.search(core):
                        core = pattern.sub(typo, core, count=1)
                        break
            out.append(core + tail)
        if len(out) > 2 and rng.random() < 0.4:  # drop a space
            i = rng.randrange(len(out) - 1)
            out[i:i + 2] = [out[i] + out[i + 1]]
        text = " ".join(out)
        if rng.random() < 0.5:
            text += rng.choice(["ㅋㅋ", " ㅋㅋ", "ㅎㅎ", "ㅠㅠ", "!!"])
        return text

    def __call__(self, source_id: str, text: str, seed: int = 0) -> list[str]:
        rng = rng_for(source_id, "colloquial", seed)
        tokens = self._shift.tokenize(text) if self._shift is not None else None
        candidates = []
        for _ in range(self.num_candidates * 3):
            base = text
            if tokens is not None and rng.random() < self.speech_level:
                base = self._shift(tokens, rng) or text
            candidates.append(self._one(base, rng))
        return _distinct(text, candidates, self.num_candidates)


# --------------------------------------------------------------------------- eda


class EdaParaphraser:
    """Light eojeol-level edits: swap two neighbours, or delete one eojeol (never the only one)."""

    def __init__(self, num_candidates: int = 2, delete_probability: float = 0.1) -> None:
        self.num_candidates = num_candidates
        self.delete_probability = delete_probability

    def __call__(self, source_id: str, text: str, seed: int = 0) -> list[str]:
        rng = rng_for(source_id, "eda", seed)
        words = text.split()
        if len(words) < 2:
            return []
        candidates = []
        for _ in range(self.num_candidates * 3):
            edited = list(words)
            if rng.random() < 0.5:
                i = rng.randrange(len(edited) - 1)
                edited[i], edited[i + 1] = edited[i + 1], edited[i]
            else:
                kept = [w for w in edited if rng.random() >= self.delete_probability]
                edited = kept if kept else edited
                if edited == words:
                    del edited[rng.randrange(len(edited))]
            candidates.append(" ".join(edited))
        return _distinct(text, candidates, self.num_candidates)


# --------------------------------------------------------------------------- model-based


MLM_PRECISIONS = ("float32", "bfloat16")


class MlmParaphraser:
    """Replace one word at a time with a masked-LM's top predictions (whole words only)."""

    def __init__(self, model_dir: str, num_candidates: int = 2, top_k: int = 5, device: str = "cpu",
                 precision: str = "float32", joint_masks: bool = False) -> None:
        import torch
        from transformers import AutoModelForMaskedLM

        from beam_jobs.text.subwords import load_subword_tokenizer

        self.torch = torch
        self.tokenizer = load_subword_tokenizer(model_dir)
        self.model = AutoModelForMaskedLM.from_pretrained(model_dir).to(device).eval()
        if self.tokenizer.mask_token_id is None:
            raise MalmoiError(f"--mlm-model {model_dir}: its tokenizer has no mask token.",
                              "pass a masked-LM checkpoint (kd.pretrain output).")
        if precision not in MLM_PRECISIONS:
            raise MalmoiError(f"--mlm-precision: expected one of {', '.join(MLM_PRECISIONS)}, found {precision!r}.",
                              "use float32 (exact) or bfloat16 (faster where the CPU or GPU has bf16 units).")
        self.device = device
        self.num_candidates = num_candidates
        self.top_k = top_k
        self.precision = precision
        self.joint_masks = joint_masks

    def __call__(self, source_id: str, text: str, seed: int = 0) -> list[str]:
        return self.many([(source_id, text)], seed)[0]

    def _mask_scores(self, inputs, rows: list[int], columns: list[int]):
        """Vocabulary scores at one (row, column) each: the head runs on those positions only when
        the model's encoder and head can be called apart (BERT ``cls``, RoBERTa ``lm_head``)."""
        model = self.model
        head = getattr(model, "cls", None) or getattr(model, "lm_head", None)
        encoder = getattr(model, model.base_model_prefix, None)
        if head is None or encoder is None:
            return model(**inputs).logits[rows, columns]
        hidden = encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]).last_hidden_state
        return head(hidden[rows, columns])

    def _top_ids(self, masked: list[str], batch_size: int) -> list[list[list[int]]]:
        """The ``3 * top_k`` best vocabulary ids at every mask of each masked text, in order (fewer
        where truncation cut masks off), in batches of ``batch_size`` rows sorted by token count
        (sorting by characters padded the batches to 1.8x their tokens on NSMC, by tokens 1.2x)."""
        torch = self.torch
        ids = self.tokenizer.input_ids(masked, 128)
        mask_id = self.tokenizer.mask_token_id
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        top: list[list[list[int]]] = [[] for _ in masked]
        order = sorted((i for i in range(len(ids)) if mask_id in ids[i]), key=lambda i: len(ids[i]))
        device_type = torch.device(self.device).type
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = len(ids[chunk[-1]])
            input_ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            attention_mask = torch.zeros((len(chunk), width), dtype=torch.long)
            rows, columns = [], []
            for row, i in enumerate(chunk):
                input_ids[row, :len(ids[i])] = torch.tensor(ids[i])
                attention_mask[row, :len(ids[i])] = 1
                at = [column for column, token in enumerate(ids[i]) if token == mask_id]
                rows += [row] * len(at)
                columns += at
            inputs = {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}
            with torch.inference_mode(), torch.autocast(device_type, dtype=torch.bfloat16,
                                                        enabled=self.precision == "bfloat16"):
                scores = self._mask_scores(inputs, rows, columns).float()
            for row, best in zip(rows, scores.topk(self.top_k * 3, dim=-1).indices.tolist(), strict=True):
                top[chunk[row]].append(best)
        return top

    def many(self, items: list[tuple[str, str]], seed: int = 0, batch_size: int = 128) -> list[list[str]]:
        """Candidates for many (source id, text) pairs, in batches of ``batch_size`` forward
        passes over a whole augment batch (one pass per text was ~0.3 s a row).

        Each text draws ``2 * num_candidates`` word positions from its own random stream and takes
        them in order until it has ``num_candidates`` distinct candidates. The masked LM runs in
        rounds: first on the ``num_candidates`` first positions of every text, then on the next
        positions of only the texts still short (a prediction equal to the word, or a duplicate),
        so the positions a text never needs are never run — the candidates are exactly those of
        running every position, in about half the forward passes. With ``joint_masks`` the
        positions of one round are masked together in one row (half the rows again; each word is
        then predicted without the others of its round, so candidates can differ)."""
        specials = set(self.tokenizer.all_special_tokens)
        mask = self.tokenizer.mask_token
        plans = []
        for source_id, text in items:
            rng = rng_for(source_id, "mlm", seed)
            words = text.split()
            # a text that already holds the mask token cannot say which mask is the one to predict
            usable = words and mask not in text
            positions = rng.sample(range(len(words)), min(len(words), self.num_candidates * 2)) if usable else []
            plans.append((rng, words, positions))
        candidates: list[list[str]] = [[] for _ in items]
        done = [0] * len(items)  # positions of each text run so far
        pending = [i for i, plan in enumerate(plans) if plan[2]]
        while pending:
            requests: list[tuple[int, list[int]]] = []  # (text, the positions' indices masked in one row)
            for i in pending:
                need = self.num_candidates - len(_distinct(items[i][1], candidates[i], self.num_candidates))
                ks = list(range(done[i], min(done[i] + need, len(plans[i][2]))))
                done[i] += len(ks)
                requests += [(i, ks)] if self.joint_masks else [(i, [k]) for k in ks]
            masked = []
            for i, ks in requests:
                words, chosen = plans[i][1], {plans[i][2][k] for k in ks}
                masked.append(" ".join(mask if j in chosen else w for j, w in enumerate(words)))
            for (i, ks), tops in zip(requests, self._top_ids(masked, batch_size), strict=True):
                rng, words, positions = plans[i]
                by_position = sorted(positions[k] for k in ks)  # the masks, in the row's order
                for k in ks:
                    p = positions[k]
                    slot = by_position.index(p)
                    if slot >= len(tops):  # truncation cut this mask off
                        continue
                    choices = [c for c in self.tokenizer.convert_ids_to_tokens(tops[slot]) if c
                               and not c.startswith(("##", "[", "<", "▁▁")) and c != words[p] and c not in specials]
                    if choices:
                        replacement = rng.choice(choices[: self.top_k]).lstrip("▁")
                        candidates[i].append(" ".join(words[:p] + [replacement] + words[p + 1:]))
            pending = [i for i in pending if done[i] < len(plans[i][2])
                       and len(_distinct(items[i][1], candidates[i], self.num_candidates)) < self.num_candidates]
        return [_distinct(text, found, self.num_candidates) for (_id, text), found in zip(items, candidates, strict=True)]


class Seq2SeqParaphraser:
    """Sample ``n`` paraphrases from a seq2seq checkpoint (``prefix`` is prepended to the input)."""

    def __init__(self, model_dir: str, num_candidates: int = 2, prefix: str = "", top_p: float = 0.9,
                 max_new_tokens: int = 64, device: str = "cpu") -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).to(device).eval()
        self.device, self.num_candidates, self.prefix = device, num_candidates, prefix
        self.top_p, self.max_new_tokens = top_p, max_new_tokens

    def __call__(self, source_id: str, text: str, seed: int = 0) -> list[str]:
        generator_seed = rng_for(source_id, "seq2seq", seed).randrange(2**31)
        self.torch.manual_seed(generator_seed)
        inputs = self.tokenizer([self.prefix + text], return_tensors="pt", truncation=True, max_length=128).to(self.device)
        with self.torch.inference_mode():
            out = self.model.generate(**inputs, do_sample=True, top_p=self.top_p, max_new_tokens=self.max_new_tokens,
                                      num_return_sequences=self.num_candidates * 2)
        decoded = self.tokenizer.batch_decode(out, skip_special_tokens=True)
        return _distinct(text, decoded, self.num_candidates)


# --------------------------------------------------------------------------- filters


@dataclass(frozen=True, kw_only=True)
class FilterConfig:
    """A candidate is kept when the teacher agrees with itself on the source."""

    max_kl: float = option(0.5, help="most KL(teacher(source) || teacher(candidate)) kept, nats")
    min_cosine: float = option(0.8, help="least cosine of the teacher embeddings kept")
    max_per_source: int = option(2, help="most paraphrases kept per source")
    require_same_label: bool = True  # the teacher's argmax must not change


def filter_candidates(source_logits: np.ndarray, source_embedding: np.ndarray, logits: np.ndarray,
                      embeddings: np.ndarray, config: FilterConfig) -> tuple[list[int], list[str]]:
    """Indices of kept candidates (best cosine first, capped) and, per candidate, why it was dropped.

    Reasons: ``label_changed``, ``kl_too_high``, ``cosine_too_low``, ``over_cap``, or ``kept``.
    """
    def log_softmax(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

    source_log = log_softmax(source_logits.astype(np.float64))
    candidate_log = log_softmax(logits.astype(np.float64))
    kl = (np.exp(source_log) * (source_log - candidate_log)).sum(axis=-1)
    a = source_embedding.astype(np.float64)
    b = embeddings.astype(np.float64)
    cosine = (b @ a) / (np.linalg.norm(b, axis=1) * np.linalg.norm(a) + 1e-12)
    reasons = []
    for i in range(len(logits)):
        if config.require_same_label and logits[i].argmax() != source_logits.argmax():
            reasons.append("label_changed")
        elif kl[i] > config.max_kl:
            reasons.append("kl_too_high")
        elif cosine[i] < config.min_cosine:
            reasons.append("cosine_too_low")
        else:
            reasons.append("kept")
    passing = sorted((i for i, r in enumerate(reasons) if r == "kept"), key=lambda i: -cosine[i])
    for i in passing[config.max_per_source:]:
        reasons[i] = "over_cap"
    return sorted(passing[: config.max_per_source]), reasons

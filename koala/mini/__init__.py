"""The embedded mini benchmark: items written by this project, spoken by espeak-ng, written as
a source tree in the published KoALa-Bench layout so the datasets builder reads it unchanged.

``build_mini_tree(out_dir)`` writes, under ``out_dir`` (the root the ``raw`` paths are relative
to)::

    ASR/zeroth_korean_test_{clean,other}.jsonl         audio/zeroth_korean/mini_000000.flac ...
    Translation/etri_tst-{COMMON,HE}_clean.jsonl        audio/ETRI_translate_data1/en-ko/data/
                                                        <split>/wav/ted_<talk>.wav (one per talk)
    SQA/click_{clean,other}.jsonl                       audio/click/000000.wav ...
    SQA/kobest_boolq_{clean,other}.jsonl                audio/kobest_boolq/000000.wav ...
    SQA/KCSAT_{clean,noise}.jsonl                       audio/K-SAT/mini_01_1.wav ...
    Instruct/{alpaca,kudge,openhermes,vicuna}_{clean,other}.jsonl   audio/<subset>/000000.wav
    SCA-QA/<subset>_{clean,other}.jsonl                 audio/k-disentqa/<subset>_final/...,
                                                        audio/k-disentqa-original/<subset>_final/...
    PA-QA/mctest_{clean,other}.jsonl                    audio/mctest_final/000000_tts.wav ...
    audio_noise/...                                     the noisy variants
    mini_manifest.json                                  hashes, counts, synthesis and noise recipe

Field names, their order and value types follow the published metadata files (JSON numbers,
booleans, lists and dicts where the published files have them). Deliberate differences:

* ASR ``raw`` is a path relative to the root with a unique file name (the published Zeroth
  ``raw`` is an absolute path of the authors' machine, resolved by file name);
* PA-QA ``raw`` of the clean file points at ``audio/...`` and of the noisy file at
  ``audio_noise/...`` (the published files have the two swapped);
* provenance fields the published sets fill from Wikipedia or from the authors' validation
  model are neutral here: ``source`` = ``"koala-bench mini"``, ``source_url`` = ``""``,
  ``pageid`` = 0, ``model_response`` = ``""``; ``is_correct``/``is_valid``/``evidence_verified``
  are ``true`` because every item was checked by hand.

PA-QA evidence positions. The published ``evidence_pos_token_ratio_list`` is the relative
position of the start of each evidence sentence, counted in tokens of an unpublished subword
tokenizer. Here it is the character offset of the evidence sentence's start divided by the
length of the passage (``evidence_char_span_list[k][0] / len(question_ko)``): on the 583
evidence sentences of the published file that ratio is within 0.009 of the published value on
average (at most 0.048), closer than whitespace-token (0.014) or UTF-8-byte (0.010) ratios.
Segments are the paper's: front [0, .25), front-middle [.25, .5), middle-late [.5, .75),
late [.75, 1] (:func:`koala.scoring.segments.segment_of`).

Noise recipe of the noisy variants (the authors published neither their noise type nor their
SNR): babble made of up to 4 other utterances of the same set (rows with the same spoken text
excluded), mixed at 5 dB SNR by :func:`koala.audio.add_noise`, seeded by the noisy file's path
and the row index, seed 0.

Determinism: the same items, code and espeak-ng build give byte-identical files. The manifest
records a hash of the items and of this package's code plus the espeak-ng version; a tree
whose manifest matches is reused as is, anything else is rebuilt in a temporary directory and
renamed into place.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from koala.audio import TARGET_SR, add_noise, write_wav
from koala.mini import items as _items
from koala.mini.synth import (
    ENGLISH,
    KOREAN,
    KOREAN_B,
    EspeakNotFoundError,
    Voice,
    espeak_version,
    silence,
    synthesize_many,
)
from koala.scoring.segments import segment_of

__all__ = [
    "MANIFEST_NAME",
    "MINI_VERSION",
    "NOISE",
    "add_arguments",
    "build_mini_tree",
    "evidence_positions",
    "run",
    "split_sentences",
]

log = logging.getLogger(__name__)

MINI_VERSION = 1
MANIFEST_NAME = "mini_manifest.json"
NOISE: dict[str, Any] = {"type": "babble", "snr_db": 5.0, "seed": 0, "babble_talkers": 4}
"""The noise recipe of every noisy variant of the mini tree."""

ST_LEAD_S = 0.5  # silence before the first sentence of a talk
ST_GAP_S = 0.4  # silence between sentences of a talk (and after the last one)
DIALOGUE_GAP_S = 0.35  # silence between the turns of a KCSAT dialogue
_CENTISECOND = TARGET_SR // 100  # ETRI offsets/durations are exact multiples of 10 ms

LETTERS = "ABCDEFGHIJ"
BOOLQ_CHOICES = "(A) 아니요\n(B) 예"
INSTRUCT_PROMPT = "음성으로 들려준 요청에 답해 주세요."
INSTRUCTION_EN = "Respond to the request in the speech."
MINI_SOURCE = "koala-bench mini"
_DIALOGUE_VOICES = (KOREAN, KOREAN_B)

Say = Callable[[str, Voice], np.ndarray]


# ------------------------------------------------------------------------------- plan types
@dataclass
class _Row:
    index: str
    clean: dict[str, Any]
    noisy: dict[str, Any] | None = None
    audio: dict[str, np.ndarray] = field(default_factory=dict)  # clean files of this row
    noisy_rel: str | None = None
    noisy_src: np.ndarray | None = None  # the clean speech the noisy file is made from
    speech_key: str = ""  # rows with the same key are not babble for each other


@dataclass
class _Set:
    clean_meta: str
    noisy_meta: str | None
    rows: list[_Row]
    audio: dict[str, np.ndarray] = field(default_factory=dict)  # files shared by rows (ETRI)


def _labelled(choices: Sequence[str]) -> str:
    return " ".join(f"({LETTERS[k]}) {c}" for k, c in enumerate(choices))


def _numbered(choices: Sequence[str]) -> str:
    return " ".join(f"({k + 1}){c}" for k, c in enumerate(choices))


def _idx(i: int) -> str:
    return f"{i:06d}"


# ----------------------------------------------------------------------------------- tasks
def _asr(say: Say) -> _Set:
    rows = []
    for i, item in enumerate(_items.ASR):
        idx = _idx(i)
        speech = say(item.text, KOREAN)
        raw = f"audio/zeroth_korean/mini_{idx}.flac"
        noisy_raw = f"audio_noise/zeroth_korean_noise/mini_{idx}_noisy.flac"

        def row(r: str, text: str = item.text, idx: str = idx) -> dict[str, Any]:
            return {
                "index": idx,
                "raw": r,
                "question_en": "",
                "question_ko": text,
                "answer_en": "",
                "answer_ko": "",
                "emotion": "",
            }

        rows.append(
            _Row(idx, row(raw), row(noisy_raw), {raw: speech}, noisy_raw, speech, item.text)
        )
    return _Set("ASR/zeroth_korean_test_clean.jsonl", "ASR/zeroth_korean_test_other.jsonl", rows)


def _pad_to_centiseconds(a: np.ndarray) -> np.ndarray:
    extra = (-len(a)) % _CENTISECOND
    return np.concatenate([a, np.zeros(extra, dtype=np.float32)]) if extra else a


def _st(say: Say) -> list[_Set]:
    by_split: dict[str, _Set] = {}
    for talk in _items.ST_TALKS:
        s = by_split.setdefault(
            talk.split, _Set(f"Translation/etri_{talk.split}_clean.jsonl", None, [])
        )
        raw = f"audio/ETRI_translate_data1/en-ko/data/{talk.split}/wav/ted_{talk.talk_id}.wav"
        pieces = [silence(ST_LEAD_S)]
        pos = len(pieces[0])
        for en, ko in talk.sentences:
            seg = _pad_to_centiseconds(say(en, ENGLISH))
            idx = _idx(len(s.rows))
            s.rows.append(
                _Row(
                    idx,
                    {
                        "index": idx,
                        "raw": raw,
                        "offset": round(pos / TARGET_SR, 2),
                        "duration": round(len(seg) / TARGET_SR, 2),
                        "speaker_id": f"spk.{talk.talk_id}",
                        "question_ko": "",
                        "question_en": "",
                        "answer_ko": ko,
                        "answer_en": en,
                        "emotion": "",
                        "age": "",
                        "gender": "",
                    },
                )
            )
            gap = silence(ST_GAP_S)
            pieces += [seg, gap]
            pos += len(seg) + len(gap)
        s.audio[raw] = np.concatenate(pieces)
    return list(by_split.values())


def _click(say: Say) -> _Set:
    rows = []
    for i, item in enumerate(_items.CLICK):
        idx = _idx(i)
        speech = say(item.question, KOREAN)
        raw, noisy_raw = f"audio/click/{idx}.wav", f"audio_noise/click_noise/{idx}_noisy.wav"
        choices = _labelled(item.choices)

        def row(r: str, item: Any = item, idx: str = idx, choices: str = choices) -> dict:
            return {
                "index": idx,
                "question_ko": item.question,
                "answer_ko": f"({LETTERS[item.answer]}) {item.choices[item.answer]}",
                "choices": choices,
                "choices_ko": choices,
                "prompt": "",
                "raw": r,
                "score": 1,
            }

        rows.append(
            _Row(idx, row(raw), row(noisy_raw), {raw: speech}, noisy_raw, speech, item.question)
        )
    return _Set("SQA/click_clean.jsonl", "SQA/click_other.jsonl", rows)


def _boolq(say: Say) -> _Set:
    rows = []
    for i, item in enumerate(_items.BOOLQ):
        idx = _idx(i)
        spoken = item.speech or item.passage
        speech = say(spoken, KOREAN)
        raw = f"audio/kobest_boolq/{idx}.wav"
        noisy_raw = f"audio_noise/kobest_boolq_noise/{idx}_noisy.wav"

        def row(r: str, item: Any = item, idx: str = idx) -> dict:
            return {
                "index": idx,
                "raw": r,
                "prompt": item.question,
                "question_ko": item.passage,
                "choices_ko": BOOLQ_CHOICES,
                "answer_ko": "(B) 예" if item.answer else "(A) 아니요",
                "score": 1,
            }

        rows.append(_Row(idx, row(raw), row(noisy_raw), {raw: speech}, noisy_raw, speech, spoken))
    return _Set("SQA/kobest_boolq_clean.jsonl", "SQA/kobest_boolq_other.jsonl", rows)


def _kcsat(say: Say) -> _Set:
    rows = []
    for item in _items.KCSAT:
        idx = item.item_id
        turns: list[np.ndarray] = []
        for k, (speaker, line) in enumerate(item.dialogue):
            if k:
                turns.append(silence(DIALOGUE_GAP_S))
            turns.append(say(line, _DIALOGUE_VOICES[speaker]))
        speech = np.concatenate(turns)
        raw, noisy_raw = f"audio/K-SAT/{idx}.wav", f"audio_noise/K-SAT_noise/{idx}_noisy.wav"

        def row(r: str, item: Any = item, idx: str = idx) -> dict:
            return {
                "index": idx,
                "raw": r,
                "prompt_ko": item.prompt,
                "choices_ko": _numbered(item.choices),
                "answer_ko": f"({item.answer + 1}){item.choices[item.answer]}",
            }

        key = "\n".join(line for _, line in item.dialogue)
        rows.append(_Row(idx, row(raw), row(noisy_raw), {raw: speech}, noisy_raw, speech, key))
    return _Set("SQA/KCSAT_clean.jsonl", "SQA/KCSAT_noise.jsonl", rows)


_INSTRUCT_FIELDS = {
    "alpaca": (
        "index raw question_en question_ko answer_en answer_ko emotion prompt score"
    ).split(),
    "openhermes": (
        "index raw question_en question_ko answer_en answer_ko emotion prompt score"
    ).split(),
    "kudge": (
        "index raw prompt instruction_en question_en question_ko answer_en answer_ko emotion score"
    ).split(),
    "vicuna": (
        "index raw prompt instruction_en question_en question_ko answer_en answer_ko emotion score"
    ).split(),
}


def _instruct(say: Say) -> list[_Set]:
    sets = []
    for subset, names in _INSTRUCT_FIELDS.items():
        rows = []
        for item in (it for it in _items.INSTRUCT if it.subset == subset):
            idx = _idx(len(rows))
            spoken = item.speech or item.question_ko
            speech = say(spoken, KOREAN)
            raw = f"audio/{subset}/{idx}.wav"
            noisy_raw = f"audio_noise/{subset}_noise/{idx}_noisy.wav"
            values = {
                "index": idx,
                "prompt": INSTRUCT_PROMPT,
                "instruction_en": INSTRUCTION_EN if subset == "vicuna" else "",
                "question_en": item.question_en,
                "question_ko": item.question_ko,
                "answer_en": item.answer_en,
                "answer_ko": item.answer_ko,
                "emotion": "none" if subset in ("alpaca", "openhermes") else "",
                "score": 1,
            }
            clean = {n: (raw if n == "raw" else values[n]) for n in names}
            noisy = {n: (noisy_raw if n == "raw" else values[n]) for n in names}
            rows.append(_Row(idx, clean, noisy, {raw: speech}, noisy_raw, speech, spoken))
        sets.append(_Set(f"Instruct/{subset}_clean.jsonl", f"Instruct/{subset}_other.jsonl", rows))
    return sets


_SCA_FIELDS = {
    "history_before_chosun": (
        "context question answer keyword source source_url char_length new_context new_keyword "
        "new_answer raw_response choices correct_index model_response is_correct text_to_tts raw "
        "index original_raw"
    ).split(),
    "history_after_chosun": (
        "context keyword question answer new_context new_keyword new_answer raw_response choices "
        "correct_index model_response is_correct text_to_tts index raw original_raw"
    ).split(),
    "k-sports": (
        "index context keyword question answer new_context new_keyword new_answer raw_response "
        "choices correct_index model_response is_correct score text_to_tts raw original_raw"
    ).split(),
    "kpop": (
        "index context question answer keyword source source_url char_length pageid new_context "
        "new_keyword new_answer raw_response choices correct_index model_response is_correct "
        "text_to_tts raw original_raw"
    ).split(),
}

_HANGUL_BASE, _HANGUL_LAST = 0xAC00, 0xD7A3


def _has_final_consonant(word: str) -> bool:
    ch = word.rstrip()[-1]
    if not _HANGUL_BASE <= ord(ch) <= _HANGUL_LAST:
        raise ValueError(f"keyword {word!r} must end with a Hangul syllable")
    return (ord(ch) - _HANGUL_BASE) % 28 != 0


def _swap(text: str, item: Any, what: str) -> str:
    if item.keyword not in text:
        raise ValueError(
            f"SCA-QA item {item.keyword!r}: the keyword does not occur in its {what}: {text!r}"
        )
    return text.replace(item.keyword, item.new_keyword)


def _scaqa(say: Say) -> list[_Set]:
    sets = []
    for subset, names in _SCA_FIELDS.items():
        rows = []
        for item in (it for it in _items.SCAQA if it.subset == subset):
            idx = _idx(len(rows))
            where = f"SCA-QA item {item.keyword!r} ({subset})"
            if _has_final_consonant(item.keyword) != _has_final_consonant(item.new_keyword):
                raise ValueError(
                    f"{where}: {item.keyword!r} and {item.new_keyword!r} must both end with or "
                    "both without a final consonant, or the particles after them break"
                )
            if item.keyword in item.question or item.new_keyword in item.question:
                raise ValueError(f"{where}: the question gives the answer away")
            if item.keyword not in item.choices or item.new_keyword not in item.choices:
                raise ValueError(f"{where}: both answers must be among the choices")
            spoken = item.speech or item.context
            new_context = _swap(item.context, item, "context")
            new_spoken = _swap(spoken, item, "speech")
            original = say(spoken, KOREAN)
            counterfactual = say(new_spoken, KOREAN)
            raw = f"audio/k-disentqa/{subset}_final/{idx}_tts.wav"
            original_raw = f"audio/k-disentqa-original/{subset}_final/{idx}_tts.wav"
            noisy_raw = f"audio_noise/k-disentqa/{subset}_final_noise/{idx}_tts_noisy.wav"
            values = {
                "index": idx,
                "context": item.context,
                "keyword": item.keyword,
                "question": item.question,
                "answer": item.keyword,
                "source": MINI_SOURCE,
                "source_url": "",
                "char_length": len(item.context),
                "pageid": 0,
                "new_context": new_context,
                "new_keyword": item.new_keyword,
                "new_answer": item.new_keyword,
                "raw_response": new_spoken,
                "choices": list(item.choices),
                "correct_index": item.choices.index(item.new_keyword),
                "model_response": "",
                "is_correct": True,
                "score": 1,
                "text_to_tts": new_spoken,
                "raw": raw,
                "original_raw": original_raw,
            }
            clean = {n: values[n] for n in names}
            noisy = {
                n: (noisy_raw if n == "raw" else values[n]) for n in names if n != "original_raw"
            }
            rows.append(
                _Row(
                    idx,
                    clean,
                    noisy,
                    {raw: counterfactual, original_raw: original},
                    noisy_raw,
                    counterfactual,
                    new_spoken,
                )
            )
        sets.append(_Set(f"SCA-QA/{subset}_clean.jsonl", f"SCA-QA/{subset}_other.jsonl", rows))
    return sets


_SENTENCE = re.compile(r"[^\s.!?][^.!?]*[.!?]+")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans ``(start, end)`` of the sentences of ``text`` (ended by ``.``, ``!``
    or ``?``); ``text[start:end]`` is the sentence without surrounding spaces."""
    return [(m.start(), m.end()) for m in _SENTENCE.finditer(text)]


def evidence_positions(passage: str, evidence: Sequence[str]) -> list[dict[str, Any]]:
    """Locate each evidence sentence in ``passage``: its sentence index, character span and
    relative position ``start / len(passage)`` (see the module doc), and its segment.

    Raises ``ValueError`` when an evidence string is not exactly one sentence of the passage.
    """
    spans = split_sentences(passage)
    sentences = [passage[a:b] for a, b in spans]
    out = []
    for ev in evidence:
        hits = [k for k, s in enumerate(sentences) if s == ev]
        if len(hits) != 1:
            raise ValueError(
                f"PA-QA evidence {ev!r} must be exactly one sentence of the passage "
                f"(found {len(hits)} times) in {passage[:40]!r}..."
            )
        k = hits[0]
        start, end = spans[k]
        pos = start / len(passage)
        out.append(
            {
                "sentence_index": k,
                "span": [start, end],
                "position": pos,
                "segment": segment_of(pos),
            }
        )
    return out


def _paqa(say: Say) -> _Set:
    rows = []
    for p_no, passage in enumerate(_items.PAQA):
        speech = say(passage.text, KOREAN)
        for q in passage.questions:
            idx = _idx(len(rows))
            where = f"PA-QA passage {p_no}, question {q.question!r}"
            ev = evidence_positions(passage.text, q.evidence)
            if [e["position"] for e in ev] != sorted(e["position"] for e in ev):
                raise ValueError(f"{where}: list the evidence sentences in passage order")
            answer_text = q.choices[q.answer]
            parts = list(q.parts) if q.parts else [answer_text] * len(ev)
            if len(parts) != len(ev):
                raise ValueError(f"{where}: {len(parts)} parts for {len(ev)} evidence sentences")
            positions = [e["position"] for e in ev]
            segments = [e["segment"] for e in ev]
            raw = f"audio/mctest_final/{idx}_tts.wav"
            noisy_raw = f"audio_noise/mctest_final_noise/{idx}_tts_noisy.wav"
            base = {
                "index": idx,
                "question_ko": passage.text,
                "prompt_ko": q.question,
                "answer_ko": f"({LETTERS[q.answer]})",
                "choices_ko": _labelled(q.choices),
                "raw": raw,
                "answer_text": answer_text,
                "evidence_parts": list(dict.fromkeys(parts)),
                "evidence_part_to_sentence_idx": {
                    part: e["sentence_index"] for part, e in zip(parts, ev, strict=True)
                },
                "evidence_part_to_method": dict.fromkeys(parts, "manual"),
                "evidence_method_overall": "manual",
                "evidence_sentences": list(q.evidence),
                "evidence_sentence_indices": [e["sentence_index"] for e in ev],
                "evidence_pos_token_ratio_list": positions,
                "evidence_quartile_list": segments,
                "evidence_char_span_list": [e["span"] for e in ev],
                "evidence_char_span_exact_list": [True] * len(ev),
                "evidence_pos_min": min(positions),
                "evidence_pos_max": max(positions),
                "evidence_quartile_min": segment_of(min(positions)),
                "evidence_quartile_max": segment_of(max(positions)),
                "evidence_verify": {
                    "supported": True,
                    "need_more": False,
                    "reason": "Evidence placed by hand: the sentence(s) state the answer.",
                },
                "evidence_verified": True,
                "is_valid": True,
            }
            noisy = {**base, "raw": noisy_raw, "raw_response": passage.text}
            noisy["text_to_tts"] = passage.text
            rows.append(_Row(idx, base, noisy, {raw: speech}, noisy_raw, speech, passage.text))
    return _Set("PA-QA/mctest_clean.jsonl", "PA-QA/mctest_other.jsonl", rows)


def _plan(say: Say) -> list[_Set]:
    return [
        _asr(say),
        *_st(say),
        _click(say),
        _boolq(say),
        _kcsat(say),
        *_instruct(say),
        *_scaqa(say),
        _paqa(say),
    ]


class _Recorder:
    """A ``say`` that records what would be spoken (first pass: collect the utterances)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, Voice]] = []

    def __call__(self, text: str, voice: Voice) -> np.ndarray:
        self.requests.append((text, voice))
        return np.zeros(_CENTISECOND, dtype=np.float32)


# ------------------------------------------------------------------------------------ build
def _items_hash() -> str:
    """Hash of everything that defines the tree except espeak-ng: this package's code (which
    holds the items, the layout and the recipes) and the format version."""
    h = hashlib.sha256(f"koala-mini v{MINI_VERSION}\n".encode())
    here = Path(__file__).resolve().parent
    for name in ("__init__.py", "items.py", "synth.py"):
        h.update(name.encode() + b"\0" + (here / name).read_bytes() + b"\0")
    return h.hexdigest()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _write_audio(root: Path, rel: str, array: np.ndarray) -> None:
    path = root / rel
    if path.exists():
        raise ValueError(f"mini tree: two rows write the same audio file {rel}")
    if rel.endswith(".flac"):
        import soundfile as sf

        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(path), np.asarray(array, dtype=np.float32), TARGET_SR, "PCM_16", format="FLAC")
    else:
        write_wav(path, array, TARGET_SR)


def _write_jsonl(root: Path, rel: str, rows: Sequence[dict[str, Any]]) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _noisy_version(s: _Set, row: _Row) -> np.ndarray:
    assert row.noisy_src is not None and s.noisy_meta is not None
    pool = [
        r.noisy_src for r in s.rows if r.speech_key != row.speech_key and r.noisy_src is not None
    ]
    if not pool:
        raise ValueError(
            f"{s.noisy_meta}: row {row.index} has no other utterance in its set to make babble "
            "noise from (a noisy set needs at least two different utterances)"
        )
    return add_noise(
        row.noisy_src,
        NOISE["type"],
        NOISE["snr_db"],
        row_id=f"{s.noisy_meta}#{row.index}",
        seed=NOISE["seed"],
        babble_pool=pool,
        babble_talkers=NOISE["babble_talkers"],
    )


_README = """# koala-bench mini

A tiny KoALa-Bench written by the koala-bench project (not taken from the published sets),
spoken by espeak-ng and laid out like the published benchmark, so the koala-bench datasets
builder reads it with `data_dir` pointing here. Built by `koala-bench mini`; see
`mini_manifest.json` for the counts, the synthesis settings, the noise recipe and file hashes.
The speech is synthetic and robotic: scores on it test the pipeline, not a model's Korean.
"""


def _build_into(root: Path, items_hash: str, espeak: str, workers: int | None) -> dict:
    recorder = _Recorder()
    _plan(recorder)
    speech = synthesize_many(recorder.requests, workers)
    sets = _plan(lambda text, voice: speech[(text, voice)])

    counts: dict[str, int] = {}
    for s in sets:
        for rel, array in s.audio.items():
            _write_audio(root, rel, array)
        for row in s.rows:
            for rel, array in row.audio.items():
                _write_audio(root, rel, array)
        _write_jsonl(root, s.clean_meta, [r.clean for r in s.rows])
        counts[s.clean_meta] = len(s.rows)
        if s.noisy_meta is not None:
            for row in s.rows:
                assert row.noisy_rel is not None
                _write_audio(root, row.noisy_rel, _noisy_version(s, row))
            _write_jsonl(root, s.noisy_meta, [r.noisy for r in s.rows if r.noisy is not None])
            counts[s.noisy_meta] = len(s.rows)
    (root / "README.md").write_text(_README, encoding="utf-8")

    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        files[rel] = {"sha256": _sha256(path), "bytes": path.stat().st_size}
    manifest = {
        "name": "koala-bench mini",
        "version": MINI_VERSION,
        "items_hash": items_hash,
        "espeak_ng": espeak,
        "sampling_rate": TARGET_SR,
        "voices": {
            "korean": KOREAN.args(),
            "korean_second_speaker": KOREAN_B.args(),
            "english": ENGLISH.args(),
        },
        "noise": NOISE,
        "counts": counts,
        "files": files,
    }
    (root / MANIFEST_NAME).write_text(
        json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True) + "\n",
        encoding="utf-8",
    )
    return manifest


def _current(root: Path, items_hash: str) -> bool:
    """Whether ``root`` holds a complete mini tree built from these items and this espeak-ng."""
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("items_hash") != items_hash:
        return False
    try:
        if manifest.get("espeak_ng") != espeak_version():
            return False
    except EspeakNotFoundError:
        pass  # cannot rebuild anyway; the tree on disk is the one these items describe
    for rel, meta in manifest.get("files", {}).items():
        p = root / rel
        if not p.is_file() or p.stat().st_size != meta.get("bytes"):
            return False
    return True


def build_mini_tree(
    out_dir: str | os.PathLike[str], force: bool = False, workers: int | None = None
) -> Path:
    """Build the mini benchmark source tree at ``out_dir`` and return its root (``out_dir``).

    Idempotent: when ``out_dir`` already holds a tree whose manifest matches these items, this
    code and the installed espeak-ng, it returns at once (``force=True`` rebuilds anyway).
    Otherwise the tree is written into a temporary sibling directory and renamed into place,
    so a reader never sees half a tree. ``out_dir`` must not exist, be empty, or hold an
    earlier mini tree (recognised by its manifest); anything else is refused.
    ``workers`` espeak-ng processes run at a time (default: the number of CPUs).
    """
    out = Path(out_dir).absolute()
    items_hash = _items_hash()
    if not force and _current(out, items_hash):
        log.debug("mini tree at %s is up to date", out)
        return out
    if out.exists():
        if not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a directory")
        if any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
            raise FileExistsError(
                f"{out} is a non-empty directory without {MANIFEST_NAME}; refusing to replace "
                "it with the mini tree (choose a new or empty directory)"
            )
    espeak = espeak_version()  # raises with the install hint when espeak-ng is missing
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.building-", dir=out.parent))
    try:
        tmp.chmod(0o755)
        _build_into(tmp, items_hash, espeak, workers)
        old = None
        if out.exists():
            old = out.parent / f".{out.name}.old-{uuid.uuid4().hex}"
            os.rename(out, old)
        try:
            os.rename(tmp, out)
        except OSError:
            if _current(out, items_hash):  # another process finished the same build first
                shutil.rmtree(tmp, ignore_errors=True)
                return out
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("built the mini benchmark at %s in %.1f s", out, time.perf_counter() - t0)
    return out


# -------------------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``koala-bench mini``."""
    parser.add_argument(
        "--out", default="koala_mini", help="directory of the tree (default: %(default)s)"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    parser.add_argument(
        "--workers", type=int, default=None, help="espeak-ng processes at a time (default: CPUs)"
    )


def run(args: argparse.Namespace) -> int:
    """``koala-bench mini --out DIR``: build (or reuse) the mini tree and print its counts."""
    t0 = time.perf_counter()
    try:
        root = build_mini_tree(args.out, force=args.force, workers=args.workers)
    except (EspeakNotFoundError, FileExistsError) as exc:
        log.error("%s", exc)
        return 1
    manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    print(f"mini benchmark at {root} ({time.perf_counter() - t0:.1f} s)")
    for rel, n in manifest["counts"].items():
        print(f"  {rel}: {n} rows")
    return 0

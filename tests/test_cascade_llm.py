"""The Whisper -> LLM cascade and its LLM adapter, on the real llama.cpp binding (xllamacpp)
with a tiny GGUF written here (tests/tiny_gguf.py: its next-token distribution is known in
closed form), and the demo judge's HTTP path through koala.scoring.judge."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("xllamacpp")
pytest.importorskip("gguf")

from tiny_gguf import expected_logprobs, write_tiny_llama

from koala.models import Abstain, Audio, Request, load_model, silence
from koala.models.cascade import (
    ST_INSTRUCTION,
    TRANSCRIPT_HEADER,
    LLMCascade,
    label_logprobs,
    label_of_token,
)
from koala.models.llm import LlamaCpp
from koala.models.whisper import WhisperASR

PIECES = ["(", "A", "B", "C", "D", ")", "▁", "Grade: [[7]]"]


def logaddexp(a: float, b: float) -> float:
    return math.log(math.exp(a) + math.exp(b))


class StubASR(WhisperASR):
    """The real recogniser class with its decoder replaced: returns a fixed text per
    language, and counts the decodes (the cache, the silence check and the language
    routing are the real ones)."""

    def __init__(self, texts: dict[str, str]) -> None:
        super().__init__()
        self.texts = texts
        self.asked: list[str] = []

    def _load(self) -> Any:
        return None

    def _decode(self, audio: Audio, language: str) -> str:
        peak = float(np.max(np.abs(audio.array))) if len(audio.array) else 0.0
        if peak < self.silence_peak:
            return ""
        self.asked.append(language)
        self.decoded += 1
        return self.texts[language]


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    logits = {"(": 3.0, "B": 2.0, "A": 1.0}
    path = write_tiny_llama(tmp_path_factory.mktemp("gguf") / "tiny.gguf", PIECES, logits)
    llm = LlamaCpp(str(path), n_ctx=2048, threads=1)
    llm.open()
    yield llm, expected_logprobs(PIECES, logits)
    llm.close()


def clip(seconds: float = 1.0, freq: float = 220.0) -> Audio:
    t = np.arange(int(16000 * seconds)) / 16000
    return Audio((0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), 16000)


# ------------------------------------------------------------------------- label reading


@pytest.mark.parametrize(
    ("token", "label"),
    [("(A", "A"), (" a", "A"), ("Ａ)", "A"), ("①", "1"), ("(2", "2"), ("B.", "B"), ("답", "답")],
)
def test_label_of_token(token: str, label: str) -> None:
    assert label_of_token(token) == label


def test_label_logprobs_add_up_the_tokens_that_spell_a_label() -> None:
    top = [("(", math.log(0.5)), ("A", math.log(0.2)), (" a", math.log(0.1)), ("(B", math.log(0.1))]
    lp = label_logprobs(top, ["A", "B", "C"])
    assert lp["A"] == pytest.approx(math.log(0.3))
    assert lp["B"] == pytest.approx(math.log(0.1))
    assert lp["C"] == -math.inf


# ------------------------------------------------------------------ the llama.cpp adapter


def test_the_binding_gives_the_models_next_token_distribution(tiny_llm: Any) -> None:
    llm, expected = tiny_llm
    top = dict(llm.next_token_logprobs([{"role": "user", "content": "질문: 무엇?"}], 3))
    assert set(top) == {"(", "B", "A"}
    for token, lp in top.items():
        assert lp == pytest.approx(expected[token], abs=1e-3)


def test_complete_stops_at_max_tokens_and_repeats_answers_from_its_cache(tiny_llm: Any) -> None:
    llm, _ = tiny_llm
    before = llm.calls
    body = [{"role": "user", "content": "아무 말"}]
    assert llm.complete(body, 4) == "(((("  # the argmax token, four times
    assert llm.complete(body, 4) == "(((("
    assert llm.calls == before + 1  # the second one came from the cache


def test_a_missing_gguf_is_named() -> None:
    with pytest.raises(FileNotFoundError, match=r"nope\.gguf"):
        LlamaCpp("/nowhere/nope.gguf").open()


# ----------------------------------------------------------------------------- the cascade


def test_multiple_choice_is_the_llms_most_likely_label_through_its_bracket(
    tiny_llm: Any,
) -> None:
    llm, e = tiny_llm
    asr = StubASR({"ko": "철수는 공원에 갔다"})
    cascade = LLMCascade(asr=asr, llm=llm)
    prompt = "음성을 듣고 고르세요.\n\n질문: 어디?\n(A) 공원\n(B) 학교\n답: "
    answer = cascade.answer(Request(clip(), prompt, ("A", "B"), "sqa"))
    # the first token "(" (p = e^-2.69) is followed by the same distribution again (the
    # model ignores its context): P(B) = p(B) + p("(") p(B)
    assert answer.text == "(B)"
    assert answer.logprobs is not None
    assert answer.logprobs["B"] == pytest.approx(logaddexp(e["B"], e["("] + e["B"]), abs=1e-3)
    assert answer.logprobs["A"] == pytest.approx(logaddexp(e["A"], e["("] + e["A"]), abs=1e-3)
    assert answer.meta["transcript"] == "철수는 공원에 갔다"
    assert asr.asked == ["ko"]


def test_the_transcript_stands_in_for_the_speech_and_silence_gives_none(tiny_llm: Any) -> None:
    llm, _ = tiny_llm
    cascade = LLMCascade(asr=StubASR({"ko": "들은 말"}), llm=llm)
    spoken = cascade.messages("들은 말", "물음")
    assert spoken == [{"role": "user", "content": f"{TRANSCRIPT_HEADER}\n들은 말\n\n물음"}]
    # SCA-QA's text-only condition: a silent clip, no transcript, the prompt alone
    answer = cascade.answer(
        Request(silence(1.0), "물음\n(A) 가\n(B) 나\n답: ", ("A", "B"), "sca_qa")
    )
    assert answer.meta["transcript"] == ""
    assert cascade.asr.decoded == 0  # silence is not decoded


def test_asr_is_the_transcript_and_st_hears_english(tiny_llm: Any) -> None:
    llm, _ = tiny_llm
    asr = StubASR({"ko": "안녕하세요", "en": "good morning"})
    cascade = LLMCascade(asr=asr, llm=llm, st_max_tokens=3, max_tokens=5)
    calls = llm.calls
    assert cascade.answer(Request(clip(), "받아 적으세요", None, "asr")).text == "안녕하세요"
    assert llm.calls == calls  # no LLM call for ASR
    st = cascade.answer(Request(clip(freq=330), "번역하세요", None, "st"))
    assert st.meta["transcript"] == "good morning" and st.text == "((("  # 3 tokens at most
    assert cascade.messages("good morning", "번역하세요", "st") == [
        {"role": "user", "content": f"{ST_INSTRUCTION}\n\ngood morning"}
    ]
    sif = cascade.answer(Request(clip(freq=440), "답하세요", None, "sif"))
    assert sif.text == "((((("
    assert asr.asked == ["ko", "en", "ko"]
    # the same clip again: the recogniser's cache answers
    cascade.answer(Request(clip(), "받아 적으세요", None, "asr"))
    assert asr.decoded == 3


def test_no_label_among_the_likely_tokens_is_an_abstention(tmp_path: Path) -> None:
    path = write_tiny_llama(tmp_path / "t.gguf", PIECES, {")": 5.0, "▁": 4.0})
    llm = LlamaCpp(str(path), n_ctx=2048, threads=1)
    try:
        cascade = LLMCascade(asr=StubASR({"ko": "말"}), llm=llm, top_logprobs=2)
        with pytest.raises(Abstain, match="no shown label"):
            cascade.answer(Request(clip(), "질문\n(A) 가\n(B) 나\n답: ", ("A", "B"), "sqa"))
    finally:
        llm.close()


def test_the_registry_builds_the_cascade_and_whisper_without_loading_them() -> None:
    model = load_model("cascade-llm?max_tokens=64&top_logprobs=10")
    assert isinstance(model, LLMCascade)
    assert model.name == "whisper-base+qwen2.5-coder-1.5b"
    assert (model.max_tokens, model.top_logprobs) == (64, 10)
    whisper = load_model("whisper?beam_size=1")
    assert isinstance(whisper, WhisperASR) and whisper.name == "whisper-base(beam_size=1)"
    assert whisper.tasks == frozenset({"asr"})
    with pytest.raises(ValueError, match="top_logprobs"):
        load_model("cascade-llm?top_logprobs=0")


# ------------------------------------------------------------------- the demo judge (HTTP)


def test_the_demo_judge_rates_sif_over_http_on_the_same_server(tmp_path: Path) -> None:
    """koala.scoring.judge against llama.cpp's OpenAI-compatible server, as the demo runs
    it: this model's reply is the single token "Grade: [[7]]" (max_tokens=1)."""
    from koala.scoring.judge import judge_scores
    from koala.tasks.sif import TASK

    path = write_tiny_llama(tmp_path / "j.gguf", PIECES, {"Grade: [[7]]": 9.0})
    llm = LlamaCpp(str(path), n_ctx=2048, threads=1)
    try:
        out = judge_scores(
            ["날씨를 알려 줘"],
            ["맑습니다"],
            base_url=llm.base_url,
            model="demo-judge:tiny",
            api_key_env="KOALA_TEST_NO_KEY",
            max_tokens=1,
            concurrency=1,
            progress=False,
            return_records=False,
        )
    finally:
        llm.close()
    assert out["score"] == 70.0 and out["judge_model"] == "demo-judge:tiny"
    assert TASK.cell({}, out).endswith("(judge: demo-judge:tiny)")


def test_the_plan_tells_each_request_its_task() -> None:
    """The runner's requests carry the task (plan.attach_audio), which the cascade routes by."""
    from koala.audio import wav_bytes
    from koala.plan import Item, RowPlan, attach_audio

    stored = {"bytes": wav_bytes(clip().array, 16000), "path": None}
    items = [
        Item("sqa_click", "sqa", "k1", "speech", "r0", "질문\n(A) 가\n답: ", ("A", "B"), {}),
        Item("sca_qa", "sca_qa", "k1", "text", "r0", "질문", ("1", "2"), {}),
    ]
    attach_audio(RowPlan(0, items), {"audio": stored}, "silence", {})
    assert [(i.request.task, i.request.labels) for i in items if i.request] == [
        ("sqa", ("A", "B")),
        ("sca_qa", ("1", "2")),
    ]

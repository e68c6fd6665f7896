"""The ``transformers:`` adapter on every model family of the leaderboard that transformers has,
each a tiny randomly initialised model of the REAL class with its REAL processor (tokenizers
made here, offline), through generation and logit mode; for each, a forward hook on the audio
encoder proves that the features it received are those of the item's own clip (two different
clips in one batch), and the answers differ between the clip and silence."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from test_models import tiny_qwen2_audio  # noqa: F401  (a fixture)

from koala.models import Abstain, Audio, Request, load_model

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

MC = "질문 고르세요\n(A) 가\n(B) 나\n(C) 다\n(D) 라\n답: "
LABELS = ("A", "B", "C", "D")
CORPUS = ["답: (A) (B) (C) (D) 질문 음성을 듣고 고르세요 A B C D 안녕하세요 hello"] * 5


def clip(seconds: float, f: float, sr: int = 16000) -> Audio:
    t = np.arange(int(seconds * sr)) / sr
    return Audio((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), sr)


def silent(seconds: float) -> Audio:
    return Audio(np.zeros(int(seconds * 16000), dtype=np.float32), 16000)


def bpe(special: list[str], cls=None, extra: dict | None = None, **kwargs):
    """A byte-level BPE tokenizer trained here on a few words, with ``special`` tokens."""
    from transformers import PreTrainedTokenizerFast

    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(CORPUS, trainer)
    cls = cls or PreTrainedTokenizerFast
    if extra:
        kwargs["extra_special_tokens"] = extra
    return cls(tokenizer_object=tok, **kwargs)


def qwen2_text(vocab: int) -> dict:
    return {
        "model_type": "qwen2",
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "num_key_value_heads": 1,
        "intermediate_size": 64,
        "vocab_size": vocab,
    }


# a chat template of the usual Qwen form; ``audio_marker`` is what stands for one clip
def chat_template(audio_marker: str) -> str:
    return (
        "{% for m in messages %}<|im_start|>{{ m.role }}\n"
        "{% if m.content is string %}{{ m.content }}{% else %}{% for c in m.content %}"
        f"{{% if c.type == 'audio' %}}{audio_marker}{{% else %}}{{{{ c.text }}}}{{% endif %}}"
        "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def save(path, model, processor):
    torch.manual_seed(0)
    processor.save_pretrained(path)
    model.eval().save_pretrained(path)
    return path


# ------------------------------------------------------------------------------- capture


class Capture:
    """A forward hook on the audio encoder: the ``input_features`` of every call."""

    def __init__(self, adapter, name: str) -> None:
        adapter.load()
        self.module = next(m for n, m in adapter.model.named_modules() if n.endswith(name))
        self.calls: list = []
        self.handle = self.module.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output):
        feats = args[0] if args else kwargs.get("input_features", kwargs.get("audio_input"))
        self.calls.append(feats.detach().clone())

    def close(self) -> None:
        self.handle.remove()

    def first(self):
        """The input of the first call: the prompt's forward pass (Whisper's generate goes on
        to later 30 s windows while the tiny model writes no end of text)."""
        assert self.calls, "the audio encoder was never called"
        return self.calls[0]


def whisper_features(fe, audio: Audio, quantise: bool = False) -> np.ndarray:
    """The clip's features as the extractor makes them by default (30 s, max_length)."""
    x = audio.array
    if quantise:  # the clip as 16-bit WAV (how a processor that reads WAV gets it)
        x = np.clip(np.round(x * 32768), -32768, 32767).astype(np.float32) / 32768
    return fe([x], sampling_rate=16000, return_tensors="np")["input_features"][0]


def assert_each_item_heard_its_clip(
    adapter, encoder: str, expected, atol: float = 2e-4, packed: bool = False
):
    """Two different clips in one batch: the encoder's input rows are each clip's own
    features (``expected([a, b]) -> [features of a, features of b]``, made by the feature
    extractor itself with the settings the family's processor declares); the label scores
    of the clip differ from those of silence of the same length (``atol``: how far the
    features may be from ``expected``: a processor that reads the clip as 16-bit WAV rounds
    it). ``packed``: the encoder takes
    the valid frames of every clip one after the other (``[mel, frames]``: the Omni models),
    each clip's ``len / hop_length`` of them."""
    a, b = clip(1.0, 330), clip(1.5, 1200)
    cap = Capture(adapter, encoder)
    try:
        answers = adapter.answer_batch([Request(a, MC, LABELS), Request(b, MC, LABELS)])
    finally:
        cap.close()
    for ans in answers:
        assert not isinstance(ans, BaseException), ans
        assert set(ans.logprobs) == set(LABELS)
    got = cap.first().float().numpy()
    want_a, want_b = expected([a, b])
    if packed:
        hop = adapter.processor.feature_extractor.hop_length
        n_a, n_b = len(a.array) // hop, len(b.array) // hop
        assert got.shape[-1] == n_a + n_b, got.shape
        got = [got[:, :n_a], got[:, n_a:]]
        want_a, want_b = want_a[:, :n_a], want_b[:, :n_b]
    else:
        assert got.shape[0] == 2, got.shape
    np.testing.assert_allclose(got[0], want_a, atol=atol)
    np.testing.assert_allclose(got[1], want_b, atol=atol)
    assert not np.allclose(
        want_a[:, :90], want_b[:, :90], atol=100 * atol
    )  # two clips that a mix-up would show
    lp_clip = adapter.choice_logprobs(a, MC, LABELS)
    lp_silence = adapter.choice_logprobs(silent(1.0), MC, LABELS)
    assert lp_clip != pytest.approx(lp_silence, abs=1e-6)
    return answers


def mixed_batch() -> list[Request]:
    """Two clips of different lengths and a text-only request (its own sub-batch) in one
    batch."""
    return [
        Request(clip(0.5, 200), MC, LABELS),
        Request(None, "음성 없이 답하세요"),
        Request(clip(2.0, 500), "짧은 질문\n(A) 예\n(B) 아니요\n답: ", ("A", "B")),
    ]


def assert_batch_equals_single(adapter, requests):
    batch = adapter.answer_batch(requests)
    for r, b in zip(requests, batch, strict=True):
        s = adapter.answer(r)
        assert not isinstance(b, BaseException), b
        assert b.text == s.text
        if r.labels:
            assert b.logprobs == pytest.approx(s.logprobs, abs=1e-3)
            assert sum(math.exp(v) for v in b.logprobs.values()) < 1.0
        else:
            assert b.logprobs is None


# ------------------------------------------------------------------------------- Whisper


@pytest.fixture(scope="module")
def tiny_whisper(tmp_path_factory):
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizer,
    )

    special = [
        "<|endoftext|>",
        "<|startoftranscript|>",
        "<|en|>",
        "<|ko|>",
        "<|translate|>",
        "<|transcribe|>",
        "<|notimestamps|>",
    ]
    eot = "<|endoftext|>"
    tok = bpe(special, WhisperTokenizer, unk_token=eot, bos_token=eot, eos_token=eot, pad_token=eot)
    ids = {t: tok.convert_tokens_to_ids(t) for t in special}
    proc = WhisperProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tok
    )
    cfg = WhisperConfig(
        vocab_size=len(tok),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_mel_bins=80,
        max_target_positions=64,
        pad_token_id=ids[eot],
        bos_token_id=ids[eot],
        eos_token_id=ids[eot],
        decoder_start_token_id=ids["<|startoftranscript|>"],
        suppress_tokens=[],
        begin_suppress_tokens=[],
    )
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(cfg)
    model.generation_config = GenerationConfig(
        decoder_start_token_id=ids["<|startoftranscript|>"],
        eos_token_id=ids[eot],
        pad_token_id=ids[eot],
        is_multilingual=True,
        lang_to_id={"<|en|>": ids["<|en|>"], "<|ko|>": ids["<|ko|>"]},
        task_to_id={"transcribe": ids["<|transcribe|>"], "translate": ids["<|translate|>"]},
        no_timestamps_token_id=ids["<|notimestamps|>"],
    )
    return save(tmp_path_factory.mktemp("tiny-whisper"), model, proc)


def test_whisper_transcribes_in_korean_with_30s_features(tiny_whisper):
    # before: WhisperForCausalLM was loaded (encoder dropped) and every request failed
    from transformers import WhisperFeatureExtractor, WhisperForConditionalGeneration

    model = load_model(f"transformers:{tiny_whisper}?max_new_tokens=4&batch_size=2")
    model.load()
    assert isinstance(model.model, WhisperForConditionalGeneration)
    assert model.tasks == frozenset({"asr"}) and model.ignores_prompt
    fe = WhisperFeatureExtractor.from_pretrained(tiny_whisper)
    a, b = clip(1.0, 330), clip(1.5, 1200)
    cap = Capture(model, "encoder")
    try:
        answers = model.answer_batch([Request(a, "받아 적으세요"), Request(b, "받아 적으세요")])
    finally:
        cap.close()
    feats = cap.first()
    assert tuple(feats.shape) == (2, 80, 3000)  # each clip padded to 30 s, none to the longest
    np.testing.assert_allclose(feats[0].numpy(), whisper_features(fe, a), atol=1e-5)
    np.testing.assert_allclose(feats[1].numpy(), whisper_features(fe, b), atol=1e-5)

    # the reference: Whisper's own generate on the extractor's features, told ko + transcribe
    ref = WhisperForConditionalGeneration.from_pretrained(tiny_whisper).eval()
    inputs = fe([a.array], sampling_rate=16000, return_tensors="pt", return_attention_mask=True)

    def ref_generate(language):
        with torch.no_grad():
            return ref.generate(
                **inputs,
                language=language,
                task="transcribe",
                max_new_tokens=4,
                return_dict_in_generate=True,
                output_logits=True,
            )

    ko = ref_generate("ko")
    out = ko.sequences
    tok = model.tokenizer
    # the decoder prompt is <|startoftranscript|><|ko|><|transcribe|><|notimestamps|>
    assert out[0, :4].tolist() == tok.convert_tokens_to_ids(
        ["<|startoftranscript|>", "<|ko|>", "<|transcribe|>", "<|notimestamps|>"]
    )
    assert answers[0].text == tok.decode(out[0], skip_special_tokens=True).strip()
    # the prompt is no input: another prompt, the same answer; it never goes in as labels
    assert model.answer(Request(a, "전혀 다른 프롬프트")).text == answers[0].text
    en = ref_generate("en")
    assert en.sequences[0, 1] == tok.convert_tokens_to_ids("<|en|>")
    english = load_model(f"transformers:{tiny_whisper}?max_new_tokens=4&language=en")
    want = tok.decode(en.sequences[0], skip_special_tokens=True).strip()
    assert english.answer(Request(a, "x")).text == want
    assert not torch.allclose(en.logits[0], ko.logits[0])  # ko was told
    # the clip is heard: silence does not give the same first-step scores
    silence = model._inputs([Request(silent(1.0), "")], cue=False)
    with torch.no_grad():
        s1 = ref.generate(
            **silence,
            language="ko",
            max_new_tokens=1,
            output_logits=True,
            return_dict_in_generate=True,
        ).logits[0]
        c1 = ref.generate(
            **inputs,
            language="ko",
            max_new_tokens=1,
            output_logits=True,
            return_dict_in_generate=True,
        ).logits[0]
    assert not torch.allclose(s1, c1)


def test_whisper_does_asr_only_and_refuses_translate(tiny_whisper):
    model = load_model(f"transformers:{tiny_whisper}?max_new_tokens=2")
    with pytest.raises(Abstain, match="ASR"):
        model.answer(Request(clip(1.0, 330), MC, LABELS))
    with pytest.raises(Abstain, match="no audio"):
        model.answer(Request(None, "받아 적으세요"))
    with pytest.raises(ValueError, match="English speech to Korean text"):
        load_model(f"transformers:{tiny_whisper}?task=translate")
    assert model.max_audio_s == 30.0


# ------------------------------------------------------------------------------- AF3 / GLM-ASR


@pytest.fixture(scope="module")
def tiny_audioflamingo3(tmp_path_factory):
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    tok = bpe(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    proc = AudioFlamingo3Processor(
        WhisperFeatureExtractor(feature_size=128), tok, chat_template=chat_template("<sound>")
    )
    cfg = AudioFlamingo3Config(
        audio_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "num_mel_bins": 128,
        },
        text_config=qwen2_text(len(tok)),
        audio_token_id=tok.convert_tokens_to_ids("<sound>"),
    )
    torch.manual_seed(0)
    model = AudioFlamingo3ForConditionalGeneration(cfg)
    return save(tmp_path_factory.mktemp("tiny-af3"), model, proc)


@pytest.fixture(scope="module")
def tiny_glmasr(tmp_path_factory):
    from transformers import (
        GlmAsrConfig,
        GlmAsrForConditionalGeneration,
        GlmAsrProcessor,
        WhisperFeatureExtractor,
    )

    tok = bpe(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|pad|>", "<|begin_of_audio|>"],
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    proc = GlmAsrProcessor(
        WhisperFeatureExtractor(feature_size=128), tok, chat_template=chat_template("<|pad|>")
    )
    cfg = GlmAsrConfig(
        audio_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 32,
            "num_mel_bins": 128,
        },
        text_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 64,
            "vocab_size": len(tok),
        },
        audio_token_id=tok.convert_tokens_to_ids("<|pad|>"),
    )
    torch.manual_seed(0)
    model = GlmAsrForConditionalGeneration(cfg)
    return save(tmp_path_factory.mktemp("tiny-glmasr"), model, proc)


@pytest.mark.parametrize("family", ["tiny_audioflamingo3", "tiny_glmasr", "tiny_qwen2_audio"])
def test_whisper_feature_lms_hear_each_clip_padded_to_30s(family, request):
    # before: padding=True went to the audio too (features padded to the longest clip, not to
    # the extractor's 30 s): AudioFlamingo3 failed every request, GLM-ASR most
    path = request.getfixturevalue(family)
    from transformers import AutoFeatureExtractor

    fe = AutoFeatureExtractor.from_pretrained(path)
    model = load_model(f"transformers:{path}?max_new_tokens=3&batch_size=2")
    assert_each_item_heard_its_clip(
        model, "audio_tower", lambda cs: [whisper_features(fe, c) for c in cs]
    )
    assert_batch_equals_single(model, mixed_batch())


@pytest.mark.parametrize("family", ["tiny_audioflamingo3", "tiny_glmasr"])
def test_label_logprobs_are_an_independent_forward_pass(family, request):
    path = request.getfixturevalue(family)
    from transformers import AutoModelForMultimodalLM, AutoModelForSeq2SeqLM, AutoProcessor

    model = load_model(f"transformers:{path}?max_new_tokens=3")
    a = clip(1.0, 330)
    got = model.choice_logprobs(a, MC, LABELS)
    proc = AutoProcessor.from_pretrained(path)
    auto = AutoModelForSeq2SeqLM if "af3" in str(path) else AutoModelForMultimodalLM
    ref = auto.from_pretrained(path).eval()
    messages = [
        {
            "role": "user",
            "content": [{"type": "audio", "audio_url": "x"}, {"type": "text", "text": MC}],
        }
    ]
    text = proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = proc(text=[text], audio=[a.array], sampling_rate=16000, return_tensors="pt")
    with torch.no_grad():
        lp = torch.log_softmax(ref(**inputs).logits[0, -1].float(), -1)
    tok = proc.tokenizer
    want = {lab: float(lp[tok.encode(lab, add_special_tokens=False)[0]]) for lab in LABELS}
    assert got == pytest.approx(want, abs=1e-5)
    ans = model.answer(Request(a, MC, LABELS))
    assert ans.logprobs == pytest.approx(want, abs=1e-4)
    with torch.no_grad():
        out = ref.generate(**inputs, max_new_tokens=3, do_sample=False)
    n = inputs["input_ids"].shape[1]
    assert ans.text == tok.decode(out[0, n:], skip_special_tokens=True).strip()


# ------------------------------------------------------------------------------- Voxtral


def tekken_json(path) -> None:
    """A tiny Tekken (mistral_common) tokenizer file: the 256 bytes as the vocabulary, the
    control tokens at Voxtral's ranks ([AUDIO] = 24, [BEGIN_AUDIO] = 25), an audio config of
    Voxtral's form (16 kHz, 12.5 tokens a second, 128 mel bins, 30 s chunks)."""
    import base64

    names = "<unk> <s> </s> [INST] [/INST] [AVAILABLE_TOOLS] [/AVAILABLE_TOOLS] [TOOL_RESULTS] "
    names += "[/TOOL_RESULTS] [TOOL_CALLS] [IMG] <pad> [IMG_BREAK] [IMG_END] [PREFIX] [MIDDLE] "
    names += "[SUFFIX] [SYSTEM_PROMPT] [/SYSTEM_PROMPT] [TOOL_CONTENT]"
    more = {24: "[AUDIO]", 25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]", 34: "[TRANSCRIBE]"}
    special = [{"rank": i, "token_str": s, "is_control": True} for i, s in enumerate(names.split())]
    special += [
        {"rank": i, "token_str": more.get(i, f"<SPECIAL_{i}>"), "is_control": True}
        for i in range(20, 40)
    ]
    vocab = [
        {"rank": i, "token_bytes": base64.b64encode(bytes([i])).decode(), "token_str": None}
        for i in range(256)
    ]
    pattern = r"[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    data = {
        "config": {
            "pattern": pattern,
            "num_vocab_tokens": 256,
            "default_vocab_size": 296,
            "default_num_special_tokens": 40,
            "version": "v7",
        },
        "vocab": vocab,
        "special_tokens": special,
        "audio": {
            "sampling_rate": 16000,
            "frame_rate": 12.5,
            "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400},
            "chunk_length_s": 30.0,
        },
    }
    (path / "tekken.json").write_text(json.dumps(data), encoding="utf-8")


@pytest.fixture(scope="module")
def tiny_voxtral(tmp_path_factory):
    pytest.importorskip("mistral_common")
    from transformers import (
        MistralCommonBackend,
        VoxtralConfig,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )

    path = tmp_path_factory.mktemp("tiny-voxtral")
    tekken_json(path)
    tok = MistralCommonBackend.from_pretrained(path)
    proc = VoxtralProcessor(WhisperFeatureExtractor(feature_size=128), tok)
    cfg = VoxtralConfig(
        # the projector stacks 4 encoder frames: intermediate_size = 4 * hidden_size
        audio_config={
            "hidden_size": 16,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "num_mel_bins": 128,
        },
        text_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "head_dim": 16,
            "intermediate_size": 64,
            "vocab_size": len(tok),
        },
        audio_token_id=24,
    )
    torch.manual_seed(0)
    return save(path, VoxtralForConditionalGeneration(cfg), proc)


def test_voxtral_hears_each_clip_through_its_chat_request(tiny_voxtral):
    # before: VoxtralProcessor takes no audio= and refuses audio tokens in text: every
    # request failed
    from transformers import AutoProcessor, VoxtralForConditionalGeneration

    model = load_model(f"transformers:{tiny_voxtral}?max_new_tokens=3&batch_size=2")
    proc = AutoProcessor.from_pretrained(tiny_voxtral)
    fe = proc.feature_extractor
    assert_each_item_heard_its_clip(
        model,
        "audio_tower",
        lambda cs: [whisper_features(fe, c, quantise=True) for c in cs],
        atol=1e-2,
    )
    assert_batch_equals_single(model, mixed_batch())
    # logit mode: the next-token scores after mistral_common's own encoding of the request
    a = clip(1.0, 330)
    got = model.choice_logprobs(a, MC, LABELS)
    conv = [
        {
            "role": "user",
            "content": [
                {"type": "audio", "base64": a.wav_base64(16000).decode()},
                {"type": "text", "text": MC},
            ],
        }
    ]
    inputs = proc.apply_chat_template(conv, tokenize=True, return_dict=True, return_tensors="pt")
    assert int((inputs["input_ids"] == 24).sum()) == 375  # 30 s at 12.5 audio tokens a second
    ref = VoxtralForConditionalGeneration.from_pretrained(tiny_voxtral).eval()
    with torch.no_grad():
        lp = torch.log_softmax(ref(**inputs).logits[0, -1].float(), -1)
    # the vocabulary is the 256 bytes after 40 control tokens: "A" is byte 65, id 105
    want = {lab: float(lp[40 + ord(lab)]) for lab in LABELS}
    assert got == pytest.approx(want, abs=1e-5)
    with pytest.raises(ValueError, match="input=published"):
        load_model(f"transformers:{tiny_voxtral}?input=published").load()


# ------------------------------------------------------------------------------- Omni


class NoVideo(transformers.utils.PushToHubMixin):
    """What the test builds the Omni processors with in place of their video processor (it
    needs torchvision); nothing here sends video."""

    _auto_class = None

    def to_dict(self):
        return {}


def built_without(cls, slot: str, **parts):
    """``cls(**parts)`` with ``NoVideo()`` in ``slot`` (``video_processor``,
    ``image_processor``), past the class check (which cannot look up that sub-processor's
    base class without torchvision)."""

    class Check(cls):
        def check_argument_for_proper_class(self, name, arg):
            return (
                NoVideo
                if isinstance(arg, NoVideo)
                else super().check_argument_for_proper_class(name, arg)
            )

    Check.__name__ = cls.__name__  # saved as the processor_class
    return Check(**{slot: NoVideo()}, **parts)


OMNI_SPECIAL = {
    "audio_token": "<|AUDIO|>",
    "audio_bos_token": "<|audio_bos|>",
    "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>",
    "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>",
    "vision_eos_token": "<|vision_eos|>",
}


def omni_parts():
    from transformers import Qwen2VLImageProcessorPil, WhisperFeatureExtractor

    tok = bpe(
        ["<|endoftext|>", "<|im_start|>", "<|im_end|>", *OMNI_SPECIAL.values()],
        extra=OMNI_SPECIAL,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
    )
    return tok, {
        "image_processor": Qwen2VLImageProcessorPil(),
        "feature_extractor": WhisperFeatureExtractor(feature_size=128),
        "tokenizer": tok,
        "chat_template": chat_template("<|audio_bos|><|AUDIO|><|audio_eos|>"),
    }


def omni_thinker(tok, audio: dict, text: dict) -> dict:
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in OMNI_SPECIAL.items()}
    return {
        "audio_config": {
            "d_model": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "num_mel_bins": 128,
            "output_dim": 32,
            **audio,
        },
        "vision_config": {
            "depth": 1,
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_heads": 2,
            "out_hidden_size": 32,
            "fullatt_block_indexes": [0],
        },
        "text_config": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": len(tok),
            "rope_parameters": {"rope_type": "default", "mrope_section": [2, 3, 3]},
            **text,
        },
        "audio_token_id": ids["audio_token"],
        "image_token_id": ids["image_token"],
        "video_token_id": ids["video_token"],
        "audio_start_token_id": ids["audio_bos_token"],
        "audio_end_token_id": ids["audio_eos_token"],
        "vision_start_token_id": ids["vision_bos_token"],
        "vision_end_token_id": ids["vision_eos_token"],
    }


@pytest.fixture(scope="module")
def tiny_qwen2_5_omni(tmp_path_factory):
    from transformers import (
        Qwen2_5OmniConfig,
        Qwen2_5OmniForConditionalGeneration,
        Qwen2_5OmniProcessor,
    )

    tok, parts = omni_parts()
    proc = built_without(Qwen2_5OmniProcessor, "video_processor", **parts)
    cfg = Qwen2_5OmniConfig(thinker_config=omni_thinker(tok, {}, {}), enable_audio_output=False)
    torch.manual_seed(0)
    model = Qwen2_5OmniForConditionalGeneration(cfg)
    path = save(tmp_path_factory.mktemp("tiny-qwen2.5-omni"), model, proc)
    torch.save({}, path / "spk_dict.pt")  # the speakers of the talker: a file it must find
    return path


@pytest.fixture(scope="module")
def tiny_qwen3_omni(tmp_path_factory):
    from transformers import (
        Qwen3OmniMoeConfig,
        Qwen3OmniMoeForConditionalGeneration,
        Qwen3OmniMoeProcessor,
    )

    tok, parts = omni_parts()
    proc = built_without(Qwen3OmniMoeProcessor, "video_processor", **parts)
    thinker = omni_thinker(
        tok,
        {"downsample_hidden_size": 8},
        {
            "head_dim": 16,
            "moe_intermediate_size": 16,
            "num_experts": 4,
            "num_experts_per_tok": 2,
            "rope_parameters": {
                "rope_type": "default",
                "mrope_section": [2, 3, 3],
                "mrope_interleaved": True,
            },
        },
    )
    thinker["vision_config"].update(
        {"deepstack_visual_indexes": [0], "num_position_embeddings": 64, "patch_size": 16}
    )
    thinker["vision_config"].pop("fullatt_block_indexes")
    thinker.pop("audio_end_token_id")
    cfg = Qwen3OmniMoeConfig(thinker_config=thinker, enable_audio_output=False)
    torch.manual_seed(0)
    model = Qwen3OmniMoeForConditionalGeneration(cfg)
    return save(tmp_path_factory.mktemp("tiny-qwen3-omni"), model, proc)


@pytest.mark.parametrize("family", ["tiny_qwen2_5_omni", "tiny_qwen3_omni"])
def test_omni_thinkers_hear_each_clip_without_torchvision(family, request):
    # before: AutoProcessor failed (its video processor needs torchvision): no request ran
    path = request.getfixturevalue(family)
    from transformers import WhisperFeatureExtractor

    fe = WhisperFeatureExtractor.from_pretrained(path)
    model = load_model(f"transformers:{path}?max_new_tokens=3&batch_size=2")
    model.load()
    assert model.lm is model.model.thinker and not getattr(model.model, "has_talker", False)
    with pytest.raises(ValueError, match="torchvision"):  # the stand-in refuses video
        model.processor.video_processor([np.zeros((2, 3, 8, 8))])
    if "qwen3" in family:  # Qwen3OmniMoeProcessor: padding=True, truncation=False (no 30 s)

        def expected(clips):
            arrays = [c.array for c in clips]
            kw = {"sampling_rate": 16000, "padding": True, "truncation": False}
            return list(fe(arrays, return_tensors="np", **kw)["input_features"])
    else:  # Qwen2_5OmniProcessor: padding="max_length" (30 s)

        def expected(clips):
            return [whisper_features(fe, c) for c in clips]

    assert_each_item_heard_its_clip(model, "audio_tower", expected, packed=True)
    assert_batch_equals_single(model, mixed_batch())


# ------------------------------------------------------------------------------- Phi-4


@pytest.fixture(scope="module")
def tiny_phi4_multimodal(tmp_path_factory):
    from transformers import (
        Phi4MultimodalConfig,
        Phi4MultimodalFeatureExtractor,
        Phi4MultimodalForCausalLM,
        Phi4MultimodalProcessor,
    )

    special = {"image_token": "<|endoftext10|>", "audio_token": "<|endoftext11|>"}
    tok = bpe(
        ["<|endoftext|>", "<|user|>", "<|assistant|>", "<|end|>", *special.values()],
        extra=special,
        eos_token="<|end|>",
        pad_token="<|endoftext|>",
    )
    template = (
        "{% for m in messages %}<|{{ m.role }}|>{% for c in m.content %}"
        "{% if c.type == 'audio' %}<|endoftext11|>{% else %}{{ c.text }}{% endif %}"
        "{% endfor %}<|end|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    # its image processor needs torchvision: the test builds it with a stand-in (no images)
    proc = built_without(
        Phi4MultimodalProcessor,
        "image_processor",
        audio_processor=Phi4MultimodalFeatureExtractor(),
        tokenizer=tok,
        chat_template=template,
    )
    ids = {k: tok.convert_tokens_to_ids(v) for k, v in special.items()}
    cfg = Phi4MultimodalConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        bos_token_id=0,
        pad_token_id=0,
        eos_token_id=tok.convert_tokens_to_ids("<|end|>"),
        max_position_embeddings=4096,
        original_max_position_embeddings=4096,
        vision_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "image_token_id": ids["image_token"],
        },
        audio_config={
            "hidden_size": 16,
            "intermediate_size": 32,
            "num_blocks": 1,
            "num_attention_heads": 2,
            "ext_pw_out_channel": 16,
            "depthwise_separable_out_channel": 16,
            "nemo_conv_channels": 16,
            "audio_token_id": ids["audio_token"],
        },
    )
    torch.manual_seed(0)
    model = Phi4MultimodalForCausalLM(cfg)
    return save(tmp_path_factory.mktemp("tiny-phi4-mm"), model, proc)


def test_phi4_multimodal_hears_each_clip_without_torchvision(tiny_phi4_multimodal):
    # before: AutoProcessor failed (its image processor needs torchvision): no request ran
    from transformers import Phi4MultimodalFeatureExtractor

    path = tiny_phi4_multimodal
    fe = Phi4MultimodalFeatureExtractor.from_pretrained(path)
    model = load_model(f"transformers:{path}?max_new_tokens=3&batch_size=2")

    def expected(clips):  # the extractor's defaults: the batch padded to its longest clip
        arrays = [c.array for c in clips]
        out = fe(arrays, sampling_rate=16000, return_tensors="np")["audio_input_features"]
        return list(out)

    assert_each_item_heard_its_clip(model, "audio_embed.encoder", expected)
    assert_batch_equals_single(model, mixed_batch())


# ------------------------------------------------------------------------------- refusals


@pytest.fixture(scope="module")
def tiny_gemma3n_config(tmp_path_factory):
    """A Gemma-3n checkpoint's config (nothing else is read before the refusal)."""
    from transformers import Gemma3nConfig

    cfg = Gemma3nConfig(
        text_config={
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "intermediate_size": 64,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "vocab_size": 512,
            "vocab_size_per_layer_input": 512,
            "laurel_rank": 4,
            "hidden_size_per_layer_input": 8,
            "num_kv_shared_layers": 0,
        },
        audio_config={
            "hidden_size": 16,
            "conf_num_hidden_layers": 1,
            "conf_num_attention_heads": 2,
        },
        vision_config={"hidden_size": 16},
    )
    path = tmp_path_factory.mktemp("tiny-gemma3n")
    cfg.save_pretrained(path)
    return path


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("timm") is not None, reason="timm is installed"
)
def test_gemma3n_is_refused_at_load_with_the_reason(tiny_gemma3n_config, tmp_path):
    # Gemma-3n's vision tower is a timm model; timm imports torchvision, which cannot load
    # beside the CPU torch: one clear error before any request, never N failed requests
    from test_runner import make_export, sqa_rows

    from koala.models.hf import UnsupportedModelError
    from koala.runner import run_model

    model = load_model(f"transformers:{tiny_gemma3n_config}")
    with pytest.raises(UnsupportedModelError, match=r"Gemma3n.*timm.*torchvision"):
        model.load()
    data = make_export(tmp_path / "export-gemma3n", {"sqa_click": sqa_rows(3)})
    out = tmp_path / "run"
    with pytest.raises(UnsupportedModelError, match="timm"):
        run_model(model, ["sqa_click"], out, data=str(data), progress=False)
    pred = out / "predictions.jsonl"
    assert not pred.exists() or pred.read_text() == ""  # no request was recorded


# ------------------------------------------------------------------------------- the runner


def test_runner_whisper_transcribes_asr_and_abstains_elsewhere(tiny_whisper, tmp_path):
    from test_runner import asr_rows, make_export, sqa_rows

    from koala.predictions import read_predictions
    from koala.runner import run_model

    data = make_export(
        tmp_path / "export-whisper", {"asr_zeroth": asr_rows(2), "sqa_click": sqa_rows(2)}
    )
    spec = f"transformers:{tiny_whisper}?max_new_tokens=3&batch_size=2"
    stats = run_model(
        load_model(spec),
        ["asr_zeroth", "sqa_click"],
        tmp_path / "run",
        data=str(data),
        progress=False,
        spec=spec,
    )
    assert not stats.config_errors
    done, _ = read_predictions(tmp_path / "run" / "predictions.jsonl")
    recs = list(done.values())
    asr = [r for r in recs if r["config"] == "asr_zeroth"]
    sqa = [r for r in recs if r["config"] == "sqa_click"]
    assert asr and all(r["status"] == "ok" and r["shared_answer"] for r in asr)
    assert all(r["truncated"] is False for r in asr)  # 0.25 s clips, 30 s limit
    assert sqa and all(r["status"] == "abstained" for r in sqa)


@pytest.mark.parametrize("family", ["tiny_voxtral", "tiny_qwen2_5_omni"])
def test_runner_runs_audio_lms_in_logit_mode(family, request, tmp_path):
    from test_runner import make_export, sqa_rows

    from koala.predictions import read_predictions
    from koala.runner import run_model

    path = request.getfixturevalue(family)
    data = make_export(tmp_path / f"export-{family}", {"sqa_click": sqa_rows(3)})
    spec = f"transformers:{path}?max_new_tokens=2&batch_size=2"
    stats = run_model(
        load_model(spec),
        ["sqa_click"],
        tmp_path / "run",
        data=str(data),
        progress=False,
        spec=spec,
    )
    assert not stats.config_errors
    done, _ = read_predictions(tmp_path / "run" / "predictions.jsonl")
    recs = list(done.values())
    assert recs and all(r["status"] == "ok" for r in recs)
    assert all(set(r["logprobs"]) == set(LABELS) for r in recs)

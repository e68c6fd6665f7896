"""``transformers``: a local Hugging Face audio language model (processor + model).

``PATH_OR_HUB_ID`` is a local directory or a Hub id (downloaded by transformers as usual;
offline, only the local cache). Loading (:meth:`HFAudioLM.load`, before the first request)
reads the config, picks the model class that the first auto class knowing the config maps it
to among ``AutoModelForMultimodalLM`` (transformers 5: Qwen2-Audio, Qwen2.5-Omni, Qwen3-Omni,
Voxtral, Gemma-3n, Phi-4-multimodal, GLM-ASR), ``AutoModelForSpeechSeq2Seq`` (Whisper),
``AutoModelForSeq2SeqLM`` (AudioFlamingo3) and ``AutoModelForCausalLM`` (``auto_class=...``
picks one), builds it once on the ``meta`` device (no memory, no weights) so that a package
the model needs and the machine lacks is one clear error before anything is read, then loads
``AutoProcessor`` and the weights. A model whose text comes from a sub-model ``thinker``
(Qwen2.5-Omni, Qwen3-Omni) answers with its thinker; its speech output (talker) is dropped.

What transformers cannot load here is refused at load time with the reason, never as N
failed requests: e.g. Gemma-3n, whose vision tower is a ``timm`` model (timm needs
torchvision, and the PyPI torchvision wheels cannot load beside a CPU-only torch: "operator
torchvision::nms does not exist"). A processor whose image or video sub-processor needs
torchvision (the Omni processors' video processor, Phi-4-multimodal's image processor) is
built from the real class with a stand-in for that sub-processor which refuses images and
videos; the audio and the text go through the real code.

Two kinds of model:

* **audio language models** (everything but the next kind): the input is built from the
  prompt and the audio (``input=...``, below); answers are greedy generations; label
  log-probabilities come from the next-token logits (logit mode);
* **speech encoder-decoders** (a model whose main input is ``input_features`` and that is an
  encoder-decoder: Whisper): ASR only. The prompt is not an input of such a model, so it is
  ignored (``ignores_prompt``: the runner asks once per clip) and every task but ``asr`` is
  abstained (``tasks = {"asr"}``). Whisper is told ``language`` (default ``ko``) and ``task``
  (``transcribe``, the only one accepted: Whisper's ``translate`` writes English, while
  KoALa-Bench's ST is English speech to Korean text, which Whisper cannot do). The features
  are Whisper's own: every clip padded or cut to 30 s by its feature extractor.

The input of an audio language model (``input=...``):

* ``input=chat`` (default): the processor's chat template over one user turn whose content
  is the audio (when there is one) and the prompt, with the generation prompt added (falls
  back to ``published`` when the processor has no chat template). A processor that takes no
  ``audio`` argument (Voxtral: its audio goes through ``mistral_common``'s chat request) gets
  the clip as base64 WAV inside the conversation and builds the input itself;
* ``input=published``: the published logit protocol's input, "input = audio + prompt +
  "\\n답: "": no template, no system message, no generation prompt; the text is exactly the
  prompt (with the cue ``"\\n답: "`` appended to a multiple-choice prompt that lacks it),
  preceded, when there is audio, by the processor's audio markers (``audio_bos_token +
  audio_token + audio_eos_token`` when the processor defines them, else ``audio_token``), which
  is how the processor places the audio features in the token sequence. A text-only request
  is the prompt alone. (Voxtral places audio only through its chat request: refused.)

(``template=chat|raw``, the former name of the option, is still accepted: ``raw`` is
``published``.)

The audio features are padded as the processor's feature extractor wants them (its own
defaults: e.g. ``padding="max_length"`` to 30 s for Whisper-style extractors); only the text
is padded to the longest prompt of a batch (``text_kwargs={"padding": True}``).

Generation is greedy (``max_new_tokens``, default 256); the answer is the generated tokens
only, for decoder-only and encoder-decoder models alike (the last ``len(logits)`` tokens of
the output: an encoder-decoder's ``generate`` returns the decoder's tokens, not the input
followed by them). Label log-probabilities follow the published logit-based rule: "input =
audio + prompt + "\\n답: "; the scores are the next-token log-probabilities of each choice label
(first single-token form among ``L``, ``(L)``, `` (L)``, `` L``)". The runner's multiple-choice
prompts already end with the cue ``"\\n답: "``; :meth:`HFAudioLM.choice_logprobs` appends it
only when the prompt does not end with it. The next token is the one after the input text
(for ``chat``: after the assistant header, the first token the model would write; for
``published``: right after ``"답: "``, as published). With :meth:`HFAudioLM.answer` the
log-probabilities come from the raw logits of the first generation step (the same forward
pass). A label with no single-token form is missing from the result (it counts as ``-inf``).
The full vocabulary is scored here, so unlike the ``openai`` adapter (top-k only, forms
summed) no label is missing for want of rank.

Input limit: a Whisper-style feature extractor pads or cuts every clip to ``n_samples``
(``chunk_length`` = 30 s), so the model never hears what follows. The adapter reports that
limit as ``max_audio_s`` (``n_samples / sampling_rate``, else ``chunk_length``, once the
processor is loaded) and the runner flags longer clips ``"truncated": true``; the option
``max_audio_s=SECONDS`` overrides it (``0``: no limit).

Batches (``batch_size``) are left-padded; requests with audio and text-only requests go to
the model in separate sub-batches (several processors take one clip per text). Options:
``device`` (cpu), ``dtype`` (float32; ``auto``, ``bfloat16``, ``float16``),
``max_new_tokens``, ``template``, ``batch_size``, ``system`` (a system message; ``chat``
only), ``auto_class``, ``trust_remote_code`` (false), ``input`` (``chat`` or ``published``),
``language`` and ``task`` (speech encoder-decoders only).
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Sequence
from typing import Any

from koala.constants import label_forms
from koala.models import Abstain, Answer, Audio, ModelBase, Request, resampled

__all__ = ["ANSWER_CUE", "HFAudioLM", "UnsupportedModelError", "label_token_ids"]

ANSWER_CUE = "\n답: "
INPUTS = ("chat", "published")
_TEMPLATE_ALIASES = {"chat": "chat", "raw": "published"}
_AUTO_CLASSES = (
    "AutoModelForMultimodalLM",
    "AutoModelForSpeechSeq2Seq",
    "AutoModelForSeq2SeqLM",
    "AutoModelForCausalLM",
)
_TORCHVISION_NOTE = (
    "torchvision is not importable here (the PyPI wheels are built for CUDA torch and fail "
    "beside a CPU-only torch: 'operator torchvision::nms does not exist')"
)


class UnsupportedModelError(RuntimeError):
    """A checkpoint the adapter cannot run on this machine (raised at load time)."""


def label_token_ids(tokenizer: Any, labels: Sequence[str]) -> dict[str, int]:
    """For each label, the id of its first single-token form among ``L``, ``(L)``, ``" (L)"``,
    ``" L"``; labels with no single-token form are left out."""
    out: dict[str, int] = {}
    for label in labels:
        for form in label_forms(label):
            ids = tokenizer.encode(form, add_special_tokens=False)
            if len(ids) == 1:
                out[label] = int(ids[0])
                break
    return out


def with_cue(prompt: str) -> str:
    """``prompt`` ending with the answer cue ``"\\n답: "`` (added when absent)."""
    return prompt if prompt.rstrip().endswith("답:") else prompt + ANSWER_CUE


def _torchvision_available() -> bool:
    from transformers.utils import is_torchvision_available

    return bool(is_torchvision_available())


_NO_VISION: dict[str, type] = {}


def _no_vision_class() -> type:
    """The class of the stand-ins for image and video sub-processors that cannot be built
    here (they need torchvision): the audio and text of a request never use them; an image
    or a video is refused with the reason. (A ``PushToHubMixin`` so that the processor's
    ``to_dict`` serialises it, as ``{}``; made on first use: transformers loads lazily.)"""
    if "cls" not in _NO_VISION:
        from transformers.utils import PushToHubMixin

        class NoVisionProcessor(PushToHubMixin):
            _auto_class = None

            def __init__(self, what: str) -> None:
                self.what = what

            def __call__(self, *args: Any, **kwargs: Any) -> Any:
                raise ValueError(f"no {self.what} here: {_TORCHVISION_NOTE}")

            def to_dict(self) -> dict[str, Any]:
                return {}

            def __repr__(self) -> str:
                return f"NoVisionProcessor({self.what})"

        _NO_VISION["cls"] = NoVisionProcessor
    return _NO_VISION["cls"]


def _processor_without_vision(processor_cls: type) -> type:
    """``processor_cls`` accepting :func:`_no_vision_class` stand-ins for its image/video
    slots (the class check of ``ProcessorMixin`` looks the base class up in transformers,
    which has only a placeholder for it without torchvision)."""
    stand_in = _no_vision_class()

    class WithoutVision(processor_cls):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if isinstance(argument, stand_in):
                return stand_in
            return super().check_argument_for_proper_class(argument_name, argument)

    WithoutVision.__name__ = WithoutVision.__qualname__ = processor_cls.__name__
    return WithoutVision


def load_processor(path: str, config: Any, trust_remote_code: bool = False) -> Any:
    """``AutoProcessor.from_pretrained(path)``; when that fails and torchvision is missing,
    the processor's own class with every image/video sub-processor that cannot load replaced
    by a stand-in refusing images and videos (:func:`_no_vision_class`)."""
    import transformers

    try:
        return transformers.AutoProcessor.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as first:
        if _torchvision_available():
            raise
        from transformers.models.auto.processing_auto import PROCESSOR_MAPPING

        try:
            cls = PROCESSOR_MAPPING[type(config)]
        except KeyError:
            raise first from None
        if not isinstance(cls, type) or not hasattr(cls, "get_attributes"):
            raise first from None
        autos = {
            "image_processor": transformers.AutoImageProcessor,
            "video_processor": getattr(transformers, "AutoVideoProcessor", None),
        }
        stand_in = _no_vision_class()
        given: dict[str, Any] = {}
        for attr in cls.get_attributes():
            if attr not in autos:
                continue
            auto = autos[attr]
            try:
                if auto is None:
                    raise ImportError(attr)
                given[attr] = auto.from_pretrained(path)
            except Exception:  # needs torchvision (or is absent): stand in for it
                given[attr] = stand_in(attr.replace("_processor", "s"))
        if not any(isinstance(v, stand_in) for v in given.values()):
            raise first from None
        try:
            return _processor_without_vision(cls).from_pretrained(
                path, trust_remote_code=trust_remote_code, **given
            )
        except Exception as exc:
            raise UnsupportedModelError(
                f"transformers:{path}: cannot build its processor {cls.__name__}: {exc} "
                f"(AutoProcessor: {first}); {_TORCHVISION_NOTE}"
            ) from exc


def _model_class(config: Any, names: Sequence[str]) -> tuple[str, Any] | None:
    """The first ``(auto class name, model class)`` among ``names`` whose mapping knows the
    config's class, or ``None``."""
    import transformers

    for name in names:
        auto = getattr(transformers, name, None)
        mapping = getattr(auto, "_model_mapping", None)
        if mapping is None:
            continue
        try:
            if type(config) in mapping:
                return name, mapping[type(config)]
        except Exception:  # a lazily imported class that does not import here
            continue
    return None


def _check_buildable(path: str, model_cls: Any, config: Any) -> None:
    """Build the model on the ``meta`` device (no memory, no weights read): a package it
    needs and this machine lacks fails here, once, with the reason."""
    import torch

    try:
        with torch.device("meta"):
            model_cls._from_config(config)
    except ImportError as exc:
        hint = ""
        text = str(exc)
        if ("timm" in text or "torchvision" in text) and not _torchvision_available():
            hint = f" (timm needs torchvision; {_TORCHVISION_NOTE})"
        raise UnsupportedModelError(
            f"transformers:{path}: {model_cls.__name__} cannot be built on this machine: "
            f"{' '.join(text.split())}{hint}"
        ) from exc
    except Exception:  # anything else shows up (with its own message) in the real load
        return


def _takes_audio(processor: Any) -> bool:
    """Whether ``processor(...)`` takes an ``audio`` argument (Voxtral's does not: its audio
    goes through the chat request)."""
    try:
        params = inspect.signature(type(processor).__call__).parameters
    except (TypeError, ValueError):
        return True
    return "audio" in params or "audios" in params


class HFAudioLM(ModelBase):
    """A transformers audio LM or speech encoder-decoder; see the module docstring."""

    supports_logprobs = True

    def __init__(
        self,
        model: str,
        device: str = "cpu",
        dtype: str = "float32",
        max_new_tokens: int = 256,
        input: str = "chat",
        batch_size: int = 1,
        system: str | None = None,
        auto_class: str | None = None,
        trust_remote_code: bool = False,
        template: str | None = None,
        language: str | None = None,
        task: str | None = None,
    ) -> None:
        if template is not None:  # the former name of ``input``
            if template not in _TEMPLATE_ALIASES:
                raise ValueError(f"transformers: template={template!r}; use input=chat|published")
            input = _TEMPLATE_ALIASES[template]
        if input not in INPUTS:
            raise ValueError(f"transformers: input={input!r}; use 'chat' or 'published'")
        if task not in (None, "transcribe"):
            raise ValueError(
                f"transformers: task={task!r}: only task=transcribe (ASR) is accepted. Whisper's "
                "'translate' writes English from speech in another language, while KoALa-Bench's "
                "ST is English speech to Korean text, which Whisper cannot do"
            )
        self.path = str(model)
        self.name = f"transformers:{model}"
        self.device = device
        self.dtype = dtype
        self.max_new_tokens = int(max_new_tokens)
        self.input = input
        self.batch_size = max(1, int(batch_size))
        self.system = system
        self.auto_class = auto_class
        self.trust_remote_code = bool(trust_remote_code)
        self.language = language
        self.task = task
        self.max_concurrency = 1  # one forward pass at a time; batch with batch_size
        self.processor: Any = None
        self.model: Any = None  # what was loaded
        self.lm: Any = None  # what generates text (the model, or an Omni model's thinker)
        self.speech_seq2seq = False  # Whisper-style: ASR only, the prompt is no input
        self.audio_in_chat = False  # the processor takes audio only inside a chat request
        self._lock = threading.Lock()
        self._label_ids: dict[tuple[str, ...], dict[str, int]] = {}
        self._max_audio_s: float | None = None  # set by the max_audio_s option

    @property
    def max_audio_s(self) -> float | None:
        """The longest clip the model hears, in seconds: the ``max_audio_s`` option (0: no
        limit), else what the loaded feature extractor keeps (``n_samples / sampling_rate``,
        else ``chunk_length``), else ``None`` (unknown)."""
        if self._max_audio_s is not None:
            return self._max_audio_s or None
        fe = self.feature_extractor
        n, sr = getattr(fe, "n_samples", None), getattr(fe, "sampling_rate", None)
        if isinstance(n, int) and isinstance(sr, int) and n > 0 and sr > 0:
            return n / sr
        chunk = getattr(fe, "chunk_length", None)
        return float(chunk) if isinstance(chunk, int | float) and chunk > 0 else None

    @max_audio_s.setter
    def max_audio_s(self, value: float | None) -> None:
        self._max_audio_s = value

    # ------------------------------------------------------------------ loading
    def open(self, concurrency: int = 1) -> None:
        self.load()

    def load(self) -> None:
        """Load config, processor and model (once); raises :class:`UnsupportedModelError`
        with the reason for a checkpoint that cannot run here."""
        with self._lock:
            if self.model is not None:
                return
            import torch
            import transformers

            config = transformers.AutoConfig.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
            names = (self.auto_class,) if self.auto_class else _AUTO_CLASSES
            found = _model_class(config, names)
            if found is not None:
                _check_buildable(self.path, found[1], config)
            processor = load_processor(self.path, config, self.trust_remote_code)
            dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
            model = None
            errors = []
            if found is not None:
                model = found[1].from_pretrained(
                    self.path, dtype=dtype, trust_remote_code=self.trust_remote_code
                )
            else:  # remote code, or a config no auto class maps: ask each auto class
                for cls_name in names:
                    cls = getattr(transformers, cls_name, None)
                    if cls is None:
                        continue
                    try:
                        model = cls.from_pretrained(
                            self.path, dtype=dtype, trust_remote_code=self.trust_remote_code
                        )
                        break
                    except ValueError as exc:  # the class does not know this config
                        errors.append(f"{cls_name}: {exc}")
            if model is None:
                raise ValueError(
                    f"transformers:{self.path}: no auto class loads it ({'; '.join(errors)}); "
                    "pass auto_class=..."
                )
            self._setup(processor, model)

    def _setup(self, processor: Any, model: Any) -> None:
        """Settle how requests go to this processor and model (see the module docstring)."""
        if getattr(model, "thinker", None) is not None:  # Qwen2.5-Omni, Qwen3-Omni
            if hasattr(model, "disable_talker"):
                model.disable_talker()  # text answers only: drop the speech output
            lm = model.thinker
        else:
            lm = model
        cfg = lm.config
        self.speech_seq2seq = bool(getattr(cfg, "is_encoder_decoder", False)) and (
            getattr(lm, "main_input_name", "input_ids") == "input_features"
        )
        self.audio_in_chat = (
            not self.speech_seq2seq
            and hasattr(processor, "feature_extractor")
            and not _takes_audio(processor)
        )
        if self.speech_seq2seq:
            self.tasks = frozenset({"asr"})
            self.ignores_prompt = True
            self.supports_logprobs = False
            gen = getattr(lm, "generation_config", None)
            if getattr(gen, "lang_to_id", None) is None and (self.language or self.task):
                raise ValueError(
                    f"transformers:{self.path}: language=/task= are options of Whisper-style "
                    "models (a generation config with lang_to_id); this one has none"
                )
        elif self.language is not None or self.task is not None:
            raise ValueError(
                f"transformers:{self.path}: language=/task= are options of speech "
                "encoder-decoders (Whisper); this model reads the prompt instead"
            )
        if self.audio_in_chat and self.input == "published":
            raise ValueError(
                f"transformers:{self.path}: input=published is not possible with "
                f"{type(processor).__name__}: it places audio only through its chat request"
            )
        tok = getattr(processor, "tokenizer", processor)
        if hasattr(tok, "padding_side"):
            tok.padding_side = "left"
        if getattr(tok, "pad_token", None) is None and getattr(tok, "eos_token", None):
            tok.pad_token = tok.eos_token
        model.to(self.device).eval()
        self.processor = processor
        self.lm = lm
        self.model = model

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    @property
    def feature_extractor(self) -> Any:
        """The processor's audio feature extractor (``audio_processor`` on Phi-4)."""
        proc = self.processor
        return getattr(proc, "feature_extractor", None) or getattr(proc, "audio_processor", None)

    @property
    def sampling_rate(self) -> int:
        return int(getattr(self.feature_extractor, "sampling_rate", None) or 16000)

    # ------------------------------------------------------------------ inputs
    def _messages(self, audio_part: dict[str, Any] | None, prompt: str) -> list[dict[str, Any]]:
        content: list[dict[str, Any]] = []
        if audio_part is not None:
            content.append(audio_part)
        content.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        messages.append({"role": "user", "content": content})
        return messages

    def _text(self, audio: Audio | None, prompt: str) -> str:
        proc = self.processor
        if self.input == "published" or getattr(proc, "chat_template", None) is None:
            if audio is None:
                return prompt
            token = getattr(proc, "audio_token", "")
            bos = getattr(proc, "audio_bos_token", "") or ""
            eos = getattr(proc, "audio_eos_token", "") or ""
            return f"{bos}{token}{eos}{prompt}"
        part = {"type": "audio", "audio_url": "clip.wav"} if audio is not None else None
        messages = self._messages(part, prompt)
        return proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _prompt(self, r: Request, cue: bool) -> str:
        published = self.input == "published"
        return with_cue(r.prompt) if cue or (published and r.labels) else r.prompt

    def _inputs(self, requests: Sequence[Request], cue: bool) -> Any:
        """Model inputs for ``requests`` (all with audio, or all without); the cue is appended
        to every prompt with ``cue``, and under ``input=published`` to every multiple-choice
        prompt (the published input)."""
        sr = self.sampling_rate
        if self.speech_seq2seq:
            fe = self.feature_extractor
            # the extractor's own padding and truncation (Whisper: every clip to 30 s)
            arrays = [resampled(r.audio, sr) for r in requests if r.audio is not None]
            feats = fe(arrays, sampling_rate=sr, return_tensors="pt", return_attention_mask=True)
            return feats.to(self.device)
        if self.audio_in_chat:
            convs = []
            for r in requests:
                part = None
                if r.audio is not None:
                    wav = r.audio.wav_base64(sr).decode("ascii")
                    part = {"type": "audio", "base64": wav}
                convs.append(self._messages(part, self._prompt(r, cue)))
            out = self.processor.apply_chat_template(
                convs, tokenize=True, return_dict=True, return_tensors="pt"
            )
            return out.to(self.device)
        texts = [self._text(r.audio, self._prompt(r, cue)) for r in requests]
        audios = [resampled(r.audio, sr) for r in requests if r.audio is not None]
        # text padded to the longest prompt; the audio as the feature extractor pads it
        kwargs: dict[str, Any] = {
            "text": texts,
            "return_tensors": "pt",
            "text_kwargs": {"padding": True},
        }
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = sr
        out = self.processor(**kwargs)
        if "token_type_ids" in out and not self._takes("token_type_ids"):
            del out["token_type_ids"]  # a fast tokenizer of transformers 4.x adds them
        return out.to(self.device)

    def _takes(self, name: str) -> bool:
        try:
            params = inspect.signature(self.lm.forward).parameters
        except (TypeError, ValueError):
            return True
        return name in params

    def _generate_kwargs(self) -> dict[str, Any]:
        if not self.speech_seq2seq:
            return {}
        gen = getattr(self.lm, "generation_config", None)
        if getattr(gen, "lang_to_id", None) is None:
            return {}
        return {"language": self.language or "ko", "task": self.task or "transcribe"}

    def _label_logprobs(self, logits: Any, labels: Sequence[str]) -> dict[str, float]:
        import torch

        key = tuple(labels)
        if key not in self._label_ids:
            self._label_ids[key] = label_token_ids(self.tokenizer, labels)
        ids = self._label_ids[key]
        lp = torch.log_softmax(logits.float(), dim=-1)
        return {label: float(lp[i]) for label, i in ids.items()}

    def _refusal(self, request: Request) -> Abstain | None:
        if not self.speech_seq2seq:
            return None
        if request.labels:
            return Abstain(f"{self.name} is an ASR model (Whisper-style): no choices")
        if request.audio is None:
            return Abstain(f"{self.name} is an ASR model (Whisper-style): no audio to transcribe")
        return None

    # ------------------------------------------------------------------ protocol
    def answer_batch(self, requests: Sequence[Request]) -> list[Answer | BaseException]:
        """Greedy generation for each request; for requests with labels, label log-
        probabilities from the first step's raw logits. Requests with and without audio go
        in separate sub-batches, in order."""
        self.load()
        out: list[Answer | BaseException | None] = [None] * len(requests)
        groups: dict[bool, list[int]] = {True: [], False: []}
        for k, r in enumerate(requests):
            refusal = self._refusal(r)
            if refusal is not None:
                out[k] = refusal
            else:
                groups[r.audio is not None].append(k)
        for idx in groups.values():
            if idx:
                for k, ans in zip(idx, self._answer_group([requests[k] for k in idx]), strict=True):
                    out[k] = ans
        return [a for a in out if a is not None]

    def _answer_group(self, requests: Sequence[Request]) -> list[Answer | BaseException]:
        import torch

        try:
            inputs = self._inputs(requests, cue=False)
            with torch.no_grad():
                out = self.lm.generate(
                    **inputs,
                    **self._generate_kwargs(),
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    return_dict_in_generate=True,
                    output_logits=True,
                )
        except Exception as exc:  # a bad batch: fall back to one by one to isolate it
            if len(requests) == 1:
                return [exc]
            return [a for r in requests for a in self._answer_group([r])]
        # the generated tokens are the last len(logits) of the output, whether the output is
        # the input followed by them (decoder-only) or the decoder's tokens (encoder-decoder)
        new_tokens = out.sequences[:, out.sequences.shape[1] - len(out.logits) :]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        answers: list[Answer | BaseException] = []
        for k, r in enumerate(requests):
            lp = self._label_logprobs(out.logits[0][k], r.labels) if r.labels else None
            answers.append(Answer(texts[k].strip(), lp))
        return answers

    def answer(self, request: Request) -> Answer:
        result = self.answer_batch([request])[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def generate(self, audio: Audio | None, prompt: str) -> str:
        return self.answer(Request(audio, prompt)).text

    def choice_logprobs(
        self, audio: Audio | None, prompt: str, labels: Sequence[str]
    ) -> dict[str, float]:
        """Next-token log-probabilities of ``labels`` after the input built from ``prompt``
        (with the cue ``"\\n답: "`` appended when missing)."""
        import torch

        self.load()
        request = Request(audio, prompt, tuple(labels))
        refusal = self._refusal(request)
        if refusal is not None:
            raise refusal
        inputs = self._inputs([request], cue=True)
        with torch.no_grad():
            if getattr(self.lm.config, "is_encoder_decoder", False):
                # the first decoder step (after the decoder start token), as generate() does it
                out = self.lm.generate(
                    **inputs,
                    max_new_tokens=1,
                    do_sample=False,
                    return_dict_in_generate=True,
                    output_logits=True,
                )
                return self._label_logprobs(out.logits[0][0], labels)
            logits = self.lm(**inputs).logits
        return self._label_logprobs(logits[0, -1], labels)

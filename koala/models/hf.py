"""``transformers``: a local Hugging Face audio language model (processor + model).

Loads ``AutoProcessor`` and the first auto class that knows the checkpoint among
``AutoModelForMultimodalLM`` (transformers 5; Qwen2-Audio and kin), ``AutoModelForSeq2SeqLM``
and ``AutoModelForCausalLM`` (``auto_class=...`` picks one). ``PATH_OR_HUB_ID`` is a local
directory or a Hub id (downloaded by transformers as usual; offline, only the local cache).

The input (``input=...``):

* ``input=chat`` (default): the processor's chat template over one user turn whose content
  is the audio (when there is one) and the prompt, with the generation prompt added (falls
  back to ``published`` when the processor has no chat template);
* ``input=published``: the published logit protocol's input, "input = audio + prompt +
  "\\n답: "": no template, no system message, no generation prompt; the text is exactly the
  prompt (with the cue ``"\\n답: "`` appended to a multiple-choice prompt that lacks it),
  preceded, when there is audio, by the processor's audio markers (``audio_bos_token +
  audio_token + audio_eos_token`` when the processor defines them, else ``audio_token``), which
  is how the processor places the audio features in the token sequence. A text-only request
  is the prompt alone.

(``template=chat|raw``, the former name of the option, is still accepted: ``raw`` is
``published``.)

Generation is greedy (``max_new_tokens``, default 256); the answer is the generated tokens
only, for decoder-only and encoder-decoder (``AutoModelForSeq2SeqLM``) models alike (the
last ``len(logits)`` tokens of the output: an encoder-decoder's ``generate`` returns the
decoder's tokens, not the input followed by them). Label log-probabilities follow the
published logit-based rule: "input = audio + prompt + "\\n답: "; the scores are the next-token
log-probabilities of each choice label (first single-token form among ``L``, ``(L)``,
`` (L)``, `` L``)". The runner's multiple-choice prompts already end with the cue
``"\\n답: "``; :meth:`HFAudioLM.choice_logprobs` appends it only when the prompt does not end
with it. The next token is the one after the input text (for ``chat``: after the assistant
header, the first token the model would write; for ``published``: right after ``"답: "``, as
published). With :meth:`HFAudioLM.answer` the log-probabilities come from the raw logits of the
first generation step (the same forward pass). A label with no single-token form is missing
from the result (it counts as ``-inf``). The full vocabulary is scored here, so unlike the
``openai`` adapter (top-k only, forms summed) no label is missing for want of rank.

Input limit: a Whisper-style feature extractor (Qwen2-Audio's) pads or cuts every clip to
``n_samples`` (``chunk_length`` = 30 s), so the model never hears what follows. The adapter
reports that limit as ``max_audio_s`` (``n_samples / sampling_rate``, else ``chunk_length``,
once the processor is loaded) and the runner flags longer clips ``"truncated": true``; the
option ``max_audio_s=SECONDS`` overrides it (``0``: no limit).

Batches (``batch_size``) are left-padded. Options: ``device`` (cpu), ``dtype`` (float32;
``auto``, ``bfloat16``, ``float16``), ``max_new_tokens``, ``template``, ``batch_size``,
``system`` (a system message; ``chat`` only), ``auto_class``, ``trust_remote_code`` (false),
``input`` (``chat`` or ``published``).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from koala.constants import label_forms
from koala.models import Answer, Audio, ModelBase, Request, resampled

__all__ = ["ANSWER_CUE", "HFAudioLM", "label_token_ids"]

ANSWER_CUE = "\n답: "
INPUTS = ("chat", "published")
_TEMPLATE_ALIASES = {"chat": "chat", "raw": "published"}
_AUTO_CLASSES = ("AutoModelForMultimodalLM", "AutoModelForSeq2SeqLM", "AutoModelForCausalLM")


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


class HFAudioLM(ModelBase):
    """A transformers audio LM; see the module docstring."""

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
    ) -> None:
        if template is not None:  # the former name of ``input``
            if template not in _TEMPLATE_ALIASES:
                raise ValueError(f"transformers: template={template!r}; use input=chat|published")
            input = _TEMPLATE_ALIASES[template]
        if input not in INPUTS:
            raise ValueError(f"transformers: input={input!r}; use 'chat' or 'published'")
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
        self.max_concurrency = 1  # one forward pass at a time; batch with batch_size
        self.processor: Any = None
        self.model: Any = None
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
        fe = getattr(self.processor, "feature_extractor", None)
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
        with self._lock:
            if self.model is not None:
                return
            import torch
            import transformers

            self.processor = transformers.AutoProcessor.from_pretrained(
                self.path, trust_remote_code=self.trust_remote_code
            )
            tok = self.tokenizer
            tok.padding_side = "left"
            if tok.pad_token is None:
                tok.pad_token = tok.eos_token
            dtype = "auto" if self.dtype == "auto" else getattr(torch, self.dtype)
            names = (self.auto_class,) if self.auto_class else _AUTO_CLASSES
            errors = []
            for cls_name in names:
                cls = getattr(transformers, cls_name, None)
                if cls is None:
                    continue
                try:
                    self.model = cls.from_pretrained(
                        self.path, dtype=dtype, trust_remote_code=self.trust_remote_code
                    )
                    break
                except ValueError as exc:  # the class does not know this config
                    errors.append(f"{cls_name}: {exc}")
            if self.model is None:
                raise ValueError(
                    f"transformers:{self.path}: no auto class loads it ({'; '.join(errors)}); "
                    "pass auto_class=..."
                )
            self.model.to(self.device).eval()

    @property
    def tokenizer(self) -> Any:
        return getattr(self.processor, "tokenizer", self.processor)

    # ------------------------------------------------------------------ inputs
    def _text(self, audio: Audio | None, prompt: str) -> str:
        proc = self.processor
        if self.input == "published" or getattr(proc, "chat_template", None) is None:
            if audio is None:
                return prompt
            token = getattr(proc, "audio_token", "")
            bos = getattr(proc, "audio_bos_token", "") or ""
            eos = getattr(proc, "audio_eos_token", "") or ""
            return f"{bos}{token}{eos}{prompt}"
        content: list[dict[str, Any]] = []
        if audio is not None:
            content.append({"type": "audio", "audio_url": "clip.wav"})
        content.append({"type": "text", "text": prompt})
        messages: list[dict[str, Any]] = []
        if self.system:
            messages.append({"role": "system", "content": [{"type": "text", "text": self.system}]})
        messages.append({"role": "user", "content": content})
        return proc.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _inputs(self, requests: Sequence[Request], cue: bool) -> Any:
        """Processor inputs; the cue is appended to every prompt with ``cue``, and under
        ``input=published`` to every multiple-choice prompt (the published input)."""
        published = self.input == "published"
        texts = [
            self._text(r.audio, with_cue(r.prompt) if cue or (published and r.labels) else r.prompt)
            for r in requests
        ]
        sr = getattr(getattr(self.processor, "feature_extractor", None), "sampling_rate", 16000)
        audios = [resampled(r.audio, sr) for r in requests if r.audio is not None]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True}
        if audios:
            kwargs["audio"] = audios
            kwargs["sampling_rate"] = sr
        return self.processor(**kwargs).to(self.device)

    def _label_logprobs(self, logits: Any, labels: Sequence[str]) -> dict[str, float]:
        import torch

        key = tuple(labels)
        if key not in self._label_ids:
            self._label_ids[key] = label_token_ids(self.tokenizer, labels)
        ids = self._label_ids[key]
        lp = torch.log_softmax(logits.float(), dim=-1)
        return {label: float(lp[i]) for label, i in ids.items()}

    # ------------------------------------------------------------------ protocol
    def answer_batch(self, requests: Sequence[Request]) -> list[Answer | BaseException]:
        """Greedy generation for each request; for requests with labels, label log-
        probabilities from the first step's raw logits."""
        import torch

        self.load()
        if not requests:
            return []
        try:
            inputs = self._inputs(requests, cue=False)
            with torch.no_grad():
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=self.max_new_tokens,
                    do_sample=False,
                    return_dict_in_generate=True,
                    output_logits=True,
                )
        except Exception as exc:  # a bad batch: fall back to one by one to isolate it
            if len(requests) == 1:
                return [exc]
            return [a for r in requests for a in self.answer_batch([r])]
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
        inputs = self._inputs([Request(audio, prompt, tuple(labels))], cue=True)
        with torch.no_grad():
            if getattr(self.model.config, "is_encoder_decoder", False):
                # the first decoder step (after the decoder start token), as generate() does it
                out = self.model.generate(
                    **inputs,
                    max_new_tokens=1,
                    do_sample=False,
                    return_dict_in_generate=True,
                    output_logits=True,
                )
                return self._label_logprobs(out.logits[0][0], labels)
            logits = self.model(**inputs).logits
        return self._label_logprobs(logits[0, -1], labels)

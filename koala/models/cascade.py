"""Cascades: speech recognition first, then an answerer that reads the transcript.

Two offline baselines live here:

* ``cascade-llm`` (:class:`LLMCascade`): Whisper, then a text LLM (llama.cpp); it answers
  every task (see its section below);
* ``cascade`` (:class:`Cascade`): Vosk, then the MCTest sliding-window answerer over Korean
  tokens; no model beyond the Vosk wheel, multiple choice only.

``cascade-llm``: Whisper -> LLM
-------------------------------

The clip is transcribed once by :class:`~koala.models.whisper.WhisperASR` (Korean; English
for ST, whose speech is English), then the LLM (:class:`~koala.models.llm.LlamaCpp`, by
default Qwen2.5-Coder-1.5B-Instruct Q4_K_M) reads the transcript in place of the speech: its
one user message is ``"[음성 받아쓰기]\n" + transcript + "\n\n" + prompt``, the benchmark's
own prompt unchanged (just the prompt when there is no speech, as in SCA-QA's text-only
condition, where the silent clip gives no transcript). Per task (the request's ``task``):

* ASR: the transcript itself (no LLM call);
* ST: the LLM as the translation stage: ``ST_INSTRUCTION`` and the English transcript, its
  reply (at most ``st_max_tokens`` tokens) the Korean translation. The benchmark's ST prompts
  ask the same in Korean, which Qwen2.5-Coder-1.5B does not follow (it repeats the English:
  2 of 3 mini segments), as it follows the English instruction;
* SQA, PA-QA, SCA-QA (a request with choice labels): the LLM's choice. Its log-probability of
  each shown label as the start of its reply (:meth:`LLMCascade.choose`) is recorded for the
  logit-based score, and the answer is ``"(L)"`` for the most likely label (ties: the first
  shown). The probability of a label is that of the ``top_logprobs`` most likely first tokens
  that spell it (:func:`label_of_token`: ``"(A"``, ``"A"``, ``" A"`` ...) added up, plus,
  when an opening bracket alone is among them (Qwen writes ``"("`` and then ``"2"``: its
  digits are tokens of their own), the bracket's probability times that of the label as the
  next token after it (a second call that continues the reply after the bracket; the
  context is reused, so it costs a token or two). So SCA-QA's
  three conditions are what the paper asks of any model: the question alone, with the
  counterfactual passage's transcript, with the original passage's;
* SIF and anything else: the LLM's reply (at most ``max_tokens`` tokens).

A label that is not among the ``top_logprobs`` most likely first tokens has log-probability
``-inf``; when no shown label is among them the cascade abstains instead of guessing.
Transcripts are cached per clip by the recogniser and LLM answers per request body, so the
PA-QA questions of one passage share one transcript, and giving the same recogniser to
``whisper`` and the cascade (as ``koala-bench demo`` does) decodes each clip once for both.

Options (``cascade-llm?KEY=VALUE``): ``asr`` (a Whisper model: ``base``, the packaged one, a
CTranslate2 folder or a faster-whisper name), ``llm`` (a key of
:data:`koala.model_files.MODELS` or a ``.gguf`` path), ``threads``, ``n_ctx`` (4096),
``max_tokens`` (256), ``st_max_tokens`` (128), ``top_logprobs`` (20), ``beam_size`` (5).

``cascade``: Vosk -> MCTest sliding window
------------------------------------------

A transparent, offline baseline. The speech is transcribed by :mod:`koala.models.vosk_ko`;
multiple-choice questions are then answered by the lexical baseline of MCTest (Richardson,
Burges and Renshaw, "MCTest: A Challenge Dataset for the Open-Domain Machine Comprehension of
Text", EMNLP 2013), Algorithm 1 (sliding window, SW) and, with ``distance=true`` (default),
Algorithm 2 (SW+D):

    "C(w) := sum_i I(P_i = w);  IC(w) := log(1 + 1/C(w))
     for i = 1 to 4: S = A_i ∪ Q
         sw_i = max_{j=1..|P|} sum_{w=1..|S|} IC(P_{j+w}) if P_{j+w} ∈ S, else 0"

    "S_Q = Q ∩ PW \\ U;  S_Ai = ((A_i ∩ PW) \\ Q) \\ U
     d_i = 1 if |S_Q| = 0 or |S_Ai| = 0,
           else 1/(|P| - 1) · min_{q ∈ S_Q, a ∈ S_Ai} d_P(q, a)"
    and the answer is argmax_i (sw_i - d_i).

P is the transcript, Q the question (absent when the question is itself spoken), A_i the
choices; the window is |S| tokens wide; U (stop words) is empty here. Ties go to the earlier
choice.

Tokens (Korean needs more than whitespace; no morphological analyser is required):

* ``tokens=bigram`` (default): overlapping character bigrams of the text with whitespace
  removed (Hangul, digits and lower-cased Latin letters kept). The recogniser's word
  segmentation is unreliable ("좋 죠 씀 니다"), character n-grams do not depend on it.
* ``tokens=word``: whitespace tokens with one trailing particle or copula ending stripped
  (longest match of :data:`PARTICLES`, keeping a stem of at least one character), so
  "학교에서" and "학교는" both become "학교".

What it cannot do it does not fake: it abstains (raises :class:`~koala.models.Abstain`) from
speech translation and instruction following (``tasks`` leaves them out), from a multiple-
choice item whose speech gave no transcript (e.g. the silent clip of SCA-QA's text-only
condition) and from one where the scores do not tell the choices apart (all equal, e.g. no
token of any choice occurs in the transcript).

The model sees only what a speech LLM sees: the audio and the prompt. The question and the
choices are read back from the prompt: the labelled lines ``(A) ...`` (one per line, or all on
one line) just before the answer cue, and an optional ``질문: ...`` line above them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from koala.models import Abstain, Answer, Audio, ModelBase, Request
from koala.models.vosk_ko import VoskKorean
from koala.scoring.choices import parse_choices

__all__ = [
    "PARTICLES",
    "ST_INSTRUCTION",
    "TRANSCRIPT_HEADER",
    "Cascade",
    "LLMCascade",
    "McItem",
    "parse_mc_prompt",
    "sliding_window_scores",
    "tokenize",
]

# Case particles, auxiliary particles and copula endings, longest first when matching.
PARTICLES: tuple[str, ...] = tuple(
    sorted(
        {
            "은", "는", "이", "가", "을", "를", "의", "에", "에서", "에게", "께서", "한테",
            "로", "으로", "와", "과", "도", "만", "까지", "부터", "보다", "처럼", "이나", "나",
            "이다", "입니다", "이에요", "예요", "였다", "이었다", "에는", "에서는", "으로는",
            "로는", "와는", "과는", "이라는", "라는",
        },
        key=len,
        reverse=True,
    )
)  # fmt: skip

_KEEP = re.compile(r"[^0-9a-z\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f\s]+")
_LABEL_LINE = re.compile(r"^\s*\(\s*([A-Za-z]|[1-9])\s*\)\s*(.*?)\s*$")
_CUE_LINE = re.compile(r"^\s*(답|정답|answer)\s*[:：]?\s*$", re.IGNORECASE)
_QUESTION = re.compile(r"^\s*(질문|문제|question)\s*[:：]\s*(.*)$", re.IGNORECASE)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFC", text).lower()
    return _KEEP.sub(" ", text)


def _strip_particle(word: str) -> str:
    for p in PARTICLES:
        if len(word) > len(p) and word.endswith(p):
            return word[: -len(p)]
    return word


def tokenize(text: str, mode: str = "bigram") -> list[str]:
    """Tokens of ``text`` for the sliding window (see the module docstring)."""
    cleaned = _clean(text)
    if mode == "word":
        return [_strip_particle(w) for w in cleaned.split()]
    if mode == "bigram":
        s = "".join(cleaned.split())
        if len(s) < 2:
            return [s] if s else []
        return [s[i : i + 2] for i in range(len(s) - 1)]
    raise ValueError(f"cascade: tokens={mode!r}; use 'bigram' or 'word'")


@dataclass(frozen=True)
class McItem:
    """A multiple-choice item read back from a prompt."""

    question: str
    labels: tuple[str, ...]
    choices: tuple[str, ...]


def parse_mc_prompt(prompt: str) -> McItem | None:
    """The question and labelled choices at the end of ``prompt``; ``None`` when the prompt
    has no labelled choices there (a free-generation prompt)."""
    lines = prompt.rstrip().split("\n")
    i = len(lines) - 1
    while i >= 0 and (not lines[i].strip() or _CUE_LINE.match(lines[i])):
        i -= 1
    found: list[tuple[str, str]] = []
    while i >= 0:
        m = _LABEL_LINE.match(lines[i])
        if not m:
            break
        found.append((m.group(1).upper(), m.group(2)))
        i -= 1
    found.reverse()
    if len(found) == 1 and i < len(lines) - 1:  # all choices on one line?
        try:
            parsed = parse_choices(lines[i + 1])
        except ValueError:
            parsed = None
        if parsed is not None and parsed.texts is not None and len(parsed.labels) > 1:
            found = list(zip(parsed.labels, parsed.texts, strict=True))
    if len(found) < 2:
        return None
    question = ""
    while i >= 0 and not lines[i].strip():
        i -= 1
    if i >= 0:
        q = _QUESTION.match(lines[i])
        if q:
            question = q.group(2).strip()
    labels, texts = zip(*found, strict=True)
    return McItem(question, tuple(labels), tuple(texts))


def sliding_window_scores(
    passage: Sequence[str],
    question: Sequence[str],
    answers: Sequence[Sequence[str]],
    distance: bool = True,
) -> list[float]:
    """MCTest SW (and SW+D with ``distance``) scores of each answer; see the module docstring."""
    n = len(passage)
    counts = Counter(passage)
    ic = {w: math.log(1.0 + 1.0 / c) for w, c in counts.items()}
    positions: dict[str, list[int]] = {}
    for k, w in enumerate(passage):
        positions.setdefault(w, []).append(k)
    q_set = set(question)
    scores = []
    for ans in answers:
        s = set(ans) | q_set
        width = len(s)
        best = 0.0
        if width and n:
            vals = [ic[w] if w in s else 0.0 for w in passage]
            window = sum(vals[:width])
            best = window
            for j in range(width, n):  # slide: add vals[j], drop vals[j - width]
                window += vals[j] - vals[j - width]
                best = max(best, window)
        score = best
        if distance:
            pw = set(passage)
            s_q = q_set & pw
            s_a = (set(ans) & pw) - q_set
            if not s_q or not s_a or n < 2:
                d = 1.0
            else:
                d = min(
                    abs(i - j) for q in s_q for a in s_a for i in positions[q] for j in positions[a]
                ) / (n - 1)
            score -= d
        scores.append(score)
    return scores


class Cascade(ModelBase):
    """Vosk ASR + MCTest sliding window; see the module docstring.

    Options (``cascade?KEY=VALUE``): ``tokens`` (``bigram``/``word``), ``distance`` (true),
    and the :class:`~koala.models.vosk_ko.VoskKorean` options ``model_path``,
    ``pad_seconds``, ``numbers``, ``threads``.
    """

    tasks = frozenset({"asr", "sqa", "pa_qa", "sca_qa"})

    def __init__(
        self,
        tokens: str = "bigram",
        distance: bool = True,
        asr: VoskKorean | None = None,
        **asr_options: object,
    ) -> None:
        tokenize("", tokens)  # validate early
        self.tokens = tokens
        self.distance = bool(distance)
        self.asr = asr if asr is not None else VoskKorean(**asr_options)  # type: ignore[arg-type]
        self.max_concurrency = self.asr.max_concurrency
        extra = [f"tokens={tokens}"] if tokens != "bigram" else []
        extra += [] if self.distance else ["distance=false"]
        self.name = "cascade" + (f"({','.join(extra)})" if extra else "")

    def open(self, concurrency: int = 1) -> None:
        self.asr.open(concurrency)

    def choose(self, transcript: str, item: McItem) -> tuple[str, list[float]]:
        """The chosen label and the score of every choice."""
        passage = tokenize(transcript, self.tokens)
        if not passage:
            raise Abstain("no speech recognised: there is no passage to read the answer from")
        q = tokenize(item.question, self.tokens)
        answers = [tokenize(c, self.tokens) for c in item.choices]
        scores = sliding_window_scores(passage, q, answers, self.distance)
        if max(scores) == min(scores):
            raise Abstain("the transcript does not tell the choices apart (all scores equal)")
        best = max(range(len(scores)), key=lambda k: (scores[k], -k))
        return item.labels[best], scores

    def generate(self, audio: Audio | None, prompt: str) -> str:
        transcript = self.asr.transcribe(audio)
        item = parse_mc_prompt(prompt)
        if item is None:  # a transcription prompt
            return transcript
        label, _ = self.choose(transcript, item)
        return f"({label})"


# --------------------------------------------------------------------------- cascade-llm

TRANSCRIPT_HEADER = "[음성 받아쓰기]"  # "[dictation of the speech]", before the transcript
ST_INSTRUCTION = (
    "Translate the following English text into Korean. Write only the Korean translation."
)
_LABEL_WRAP = re.compile(r"^[\s(\[{]*(.*?)[\s)\]}.:]*$")
_OPENERS = frozenset({"(", "[", "（", "［"})


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def label_of_token(token: str) -> str:
    """The label a first token spells: NFKC, brackets, a trailing ``.``/``:`` and spaces
    removed, upper-cased (``"(A"``, ``" a"``, ``"Ａ)"`` -> ``"A"``; ``"①"`` -> ``"1"``)."""
    m = _LABEL_WRAP.match(unicodedata.normalize("NFKC", token))
    return (m.group(1) if m else token).strip().upper()


def label_logprobs(top: Sequence[tuple[str, float]], labels: Sequence[str]) -> dict[str, float]:
    """Each label's log-probability as the first token: the probabilities of the tokens in
    ``top`` (token, log-probability) that spell it (:func:`label_of_token`) added up;
    ``-inf`` for a label none of them spells."""
    mass: dict[str, list[float]] = {str(x): [] for x in labels}
    wanted = {str(x).upper(): str(x) for x in labels}
    for token, lp in top:
        label = wanted.get(label_of_token(token))
        if label is not None and lp > -math.inf:
            mass[label].append(lp)
    out = {}
    for label, lps in mass.items():
        if not lps:
            out[label] = -math.inf
            continue
        total = -math.inf
        for x in lps:
            total = _logaddexp(total, x)
        out[label] = total
    return out


class LLMCascade(ModelBase):
    """Whisper, then a llama.cpp LLM over the transcript; see the module docstring.

    ``asr``: a :class:`~koala.models.whisper.WhisperASR` (or its model name; default: the
    packaged Whisper base), shared with other models to share transcripts; ``llm``: a
    :class:`~koala.models.llm.LlamaCpp` (or its model: a key or a GGUF path).
    """

    tasks = None  # every task
    supports_logprobs = True
    max_concurrency = 1  # one request at a time: the recogniser and the LLM use every core

    def __init__(
        self,
        asr: Any = None,
        llm: Any = None,
        *,
        threads: int | None = None,
        n_ctx: int = 4096,
        max_tokens: int = 256,
        st_max_tokens: int = 128,
        top_logprobs: int = 20,
        beam_size: int = 5,
    ) -> None:
        from koala.models.llm import DEFAULT_LLM, LlamaCpp
        from koala.models.whisper import WhisperASR

        if isinstance(asr, WhisperASR):
            self.asr = asr
        else:
            self.asr = WhisperASR(asr, beam_size=beam_size, threads=threads)
        self._owns_llm = not isinstance(llm, LlamaCpp)  # a shared LLM is closed by its owner
        if isinstance(llm, LlamaCpp):
            self.llm = llm
        else:
            self.llm = LlamaCpp(llm or DEFAULT_LLM, n_ctx=n_ctx, threads=threads)
        for key, value in (("max_tokens", max_tokens), ("st_max_tokens", st_max_tokens)):
            if int(value) < 1:
                raise ValueError(f"cascade-llm: {key}={value!r}; give 1 or more")
        if not 1 <= int(top_logprobs) <= 100:
            raise ValueError(f"cascade-llm: top_logprobs={top_logprobs!r}; give 1 to 100")
        self.max_tokens = int(max_tokens)
        self.st_max_tokens = int(st_max_tokens)
        self.top_logprobs = int(top_logprobs)
        self.name = f"{self.asr.name}+{self.llm.label}"

    def open(self, concurrency: int = 1) -> None:
        self.asr.open(concurrency)
        self.llm.open()

    def transcript(self, audio: Audio | None, task: str | None) -> str:
        """What the recogniser heard (English for ST, Korean otherwise; ``""``: no speech)."""
        return self.asr.transcribe(audio, "en" if task == "st" else None)

    def messages(
        self, transcript: str, prompt: str, task: str | None = None
    ) -> list[dict[str, str]]:
        """The LLM's input: the transcript in place of the speech, then the prompt; for ST
        the translation instruction and the transcript (see the module docstring)."""
        if task == "st":
            text = f"{ST_INSTRUCTION}\n\n{transcript}"
        elif transcript:
            text = f"{TRANSCRIPT_HEADER}\n{transcript}\n\n{prompt}"
        else:
            text = prompt
        return [{"role": "user", "content": text}]

    def choose(
        self, messages: Sequence[Mapping[str, str]], labels: Sequence[str]
    ) -> tuple[str, dict[str, float]]:
        """The most likely label (ties: the first) and every label's log-probability."""
        top = self.llm.next_token_logprobs(messages, self.top_logprobs)
        lp = label_logprobs(top, labels)
        openers = [(t, x) for t, x in top if t.strip() in _OPENERS]
        if openers:  # "(" then "2": the label after the bracket the reply opens with
            opener, lp_open = max(openers, key=lambda t: t[1])
            after = self.llm.next_token_logprobs(
                [*messages, {"role": "assistant", "content": opener}], self.top_logprobs
            )
            via = label_logprobs(after, labels)
            lp = {x: _logaddexp(lp[x], lp_open + via[x]) for x in lp}
        best = max(labels, key=lambda x: (lp[str(x)], -labels.index(x)))
        if lp[str(best)] == -math.inf:
            raise Abstain(
                f"no shown label ({', '.join(map(str, labels))}) is among the LLM's "
                f"{self.top_logprobs} most likely first tokens"
            )
        return str(best), lp

    def answer(self, request: Request) -> Answer:
        task = request.task
        if task == "asr":
            if request.audio is None:
                raise Abstain("no audio: nothing to transcribe")
            return Answer(self.transcript(request.audio, task))
        transcript = self.transcript(request.audio, task)
        if task == "st" and not transcript:
            raise Abstain("no speech recognised: nothing to translate")
        messages = self.messages(transcript, request.prompt, task)
        labels = request.labels
        if labels is None and task is None:  # the bare protocol: read the choices back
            item = parse_mc_prompt(request.prompt)
            labels = item.labels if item is not None else None
        if labels:
            label, lp = self.choose(messages, list(labels))
            return Answer(f"({label})", lp, {"transcript": transcript})
        limit = self.st_max_tokens if task == "st" else self.max_tokens
        reply = self.llm.complete(messages, limit).strip()
        return Answer(reply, None, {"transcript": transcript})

    def generate(self, audio: Audio | None, prompt: str) -> str:
        return self.answer(Request(audio, prompt)).text

    def choice_logprobs(
        self, audio: Audio | None, prompt: str, labels: Sequence[str]
    ) -> dict[str, float]:
        return self.answer(Request(audio, prompt, tuple(labels))).logprobs or {}

    def close(self) -> None:
        if self._owns_llm:
            self.llm.close()

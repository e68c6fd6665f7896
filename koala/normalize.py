"""Korean text normalisation as composable steps with named presets.

Every step is a small callable ``str -> str``; :class:`Compose` chains them, and
:data:`PRESETS` names the chains people use. The preset ``"koala"`` is the published
KoALa-Bench rule for CER and for character BLEU/METEOR:

    "normalise both sides by keeping only Hangul syllables and jamo, digits and whitespace
    (Latin letters are deleted), then delete all whitespace"

Character classes (Unicode code points):

* Hangul syllables: U+AC00-U+D7A3 (``가``-``힣``)
* Hangul compatibility jamo: U+3131-U+3163 (``ㄱ``-``ㅎ``, ``ㅏ``-``ㅣ``), the jamo people type
* digits: ASCII ``0-9`` only
* whitespace: Python's ``\\s``

Unicode normalisation is offered as NFC and NFKC only. NFD and NFKD decompose every syllable
into conjoining jamo (``한`` -> ``ᄒ ᅡ ᆫ``), which the character classes above would then delete,
so those forms are refused.

Example::

    >>> from koala.normalize import get_normalizer
    >>> get_normalizer("koala")("2018년, Seoul 에서 (웃음)!")
    '2018년에서웃음'
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = [
    "PRESETS",
    "CollapseWhitespace",
    "Compose",
    "KeepCharacters",
    "Lowercase",
    "RemoveWhitespace",
    "Step",
    "Strip",
    "StripKsponAnnotations",
    "UnicodeNormalize",
    "get_normalizer",
]

Step = Callable[[str], str]

HANGUL_SYLLABLES = "\uac00-\ud7a3"
HANGUL_COMPAT_JAMO = "\u3131-\u3163"
ASCII_DIGITS = "0-9"
LATIN_LETTERS = "A-Za-z"


@dataclass(frozen=True)
class UnicodeNormalize:
    """Apply Unicode normalisation ``form`` (``"NFC"`` or ``"NFKC"``).

    NFKC also folds full-width digits and letters (``２０１８`` -> ``2018``), which the published
    rule would otherwise delete. NFD/NFKD are refused: they split Hangul syllables into jamo.
    """

    form: str = "NFC"

    def __post_init__(self) -> None:
        if self.form not in ("NFC", "NFKC"):
            raise ValueError(
                f"UnicodeNormalize(form={self.form!r}): only 'NFC' and 'NFKC' are allowed; "
                "NFD/NFKD decompose Hangul syllables into conjoining jamo"
            )

    def __call__(self, text: str) -> str:
        return unicodedata.normalize(self.form, text)


@dataclass(frozen=True)
class KeepCharacters:
    """Delete every character outside the kept classes.

    Defaults are the published rule: Hangul syllables, compatibility jamo, ASCII digits and
    whitespace are kept; everything else (punctuation, Latin letters, Hanja, symbols) is deleted.
    """

    hangul: bool = True
    jamo: bool = True
    digits: bool = True
    latin: bool = False
    whitespace: bool = True
    extra: str = ""
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kept = "".join(
            part
            for flag, part in (
                (self.hangul, HANGUL_SYLLABLES),
                (self.jamo, HANGUL_COMPAT_JAMO),
                (self.digits, ASCII_DIGITS),
                (self.latin, LATIN_LETTERS),
                (self.whitespace, r"\s"),
            )
            if flag
        ) + re.escape(self.extra)
        if not kept:
            raise ValueError("KeepCharacters keeps nothing: enable at least one class")
        object.__setattr__(self, "_pattern", re.compile(f"[^{kept}]+"))

    def __call__(self, text: str) -> str:
        return self._pattern.sub("", text)


_WS = re.compile(r"\s+")


@dataclass(frozen=True)
class RemoveWhitespace:
    """Delete all whitespace (the published rule's last step: CER over characters, no spaces)."""

    def __call__(self, text: str) -> str:
        return _WS.sub("", text)


@dataclass(frozen=True)
class CollapseWhitespace:
    """Replace each run of whitespace by one space and strip both ends (spacing-aware CER)."""

    def __call__(self, text: str) -> str:
        return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class Strip:
    """Strip whitespace at both ends."""

    def __call__(self, text: str) -> str:
        return text.strip()


@dataclass(frozen=True)
class Lowercase:
    """Lower-case Latin letters (Hangul has no case)."""

    def __call__(self, text: str) -> str:
        return text.lower()


# (spelling)/(pronunciation): KsponSpeech's dual transcription, e.g. "(3G)/(쓰리 쥐)".
_KSPON_DUAL = re.compile(r"\(([^()/]*)\)\s*/\s*\(([^()/]*)\)")
# Noise and event tags: b/ breath, l/ laughter, o/ other speaker, n/ noise, u/ unintelligible.
_KSPON_TAG = re.compile(r"(?<![^\s])[bloun]/(?=\s|$)")
# Remaining markers: "word/" fillers keep the word, "+" repetition and "*" unclear are dropped.
_KSPON_MARK = re.compile(r"[/+*]")


@dataclass(frozen=True)
class StripKsponAnnotations:
    """Turn a KsponSpeech transcript into plain text.

    * ``(철자)/(발음)`` dual transcriptions keep one side: ``keep="pronunciation"`` (default, the
      second bracket, what was said) or ``keep="spelling"`` (the first);
    * noise tags ``b/ l/ o/ n/ u/`` are deleted;
    * filler marks (``음/`` -> ``음``), repetition ``+`` and unclear ``*`` marks are deleted;
    * runs of whitespace are collapsed.
    """

    keep: str = "pronunciation"

    def __post_init__(self) -> None:
        if self.keep not in ("pronunciation", "spelling"):
            raise ValueError(
                f"StripKsponAnnotations(keep={self.keep!r}): use 'pronunciation' or 'spelling'"
            )

    def __call__(self, text: str) -> str:
        group = 2 if self.keep == "pronunciation" else 1
        text = _KSPON_DUAL.sub(lambda m: m.group(group), text)
        text = _KSPON_TAG.sub(" ", text)
        text = _KSPON_MARK.sub("", text)
        return _WS.sub(" ", text).strip()


@dataclass(frozen=True)
class Compose:
    """Apply ``steps`` left to right."""

    steps: tuple[Step, ...]

    def __init__(self, steps: Iterable[Step]) -> None:
        object.__setattr__(self, "steps", tuple(steps))
        for i, step in enumerate(self.steps):
            if not callable(step):
                raise TypeError(f"Compose: step {i} ({step!r}) is not callable")

    def __call__(self, text: str) -> str:
        for step in self.steps:
            text = step(text)
        return text


def _identity(text: str) -> str:
    return text


PRESETS: dict[str, Step] = {
    # The published rule, exactly. "Keep whitespace, then delete all whitespace" is the same
    # as not keeping whitespace, so it runs as one regex pass (tests check the equivalence).
    "koala": KeepCharacters(whitespace=False),
    # The published rule after NFKC (full-width digits survive) - not the paper's number.
    "koala_nfkc": Compose([UnicodeNormalize("NFKC"), KeepCharacters(), RemoveWhitespace()]),
    # Keep Latin letters (lower-cased) for code-switched speech: "AI 반도체" keeps "ai".
    "koala_latin": Compose([Lowercase(), KeepCharacters(latin=True), RemoveWhitespace()]),
    # Keep word spacing (collapsed) so spacing errors count: a spacing-aware CER.
    "koala_spaced": Compose([KeepCharacters(), CollapseWhitespace()]),
    # KsponSpeech transcripts: strip annotations, then the published rule.
    "kspon": Compose([StripKsponAnnotations(), KeepCharacters(), RemoveWhitespace()]),
    # NFC and whitespace collapse only: for metrics that must see punctuation.
    "nfc": Compose([UnicodeNormalize("NFC"), CollapseWhitespace()]),
    # No change at all.
    "none": _identity,
}


def get_normalizer(name_or_step: str | Step | None = "koala") -> Step:
    """Return the preset called ``name_or_step``, or the callable itself.

    ``None`` means no normalisation. An unknown name raises ``ValueError`` listing the presets.
    """
    if name_or_step is None:
        return _identity
    if callable(name_or_step):
        return name_or_step
    if isinstance(name_or_step, str):
        try:
            return PRESETS[name_or_step]
        except KeyError:
            raise ValueError(
                f"unknown normalisation preset {name_or_step!r}; "
                f"choose one of {sorted(PRESETS)} or pass a callable"
            ) from None
    raise TypeError(
        f"normalization must be a preset name or a callable, not {type(name_or_step).__name__}"
    )

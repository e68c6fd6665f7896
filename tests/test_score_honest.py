"""Numbers that cannot look better than they are: only the planned, current records are
scored; a partial or failed config says so; the shown variant is chosen by a rule no variant
can win by shrinking its denominator or by failing; strict JSON; the protocol is stated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koala import report as rep
from koala.predictions import (
    FORMAT_VERSION,
    PREDICTIONS,
    ConfigPlan,
    fingerprint,
    record_key,
    write_plan,
)
from koala.score import score_run

NUMBERS = ["1", "2", "3", "4"]
LETTERS = ["A", "B", "C", "D"]


def record(config, rid, pred, *, task, variant="k1", condition="speech", status="ok", ref=None):
    r = {
        "format": FORMAT_VERSION,
        "model": "m",
        "config": config,
        "task": task,
        "variant": variant,
        "condition": condition,
        "id": rid,
        "subset": None,
        "noise": "clean",
        "ref": ref or {},
        "status": status,
        "prediction": pred if status == "ok" else None,
        "logprobs": None,
        "error": None if status == "ok" else "on purpose",
    }
    r["fingerprint"] = fingerprint({"key": list(record_key(r)), "ref": r["ref"]})
    return r


def make_run(path: Path, records, extra_planned=(), stale=()) -> Path:
    """A run directory whose plan asks for ``records`` plus ``extra_planned`` (records never
    written, as in a killed run), with ``stale`` records in the predictions file that the
    plan does not ask for in that form."""
    path.mkdir(parents=True, exist_ok=True)
    with open(path / PREDICTIONS, "w", encoding="utf-8") as f:
        for r in [*stale, *records]:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    by_config: dict[str, dict] = {}
    for r in [*records, *extra_planned]:
        by_config.setdefault(r["config"], {"task": r["task"], "model": r["model"], "requests": {}})
        by_config[r["config"]]["requests"][record_key(r)] = r["fingerprint"]
    for config, p in by_config.items():
        write_plan(
            path,
            config,
            ConfigPlan(
                config=config,
                task=p["task"],
                planned=len(p["requests"]),
                requests=p["requests"],
                settings={"model": p["model"]},
            ),
        )
    return path


def sca_records(variant: str, n: int, text_correct: int, follows: int) -> list[dict]:
    """``n`` SCA-QA items: the first ``text_correct`` answered right from text alone, of
    which the first ``follows`` follow the counterfactual speech (gold 2); the rest answer
    wrong everywhere."""
    out = []
    ref = {"choices": ["가", "나", "다", "라"], "choice_labels": NUMBERS, "answer": "1"}
    ref["counterfactual_answer"] = "2"
    for k in range(n):
        rid = f"s{k}"
        text = "(1)" if k < text_correct else "(4)"
        cf = "(2)" if k < follows else "(1)" if k < text_correct else "(3)"
        for cond, pred in (("text", text), ("counterfactual", cf)):
            out.append(
                record(
                    "sca_qa_kpop",
                    rid,
                    pred,
                    task="sca_qa",
                    variant=variant,
                    condition=cond,
                    ref=ref,
                )
            )
    return out


def test_sca_qa_variant_cannot_win_by_shrinking_the_scf_denominator(tmp_path):
    # k1: 1 of 10 text-correct, and it follows the speech: SCF 1.0 on one item.
    # k2: 10 of 10 text-correct, 7 follow: SCF 0.7.
    recs = sca_records("k1", 10, 1, 1) + sca_records("k2", 10, 10, 7)
    run = make_run(tmp_path / "r", recs)
    c = score_run(run, write=False)["models"]["m"]["configs"]["sca_qa_kpop"]
    assert c["variants"]["k1"]["gen"]["scf"] == 1.0
    assert c["variants"]["k2"]["gen"]["scf"] == pytest.approx(0.7)
    assert c["best"]["gen"]["variant"] == "k2"
    assert c["best"]["gen"]["value"] == pytest.approx(0.7)
    # the authors' rule (best SCF) is one switch away, for comparison with the paper
    pub = score_run(run, write=False, select="published")["models"]["m"]["configs"]
    assert pub["sca_qa_kpop"]["best"]["gen"]["variant"] == "k1"


def test_a_killed_run_is_partial_never_a_bare_headline(tmp_path):
    ref = {"choices": ["가", "나", "다", "라"], "choice_labels": LETTERS, "answer": "A"}
    ref |= {"evidence_positions": [0.1], "evidence_segments": ["front"]}
    done = [record("pa_qa", f"p{k}", "(A)", task="pa_qa", ref=ref) for k in range(4)]
    never = [record("pa_qa", f"p{k}", "(A)", task="pa_qa", ref=ref) for k in range(4, 8)]
    run = make_run(tmp_path / "r", done, extra_planned=never)
    c = score_run(run)["models"]["m"]["configs"]["pa_qa"]
    assert c["status"] == "partial"
    assert c["rows"] == 8
    assert (c["coverage"]["planned"], c["coverage"]["records"], c["coverage"]["missing"]) == (
        8,
        4,
        4,
    )
    assert c["best"]["gen"]["partial"] is True
    out = tmp_path / "report"
    rep.write_report(rep.collect([run]), out, [str(run)])
    md = (out / "results.md").read_text(encoding="utf-8")
    pa_rows = [line for line in md.splitlines() if line.startswith("| pa_qa | m |")]
    assert pa_rows and all("partial: 4/8 requests" in line for line in pa_rows)


def test_a_config_where_every_request_failed_shows_failed_not_zero(tmp_path):
    ref = {"text": "안녕하세요"}
    recs = [
        record("asr_zeroth", f"a{k}", None, task="asr", status="failed", ref=ref) for k in range(3)
    ]
    run = make_run(tmp_path / "r", recs)
    c = score_run(run)["models"]["m"]["configs"]["asr_zeroth"]
    assert c["status"] == "failed" and c["best"] == {}
    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)])
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| asr_zeroth | clean |"))
    assert "failed (all 3 requests failed)" in row and "100.0" not in row and "0.0" not in row


def test_stale_records_are_ignored_and_counted_with_their_reason(tmp_path):
    ref_new = {"text": "안녕하세요"}
    ref_old = {"text": "안녕"}  # the gold before a re-export
    current = [
        record("asr_zeroth", f"a{k}", "안녕하세요", task="asr", ref=ref_new) for k in range(2)
    ]
    stale = [record("asr_zeroth", f"a{k}", "안녕", task="asr", ref=ref_old) for k in range(2)]
    other_variant = [
        record("asr_zeroth", "a0", "안녕", task="asr", variant="k9", ref=ref_old),
        record("asr_other", "a0", "안녕", task="asr", ref=ref_old),
    ]
    # stale lines come first; the current ones supersede them under the same key
    run = make_run(tmp_path / "r", current, stale=[*stale, *other_variant])
    s = score_run(run)
    c = s["models"]["m"]["configs"]["asr_zeroth"]
    assert c["variants"]["k1"]["gen"]["cer"] == 0.0
    assert set(c["variants"]) == {"k1"}  # k9 is not in the plan
    assert sum(c["ignored"].values()) == 1
    assert "asr_other" not in s["models"]["m"]["configs"]
    assert sum(s["predictions"]["ignored"]["asr_other"].values()) == 1


def test_a_superseded_stale_record_is_not_scored_when_its_fingerprint_differs(tmp_path):
    ref_new = {"text": "안녕하세요"}
    planned = [record("asr_zeroth", "a0", "안녕하세요", task="asr", ref=ref_new)]
    old = record("asr_zeroth", "a0", "안녕", task="asr", ref={"text": "안녕"})
    # the predictions hold only the old record; the plan wants the new fingerprint
    run = make_run(tmp_path / "r", [], extra_planned=planned, stale=[old])
    c = score_run(run)["models"]["m"]["configs"]["asr_zeroth"]
    assert c["status"] == "not run"
    assert c["coverage"]["missing"] == 1
    assert list(c["ignored"].values()) == [1]
    assert c["best"] == {}


def test_written_json_is_strict_and_states_the_protocol(tmp_path):
    # SCF undefined (no text-correct item) -> NaN inside the scorer; strict JSON on disk
    recs = sca_records("k1", 3, 0, 0)
    run = make_run(tmp_path / "r", recs)
    score_run(run, protocol="koala")

    def refuse(token):
        raise ValueError(f"non-strict JSON constant {token}")

    s = json.loads((run / "scores.json").read_text(), parse_constant=refuse)
    assert s["protocol"] == "koala" and s["selection"]["rule"] == "koala"
    g = s["models"]["m"]["configs"]["sca_qa_kpop"]["variants"]["k1"]["gen"]
    assert g["scf"] is None and g["scf_null_reason"].startswith("undefined")
    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)])
    r = json.loads((tmp_path / "out" / "results.json").read_text(), parse_constant=refuse)
    assert r["protocol"] == "koala"
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "**koala** protocol" in md and "Variant shown:" in md


def test_a_variant_with_missing_requests_does_not_win_over_a_complete_one(tmp_path):
    ref = {"choices": ["가", "나"], "choice_labels": ["A", "B"], "answer": "A"}
    k1 = [
        record("sqa_click", f"q{k}", "(A)" if k < 3 else "(B)", task="sqa", ref=ref)
        for k in range(4)
    ]
    # k2 answered only the one easy item, the rest never came back
    k2_done = [record("sqa_click", "q0", "(A)", task="sqa", variant="k2", ref=ref)]
    k2_lost = [
        record("sqa_click", f"q{k}", "(A)", task="sqa", variant="k2", ref=ref) for k in range(1, 4)
    ]
    run = make_run(tmp_path / "r", [*k1, *k2_done], extra_planned=k2_lost)
    c = score_run(run)["models"]["m"]["configs"]["sqa_click"]
    assert c["variants"]["k2"]["gen"]["accuracy"] == 1.0
    assert c["best"]["gen"]["variant"] == "k1" and c["best"]["gen"]["value"] == 0.75
    assert c["status"] == "partial"


def sca_published_records() -> list[dict]:
    """Two SCA-QA items asked as ``run --protocol published`` asks them: choices shown as
    (A)-(D), the published answer texts kept in ``source_*``."""
    out = []
    choices = ["가야", "백제", "신라", "고구려"]
    answers = {
        # id: (text-only answer, counterfactual answer)
        "s0": ("(A)", "The answer is B."),  # published reads "A" of "ANSWER": keeps its own
        "s1": ("(A)", "(B)"),  # follows the speech under both protocols
    }
    for rid, (text, cf) in answers.items():
        ref = {
            "choices": choices,
            "choice_labels": NUMBERS,
            "answer": "1",
            "counterfactual_answer": "2",
            "source_answer": "가야",
            "source_counterfactual_answer": "백제",
        }
        for cond, pred in (("text", text), ("counterfactual", cf)):
            r = record("sca_qa_kpop", rid, pred, task="sca_qa", condition=cond, ref=ref)
            r["shown_labels"] = LETTERS
            out.append(r)
    return out


def test_published_sca_qa_reading_through_score_run(tmp_path):
    run = make_run(tmp_path / "r", sca_published_records())
    pub = score_run(run, write=False, protocol="published")
    g = pub["models"]["m"]["configs"]["sca_qa_kpop"]["variants"]["k1"]["gen"]
    assert pub["protocol"] == "published" and pub["selection"]["rule"] == "published"
    assert (g["num_text_correct"], g["scf"], g["parametric_proportion"]) == (2, 0.5, 0.5)
    ours = score_run(run, write=False)["models"]["m"]["configs"]["sca_qa_kpop"]
    g = ours["variants"]["k1"]["gen"]
    # the koala reading scores the letters the model was shown: "B." is the counterfactual
    assert (g["num_text_correct"], g["scf"], g["parametric_proportion"]) == (2, 1.0, 0.0)


def test_published_choice_scoring_uses_the_published_gold_and_parser(tmp_path):
    # K-SAT: the published parser has no bare-number step ("답: 4번" is read as the first
    # choice); the published gold "(4)..." is read from the source string
    ref = {
        "choices": ["가", "나", "다", "라", "마"],
        "choice_labels": ["1", "2", "3", "4", "5"],
        "answer": "4",
        "source_answer": "(4)라",
        "source_choices": "(1)가 (2)나 (3)다 (4)라 (5)마",
    }
    recs = [
        record("sqa_kcsat", "k0", "답: 4번", task="sqa", ref=ref),
        record("sqa_kcsat", "k1", "(4)", task="sqa", ref=ref),
    ]
    run = make_run(tmp_path / "r", recs)
    pub = score_run(run, write=False, protocol="published")["models"]["m"]["configs"]
    ours = score_run(run, write=False)["models"]["m"]["configs"]
    assert pub["sqa_kcsat"]["variants"]["k1"]["gen"]["accuracy"] == 0.5
    assert pub["sqa_kcsat"]["variants"]["k1"]["gen"]["fallback_used"] == 1
    assert ours["sqa_kcsat"]["variants"]["k1"]["gen"]["accuracy"] == 1.0


def test_report_explains_cer_above_100_and_plots_with_nothing_to_show(tmp_path):
    ref = {"text": "가나"}
    # 2 reference characters, 5 inserted: CER 250 %
    recs = [record("asr_zeroth", "a0", "가나다라마바사", task="asr", ref=ref)]
    run = make_run(tmp_path / "r", recs)
    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)])
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| asr_zeroth | clean | 250.00 [no interval: 1 item] |" in md  # not a point
    assert "exceeds 100 %" in md
    assert "No PA-QA by segment plot: no PA-QA config was scored." in md
    assert "![PA-QA by segment]" not in md and "![SCF]" not in md


def test_rerun_with_changed_data_prompts_and_options_scores_as_a_fresh_run(tmp_path):
    """A run, then a re-run into the same directory with another export, other prompts and
    other model options, gives exactly the scores of a fresh run with the new settings."""
    import numpy as np
    from test_runner import Recorder, det_label, make_export, sqa_rows, tone

    from koala.prompts import load_prompts
    from koala.runner import run_model

    def answer(audio, prompt):  # depends on the prompt and on the audio
        loud = "" if audio is None else str(round(float(np.abs(audio.array).max()), 2))
        return f"({det_label(prompt + loud)})"

    old_rows = sqa_rows(6)
    new_rows = [dict(r) for r in old_rows]
    new_rows[1]["answer"] = "D"  # a corrected gold
    new_rows[2]["audio"] = tone(77) * 0.5  # a re-recorded clip
    old = make_export(tmp_path / "old", {"sqa_click": old_rows})
    new = make_export(tmp_path / "new", {"sqa_click": new_rows})
    one = tmp_path / "one.yaml"
    one.write_text('sqa:\n  - name: v1\n    prompt_prefix: "고르세요.\\n"\n', encoding="utf-8")
    two = tmp_path / "two.yaml"
    two.write_text(
        'sqa:\n  - name: v1\n    prompt_prefix: "고르세요!\\n"\n'
        '  - name: v2\n    prompt_prefix: "답을 고르세요.\\n"\n',
        encoding="utf-8",
    )

    def go(out, data, prompts, spec):
        run_model(
            Recorder(answer), ["sqa_click"], out, data=str(data), progress=False,
            prompts=load_prompts(prompts), spec=spec,
        )  # fmt: skip
        s = score_run(out, write=False)["models"]["recorder"]["configs"]["sqa_click"]
        s.pop("ignored")
        return s

    go(tmp_path / "a", old, one, "recorder?temperature=0")
    rerun = go(tmp_path / "a", new, two, "recorder?temperature=0.7")
    fresh = go(tmp_path / "b", new, two, "recorder?temperature=0.7")
    assert rerun == fresh
    assert set(rerun["variants"]) == {"v1", "v2"} and rerun["coverage"]["planned"] == 12
    ignored = score_run(tmp_path / "a", write=False)["models"]["recorder"]["configs"]
    assert sum(ignored["sqa_click"]["ignored"].values()) == 0  # v1 superseded under its key


def test_pa_qa_with_and_without_clips_the_model_cut_short(tmp_path):
    # the late-evidence questions came with passages longer than the model's input limit:
    # their (wrong) answers are counted, and the figures without them are shown beside
    recs = []
    for k, (pos, pred, cut) in enumerate(
        [(0.1, "(A)", False), (0.3, "(A)", False), (0.8, "(B)", True), (0.9, "(B)", True)]
    ):
        ref = {"choices": ["가", "나"], "choice_labels": ["A", "B"], "answer": "A"}
        r = record("pa_qa", f"p{k}", pred, task="pa_qa", ref=ref | {"evidence_positions": [pos]})
        r["truncated"], r["audio_seconds"] = cut, 95.0 if cut else 20.0
        recs.append(r)
    run = make_run(tmp_path / "r", recs)
    c = score_run(run)["models"]["m"]["configs"]["pa_qa"]
    g = c["variants"]["k1"]["gen"]
    assert (g["accuracy"], g["segment_accuracy"]["late"], g["truncated"]) == (0.5, 0.0, 2)
    assert g["untruncated"]["accuracy"] == 1.0 and g["untruncated"]["total"] == 2
    assert c["counts"]["truncated"] == 2
    rep.write_report(rep.collect([run]), tmp_path / "out", [str(run)])
    md = (tmp_path / "out" / "results.md").read_text(encoding="utf-8")
    row = next(line for line in md.splitlines() if line.startswith("| pa_qa | m |"))
    assert "2/4 clips cut by the model's limit" in row and row.endswith("| 100.0 (n=2) |")

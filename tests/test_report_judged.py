"""``koala-bench report`` never loses judged SIF figures: it reuses the judged figures of
``scores.json`` when it has to score again without a judge, or says why it cannot and leaves
``scores.json`` as it is (issue 23: it used to re-score without the judge and overwrite the
judged file, so the SIF figures silently disappeared)."""

from __future__ import annotations

import json
import logging
import os

from openai_server import Reply, ScriptedServer, completion
from test_score_honest import make_run, record

from koala import report as rep
from koala import score


def run_with_sif_and_asr(path):
    recs = []
    for k in range(6):
        r = record("sif_kudge", f"i{k}", f"답 {k}", task="sif")
        r["ref"] = {"instruction": f"지시 {k}"}
        recs.append(r)
        recs.append(record("asr_zeroth", f"a{k}", "가나다", task="asr", ref={"text": "가나다라"}))
    return make_run(path, recs)


def judged(run, capsys, *opts):
    with ScriptedServer(lambda b, n: Reply(body=completion("[[7]]"))) as s:
        rc = score.main([str(run), "--judge-url", s.url, "--st-metrics", "bleu", *opts])
    assert rc == 0, capsys.readouterr().err
    return (run / "scores.json").read_text(encoding="utf-8")


def sif_score(configs):
    c = configs["sif_kudge"]
    return c["variants"]["k1"]["gen"].get("score"), c


def test_report_with_other_interval_options_reuses_the_judged_figures(tmp_path, capsys, caplog):
    run = run_with_sif_and_asr(tmp_path / "run")
    before = judged(run, capsys, "--n-resamples", "200")
    out = tmp_path / "report"
    with caplog.at_level(logging.WARNING, logger="koala.report"):
        assert rep.main([str(run), "--out", str(out), "--st-metrics", "bleu"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]["m"]
    value, c = sif_score(results)
    assert value == 70.0  # the judged figure, not "not scored: no judge configured"
    assert "reused from scores.json" in c["judged_figures"]
    assert "n_resamples 200" in c["judged_figures"]
    # the other configs follow the report's options (1000 resamples)
    asr_ci = results["asr_zeroth"]["variants"]["k1"]["gen"]["cer_ci"]
    assert asr_ci["n_resamples"] == 1000
    # scores.json is left as score wrote it
    assert (run / "scores.json").read_text(encoding="utf-8") == before
    assert "reused" in caplog.text and "sif_kudge" in caplog.text
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "| sif_kudge | clean | 70.0" in md


def test_report_after_new_predictions_says_why_it_cannot_reuse_them(tmp_path, capsys, caplog):
    run = run_with_sif_and_asr(tmp_path / "run")
    before = judged(run, capsys)
    later = os.stat(run / "scores.json").st_mtime + 10
    os.utime(run / "predictions.jsonl", (later, later))  # the predictions changed since
    out = tmp_path / "report"
    with caplog.at_level(logging.WARNING, logger="koala.report"):
        assert rep.main([str(run), "--out", str(out), "--st-metrics", "bleu"]) == 0
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]["m"]
    value, c = sif_score(results)
    assert value is None
    note = c["variants"]["k1"]["gen"]["note"]
    assert "judged figures in scores.json are older than the predictions" in note
    assert "--judge-url" in note
    assert (run / "scores.json").read_text(encoding="utf-8") == before  # not overwritten
    assert "--judge-url" in caplog.text and "scores.json is left as it is" in caplog.text
    md = (out / "results.md").read_text(encoding="utf-8")
    assert "judged figures in scores.json are older than the predictions" in md


def test_report_under_another_protocol_does_not_pass_off_koala_judgements(tmp_path, capsys):
    run = run_with_sif_and_asr(tmp_path / "run")
    before = judged(run, capsys)
    out = tmp_path / "report"
    assert rep.main([str(run), "--out", str(out), "--protocol", "published",
                     "--st-metrics", "bleu"]) == 0  # fmt: skip
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]["m"]
    value, c = sif_score(results)
    assert value is None and "judged under the koala protocol" in c["variants"]["k1"]["gen"]["note"]
    assert (run / "scores.json").read_text(encoding="utf-8") == before


def test_report_with_the_same_options_uses_scores_json_and_with_a_judge_rejudges(tmp_path, capsys):
    run = run_with_sif_and_asr(tmp_path / "run")
    with ScriptedServer(lambda b, n: Reply(body=completion("[[7]]"))) as s:
        judge = ["--judge-url", s.url, "--st-metrics", "bleu"]
        assert score.main([str(run), *judge]) == 0 and len(s.requests) == 6
        before = (run / "scores.json").read_text(encoding="utf-8")
        assert rep.main([str(run), "--out", str(tmp_path / "r"), "--st-metrics", "bleu"]) == 0
        assert (run / "scores.json").read_text(encoding="utf-8") == before
        # with the judge: scored again, every rating from the run's judge cache
        assert rep.main([str(run), "--out", str(tmp_path / "r2"), "--rescore", *judge]) == 0
        assert len(s.requests) == 6
    results = json.loads((tmp_path / "r2" / "results.json").read_text())["results"]["m"]
    assert sif_score(results)[0] == 70.0 and "judged_figures" not in results["sif_kudge"]


def test_reused_judged_figures_show_the_variant_score_chose_among_complete_ones(tmp_path, capsys):
    # variant k2 rates higher but one of its requests is missing (a killed run): under the
    # koala rule the table shows the complete k1, and so must the report that reuses the
    # judged figures (it used to pass the config's coverage totals as per-variant coverage,
    # so every variant counted as complete and k2 was shown)
    recs, missing = [], []
    for variant, word in (("k1", "보통"), ("k2", "최고")):
        for k in range(6):
            r = record("sif_kudge", f"i{k}", f"{word} 답 {k}", task="sif", variant=variant)
            r["ref"] = {"instruction": f"지시 {k}"}
            (missing if (variant, k) == ("k2", 5) else recs).append(r)
    run = make_run(tmp_path / "run", recs, extra_planned=missing)

    def judge(body, n):
        return Reply(
            body=completion("[[9]]" if "최고" in json.dumps(body, ensure_ascii=False) else "[[5]]")
        )

    with ScriptedServer(judge) as s:
        rc = score.main([str(run), "--judge-url", s.url, "--n-resamples", "200"])
    assert rc == 0, capsys.readouterr().err
    scored = json.loads((run / "scores.json").read_text(encoding="utf-8"))
    best = scored["models"]["m"]["configs"]["sif_kudge"]["best"]["gen"]
    assert best["variant"] == "k1" and best["value"] == 50.0
    out = tmp_path / "report"
    assert rep.main([str(run), "--out", str(out)]) == 0  # other interval options: reused
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))["results"]["m"]
    c = results["sif_kudge"]
    assert "reused from scores.json" in c["judged_figures"]
    assert c["best"] == scored["models"]["m"]["configs"]["sif_kudge"]["best"]
    assert c["sensitivity"] == scored["models"]["m"]["configs"]["sif_kudge"]["sensitivity"]

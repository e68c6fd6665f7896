"""The lmms-eval task package (koala/integrations/lmms_eval/) and the importer of its logs
(koala-bench import lmms-eval): the shipped YAML files are the generated ones, the aggregations
are koala-bench's rules (corpus CER, unparsed answers counted, PA-QA per segment), and an
lmms-eval run of a scripted model on the mini benchmark, imported, scores the same numbers as
the harness reports."""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

import pytest

from koala.integrations.lmms_eval import core, generate
from koala.integrations.lmms_eval_import import read_logs
from koala.score import score_run

PKG = Path(core.__file__).resolve().parent


# ----------------------------------------------------------------------------- the package
def test_shipped_yamls_are_the_generated_ones() -> None:
    assert generate.check(PKG) == [], "run python -m koala.integrations.lmms_eval.generate"


def test_tasks_and_groups_follow_the_registry() -> None:
    tasks = core.lmms_tasks()
    assert tasks["koala_asr_zeroth"] == core.LmmsTask(
        "koala_asr_zeroth", "asr_zeroth", "speech", "asr"
    )
    assert tasks["koala_pa_qa_noisy"].config == "pa_qa_noisy"
    # SCA-QA: one task per condition; the noisy files publish no original speech
    assert tasks["koala_sca_qa_kpop_counterfactual"].condition == "counterfactual"
    assert "koala_sca_qa_kpop_original" in tasks
    assert "koala_sca_qa_kpop_noisy_original" not in tasks
    # a union config is a group of its subsets' tasks, never a task of its own
    assert "koala_sqa" not in tasks
    groups = core.lmms_groups()
    assert groups["koala_sqa"] == ("koala_sqa_click", "koala_sqa_kobest_boolq", "koala_sqa_kcsat")
    assert groups["koala_sca_qa_kpop"] == (
        "koala_sca_qa_kpop_text",
        "koala_sca_qa_kpop_counterfactual",
        "koala_sca_qa_kpop_original",
    )
    assert "koala_sca_qa_kpop_noisy" in groups["koala_sca_qa_noisy"]
    files = generate.generate_files("/data/export")
    assert 'dataset_path: "/data/export"' in files[generate.TEMPLATE]
    assert "dataset_name: sqa_click\n" in files["koala_sqa_click.yaml"]
    assert "weight_by_size: true" in files["koala_sqa.yaml"]  # accuracy averages by size
    assert "aggregate_metric_list" not in files["koala_asr.yaml"]  # CER does not


def rec(task: str, rid: str, prediction: str, ref: dict, condition: str = "speech") -> dict:
    return {
        "task": task,
        "config": "x",
        "condition": condition,
        "id": rid,
        "ref": ref,
        "status": "ok",
        "prediction": prediction,
        "shown_labels": ref.get("choice_labels"),
    }


def test_cer_is_corpus_cer_not_a_mean_of_item_cers() -> None:
    # item 1: 0 edits of 4 characters; item 2: 2 deletions of 2: corpus 2/6, mean of items 1/2
    items = [
        rec("asr", "1", "가나다라", {"text": "가나다라"}),
        rec("asr", "2", "", {"text": "마바"}),
    ]
    assert core.aggregate("cer")(items) == pytest.approx(2 / 6)


MC = {"question": "", "choices": ["가", "나", "다", "라"], "choice_labels": ["A", "B", "C", "D"]}


def test_choice_accuracy_counts_unparsed_answers() -> None:
    items = [
        rec("sqa", "1", "(A)", MC | {"answer": "A"}),  # right
        rec("sqa", "2", "(C)", MC | {"answer": "B"}),  # wrong
        rec("sqa", "3", "모르겠어요", MC | {"answer": "D"}),  # no label: unparsed, wrong
    ]
    assert core.aggregate("accuracy")(items) == pytest.approx(1 / 3)
    assert core.aggregate("unparsed")(items) == 1


def test_sca_qa_counterfactual_condition_is_scored_against_the_counterfactual_answer() -> None:
    ref = MC | {"answer": "A", "counterfactual_answer": "C"}
    items = [rec("sca_qa", "1", "(C)", ref, "counterfactual")]
    assert core.aggregate("accuracy")(items) == 1.0
    assert core.aggregate("accuracy")([rec("sca_qa", "1", "(C)", ref, "text")]) == 0.0


def test_pa_qa_accuracy_per_evidence_segment() -> None:
    # evidence at .1 (front) answered right, at .9 (late) wrong, at .3 and .8 (front-middle and
    # late: counted once in each) right
    def item(rid: str, pred: str, positions: list[float]) -> dict:
        return rec("pa_qa", rid, pred, MC | {"answer": "A", "evidence_positions": positions})

    items = [item("1", "(A)", [0.1]), item("2", "(B)", [0.9]), item("3", "(A)", [0.3, 0.8])]
    assert core.aggregate("accuracy")(items) == pytest.approx(2 / 3)
    assert core.aggregate("accuracy_front")(items) == 1.0
    assert core.aggregate("accuracy_front_middle")(items) == 1.0
    assert core.aggregate("accuracy_late")(items) == pytest.approx(1 / 2)
    assert math.isnan(core.aggregate("accuracy_middle_late")(items))  # no item there


def test_sif_without_a_judge_is_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KOALA_JUDGE_URL", raising=False)
    items = [rec("sif", "1", "답", {"instruction": "해 줘", "reference_answer": ""})]
    assert math.isnan(core.aggregate("score")(items))


# ---------------------------------------------------------------------------- the importer
def write_log(
    folder: Path, task: str, records: list[dict], date: str = "2026-01-01T00-00-00"
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{date}_samples_{task}.jsonl", "w", encoding="utf-8") as f:
        for k, r in enumerate(records):
            sample = {"doc_id": k, "resps": [[r["prediction"]]], "accuracy": r, "unparsed": r}
            f.write(json.dumps(sample, ensure_ascii=False) + "\n")
    results = {"model_name": "", "model_source": "scripted", "lmms_eval_version": "0.7.3"}
    (folder / f"{date}_results.json").write_text(json.dumps(results), encoding="utf-8")


def click(rid: str, answer: str, prediction: str) -> dict:
    r = rec("sqa", rid, prediction, MC | {"answer": answer})
    return r | {"config": "sqa_click", "variant": "k1", "subset": "click", "noise": "clean"}


def test_import_reads_one_named_run_of_each_task(tmp_path: Path) -> None:
    logs = tmp_path / "logs" / "scripted"
    write_log(logs, "koala_sqa_click", [click("1", "A", "(B)")], date="2026-01-01T00-00-00")
    write_log(
        logs,
        "koala_sqa_click",
        [click("1", "A", "(A)"), click("2", "B", "?")],
        "2026-02-01T00-00-00",
    )
    with pytest.raises(ValueError, match="several lmms-eval runs answer the same task"):
        read_logs(tmp_path / "logs")
    model, records, source = read_logs(tmp_path / "logs", run="2026-02-01T00-00-00")
    assert model == "scripted"
    assert [r["prediction"] for r in records] == ["(A)", "?"]
    assert records[0]["where"].endswith("2026-02-01T00-00-00_samples_koala_sqa_click.jsonl:1")
    assert source["harness"] == "lmms-eval" and source["version"] == "0.7.3"
    from koala.import_logs import import_logs

    import_logs("lmms-eval", str(tmp_path / "logs"), str(tmp_path / "run"),
                run="2026-02-01T00-00-00")  # fmt: skip
    scores = score_run(tmp_path / "run", confidence=None)
    gen = scores["models"]["scripted"]["configs"]["sqa_click"]["variants"]["k1"]["gen"]
    assert gen["accuracy"] == 0.5 and gen["unparsed"] == 1


def test_import_refuses_a_record_of_another_task(tmp_path: Path) -> None:
    write_log(tmp_path / "m", "koala_sqa_kcsat", [click("1", "A", "(A)")])
    with pytest.raises(
        ValueError, match=r"a record of sqa_click/speech in the log of koala_sqa_kcsat"
    ):
        read_logs(tmp_path)
    with pytest.raises(ValueError, match="not an lmms-eval samples file"):
        read_logs(tmp_path / "m" / "2026-01-01T00-00-00_results.json")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no KoALa-Bench samples file"):
        read_logs(tmp_path / "empty")


# ------------------------------------------------------------ end to end, with lmms-eval
E2E_CONFIGS = ("asr_zeroth", "sqa_click", "sqa_kcsat", "sca_qa_kpop", "pa_qa", "st_tst_common")
E2E_TASKS = (
    "koala_asr_zeroth",
    "koala_sqa_click",
    "koala_sqa_kcsat",
    "koala_sca_qa_kpop",  # the group of its three conditions
    "koala_pa_qa",
    "koala_st_tst_common",
)
ANSWERS: dict[tuple[str, str], str] = {}  # (lmms-eval task, row id) -> the scripted answer


def scripted_answers(rows: dict[str, list[dict]]) -> dict[tuple[str, str], str]:
    """Row i of a set: right (i % 3 == 0), wrong (1) or unreadable (2); ASR drops the last
    character in the second case; ST is right on even rows, empty on odd ones. SCA-QA: both
    rows are answered right from text alone; row 0 follows the counterfactual speech, row 1
    keeps the world-knowledge answer (SCF 1/2, parametric 1/2)."""
    out: dict[tuple[str, str], str] = {}
    for config, rs in rows.items():
        for i, r in enumerate(rs):
            rid = r["id"]
            if config.startswith("asr"):
                out[(f"koala_{config}", rid)] = [r["text"], r["text"][:-1], ""][i % 3]
            elif config.startswith("st"):
                out[(f"koala_{config}", rid)] = r["reference"] if i % 2 == 0 else ""
            elif config.startswith("sca_qa"):
                other = next(
                    x
                    for x in r["choice_labels"]
                    if x not in (r["answer"], r["counterfactual_answer"])
                )
                out[(f"koala_{config}_text", rid)] = f"({r['answer']})"
                cf = r["counterfactual_answer"] if i == 0 else r["answer"]
                out[(f"koala_{config}_counterfactual", rid)] = f"({cf})"
                out[(f"koala_{config}_original", rid)] = f"({[r['answer'], other][i % 2]})"
            else:
                wrong = next(x for x in r["choice_labels"] if x != r["answer"])
                out[(f"koala_{config}", rid)] = [f"({r['answer']})", f"({wrong})", "글쎄요"][i % 3]
    return out


def _model_class():  # defined lazily: lmms-eval is optional
    from lmms_eval.api.model import lmms

    class ScriptedAudioLM(lmms):
        """Answers every request from :data:`ANSWERS`, after checking the audio it is given."""

        def __init__(self, **kwargs) -> None:
            super().__init__()

        @classmethod
        def create_from_arg_string(cls, arg_string, additional_config=None):
            return cls()

        def generate_until(self, requests):
            out = []
            for req in requests:
                ctx, _gen, doc_to_visual, doc_id, task, split = req.args
                doc = self.task_dict[task][split][doc_id]
                (clip,) = doc_to_visual(doc)
                assert clip["sampling_rate"] > 0 and len(clip["array"]) > 0
                assert isinstance(ctx, str) and ctx
                out.append(ANSWERS[(task, doc["id"])])
            return out

        def loglikelihood(self, requests):
            raise NotImplementedError

        def generate_until_multi_round(self, requests):
            raise NotImplementedError

    return ScriptedAudioLM


@pytest.fixture(scope="module")
def mini_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("lmms_eval", reason="lmms-eval is not installed")
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (the mini benchmark's speech)")
    pytest.importorskip("soundfile")
    from koala.mini import build_mini_tree
    from koala.prepare import prepare

    root = tmp_path_factory.mktemp("lmms_mini")
    tree = build_mini_tree(root / "src")
    prepare(tree, list(E2E_CONFIGS), cache_dir=root / "cache")
    return root / "cache"


def test_lmms_eval_run_and_import_agree(
    mini_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("lmms_eval", reason="lmms-eval is not installed")
    import datasets
    from lmms_eval.__main__ import cli_evaluate
    from lmms_eval.api.task import _resolve_hf_datasets_cache_dir
    from lmms_eval.models import MODEL_REGISTRY_V2
    from lmms_eval.models.registry_v2 import ModelManifest

    monkeypatch.setenv("HF_DATASETS_CACHE", str(mini_cache))
    _resolve_hf_datasets_cache_dir.cache_clear()  # lmms-eval resolves it once per process
    rows = {
        c: list(
            datasets.load_dataset(
                "koala-bench", c, split="test", cache_dir=str(mini_cache)
            ).remove_columns([k for k in ("audio", "original_audio")])
        )
        if c.startswith("sca")
        else list(
            datasets.load_dataset(
                "koala-bench", c, split="test", cache_dir=str(mini_cache)
            ).remove_columns("audio")
        )
        for c in E2E_CONFIGS
    }
    ANSWERS.clear()
    ANSWERS.update(scripted_answers(rows))
    globals()["ScriptedAudioLM"] = _model_class()
    MODEL_REGISTRY_V2.register_manifest(
        ModelManifest(model_id="koala_scripted", simple_class_path=f"{__name__}.ScriptedAudioLM"),
        overwrite=True,
    )
    monkeypatch.setattr(sys, "argv", ["lmms-eval"])  # cli_evaluate parses its defaults
    args = argparse.Namespace(
        model="koala_scripted",
        model_args="",
        tasks=",".join(E2E_TASKS),
        include_path=str(PKG),
        log_samples=True,
        output_path=str(tmp_path / "logs"),
        batch_size=1,
        verbosity="WARNING",
    )
    cli_evaluate(args)
    # what the harness reports: the results file beside the per-sample logs
    (results_file,) = (tmp_path / "logs").rglob("*_results.json")
    harness = json.loads(results_file.read_text(encoding="utf-8"))["results"]

    from koala.import_logs import import_logs

    got = import_logs("lmms-eval", str(tmp_path / "logs"), str(tmp_path / "run"))
    assert got["configs"] == sorted(E2E_CONFIGS)
    scores = score_run(tmp_path / "run", st_metrics=("bleu",), confidence=None)
    configs = scores["models"]["koala_scripted"]["configs"]

    def gen(config: str) -> dict:
        (variant,) = configs[config]["variants"].values()  # one prompt variant was asked
        return variant["gen"]

    assert harness["koala_asr_zeroth"]["cer,none"] == gen("asr_zeroth")["cer"] > 0
    assert harness["koala_st_tst_common"]["bleu,none"] == gen("st_tst_common")["bleu"]
    for c in ("sqa_click", "sqa_kcsat", "pa_qa"):
        assert harness[f"koala_{c}"]["accuracy,none"] == gen(c)["accuracy"], c
        assert harness[f"koala_{c}"]["unparsed,none"] == gen(c)["unparsed"], c
    for seg, key in (("front", "accuracy_front"), ("late", "accuracy_late")):
        mine, theirs = gen("pa_qa")["segment_accuracy"][seg], harness["koala_pa_qa"][f"{key},none"]
        assert mine == theirs or (math.isnan(mine) and math.isnan(theirs))
    sca = gen("sca_qa_kpop")
    for cond in ("text", "counterfactual", "original"):
        assert harness[f"koala_sca_qa_kpop_{cond}"]["accuracy,none"] == sca[f"{cond}_accuracy"]
    # SCF only koala-bench computes, from the three conditions' logs: by the script, 1/2
    assert sca["text_accuracy"] == 1.0
    assert sca["scf"] == 0.5 and sca["parametric_proportion"] == 0.5
    # the hand-worked figures of the script: every third MC answer right
    n = len(rows["sqa_click"])
    assert gen("sqa_click")["accuracy"] == pytest.approx(len(range(0, n, 3)) / n)

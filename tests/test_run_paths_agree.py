"""Issue 9's guard on the mini benchmark: reading an export where it lies (ParquetRows, the
runner's path for a local export) and loading it through ``datasets`` (the path for a Hub id
or a caller's loader) ask the same requests, byte for byte, and give the same records and
scores, under both protocols."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from openai_server import Reply, ScriptedServer, completion

from koala import mini
from koala.data import load_config
from koala.export import export
from koala.models import load_model
from koala.runner import PREDICTIONS, run_model
from koala.score import score_run

HAVE_ESPEAK = shutil.which("espeak-ng") is not None
CONFIGS = ["asr_zeroth", "sqa_click", "sca_qa_kpop", "pa_qa", "st_tst_common"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    if not HAVE_ESPEAK:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    root = tmp_path_factory.mktemp("paths")
    tree = mini.build_mini_tree(root / "mini")
    export(tree, root / "data", CONFIGS)
    return root / "data"


def answer(body: dict, n: int) -> Reply:
    """A deterministic answer that depends on every byte of the request (audio included)."""
    k = int(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest(), 16)
    letter = "ABCD"[k % 4]
    text = [f"({letter})", f"정답은 {letter}", "오늘 날씨가 좋습니다", letter][k // 4 % 4]
    return Reply(body=completion(text))


def records(run: Path) -> dict[tuple, dict]:
    out = {}
    for line in (run / PREDICTIONS).read_text("utf-8").splitlines():
        r = json.loads(line)
        r.pop("seconds", None)
        r.pop("meta", None)  # latency of the call
        out[(r["config"], r["variant"], r["condition"], r["id"])] = r
    return out


@pytest.mark.parametrize("protocol", ["koala", "published"])
def test_the_export_read_in_place_and_through_datasets_give_the_same_run(
    exported: Path, tmp_path: Path, protocol: str
) -> None:
    runs, bodies = {}, {}
    for how in ("in_place", "datasets"):
        loader = None if how == "in_place" else (lambda c: load_config(str(exported), c))
        with ScriptedServer(answer) as srv:
            spec = f"openai:m@{srv.url}?retries=0"
            stats = run_model(
                load_model(spec), CONFIGS, tmp_path / how, data=str(exported), loader=loader,
                spec=spec, protocol=protocol, progress=False, concurrency=1,
            )  # fmt: skip
            bodies[how] = sorted(json.dumps(b, sort_keys=True) for b in srv.requests)
        assert not stats.config_errors
        runs[how] = records(tmp_path / how)
    assert bodies["in_place"] == bodies["datasets"]  # every request, audio included
    assert len(runs["in_place"]) == len(bodies["in_place"]) > 50
    assert runs["in_place"] == runs["datasets"]  # fingerprints, answers, refs, statuses
    scores = {
        how: score_run(tmp_path / how, protocol=protocol, st_metrics=["bleu"], n_resamples=200)
        for how in runs
    }
    for s in scores.values():
        s.pop("run_dir", None)
    a, b = (json.dumps(scores[h], sort_keys=True, default=str) for h in runs)
    assert a.replace(str(tmp_path / "in_place"), "") == b.replace(str(tmp_path / "datasets"), "")

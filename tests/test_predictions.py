"""The predictions format (koala.predictions): fingerprints, reading records of other format
versions and malformed records, the store's losses, the plan and which records are current."""

from __future__ import annotations

import errno
import hashlib
import json
from collections import Counter

import pytest

from koala.predictions import (
    FORMAT_VERSION,
    ConfigPlan,
    PredictionStore,
    WriteError,
    current_records,
    fingerprint,
    load_plan,
    read_predictions,
    record_key,
    write_plan,
)


def rec(rid="a1", **over):
    """A well-formed record of this format version."""
    r = {
        "format": 2,
        "model": "m",
        "config": "asr_zeroth",
        "task": "asr",
        "variant": "k1",
        "condition": "speech",
        "id": rid,
        "subset": "zeroth",
        "noise": "clean",
        "ref": {"text": "안녕"},
        "fingerprint": "fp-" + rid,
        "status": "ok",
        "prediction": "안녕",
        "logprobs": None,
        "error": None,
    }
    r.update(over)
    return r


def test_format_version_is_2():
    assert FORMAT_VERSION == 2


def test_fingerprint_is_the_sha256_of_canonical_json():
    # sorted keys, no spaces, UTF-8 text as is
    expected = hashlib.sha256('{"a":"가","b":[1,null]}'.encode()).hexdigest()
    assert fingerprint({"b": [1, None], "a": "가"}) == expected
    assert fingerprint({"a": "가", "b": [1, None]}) == expected
    assert fingerprint({"a": "나", "b": [1, None]}) != expected


def test_other_versions_and_malformed_records_are_counted_not_returned(tmp_path):
    lines = [
        json.dumps(rec("a1")),  # 1 good
        json.dumps({k: v for k, v in rec("a2").items() if k != "format"}),  # 2 no format
        json.dumps(rec("a3", format=1)),  # 3 version 1
        json.dumps(rec("a4", format=3)),  # 4 version 3
        json.dumps(rec("a5", status="done")),  # 5 unknown status
        json.dumps(rec("a6", prediction=5)),  # 6 prediction not a string
        json.dumps(rec("a7", ref=["x"])),  # 7 ref not a mapping
        json.dumps({k: v for k, v in rec("a8").items() if k != "task"}),  # 8 no task
        json.dumps({k: v for k, v in rec("a9").items() if k != "id"}),  # 9 no id
        json.dumps(rec("b1", prediction=None)),  # 10 an ok record without its answer
        json.dumps([1, 2]),  # 11 not an object
        "{not json",  # 12 corrupt
        json.dumps(rec("a1", status="failed", prediction=None, error="x", ref="bad")),  # 13
        json.dumps(rec("b2", status="failed", prediction=None, error="boom")),  # 14 good
        json.dumps(rec("b3", shown_labels=["A", 2])),  # 15 a label not a string
    ]
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + '\n{"model": "m", "conf', encoding="utf-8")
    recs, st = read_predictions(path)
    assert sorted(k[4] for k in recs) == ["a1", "b2"]
    # line 13 (same key as line 1, malformed) does not replace the good record
    assert recs[("m", "asr_zeroth", "k1", "speech", "a1")]["status"] == "ok"
    assert st.other_versions == Counter({"none": 1, "1": 1, "3": 1})
    assert [(line, f) for line, f, _ in st.malformed] == [
        (5, "status"),
        (6, "prediction"),
        (7, "ref"),
        (8, "task"),
        (9, "id"),
        (10, "prediction"),
        (11, "(record)"),
        (13, "ref"),
        (15, "shown_labels"),
    ]
    assert "done" in st.malformed[0][2] and "mapping" in st.malformed[2][2]
    assert st.corrupt == [12] and st.truncated_tail
    assert st.records == 2 and st.lines == 15 and st.duplicates == 0


class FullDisk(PredictionStore):
    """A store whose disk fills up: every write after the first ``ok`` batches fails."""

    def __init__(self, path, ok=1):
        super().__init__(path)
        self.ok = ok

    def _write_batch(self, blob):
        if self.ok <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.ok -= 1
        super()._write_batch(blob)


def test_a_failed_store_says_what_was_lost(tmp_path):
    path = tmp_path / "p.jsonl"
    store = FullDisk(path)
    store.open()
    store.put(rec("a1"))
    store.drain()
    assert (store.committed, store.lost, store.failed) == (1, 0, False)
    for rid in ("a2", "a3", "a4"):
        store.put(rec(rid))
    with pytest.raises(WriteError, match="cannot write predictions"):
        store.drain()
    assert store.failed and store.error.errno == errno.ENOSPC
    assert (store.submitted, store.committed, store.lost) == (4, 1, 3)
    with pytest.raises(WriteError):
        store.put(rec("a5"))  # refused, and counted lost
    assert store.lost == 4
    store.close()
    recs, _ = read_predictions(path)
    assert list(recs) == [record_key(rec("a1"))]  # what was committed is intact


def test_plan_round_trip_and_the_latest_plan_replaces_a_config(tmp_path):
    k1 = ("m", "sqa_click", "k1", "speech", "q1")
    k2 = ("m", "sqa_click", "k2", "speech", "q1")
    plan = ConfigPlan("sqa_click", "sqa", 2, {k1: "f1", k2: "f2"}, {"protocol": "koala"})
    path = write_plan(tmp_path, "sqa_click", plan)
    assert path == tmp_path / "plan" / "sqa_click.json"
    write_plan(tmp_path, "asr_zeroth", ConfigPlan("asr_zeroth", "asr", 0, {}, {}))
    assert load_plan(tmp_path) == {
        "sqa_click": plan,
        "asr_zeroth": ConfigPlan("asr_zeroth", "asr", 0, {}, {}),
    }
    newer = ConfigPlan("sqa_click", "sqa", 1, {k1: "f9"}, {"protocol": "published"})
    write_plan(tmp_path, "sqa_click", newer)
    assert load_plan(tmp_path)["sqa_click"] == newer
    assert sorted(p.name for p in (tmp_path / "plan").iterdir()) == [
        "asr_zeroth.json",
        "sqa_click.json",
    ]  # no temporary file left behind
    with pytest.raises(ValueError, match="of config 'sqa_click'"):
        write_plan(tmp_path, "asr_zeroth", newer)
    assert load_plan(tmp_path / "nothing") == {}
    (tmp_path / "plan" / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_plan(tmp_path)


def test_current_records_keeps_the_planned_and_counts_the_rest_by_reason():
    cur = rec("a1", fingerprint="f1")
    stale = rec("a2", fingerprint="old")
    other_variant = rec("a1", variant="k9", fingerprint="f1")
    other_model = rec("a1", model="m2", fingerprint="f1")
    no_plan = rec("q1", config="sqa_click", task="sqa", fingerprint="f1")
    records = {record_key(r): r for r in (cur, stale, other_variant, other_model, no_plan)}
    plan = ConfigPlan(
        "asr_zeroth",
        "asr",
        3,
        {
            ("m", "asr_zeroth", "k1", "speech", "a1"): "f1",
            ("m", "asr_zeroth", "k1", "speech", "a2"): "f2",
            ("m", "asr_zeroth", "k1", "speech", "a3"): "f3",  # never answered
        },
    )
    plan_b = ConfigPlan("asr_other", "asr", 0, {})
    current, ignored = current_records(records, {"asr_zeroth": plan, "asr_other": plan_b})
    assert current == {"asr_zeroth": [cur], "asr_other": []}
    assert ignored == {
        "asr_zeroth": Counter({"stale: fingerprint differs": 1, "not in the plan": 2}),
        "asr_other": Counter(),
        "sqa_click": Counter({"config not in the run's plan": 1}),
    }

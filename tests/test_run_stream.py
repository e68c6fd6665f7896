"""What a run costs, not what it scores (issue 9): stored 16 kHz WAV goes to an HTTP model
as it is stored (never decoded or re-encoded), the prompt variants of a clip share one
encoding, answered clips are let go, and a local export is read where it lies (nothing copied
into the datasets cache)."""

from __future__ import annotations

import base64
import gc
import io
import json
import struct
import weakref
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from openai_server import Reply, ScriptedServer, completion
from test_runner import asr_rows, make_export, sca_rows, sqa_rows, tone, wav

from koala.data import ParquetRows, decode_audio, load_config, open_rows
from koala.models import Answer, Audio, ModelBase, load_model
from koala.runner import PREDICTIONS, run_model

SR = 16_000


def pcm16(samples: np.ndarray, sr: int = SR, **kw) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format=kw.pop("format", "WAV"), subtype=kw.pop("subtype", "PCM_16"))
    return buf.getvalue()


def edge_samples() -> np.ndarray:
    """Full scale both ways, zero, one LSB and noise: the values a re-quantisation moves."""
    rng = np.random.default_rng(0)
    ints = np.concatenate(
        [[-32768, 32767, 0, 1, -1, 16384, -16385], rng.integers(-32768, 32768, 993)]
    ).astype(np.int16)
    return ints


# ------------------------------------------------------------------ Audio from stored WAV


def test_a_stored_wav_gives_soundfiles_samples_and_its_own_bytes():
    ints = edge_samples()
    data = pcm16(ints)
    clip = Audio.from_wav(data)
    assert clip is not None and clip.stored
    assert clip.sampling_rate == SR and clip.duration == pytest.approx(1000 / SR)
    expected, sr = sf.read(io.BytesIO(data), dtype="float32")
    assert sr == SR and clip.array.dtype == np.float32
    np.testing.assert_array_equal(clip.array, expected)
    np.testing.assert_array_equal(clip.array * 32768, ints.astype(np.float32))  # exact
    assert clip.wav() == data  # sent as stored: not one sample moved
    assert base64.b64decode(clip.wav_base64()) == data and clip.wav_base64() is clip.wav_base64()
    # another rate is resampled and encoded (16-bit mono WAV at that rate)
    info = sf.info(io.BytesIO(clip.wav(8000)))
    assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
    assert info.frames == 500


def test_the_old_round_trip_moved_samples_the_stored_bytes_do_not():
    """What sending the stored bytes fixes: decoding to float (/32768) and encoding again
    (x 32767, rounded) moves every sample above half scale by one step."""
    from koala.audio import wav_bytes

    ints = edge_samples()
    clip = Audio.from_wav(pcm16(ints))
    again = np.frombuffer(wav_bytes(clip.array)[44:], "<i2")
    moved = again != ints
    assert moved.any() and np.abs(again.astype(int) - ints).max() == 1
    assert np.array_equal(moved, np.abs(ints.astype(int)) > 16384)
    assert np.array_equal(np.frombuffer(clip.wav()[44:], "<i2"), ints)


def test_wav_headers_the_reader_accepts_and_refuses():
    ints = edge_samples()[:100]
    ext = Audio.from_wav(pcm16(ints, format="WAVEX"))  # WAVE_FORMAT_EXTENSIBLE, PCM
    assert ext is not None and np.array_equal(ext.array * 32768, ints.astype(np.float32))
    # a LIST chunk of odd length (padded) before the data
    plain = pcm16(ints)
    extra = b"LIST" + struct.pack("<I", 5) + b"INFOx" + b"\0"
    body = plain[12:36] + extra + plain[36:]
    listed = b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WAVE" + body
    got = Audio.from_wav(listed)
    assert got is not None and got.duration == pytest.approx(100 / SR)
    np.testing.assert_array_equal(got.array, sf.read(io.BytesIO(listed), dtype="float32")[0])
    # anything else is left to soundfile
    stereo = pcm16(np.stack([ints, ints], axis=1))
    for refused in (
        stereo,
        pcm16(ints, subtype="PCM_24"),
        pcm16(ints.astype(np.float32) / 32768, subtype="FLOAT"),
        plain[:-10],  # the data chunk says more than the file holds
        b"not a wav file at all",
    ):
        assert Audio.from_wav(refused) is None
    # decode_audio: a stored PCM16 mono WAV stays stored, the rest is decoded as before
    assert decode_audio({"bytes": plain, "path": None}, "here").stored
    other = decode_audio({"bytes": stereo, "path": None}, "here")
    assert not other.stored and np.allclose(other.array, ints / 32768)


# ------------------------------------------------------------------ the runner over HTTP


def _audio_of(body: dict) -> bytes:
    parts = body["messages"][-1]["content"]
    return base64.b64decode(
        next(p for p in parts if p["type"] == "input_audio")["input_audio"]["data"]
    )


def _stored(export: Path, config: str, column: str = "audio") -> dict[str, bytes]:
    table = pq.read_table(next((export / "data" / config).glob("*.parquet")))
    return {
        r["id"]: r[column]["bytes"]
        for r in table.select(["id", column]).to_pylist()
        if r[column] is not None
    }


def _run_answering_a(export: Path, configs: list[str], out: Path, concurrency: int):
    """Run an ``openai:`` model over ``configs`` of ``export`` against a local server that
    answers "(A)" to everything; the run's stats and the request bodies the server got."""
    with ScriptedServer(lambda body, n: Reply(body=completion("(A)"))) as srv:
        spec = f"openai:m@{srv.url}?retries=0"
        stats = run_model(
            load_model(spec),
            configs,
            out,
            data=str(export),
            spec=spec,
            progress=False,
            concurrency=concurrency,
        )
        return stats, list(srv.requests)


def test_an_http_model_gets_the_stored_bytes_and_nothing_is_decoded(tmp_path, monkeypatch):
    export = make_export(tmp_path / "data", {"sqa_click": sqa_rows(5), "asr_zeroth": asr_rows(3)})

    def no_decode(*a, **k):
        raise AssertionError("a clip was decoded")

    monkeypatch.setattr(Audio, "array", property(no_decode))
    monkeypatch.setattr(sf, "read", no_decode)
    stats, bodies = _run_answering_a(export, ["sqa_click", "asr_zeroth"], tmp_path / "run", 4)
    recs = [json.loads(line) for line in (tmp_path / "run" / PREDICTIONS).open()]
    assert not stats.config_errors and {r["status"] for r in recs} == {"ok"}
    assert len(bodies) == len(recs) > 8  # every variant asked
    stored = {**_stored(export, "sqa_click"), **_stored(export, "asr_zeroth")}
    sent = set()
    for body in bodies:
        audio = _audio_of(body)
        match = [rid for rid, b in stored.items() if b == audio]
        assert len(match) == 1, "a request's audio is not one row's stored bytes"
        sent.add(match[0])
    assert sent == set(stored)
    # the records still say how long each clip is (from the WAV header)
    assert {r["audio_seconds"] for r in recs} == {0.25}


def test_the_prompt_variants_of_a_clip_share_one_encoding(tmp_path, monkeypatch):
    import koala.audio

    # clips stored at 8 kHz must be resampled and encoded: once per clip, not per request
    rows = sqa_rows(4)
    for r in rows:
        r["audio"] = wav(r["audio"][::2], 8000)
    export = make_export(tmp_path / "data", {"sqa_click": rows})
    import pybase64

    encoded, b64 = [], []
    real_encode, real_b64 = koala.audio.wav_bytes, pybase64.b64encode
    monkeypatch.setattr(
        koala.audio, "wav_bytes", lambda *a, **k: encoded.append(1) or real_encode(*a, **k)
    )
    monkeypatch.setattr(pybase64, "b64encode", lambda b: b64.append(len(b)) or real_b64(b))
    n_requests = len(_run_answering_a(export, ["sqa_click"], tmp_path / "run", 2)[1])
    assert n_requests >= 2 * 4  # several variants per clip
    assert len(encoded) == 4 and len(b64) == 4


class _Watching(ModelBase):
    """Answers at once and keeps a weak reference to every clip it was sent."""

    name = "watching"

    def __init__(self) -> None:
        self.seen: list[weakref.ref] = []
        self.alive_early: list[int] = []

    async def aanswer(self, request):
        self.seen.append(weakref.ref(request.audio))
        if len(self.seen) % 20 == 0:
            gc.collect()
            early = self.seen[: len(self.seen) - 60]
            self.alive_early.append(sum(r() is not None for r in early))
        return Answer("(A)", None, {})


def test_answered_clips_are_let_go_before_the_config_ends(tmp_path):
    export = make_export(tmp_path / "data", {"sqa_click": sqa_rows(60)})
    model = _Watching()
    run_model(
        model, ["sqa_click"], tmp_path / "run", data=str(export), progress=False, concurrency=2
    )
    assert len(model.seen) >= 120 and model.alive_early  # several variants, checked often
    # clips answered 60 requests ago are gone (the plan used to hold every clip of the config)
    assert max(model.alive_early) == 0


# ------------------------------------------------------------------ reading the export


def test_a_local_export_is_read_where_it_lies(tmp_path, monkeypatch):
    import datasets

    cache = tmp_path / "hf_cache"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    export = make_export(tmp_path / "data", {"sca_qa_kpop": sca_rows(5)})
    rows = open_rows(str(export), "sca_qa_kpop")
    assert isinstance(rows, ParquetRows) and len(rows) == 5
    assert rows.audio_columns == ["audio", "original_audio"]
    run_model(_Watching(), ["sca_qa_kpop"], tmp_path / "run", data=str(export), progress=False)
    assert not list(cache.rglob("*.arrow")), "the run copied the export into the datasets cache"
    # the same values datasets gives for the same files (audio undecoded)
    ds = load_config(str(export), "sca_qa_kpop")
    assert list(rows.iter_columns(ds.column_names)) == [dict(r) for r in ds]
    assert rows.row(3, ["id", "original_audio"]) == {"id": "s3", "original_audio": None}
    assert rows.row(2, ["original_audio"])["original_audio"]["bytes"] == wav(tone(302))["bytes"]
    assert [
        r["id"] for r in open_rows(str(export), "sca_qa_kpop", limit=2).iter_columns(["id"])
    ] == ["s0", "s1"]


def test_rows_across_files_and_row_groups(tmp_path):
    import pyarrow as pa

    paths = []
    for k in range(2):
        table = pa.table({"id": [f"r{k}{i}" for i in range(5)], "x": list(range(5))})
        paths.append(str(tmp_path / f"part{k}.parquet"))
        pq.write_table(table, paths[-1], row_group_size=2)  # groups of 2, 2, 1 per file
    rows = ParquetRows(paths, limit=8)
    assert len(rows) == 8
    ids = [r["id"] for r in rows.iter_columns(["id"])]
    assert ids == ["r00", "r01", "r02", "r03", "r04", "r10", "r11", "r12"]
    for index in (7, 0, 5, 4, 2, 6):  # any order
        assert rows.row(index, ["id", "x"]) == {"id": ids[index], "x": int(ids[index][2])}
    with pytest.raises(IndexError):
        rows.row(8, ["id"])
    pq.write_table(pa.table({"other": [1]}), str(tmp_path / "odd.parquet"))
    with pytest.raises(ValueError, match=r"odd\.parquet: columns"):
        ParquetRows([paths[0], str(tmp_path / "odd.parquet")])


def test_a_body_with_spliced_audio_is_the_json_of_the_whole_body():
    from koala.openai_client import encode_body

    b64 = base64.b64encode(pcm16(edge_samples()))
    part = {"type": "input_audio", "input_audio": {"data": "PLACE", "format": "wav"}}
    body = {"model": "m", "messages": [{"role": "user", "content": [part]}], "t": "한국어"}
    data = encode_body(body, {"PLACE": b64})
    whole = json.loads(data)
    assert whole["messages"][0]["content"][0]["input_audio"]["data"] == b64.decode()
    assert whole["t"] == "한국어" and "한국어".encode() in data  # UTF-8, not \\u escapes
    assert encode_body(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8"
    )
    with pytest.raises(ValueError, match="exactly once"):
        encode_body(body, {"ABSENT": b64})


def test_a_body_the_server_stops_reading_times_out(tmp_path):
    """aiohttp has no write time-out: the client bounds the upload itself."""
    import asyncio
    import socket

    from koala.openai_client import ChatError, OpenAIClient

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)  # accepts the connection, never reads a byte
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    big = b"A" * (64 * 2**20)  # more than the kernel's buffers hold

    async def ask() -> None:
        async with OpenAIClient(url, "m", timeout=0.5, max_retries=0) as client:
            await client.achat([{"role": "user", "content": "AUDIO"}], raw={"AUDIO": big})

    try:
        with pytest.raises(ChatError, match="timed out"):
            asyncio.run(asyncio.wait_for(ask(), 20))  # a hang fails instead of blocking
    finally:
        listener.close()


# ------------------------------------------------------------------ the reader's read-ahead


def test_read_ahead_hands_over_blocks_and_waits_for_room():
    import threading

    from koala.runner import _ReadAhead

    room, stop = _ReadAhead(10), threading.Event()
    assert room.block == 5
    assert room.reserve(5, stop) and room.reserve(5, stop) and room.held == 10
    passed = threading.Event()
    reader = threading.Thread(target=lambda: room.reserve(5, stop) and passed.set())
    reader.start()
    reader.join(0.3)
    assert reader.is_alive() and not passed.is_set()  # full: the block waits
    for _ in range(4):
        room.take()
    reader.join(0.3)
    assert not passed.is_set()  # 6 held + 5 would overfill
    room.take()  # 5 held + 5 fit
    reader.join(5)
    assert passed.is_set() and room.held == 10
    # a block larger than the limit goes when nothing is held; a stopped run gives up
    empty = _ReadAhead(4)
    assert empty.reserve(9, stop) and empty.held == 9
    stop.set()
    assert empty.reserve(1, stop) is False


def _clips_alive() -> int:
    gc.collect()
    return sum(type(o) is Audio for o in gc.get_objects())


class _Slow(ModelBase):
    """Answers after a pause and counts, at every tenth call, the clips alive in the process
    beyond the ``before`` there were before the run (other tests may keep some)."""

    name = "slow"

    def __init__(self, before: int) -> None:
        self.before = before
        self.alive: list[int] = []

    async def aanswer(self, request):
        import asyncio

        self.alive.append(_clips_alive() - self.before if len(self.alive) % 10 == 0 else 0)
        await asyncio.sleep(0.005)
        return Answer("(A)", None, {})


def test_the_reader_holds_at_most_the_read_ahead_of_a_slow_model(tmp_path):
    export = make_export(tmp_path / "data", {"sqa_click": sqa_rows(80)})
    model = _Slow(_clips_alive())
    run_model(
        model, ["sqa_click"], tmp_path / "run", data=str(export), progress=False, concurrency=2
    )
    assert len(model.alive) >= 160
    # read-ahead 2 + 8 = 10 requests and 2 in flight: at most 12 clips, of the 80 rows
    assert 0 < max(model.alive) <= 12

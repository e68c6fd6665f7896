"""``koala-bench prepare`` / ``metrics install`` / ``publish``: the names users type resolve
offline (datasets' and evaluate's cache fallbacks), and uploads reach a Hub stand-in."""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset
from source_trees import write_all

from koala import metrics_install, prepare, publish
from koala.builder import UnknownConfigError
from koala.builder.features import features_for
from koala.export import CARD_MARKER, export

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ["pa_qa", "pa_qa_noisy", "sqa"]  # a clean, a _noisy and a union config


def cli(module, *argv: str) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(list(argv)))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory):
    base = tmp_path_factory.mktemp("prepare")
    manifest = write_all(base / "src", external=False)
    cache = base / "hf_datasets"
    result = prepare.prepare(base / "src", CONFIGS, cache_dir=cache)
    export(base / "src", base / "parquet", CONFIGS)
    return base, manifest, cache, result


def test_prepared_configs_load_by_name_from_any_folder_like_the_export(
    prepared, tmp_path: Path, monkeypatch
) -> None:
    base, manifest, cache, _ = prepared
    monkeypatch.chdir(tmp_path)  # nothing named koala-bench here
    for name, task in (("pa_qa", "pa_qa"), ("pa_qa_noisy", "pa_qa"), ("sqa", "sqa")):
        ds = load_dataset("koala-bench", name, split="test", cache_dir=str(cache))
        ref = load_dataset(
            str(base / "parquet"), name, split="test", cache_dir=str(base / "parquet_cache")
        )
        assert ds["id"] == list(manifest[name]), name  # the rows source_trees wrote, in order
        assert ds.features == features_for(task) == ref.features, name
        for got, want in zip(ds, ref, strict=True):
            a, b = got.pop("audio"), want.pop("audio")
            assert got == want, (name, got["id"])
            assert a["sampling_rate"] == b["sampling_rate"] == 16_000
            assert (a["array"] == b["array"]).all(), (name, got["id"])
    noisy = load_dataset("koala-bench", "pa_qa_noisy", split="test", cache_dir=str(cache))
    assert set(noisy["noise"]) == {"noisy"}


def test_a_union_config_links_its_subsets_files_instead_of_copying(prepared) -> None:
    _, _, _, result = prepared
    subsets = ("sqa_click", "sqa_kobest_boolq", "sqa_kcsat")
    assert result.rows["sqa"] == 8 == sum(result.rows[m] for m in subsets)  # 3 + 2 + 3 rows
    union = sorted(result.folders["sqa"].glob("*.arrow"))
    members = [next(result.folders[m].glob("*.arrow")) for m in subsets]
    assert [f.stat().st_ino for f in union] == [f.stat().st_ino for f in members]


def test_without_a_config_or_with_an_unknown_one_the_configs_are_listed(prepared) -> None:
    _, _, cache, _ = prepared
    with pytest.raises(ValueError, match="multiple 'koala-bench' configurations") as exc:
        load_dataset("koala-bench", cache_dir=str(cache))
    for name in ("pa_qa", "pa_qa_noisy", "sqa", "sqa_click"):
        assert name in str(exc.value)
    with pytest.raises(ValueError, match="Available configs in the cache") as exc:
        load_dataset("koala-bench", "pa_qb", cache_dir=str(cache))
    assert "'pa_qa'" in str(exc.value)
    with pytest.raises(UnknownConfigError, match=r"did you mean 'pa_qa'.*available configs: "):
        prepare.prepare(prepared[0] / "src", ["pa_qb"], cache_dir=cache)
    with pytest.raises(UnknownConfigError, match=r"available configs: .*sqa_click"):
        prepare.check_prepared("nope", cache_dir=cache)


def test_data_from_another_package_version_is_named_and_replaced(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    write_all(src := tmp_path / "src", external=False)
    cache = tmp_path / "cache"
    monkeypatch.setattr(prepare, "_version", lambda: "0.0.9")
    old = prepare.prepare(src, ["pa_qa"], cache_dir=cache).folders["pa_qa"]
    monkeypatch.setattr(prepare, "_version", lambda: "0.2.0")
    with pytest.raises(prepare.PreparedDatasetError, match=r"koala-bench 0\.0\.9.*0\.2\.0"):
        prepare.check_prepared("pa_qa", cache_dir=cache)
    assert cli(prepare, "--check", "pa_qa", "--cache-dir", str(cache)) == prepare.NOT_PREPARED
    assert "prepared by koala-bench 0.0.9" in capsys.readouterr().err
    new = prepare.prepare(src, ["pa_qa"], cache_dir=cache)
    assert new.replaced == [old] and not old.exists()
    assert prepare.check_prepared("pa_qa", cache_dir=cache) == new.folders["pa_qa"]
    assert cli(prepare, "--check", "--cache-dir", str(cache)) == 0
    with pytest.raises(prepare.PreparedDatasetError, match=r"'sqa' .* not prepared.*pa_qa"):
        prepare.check_prepared("sqa", cache_dir=cache)


def test_prepare_cli_refuses_an_unknown_config_with_the_list(tmp_path: Path, capsys) -> None:
    write_all(src := tmp_path / "src", external=False)
    code = cli(
        prepare, "--data-dir", str(src), "--configs", "sqa_clik", "--cache-dir", str(tmp_path)
    )
    assert code == 1
    assert "did you mean 'sqa_click'" in capsys.readouterr().err


# ---- koala-bench metrics install -------------------------------------------------------------


def test_metrics_install_writes_what_evaluates_cache_fallback_reads(tmp_path: Path) -> None:
    from evaluate.loading import files_to_hash

    done = metrics_install.install_metrics(cache=tmp_path / "evaluate_modules" / "metrics")
    assert list(done) == [
        "korean_cer",
        "choice_accuracy",
        "scf",
        "segment_accuracy",
        "korean_translation",
        "llm_judge",
    ]
    for name, info in done.items():
        source = ROOT / "metrics" / name / f"{name}.py"
        digest = files_to_hash([str(source)])  # the hash evaluate gives the same script
        folder = tmp_path / "evaluate_modules" / "metrics" / f"koala--{name}" / digest
        assert info == {
            "status": "installed",
            "path": str(folder / f"{name}.py"),
            "hash": digest,
            "removed": [],
        }
        assert len(digest) == 64  # CachedEvaluationModuleFactory only sees 64-char folders
        assert (folder / f"{name}.py").read_bytes() == source.read_bytes()
        assert (folder / "README.md").is_file()
        for init in (folder, folder.parent, folder.parent.parent, folder.parent.parent.parent):
            assert (init / "__init__.py").is_file(), init  # importable as a package path


def test_metrics_install_is_idempotent_and_a_new_version_replaces_only_its_own(
    tmp_path: Path, monkeypatch
) -> None:
    cache = tmp_path / "evaluate_modules" / "metrics"
    first = metrics_install.install_metrics(["scf"], cache=cache)["scf"]
    script = Path(first["path"])
    stamp = script.stat().st_mtime_ns
    again = metrics_install.install_metrics(["scf"], cache=cache)["scf"]
    assert again["status"] == "current" and script.stat().st_mtime_ns == stamp
    hub = cache / "koala--scf" / ("f" * 64)  # a version evaluate downloaded from the Hub
    hub.mkdir()
    (hub / "scf.py").write_text("# from the Hub\n", encoding="utf-8")
    changed = tmp_path / "koala_metrics" / "scf"  # a newer package: the module changed
    changed.mkdir(parents=True)
    (changed / "scf.py").write_text((ROOT / "metrics/scf/scf.py").read_text() + "\n# v2\n")
    monkeypatch.setattr(metrics_install, "metric_dir", lambda name: changed)
    new = metrics_install.install_metrics(["scf"], cache=cache)["scf"]
    assert new["status"] == "installed" and new["hash"] != first["hash"]
    assert new["removed"] == [first["hash"]] and not script.exists()
    assert hub.is_dir()


def test_an_unknown_module_lists_the_modules(capsys) -> None:
    with pytest.raises(metrics_install.UnknownMetricError, match="did you mean 'scf'") as exc:
        metrics_install.check_name("koala/scff")
    assert "koala/korean_cer, koala/choice_accuracy, koala/scf" in str(exc.value)
    assert cli(metrics_install, "install", "cer") == 1
    assert "koala/korean_cer" in capsys.readouterr().err


# ---- koala-bench publish against a Hub stand-in on 127.0.0.1 -----------------------------------


class FakeHub:
    """The Hub endpoints ``huggingface_hub`` uses to create a repo and commit regular files."""

    def __init__(self) -> None:
        self.repos: list[dict] = []
        self.commits: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def send(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self.send(404, {"error": "not found"})

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.split("?")[0].strip("/").split("/")
                if self.path.startswith("/api/repos/create"):
                    req = json.loads(body)
                    outer.repos.append(req)
                    repo = f"{req['organization']}/{req['name']}"
                    self.send(200, {"url": f"{outer.url}/{req['type']}s/{repo}"})
                elif self.path.startswith("/api/validate-yaml"):
                    self.send(200, {"errors": [], "warnings": []})
                elif "preupload" in parts:  # every file as a regular (inline) upload
                    files = json.loads(body)["files"]
                    modes = [
                        {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                        for f in files
                    ]
                    self.send(200, {"files": modes})
                elif "commit" in parts:
                    lines = [json.loads(x) for x in body.decode().splitlines() if x.strip()]
                    outer.commits.append(
                        {
                            "kind": parts[1],
                            "repo": "/".join(parts[2:4]),
                            "summary": lines[0]["value"]["summary"],
                            "files": {
                                x["value"]["path"]: base64.b64decode(x["value"]["content"])
                                for x in lines
                                if x["key"] == "file"
                            },
                        }
                    )
                    oid = f"{len(outer.commits):040x}"
                    self.send(200, {"commitUrl": f"{outer.url}/c/{oid}", "commitOid": oid})
                else:
                    self.send(404, {"error": "unknown"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def __enter__(self) -> FakeHub:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def run_publish(hub: FakeHub, tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,  # the stand-in; nothing else is reachable
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": "hf_test",
        "HF_HOME": str(tmp_path / "hf_home"),
    }
    return subprocess.run(
        [sys.executable, "-m", "koala.cli", "publish", *argv],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_publish_dataset_uploads_the_card_and_shards_in_one_commit(
    prepared, tmp_path: Path
) -> None:
    base = prepared[0]
    with FakeHub() as hub:
        done = run_publish(hub, tmp_path, "--dataset", "me/koala-bench", str(base / "parquet"))
    assert done.returncode == 0, done.stderr
    assert [(r["organization"], r["name"], r["type"]) for r in hub.repos] == [
        ("me", "koala-bench", "dataset")
    ]
    (commit,) = hub.commits
    assert commit["kind"] == "datasets" and commit["repo"] == "me/koala-bench"
    assert commit["summary"].startswith("koala-bench ") and commit["summary"].endswith(" export")
    local = {
        p.relative_to(base / "parquet").as_posix(): p.read_bytes()
        for p in (base / "parquet").rglob("*")
        if p.is_file() and (p.name == "README.md" or p.suffix == ".parquet")
    }
    assert commit["files"] == local
    assert CARD_MARKER.encode() in commit["files"]["README.md"]
    assert "data/pa_qa_noisy/test-00000-of-00001.parquet" in commit["files"]


def test_publish_metrics_makes_one_space_per_module_as_evaluates_template(tmp_path: Path) -> None:
    with FakeHub() as hub:
        done = run_publish(hub, tmp_path, "--metrics", "me")
    assert done.returncode == 0, done.stderr
    names = list(metrics_install.METRIC_NAMES)
    assert [(r["organization"], r["name"], r["type"], r.get("sdk")) for r in hub.repos] == [
        ("me", n, "space", "gradio") for n in names
    ]
    assert [c["repo"] for c in hub.commits] == [f"me/{n}" for n in names]
    for commit, name in zip(hub.commits, names, strict=True):
        files = commit["files"]
        assert commit["kind"] == "spaces"
        assert sorted(files) == sorted(["README.md", "app.py", f"{name}.py", "requirements.txt"])
        assert files[f"{name}.py"] == (ROOT / "metrics" / name / f"{name}.py").read_bytes()
        assert f'evaluate.load("me/{name}")' in files["app.py"].decode()
        assert "launch_gradio_widget(module)" in files["app.py"].decode()
        card = files["README.md"].decode()
        front = yaml.safe_load(card.split("---\n")[1])
        assert front["sdk"] == "gradio" and front["app_file"] == "app.py"
        assert "evaluate" in front["tags"] and front["title"]
        body = (ROOT / "metrics" / name / "README.md").read_text().split("\n---\n", 1)[1]
        assert card.endswith(body.lstrip("\n"))
        assert b"koala-bench==" in files["requirements.txt"]


def test_publish_refuses_a_folder_the_exporter_did_not_write(tmp_path: Path, capsys) -> None:
    (tmp_path / "README.md").write_text("# mine\n")
    assert cli(publish, "--dataset", "me/x", str(tmp_path)) == 1
    assert "not a folder koala-bench export wrote" in capsys.readouterr().err
    assert cli(publish, "--metrics", "me", "scff") == 1
    assert "did you mean 'scf'" in capsys.readouterr().err

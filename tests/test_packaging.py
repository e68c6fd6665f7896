"""The wheel is complete: built with ``pip wheel --no-deps``, installed with ``--no-deps`` into a
fresh virtual environment that sees the project's dependencies but not the source tree, and
there, from a temporary folder, ``koala-bench metrics install`` / ``prepare`` make
``evaluate.load("koala/<name>")`` and ``load_dataset("koala-bench", CONFIG)`` work offline."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from setuptools import find_packages
from source_trees import write_all

from koala.metrics_install import METRIC_NAMES

ROOT = Path(__file__).resolve().parent.parent
PIP = (sys.executable, "-m", "pip", "-q")
SOURCES = ("setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "koala_bench.py")


def test_setup_cfg_lists_every_koala_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = cfg["options"]["packages"].split()
    assert sorted(listed) == sorted(
        [*find_packages(str(ROOT), include=["koala", "koala.*"]), "koala_metrics"]
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``pip wheel --no-deps`` of a copy of the project (the work tree is not written to)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        shutil.copy(ROOT / name, src / name)
    dist = str(base / "dist")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in ("koala", "metrics"):
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    subprocess.run(
        [*PIP, "wheel", "--no-deps", "--no-index", "--no-build-isolation", "-w", dist, str(src)],
        check=True,
        timeout=600,
    )
    (whl,) = (base / "dist").glob("koala_bench-*.whl")
    return whl


def test_the_wheel_holds_modules_configs_card_prompts_and_the_cli(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        entry_points = next(z.read(n) for n in names if n.endswith("entry_points.txt"))
    for module in METRIC_NAMES:
        assert f"koala_metrics/{module}/{module}.py" in names
        assert f"koala_metrics/{module}/README.md" in names
    for task in ("asr", "st", "sqa", "sif", "sca_qa", "pa_qa"):
        assert f"koala/builder_configs/{task}.yaml" in names
    for file in (
        "koala/dataset_card/README.md",
        "koala/prompts_default.yaml",
        "koala/py.typed",
        "koala_bench.py",
        "koala/cli.py",
        "koala/prepare.py",
        "koala/metrics_install.py",
        "koala/publish.py",
    ):
        assert file in names, file
    assert b"koala-bench = koala.cli:main" in entry_points
    assert not any(n.startswith(("tests/", "metrics/")) for n in names)


CHECK = r"""
import json, sys
from pathlib import Path
import evaluate, koala
from datasets import load_dataset

venv, expected = Path(sys.argv[1]), json.loads(sys.argv[2])
assert Path(koala.__file__).resolve().is_relative_to(venv), koala.__file__
for name in expected["metrics"]:
    module = evaluate.load(f"koala/{name}")
    assert f"koala--{name}" in type(module).__module__, type(module).__module__
scf = evaluate.load("koala/scf").compute(
    predictions=["A", "B", "A", "C"], references=["A", "B", "C", "D"],
    text_predictions=["B", "C", "A", "A"], text_references=["B", "C", "A", "B"], labels="letters",
)
ds = load_dataset("koala-bench", "pa_qa", split="test")
print(json.dumps({"scf": scf["scf"], "parametric": scf["parametric_proportion"],
                  "ids": list(ds["id"]),
                  "sqa": list(load_dataset("koala-bench", "sqa", split="test")["id"])}))
"""


def test_the_installed_wheel_serves_both_calls_offline_from_any_folder(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [*PIP, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)],
        check=True,
        timeout=600,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    # the project's dependencies, not the source tree: .pth lines are plain path entries, so
    # the editable install's own .pth in that folder is not processed
    (Path(site) / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    manifest = write_all(tmp_path / "src", external=False)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "KOALA_BUILDER_CONFIGS")}
    env |= {
        "HF_MODULES_CACHE": str(tmp_path / "hf_modules"),
        "HF_DATASETS_CACHE": str(tmp_path / "hf_datasets"),
        "HF_HOME": str(tmp_path / "hf_home"),
    }

    def run(*argv: str) -> str:
        done = subprocess.run(
            list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    cli = str(venv / "bin" / "koala-bench")
    out = run(cli, "metrics", "install")
    assert out.count(": installed ") == len(METRIC_NAMES)
    assert run(cli, "metrics", "install").count(": current ") == len(METRIC_NAMES)
    run(cli, "prepare", "--data-dir", str(tmp_path / "src"), "--configs", "pa_qa", "sqa")
    expected = {"metrics": list(METRIC_NAMES)}
    got = json.loads(run(str(python), "-c", CHECK, str(venv), json.dumps(expected)))
    # 4 items, 3 right from text alone (0, 1, 2); 0 and 1 follow the counterfactual speech,
    # 2 keeps the text answer: SCF 2/3, parametric 1/3
    assert got["scf"] == pytest.approx(2 / 3)
    assert got["parametric"] == pytest.approx(1 / 3)
    assert got["ids"] == list(manifest["pa_qa"])
    assert got["sqa"] == list(manifest["sqa"])

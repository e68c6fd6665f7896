"""The commands around the runner fail with a message, never a traceback or a hang: usage
errors, a cache that cannot be written, two installs at once, a namespace that is a path, a Hub
that is down or never answers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from source_trees import write_all

from koala import cli, metrics_install, prepare

ROOT = Path(__file__).resolve().parent.parent


def koala_bench(*argv: str, env: dict[str, str] | None = None, cwd: Path | None = None):
    return subprocess.run(
        [sys.executable, "-m", "koala.cli", *argv],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=600,
    )


# ---- usage errors ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--no-such-option"],
        ["score"],  # the run folder is required
        ["merge", "--out"],
        ["no-such-command"],
    ],
)
def test_a_usage_error_exits_1_not_2_which_run_uses_for_nothing_answered(argv, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == cli.USAGE_ERROR == 1
    err = capsys.readouterr().err
    assert "usage: koala-bench" in err and "error:" in err


@pytest.mark.parametrize("module", ["runner", "score", "report", "compare", "import_logs"])
def test_the_modules_own_mains_exit_1_on_a_usage_error_too(module: str, capsys) -> None:
    import importlib

    with pytest.raises(SystemExit) as exc:
        importlib.import_module(f"koala.{module}").main(["--no-such-option"])
    assert exc.value.code == 1
    assert "error:" in capsys.readouterr().err


# ---- a cache that cannot be written ----------------------------------------------------------


@pytest.fixture
def read_only_dir(tmp_path: Path):
    """A folder nobody, root included, can create entries in (the immutable attribute; for a
    user other than root a mode of 0o555 is enough)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("chattr +i is not available on this file system")
    else:
        folder.chmod(0o555)
    yield folder
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def test_metrics_install_into_a_read_only_cache_names_the_folder_and_the_fix(
    read_only_dir: Path,
) -> None:
    done = koala_bench(
        "metrics", "install", env={"HF_MODULES_CACHE": str(read_only_dir / "modules")}
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert str(read_only_dir / "modules") in done.stderr
    assert "HF_MODULES_CACHE" in done.stderr


def test_prepare_into_a_read_only_cache_names_the_folder_and_the_fix(
    read_only_dir: Path, tmp_path: Path
) -> None:
    write_all(src := tmp_path / "src", external=False)
    done = koala_bench(
        "prepare",
        "--data-dir",
        str(src),
        "--configs",
        "pa_qa",
        env={"HF_DATASETS_CACHE": str(read_only_dir / "datasets")},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert str(read_only_dir / "datasets") in done.stderr and "--cache-dir" in done.stderr


# ---- namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("namespace", ["../..", "a/b", "..", "x--y", ""])
def test_a_namespace_that_is_not_a_hub_namespace_writes_nothing(
    namespace: str, tmp_path: Path, capsys
) -> None:
    cache = tmp_path / "a" / "b" / "evaluate_modules" / "metrics"
    with pytest.raises(ValueError, match="not a Hub namespace"):
        metrics_install.install_metrics(["scf"], namespace=namespace, cache=cache)
    assert not (tmp_path / "a").exists()  # nothing written, inside the cache or outside
    assert cli.main(["metrics", "install", "--namespace", namespace, "scf"]) == 1
    assert "not a Hub namespace" in capsys.readouterr().err


def test_namespaces_of_the_hub_still_install(tmp_path: Path) -> None:
    cache = tmp_path / "evaluate_modules" / "metrics"
    for ns in ("koala", "my-org", "user_1", "a.b"):
        done = metrics_install.install_metrics(["scf"], namespace=ns, cache=cache)
        assert Path(done["scf"]["path"]).is_relative_to(cache / f"{ns}--scf")


# ---- two at once -----------------------------------------------------------------------------


def test_two_concurrent_metrics_installs_both_succeed_with_one_installed_copy(
    tmp_path: Path,
) -> None:
    env = {"HF_MODULES_CACHE": str(tmp_path / "modules")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "koala.cli", "metrics", "install"],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [e for _, e in outs]
    home = tmp_path / "modules" / "evaluate_modules" / "metrics"
    for name in metrics_install.METRIC_NAMES:
        hashes = [p for p in (home / f"koala--{name}").iterdir() if p.is_dir()]
        assert len(hashes) == 1, hashes  # one hash folder, no staging left behind
        assert (hashes[0] / f"{name}.py").read_bytes() == (
            metrics_install.metric_dir(name) / f"{name}.py"
        ).read_bytes()


def test_metrics_install_waits_while_another_install_holds_the_cache(tmp_path: Path) -> None:
    from filelock import FileLock

    home = tmp_path / "modules" / "evaluate_modules" / "metrics"
    home.mkdir(parents=True)
    held = FileLock(str(home / ".koala-install.lock"))
    held.acquire()  # another install is writing
    proc = subprocess.Popen(
        [sys.executable, "-m", "koala.cli", "metrics", "install", "scf"],
        env={**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=15)  # it waits for the lock (the import takes a few seconds)
        assert not (home / "koala--scf").exists()
    finally:
        held.release()
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, err
    assert len(list((home / "koala--scf").iterdir())) == 2  # __init__.py and one hash folder


def test_a_second_prepare_waits_for_the_first_and_both_succeed(tmp_path: Path) -> None:
    write_all(src := tmp_path / "src", external=False)
    cache = tmp_path / "cache"
    (cache / prepare.DATASET_NAME).mkdir(parents=True)
    lock_path = cache / prepare.DATASET_NAME / ".koala-prepare.lock"
    from filelock import FileLock

    held = FileLock(str(lock_path))
    held.acquire()  # a first prepare is writing
    argv = ["prepare", "--data-dir", str(src), "--configs", "pa_qa", "--cache-dir", str(cache)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "koala.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # it says it waits, and writes nothing while the lock is held
        line = proc.stderr.readline()
        while line and "waiting" not in line:
            line = proc.stderr.readline()
        assert "another koala-bench prepare is writing" in line
        assert not list((cache / prepare.DATASET_NAME).glob("pa_qa/*/*"))
    finally:
        held.release()
    err = proc.communicate(timeout=600)[1]
    assert proc.returncode == 0, err
    assert prepare.check_prepared("pa_qa", cache_dir=cache)


def test_prepare_check_exit_status_is_its_own(tmp_path: Path, capsys) -> None:
    code = cli.main(["prepare", "--check", "pa_qa", "--cache-dir", str(tmp_path)])
    assert code == prepare.NOT_PREPARED == 3
    assert "not prepared" in capsys.readouterr().err


# ---- publish: no network, a Hub that never answers --------------------------------------------


def _publish_env(tmp_path: Path, endpoint: str) -> dict[str, str]:
    return {
        "HF_ENDPOINT": endpoint,
        "HF_HUB_OFFLINE": "0",
        "HF_TOKEN": "hf_test",
        "HF_HOME": str(tmp_path / "hf_home"),
    }


def test_publish_without_network_is_a_message_naming_the_endpoint(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    done = koala_bench("publish", "--metrics", "me", "scf", env=_publish_env(tmp_path, endpoint))
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert f"the upload to {endpoint} failed" in done.stderr


def test_publish_against_a_hanging_hub_gives_up_after_its_timeout(tmp_path: Path) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # takes connections and never answers
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.getsockname()[1]}"
    try:
        done = koala_bench(
            "publish",
            "--metrics",
            "me",
            "scf",
            "--timeout",
            "1",
            env=_publish_env(tmp_path, endpoint),
        )
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert "--timeout 1 s" in done.stderr and endpoint in done.stderr
    assert accepted  # it did reach the server, which never answered


def test_publish_refuses_a_timeout_that_is_not_positive(capsys) -> None:
    assert cli.main(["publish", "--metrics", "me", "--timeout", "0"]) == 1
    assert "--timeout" in capsys.readouterr().err

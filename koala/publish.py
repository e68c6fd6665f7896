"""``koala-bench publish``: the export and the evaluate modules on the Hugging Face Hub.

::

    koala-bench publish --dataset NAMESPACE/koala-bench DIR [--private]
    koala-bench publish --metrics NAMESPACE [NAME ...] [--private]

``--dataset`` uploads a folder ``koala-bench export`` wrote (Parquet shards + the dataset card)
as a dataset repository, in one commit. ``--metrics`` creates one Space per evaluate module
(``NAMESPACE/<name>``, Gradio SDK) as ``evaluate-cli create`` lays it out: the module script
``<name>.py``, its metric card as ``README.md`` (with the Space keys ``sdk: gradio`` and
``app_file: app.py`` added to its YAML header), the ``app.py`` of evaluate's template
(``evaluate.load("NAMESPACE/<name>")`` then ``launch_gradio_widget``) and a
``requirements.txt``; one commit per Space. ``evaluate.load("NAMESPACE/<name>")`` then loads
the Space when online. Everything goes through ``huggingface_hub`` (its endpoint is
``$HF_ENDPOINT``; the token is ``$HF_TOKEN`` or the one ``hf auth login`` stored).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from koala.metrics_install import METRIC_NAMES, UnknownMetricError, check_name, metric_dir

__all__ = [
    "add_arguments",
    "hub_timeout",
    "publish_dataset",
    "publish_metrics",
    "run",
    "space_files",
]

APP_TEMPLATE = """import evaluate
from evaluate.utils import launch_gradio_widget


module = evaluate.load("{repo_id}")
launch_gradio_widget(module)
"""
SPACE_KEYS = {"sdk": "gradio", "app_file": "app.py", "pinned": False}
#: seconds a Hub request may wait for a connection or for the server's next bytes
DEFAULT_TIMEOUT = 60.0
#: the exit status of an upload that failed (no network, a server error, a time-out)
UPLOAD_FAILED = 3


@contextlib.contextmanager
def hub_timeout(seconds: float) -> Iterator[None]:
    """Every ``huggingface_hub`` request made inside waits at most ``seconds`` to connect and
    between bytes (its own HTTP client has no time-out: a hanging endpoint blocks forever).
    Uses ``huggingface_hub.set_client_factory`` (huggingface_hub >= 1.0, the version setup.cfg
    requires) and puts the default client back afterwards."""
    import huggingface_hub
    from huggingface_hub.utils import _http

    default = _http.default_client_factory

    def factory():  # returns the HTTP library's client (httpx in huggingface_hub 1.x)
        client = default()
        client.timeout = seconds
        return client

    huggingface_hub.set_client_factory(factory)
    try:
        yield
    finally:
        huggingface_hub.set_client_factory(default)


def _version() -> str:
    from koala.metrics_install import _version as version

    return version()


def space_files(name: str, namespace: str) -> dict[str, bytes]:
    """The files of module ``name``'s Space ``namespace/name``: path -> content."""
    import yaml

    name = check_name(name)
    folder = metric_dir(name)
    card = (folder / "README.md").read_text(encoding="utf-8")
    front: dict = {}
    body = card
    if card.startswith("---\n"):
        head, _, body = card[4:].partition("\n---\n")
        front = yaml.safe_load(head) or {}
    front = {**front, **{k: v for k, v in SPACE_KEYS.items() if k not in front}}
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False)
    return {
        f"{name}.py": (folder / f"{name}.py").read_bytes(),
        "README.md": f"---\n{header}---\n{body.lstrip(chr(10))}".encode(),
        "app.py": APP_TEMPLATE.format(repo_id=f"{namespace}/{name}").encode(),
        "requirements.txt": f"evaluate\nkoala-bench=={_version()}\n".encode(),
    }


def publish_metrics(
    namespace: str,
    names: list[str] | None = None,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> dict[str, str]:
    """Create (or update) one Space per module; returns, per name, the commit URL."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=endpoint, token=token)
    done: dict[str, str] = {}
    for name in [check_name(n) for n in (names or METRIC_NAMES)]:
        repo_id = f"{namespace}/{name}"
        api.create_repo(
            repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
        )
        ops = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=data)
            for path, data in space_files(name, namespace).items()
        ]
        info = api.create_commit(
            repo_id,
            ops,
            repo_type="space",
            commit_message=f"koala-bench {_version()}: evaluate module {name}",
        )
        done[name] = str(info.commit_url)
    return done


def publish_dataset(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = False,
    token: str | None = None,
    endpoint: str | None = None,
) -> str:
    """Upload an export folder (its card and ``data/``) as dataset ``repo_id`` in one commit;
    returns the commit URL. A folder ``koala-bench export`` did not write is refused."""
    from huggingface_hub import HfApi

    from koala.export import CARD_MARKER, TMP_PREFIX

    out = Path(folder)
    card = out / "README.md"
    if not card.is_file() or CARD_MARKER not in card.read_text(encoding="utf-8"):
        raise ValueError(
            f"{out} is not a folder koala-bench export wrote (no README.md with its marker); "
            "run koala-bench export --data-dir ... --out DIR first"
        )
    if not any((out / "data").glob("*/*.parquet")):
        raise ValueError(f"{out}/data holds no Parquet shards; nothing to publish")
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(out),
        repo_id=repo_id,
        repo_type="dataset",
        allow_patterns=["README.md", "data/**"],
        ignore_patterns=[f"{TMP_PREFIX}*", f"**/{TMP_PREFIX}*"],
        commit_message=f"koala-bench {_version()} export",
    )
    return str(info.commit_url if hasattr(info, "commit_url") else info)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``koala-bench publish``."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--dataset", metavar="NAMESPACE/NAME", help="upload the export folder DIR as this dataset"
    )
    what.add_argument(
        "--metrics", metavar="NAMESPACE", help="one Space per evaluate module: NAMESPACE/<name>"
    )
    parser.add_argument(
        "args",
        nargs="*",
        metavar="DIR | NAME",
        help="--dataset: the export folder; --metrics: modules (default: all)",
    )
    parser.add_argument("--private", action="store_true", help="create the repositories private")
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="give up on a Hub request that waits this long to connect or for the server's "
        "next bytes (%(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``koala-bench publish``; 0 done, 1 bad input, 3 the upload failed (no network, a
    refused or failed request, a time-out: the message names the endpoint)."""
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    endpoint = constants.ENDPOINT
    if not args.timeout > 0:
        print(
            f"koala-bench publish: error: --timeout {args.timeout}: give seconds > 0",
            file=sys.stderr,
        )
        return 1
    try:
        with hub_timeout(args.timeout):
            if args.dataset:
                if len(args.args) != 1:
                    raise ValueError("--dataset takes one folder: the export (koala-bench export)")
                print(publish_dataset(args.args[0], args.dataset, private=args.private))
            else:
                done = publish_metrics(args.metrics, args.args, private=args.private)
                for name, url in done.items():
                    print(f"{args.metrics}/{name}: {url}")
    except (ValueError, UnknownMetricError) as exc:
        print(f"koala-bench publish: error: {exc}", file=sys.stderr)
        return 1
    except OfflineModeIsEnabled as exc:
        print(f"koala-bench publish: error: {exc}; unset HF_HUB_OFFLINE", file=sys.stderr)
        return UPLOAD_FAILED
    except Exception as exc:  # any transport or server error of the upload
        kind = type(exc).__name__
        hint = f"; no answer within --timeout {args.timeout:g} s" if "Timeout" in kind else ""
        print(
            f"koala-bench publish: error: the upload to {endpoint} failed ({kind}: {exc}){hint}",
            file=sys.stderr,
        )
        return UPLOAD_FAILED
    return 0

"""Every code block of the README and the cards runs, or is marked a fragment on purpose.

Issue 16: "a test that runs every README/metric-card snippet that claims to run (others marked
as fragments)". The rules, for every fenced block of ``README.md``, ``metrics/*/README.md`` and
``koala/dataset_card/README.md``:

- a ``python`` block runs in a fresh subprocess (this interpreter, ``HF_*_OFFLINE=1``, a new
  temporary working folder holding a ``metrics`` link to the checkout's ``metrics/``, so
  ``evaluate.load("metrics/scf")`` means what it means in a checkout). The session first runs
  ``koala-bench metrics install`` and ``koala-bench prepare --mini --configs pa_qa`` into a
  temporary ``HF_MODULES_CACHE`` / ``HF_DATASETS_CACHE``, as ``make setup`` / ``make demo`` do,
  so ``evaluate.load("koala/scf")`` and ``load_dataset("koala-bench", "pa_qa")`` work;
- a ``bash``/``sh``/``shell``/``console`` block runs likewise when every command is
  ``koala-bench ...`` or ``python -c ...``;
- ``<!-- snippet: fragment -->`` on the line before the fence (a reason may follow in
  parentheses: ``<!-- snippet: fragment (needs a model server) -->``) marks a block that needs
  data, a server, a GPU or a venv build the test cannot provide: not run (a python fragment
  must still parse);
- ``<!-- snippet: continues -->`` runs the block after the code of the block before it in the
  same file (a metric card's second example reusing ``cer`` from the first);
- any other language (text, yaml, json, an unlabelled fence) is output, not run.

An unmarked python or shell block that fails fails the test: a new snippet runs or is marked
on purpose. Where a snippet states its result, the result is checked: a top-level expression
followed by a comment that is a Python literal (on its line, ``r["bleu"]  # 19.79``, or on the
comment lines right after it) must give that value. ``...`` entries in a shown dict are
dropped, a dict checks only the keys it shows, a float is compared at the digits it shows,
and text after two spaces (``# [11, 6, 2, 0]    matching 1- to 4-grams``) is prose.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "metrics").glob("*/README.md")),
    ROOT / "koala" / "dataset_card" / "README.md",
]
PYTHON = {"python", "py", "python3"}
SHELL = {"bash", "sh", "shell", "console"}
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([\w+-]*)")
MARKER = re.compile(r"^\s*<!--\s*snippet:\s*(?P<kind>[\w-]+)\s*(?:\((?P<reason>[^)]*)\))?\s*-->")
RUNNABLE_COMMAND = re.compile(r"^(koala-bench\s|python3?\s+-c\s)")
BIN = Path(sys.executable).parent
TIMEOUT_S = 300


@dataclass(frozen=True)
class Block:
    """One fenced code block: where it is, its language, its code and its marker."""

    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    marker: str | None = None  # "fragment" | "continues" | None
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def parse_blocks(path: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown file, each with the marker on the line before it."""
    lines = (path.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if not opening:
            i += 1
            continue
        fence, lang = opening.group(1), opening.group(2).lower()
        end = i + 1
        while end < len(lines) and not (
            lines[end].startswith(fence[0] * len(fence)) and not lines[end].strip().strip(fence[0])
        ):
            end += 1
        marker = MARKER.match(lines[i - 1]) if i > 0 else None
        blocks.append(
            Block(
                path=path,
                line=i + 1,
                lang=lang,
                code="\n".join(lines[i + 1 : end]) + "\n",
                marker=marker.group("kind") if marker else None,
                reason=(marker.group("reason") or "").strip() if marker else "",
            )
        )
        i = end + 1
    return blocks


def code_blocks() -> list[Block]:
    """Every python or shell block of the documents."""
    return [b for path in DOCS for b in parse_blocks(path) if b.lang in PYTHON | SHELL]


def _stated_value(comment: str) -> str | None:
    """The literal a ``# ...`` comment states, as source; ``None`` when it states none."""
    text = comment.split("  ")[0].strip()  # two spaces: prose follows
    text = re.sub(r",\s*\.\.\.(?=\s*[,}\]])", "", text)  # {'a': 1, ..., 'b': 2} -> {'a': 1, 'b': 2}
    text = re.sub(r"(?<=[{\[])\s*\.\.\.\s*,", "", text)
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    return text


def stated_results(code: str) -> dict[int, str]:
    """``{end line of a top-level expression: the literal its comment states}``."""
    lines = code.splitlines()
    found: dict[int, str] = {}
    for node in ast.parse(code).body:
        if not isinstance(node, ast.Expr) or node.end_lineno is None:
            continue
        last = lines[node.end_lineno - 1]
        inline = last.encode()[node.end_col_offset :].decode().strip()  # a byte offset
        following = []
        for line in lines[node.end_lineno :]:
            if not line.lstrip().startswith("#"):
                break
            following.append(line.lstrip()[1:].strip())
        # the comment on its line, else (prose there, or none) the comment lines after it
        for comment in (inline[1:] if inline.startswith("#") else "", " ".join(following)):
            value = _stated_value(comment)
            if value is not None:
                found[node.end_lineno] = value
                break
    return found


# Runs in the subprocess: executes the snippet statement by statement (its own line numbers in
# tracebacks) and compares each stated result.
RUNNER = r"""
import ast, json, math, numbers, sys

spec = json.loads(open(sys.argv[1], encoding="utf-8").read())
source, name, stated = spec["source"], spec["name"], {int(k): v for k, v in spec["stated"].items()}


def same(actual, expected):
    if isinstance(expected, dict):
        return hasattr(actual, "keys") and all(
            k in actual and same(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, (list, tuple)):
        return (
            isinstance(actual, (list, tuple))
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected))
        )
    if isinstance(expected, float) and isinstance(actual, numbers.Real):
        if math.isnan(expected):
            return math.isnan(actual)
        shown = repr(expected)
        digits = len(shown.split(".")[1]) if "." in shown and "e" not in shown else 15
        return round(float(actual), digits) == expected or math.isclose(actual, expected)
    return type(actual) is type(expected) and actual == expected or (
        isinstance(expected, int) and isinstance(actual, numbers.Integral) and actual == expected
    )


namespace = {"__name__": "__main__"}
for node in ast.parse(source, name).body:
    if isinstance(node, ast.Expr) and node.end_lineno in stated:
        value = eval(compile(ast.Expression(node.value), name, "eval"), namespace)
        expected = ast.literal_eval(stated[node.end_lineno])
        if not same(value, expected):
            raise AssertionError(
                f"{name}, line {node.end_lineno}: the text states {stated[node.end_lineno]}"
                f", the code gives {value!r}"
            )
        print(f"checked line {node.end_lineno}: {value!r}")
    else:
        exec(compile(ast.Module([node], type_ignores=[]), name, "exec"), namespace)
"""


def _env(hf: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in (
        "HF_EVALUATE_OFFLINE",
        "HF_HUB_OFFLINE",
        "HF_DATASETS_OFFLINE",
        "TRANSFORMERS_OFFLINE",
    ):
        env[var] = "1"
    env["HF_MODULES_CACHE"] = str(hf / "modules")
    env["HF_DATASETS_CACHE"] = str(hf / "datasets")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
    )


@pytest.fixture(scope="session")
def hf_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A temporary HF cache with the evaluate modules installed and the mini ``pa_qa``
    prepared: what ``make setup`` and ``koala-bench prepare --mini`` give a user."""
    hf = tmp_path_factory.mktemp("hf")
    env = _env(hf)
    work = tmp_path_factory.mktemp("setup")
    for cmd in (
        [str(BIN / "koala-bench"), "metrics", "install"],
        [str(BIN / "koala-bench"), "prepare", "--mini", "--configs", "pa_qa"],
    ):
        done = _run(cmd, work, env)
        assert done.returncode == 0, f"{' '.join(cmd[1:])} failed:\n{done.stderr[-3000:]}"
    return env


def _source(block: Block, blocks: list[Block]) -> str:
    """The block's code, after the code of the block it continues (line numbers in a
    traceback count from the first block of the chain)."""
    if block.marker != "continues":
        return block.code
    earlier = [b for b in blocks if b.path == block.path and b.line < block.line]
    assert earlier, f"{block.id} is marked 'continues' but no block comes before it"
    return _source(earlier[-1], blocks) + block.code


BLOCKS = code_blocks()


@pytest.mark.slow  # the session synthesises the mini PA-QA speech
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_snippet_runs(block: Block, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    assert block.marker in (None, "fragment", "continues"), (
        f"{block.id}: unknown marker {block.marker!r} (fragment or continues)"
    )
    if block.marker == "fragment":
        if block.lang in PYTHON:
            ast.parse(block.code, block.id)  # a fragment still reads as Python
        pytest.skip(f"fragment: {block.reason or 'marked'}")
    hf_env = request.getfixturevalue("hf_env")  # set up only when a block runs
    (tmp_path / "metrics").symlink_to(ROOT / "metrics", target_is_directory=True)
    if block.lang in SHELL:
        bad = [c for c in _shell_commands(block.code) if not RUNNABLE_COMMAND.match(c)]
        assert not bad, (
            f"{block.id}: {bad[0]!r} is neither `koala-bench ...` nor `python -c`: make the "
            "block run or mark it <!-- snippet: fragment (why) -->"
        )
        script = re.sub(r"(?m)^\$ ", "", block.code)  # a console block's prompts
        done = _run(["bash", "-e", "-c", script], tmp_path, hf_env)
    else:
        source = _source(block, BLOCKS)
        spec = {"source": source, "name": block.id, "stated": stated_results(source)}
        (tmp_path / "_snippet.json").write_text(json.dumps(spec), encoding="utf-8")
        (tmp_path / "_runner.py").write_text(RUNNER, encoding="utf-8")
        done = _run([sys.executable, "_runner.py", "_snippet.json"], tmp_path, hf_env)
    assert done.returncode == 0, (
        f"{block.id} failed (exit {done.returncode}); make it run or mark it "
        f"<!-- snippet: fragment (why) -->\n{done.stderr[-4000:]}"
    )


def _shell_commands(code: str) -> list[str]:
    """The commands of a shell block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", code)
    lines = (re.sub(r"(^|\s)#.*$", "", line).strip() for line in joined.splitlines())
    return [line.removeprefix("$ ") for line in lines if line]


# --- the harness itself, on hand-written Markdown ---

SAMPLE = """\
Intro.
```bash
make demo
```
<!-- snippet: fragment (needs a model server) -->
```python
answers = ask(server)
```
```python
x = 1 + 1
x  # 2
```
<!-- snippet: continues -->
````python
x * 3
# {'a': 1, ..., 'b': [1, 2],
#  ...}
```
still inside the four-backtick block
````
```text
{'not': 'run'}
```
"""


def test_parse_blocks_markers_and_fences() -> None:
    blocks = parse_blocks(ROOT / "SAMPLE.md", SAMPLE)
    assert [(b.line, b.lang, b.marker, b.reason) for b in blocks] == [
        (2, "bash", None, ""),
        (6, "python", "fragment", "needs a model server"),
        (9, "python", None, ""),
        (14, "python", "continues", ""),
        (21, "text", None, ""),
    ]
    assert blocks[0].id == "SAMPLE.md:2"
    assert blocks[2].code == "x = 1 + 1\nx  # 2\n"
    assert "still inside the four-backtick block" in blocks[3].code
    assert _source(blocks[3], blocks).startswith("x = 1 + 1\nx  # 2\nx * 3\n")


def test_stated_results() -> None:
    code = (
        "r = f()\n"
        "r  # {'a': 0.5, ..., 'b': 'x'}\n"
        "r['n']  # [1, 2]    prose after two spaces\n"
        "g(\n    1,\n)\n"
        "# {'cer': 0.2857, 'hits': 5,\n"
        "#  'protocol': 'koala', ...}\n"
        "r['s']  # the authors' figures\n"
        "r['t']  # 14.15..., 34.42...\n"
        "y = 2  # 2\n"
        "g(2)  # logit-based\n"
        "# {'accuracy': 0.5, ...}\n"
        "norm('b/ (2개)/(두 개) 주세요.')   # '두개주세요'\n"
    )
    assert stated_results(code) == {
        2: "{'a': 0.5, 'b': 'x'}",
        3: "[1, 2]",
        6: "{'cer': 0.2857, 'hits': 5, 'protocol': 'koala'}",
        12: "{'accuracy': 0.5}",
        14: "'두개주세요'",  # the comment found after Hangul (ast counts columns in bytes)
    }


def test_shell_commands() -> None:
    code = (
        "koala-bench run --model m \\\n    --out runs/x   # a comment\n\n$ python -c 'print(1)'\n"
    )
    assert _shell_commands(code) == [
        "koala-bench run --model m --out runs/x",
        "python -c 'print(1)'",
    ]
    assert all(RUNNABLE_COMMAND.match(c) for c in _shell_commands(code))
    assert not RUNNABLE_COMMAND.match(_shell_commands("make demo  # builds a venv\n")[0])


def test_runner_checks_stated_results(tmp_path: Path) -> None:
    """A wrong stated value fails the snippet; a right one (rounded as shown) passes."""

    def run(source: str) -> subprocess.CompletedProcess[str]:
        spec = {"source": source, "name": "sample", "stated": stated_results(source)}
        (tmp_path / "s.json").write_text(json.dumps(spec), encoding="utf-8")
        (tmp_path / "r.py").write_text(RUNNER, encoding="utf-8")
        return _run([sys.executable, "r.py", "s.json"], tmp_path, dict(os.environ))

    good = run(
        "d = {'cer': 2 / 7, 'n': 3, 'extra': 0}\nd  # {'cer': 0.2857, ...}\n(1, 'a')  # 1, 'a'\n"
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.count("checked line") == 2
    bad = run("d = {'cer': 2 / 7}\nd\n# {'cer': 0.2858}\n")
    assert bad.returncode != 0
    assert "sample, line 2: the text states {'cer': 0.2858}" in bad.stderr
    assert run("x = 'koala'\nx  # 'published'\n").returncode != 0

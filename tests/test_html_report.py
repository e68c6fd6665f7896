"""``results.html``: one self-contained page, checked as text and in a real (headless) Chromium:
the tables render with their cells, a header click sorts by the leading number (intervals
aside), the plots are inline images that decode, and nothing leaves the page."""

from __future__ import annotations

import configparser
import http.server
import json
import shutil
import struct
import threading
import zlib
from collections import Counter
from pathlib import Path

import pytest

from koala.html_report import PUBLISHED_LEADERBOARD, published_leaderboard, write_html

ROOT = Path(__file__).resolve().parent.parent
UPSTREAM = ROOT.parent / "shared" / "upstream" / "koala-bench" / "leaderboard-data.json"
# a model name that would be markup (and a request) if the page did not escape it
EVIL = '<img src="{canary}/x.png"> m&1 "q"'


def tiny_png(width: int, height: int) -> bytes:
    """A valid RGB PNG of ``width`` x ``height`` red pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * width for _ in range(height))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def small_payload(evil: str) -> dict:
    """A payload as :func:`koala.report.write_report` shapes it, with intervals in the cells."""
    return {
        "protocol": "koala",
        "selection": {
            "rule": "published",
            "per_task": {"sqa": "best accuracy of the variants", "asr": "best cer of the variants"},
        },
        "runs": ["runs/a", "runs/b"],
        "models": [evil, "m2"],
        "results": {},
        "tables": {
            "sqa": {
                "title": "SQA: accuracy (%)",
                "header": ["set", "noise", evil, "m2"],
                "rows": [
                    ["sqa_click", "clean", "75.0 [61.2, 86.1] (n=40)", "9.5 [2.0, 15.0] (n=40)"],
                    ["sqa_kcsat", "noisy", "8.5 [2.0, 15.0] (n=40)", "—"],
                    ["sqa_boolq", "clean", "—", "100.0 [90.0, 100.0] (n=40)"],
                    ["sqa_zeta", "clean", "100.0 [91.0, 100.0] (n=40)"],  # short: padded
                ],
            },
            "asr": {
                "title": "ASR: CER (%)",
                "header": ["set", "noise", evil, "m2"],
                "rows": [["asr_zeroth", "clean", "12.50", "-"]],
            },
        },
        "plots": {
            "pa_qa_segments": {"path": "pa.png", "data": {}},
            "scf": {"path": "scf.png", "data": {}},  # not written: skipped with a note
        },
        "significance": {
            "sqa_click": {
                "models": [evil, "m2"],
                "pairs": [
                    {
                        "a": evil,
                        "b": "m2",
                        "metric": "accuracy",
                        "difference": 0.655,
                        "low": 0.5,
                        "high": 0.8,
                        "p_value": 0.001,
                        "p_holm": 0.002,
                    }
                ],
            },
            "asr_zeroth": {
                "models": [evil, "m2"],
                "pairs": [
                    {
                        "a": evil,
                        "b": "m2",
                        "metric": "cer",
                        "difference": -0.02,
                        "low": -0.05,
                        "high": 0.01,
                        "p_value": 0.1,
                        "p_holm": 0.2,
                    }
                ],
            },
        },
    }


REFERENCE = {
    "source": "KoALa-Bench leaderboard (test copy)",
    "generated": "2026-03-13",
    "tasks": {
        "asr": {
            "metric": "CER (%)",
            "lower_is_better": True,
            "configs": ["asr_zeroth", "asr_zeroth_noisy"],
        }
    },
    "models": [
        {"model": "pub-a", "figures": {"asr_zeroth": 13.599, "asr_zeroth_noisy": 14.5}},
        {"model": "pub-b", "figures": {"asr_zeroth": 9.0}},
    ],
}


# ------------------------------------------------------------------------ the page as text


def test_every_payload_text_is_escaped_and_nothing_is_fetched(tmp_path: Path) -> None:
    evil = EVIL.format(canary="http://127.0.0.1:9")
    (tmp_path / "pa.png").write_bytes(tiny_png(2, 3))
    page = write_html(small_payload(evil), tmp_path / "results.html", REFERENCE).read_text(
        encoding="utf-8"
    )
    assert evil not in page and '<img src="http://' not in page
    assert "&lt;img src=&quot;http://127.0.0.1:9/x.png&quot;&gt; m&amp;1 &quot;q&quot;" in page
    assert "http://" not in page.replace("http://127.0.0.1:9", "")  # only the escaped name
    assert "Content-Security-Policy" in page and "default-src 'none'" in page
    assert "<link" not in page and "<script src" not in page


def test_missing_plot_is_noted_and_significance_absent_is_explained(tmp_path: Path) -> None:
    payload = small_payload("m1")
    del payload["significance"]
    page = write_html(payload, tmp_path / "results.html", {}).read_text(encoding="utf-8")
    assert "Plot pa_qa_segments: pa.png is missing." in page
    assert "Plot scf: scf.png is missing." in page
    assert "data:image/png" not in page
    assert "needs two or more runs" in page
    assert 'id="published"' not in page  # an empty reference shows no published tables


def test_significance_says_what_holm_corrects_over_and_when_there_is_no_interval(
    tmp_path: Path,
) -> None:
    """Before, the star said only "Holm-corrected p-value below 0.05": not that Holm runs per
    pair of runs, over that pair's configs. And a pair without an interval (too few units)
    showed nothing about why."""
    payload = small_payload("m1")
    for entry in payload["significance"].values():
        for pair in entry["pairs"]:
            pair["holm_family"] = ["asr_zeroth", "sqa_click"]
            pair["test"] = "exact McNemar over items"
    pair = payload["significance"]["asr_zeroth"]["pairs"][0]
    pair |= {"low": None, "high": None, "interval_note": "3 items: too few for a bootstrap"}
    page = write_html(payload, tmp_path / "results.html", {}).read_text(encoding="utf-8")
    assert "one family per pair of runs" in page
    assert "pairs of runs are not corrected against each other" in page
    assert (
        "p = 0.001 (exact McNemar over items); Holm-corrected over the 2 configs compared "
        "between m1 and m2 (asr_zeroth, sqa_click): 0.002"
    ) in page
    assert "-2.0 [no interval: 3 items]" in page


def test_packaged_published_figures_are_shown_by_default(tmp_path: Path) -> None:
    ref = published_leaderboard()
    # the leaderboard's five models; gemini-2.5-flash-lite's Zeroth-Korean CER is 13.60
    assert [m["model"] for m in ref["models"]] == [
        "gemini-2.5-flash-lite",
        "google/gemma-3n-E4B-it",
        "gpt-audio-mini",
        "Qwen/Qwen3-Omni-30B-A3B-Instruct",
        "mistralai/Voxtral-Mini-3B-2507",
    ]
    configs = [c for t in ref["tasks"].values() for c in t["configs"]]
    assert len(configs) == len(set(configs)) == 5 + 2 + 6 + 8 + 4 + 2
    assert all(set(m["figures"]) == set(configs) for m in ref["models"])
    assert ref["models"][0]["figures"]["asr_zeroth"] == pytest.approx(13.599, abs=1e-3)
    assert ref["tasks"]["asr"]["lower_is_better"] is True
    assert "leaderboard" in ref["source"] and ref["generated"] == "2026-03-13"
    page = write_html(small_payload("m1"), tmp_path / "results.html").read_text(encoding="utf-8")
    assert "Published figures, not recomputed" in page
    assert "<td>gemini-2.5-flash-lite</td>" in page and "<td>13.60</td>" in page


def test_packaged_published_figures_match_the_leaderboard() -> None:
    """Every published number per model is in the packaged file, and nothing else."""
    if not UPSTREAM.exists():
        pytest.skip("the published leaderboard data is not in ../shared")
    upstream = json.loads(UPSTREAM.read_text(encoding="utf-8"))
    ours = {m["model"]: Counter(m["figures"].values()) for m in published_leaderboard()["models"]}
    theirs = {
        e["model"]: Counter(x["value"] for t in e["tasks"].values() for x in t.values())
        for e in upstream["entries"]
    }
    assert ours == theirs


def test_published_figures_ship_as_package_data() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "data/published_leaderboard.json" in cfg["options.package_data"]["koala"]
    assert PUBLISHED_LEADERBOARD.is_file()
    assert "selenium" in cfg["options.extras_require"]["test"]


# ------------------------------------------------------------------------ in Chromium

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.service import Service

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        pytest.skip("chromium or chromedriver is not installed (make apt installs them)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        opts.add_argument(flag)
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_bin), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture()
def canary():
    """A local HTTP server that counts the requests it gets (the page must send none)."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", hits
    finally:
        server.shutdown()
        server.server_close()


ROWS_JS = """
return Array.from(document.querySelectorAll(arguments[0] + ' tbody tr')).map(
  r => Array.from(r.cells).map(c => c.textContent));
"""
HEADER_JS = """
return Array.from(document.querySelectorAll(arguments[0] + ' thead th')).map(c => c.textContent);
"""


def rows(driver, selector: str) -> list[list[str]]:
    return driver.execute_script(ROWS_JS, selector)


def click_header(driver, selector: str, index: int) -> None:
    from selenium.webdriver.common.by import By

    driver.find_elements(By.CSS_SELECTOR, f"{selector} thead th")[index].click()


def assert_offline(driver) -> None:
    """Every resource the page loaded and every src/href in the DOM is data: or file:."""
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert all(u.startswith(("data:", "file:")) for u in loaded), loaded
    urls = driver.execute_script(
        "return Array.from(document.querySelectorAll('[src],[href]'))"
        ".map(e => e.getAttribute('src') || e.getAttribute('href'))"
    )
    assert all(u.startswith(("data:", "file:", "#")) for u in urls), urls


def test_page_in_chromium(browser, canary, tmp_path: Path) -> None:
    url, hits = canary
    evil = EVIL.format(canary=url)
    (tmp_path / "pa.png").write_bytes(tiny_png(2, 3))
    page = write_html(small_payload(evil), tmp_path / "results.html", REFERENCE)
    browser.get(page.as_uri())
    sqa = '#results table[data-task="sqa"]'

    # the table as written, the user's model name as text (not markup), short rows padded
    assert browser.execute_script(HEADER_JS, sqa) == ["set", "noise", evil, "m2"]
    assert rows(browser, sqa)[3] == ["sqa_zeta", "clean", "100.0 [91.0, 100.0] (n=40)", ""]
    assert browser.title == "KoALa-Bench results"
    header = browser.execute_script("return document.querySelector('header').textContent")
    assert "koala protocol" in header and "published rule" in header
    assert "best accuracy of the variants" in header

    # sort by the model column: by the first number of each cell, text ("—") after numbers
    click_header(browser, sqa, 2)
    assert [r[0] for r in rows(browser, sqa)] == ["sqa_kcsat", "sqa_click", "sqa_zeta", "sqa_boolq"]
    click_header(browser, sqa, 2)  # the second click reverses
    assert [r[0] for r in rows(browser, sqa)] == ["sqa_boolq", "sqa_zeta", "sqa_click", "sqa_kcsat"]
    click_header(browser, sqa, 0)  # a text column: alphabetical
    assert [r[0] for r in rows(browser, sqa)] == ["sqa_boolq", "sqa_click", "sqa_kcsat", "sqa_zeta"]
    assert rows(browser, sqa)[1] == [
        "sqa_click",
        "clean",
        "75.0 [61.2, 86.1] (n=40)",
        "9.5 [2.0, 15.0] (n=40)",
    ]

    # significance: row minus column in percentage points, * where Holm p < 0.05
    grid = '#significance table[data-config="sqa_click"]'
    assert rows(browser, grid) == [
        [evil, "—", "+65.5 [+50.0, +80.0] *"],
        ["m2", "-65.5 [-80.0, -50.0] *", "—"],
    ]
    marked = browser.execute_script(
        f"return document.querySelectorAll('{grid} td.significant').length"
    )
    assert marked == 2
    grid = '#significance table[data-config="asr_zeroth"]'
    assert rows(browser, grid)[0] == [evil, "—", "-2.0 [-5.0, +1.0]"]

    # the plot: one inline image that decoded (2 x 3 pixels); the missing one noted
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight,"
        " i.getAttribute('src').slice(0, 22)])"
    )
    assert images == [[True, 2, 3, "data:image/png;base64,"]]
    notes = browser.execute_script(
        "return Array.from(document.querySelectorAll('.missing-plot')).map(p => p.textContent)"
    )
    assert notes == ["Plot scf: scf.png is missing."]

    # published figures: their own table, marked and cited
    pub = '#published table[data-task="asr"]'
    assert rows(browser, pub) == [["pub-a", "13.60", "14.50"], ["pub-b", "9.00", "—"]]
    caption = browser.execute_script(f"return document.querySelector('{pub} caption').textContent")
    assert "published figures, not recomputed" in caption
    assert "KoALa-Bench leaderboard (test copy)" in caption
    click_header(browser, pub, 1)
    assert [r[0] for r in rows(browser, pub)] == ["pub-b", "pub-a"]

    assert_offline(browser)
    assert hits == []


def test_report_of_real_runs_in_chromium(browser, tmp_path: Path) -> None:
    """The page of :func:`koala.report.write_report` over the runs of test_score_report: the
    hand-worked CERs (m1 7/15 clean, 9/15 noisy; m2 0/15, 3/15) and the three real plots."""
    from test_score_report import m1_records, m2_records, write_run

    from koala import report as rep

    a = write_run(tmp_path / "run_m1", m1_records())
    b = write_run(tmp_path / "run_m2", m2_records())
    out = tmp_path / "report"
    payload = rep.write_report(rep.collect([a, b], st_metrics=["bleu"]), out, [str(a), str(b)])
    page = write_html(payload, out / "results.html")
    browser.get(page.as_uri())

    for task, table in payload["tables"].items():
        selector = f'#results table[data-task="{task}"]'
        assert browser.execute_script(HEADER_JS, selector) == table["header"]
        width = len(table["header"])
        assert rows(browser, selector) == [[*r, *[""] * (width - len(r))] for r in table["rows"]]
    asr = '#results table[data-task="asr"]'
    got = {(r[0], r[1]): (r[2].split()[0], r[3].split()[0]) for r in rows(browser, asr)}
    assert got == {
        ("asr_zeroth", "clean"): ("46.67", "0.00"),
        ("asr_zeroth", "noisy"): ("60.00", "20.00"),
    }
    click_header(browser, asr, 2)
    click_header(browser, asr, 2)  # m1's CER, highest first
    assert [r[1] for r in rows(browser, asr)] == ["noisy", "clean"]

    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.alt, i.naturalWidth > 100])"
    )
    assert images == [["pa_qa_segments", True], ["clean_vs_noisy", True], ["scf", True]]
    published = browser.execute_script(
        "return document.querySelectorAll('#published table').length"
    )
    assert published == 6
    assert_offline(browser)

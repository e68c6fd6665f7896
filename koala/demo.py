"""``koala-bench demo``: the whole path on the embedded mini benchmark, offline.

1. build the mini benchmark source tree (project-written items, espeak-ng speech) in the
   published KoALA layout (:mod:`koala.mini`);
2. export it with the same builder users run on the real data: Parquet shards + dataset card;
3. load every config back with ``datasets.load_dataset(<export>, <config>)``;
4. run the two offline baselines over it: ``vosk-ko`` (Korean ASR) and ``cascade`` (vosk
   transcript + the MCTest sliding-window answerer, which abstains on translation and
   instruction following); both share one recogniser, so each clip is transcribed once;
5. score the run with the ``evaluate`` modules and write the report (``results.md``,
   ``results.json``, PNG plots).

Everything is cached under ``--out``: a second ``make demo`` reuses the tree, the export and
the predictions and only rescores.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

log = logging.getLogger(__name__)

# The configs the demo runs: every task, clean and noisy where the mini has both.
DEMO_CONFIGS = (
    "asr_zeroth",
    "asr_zeroth_noisy",
    "st_tst_common",
    "sqa_click",
    "sqa_click_noisy",
    "sqa_kobest_boolq",
    "sqa_kcsat",
    "sif_vicuna",
    "sca_qa",
    "sca_qa_noisy",
    "pa_qa",
    "pa_qa_noisy",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default="demo_out", help="where the demo writes (%(default)s)")
    parser.add_argument(
        "--configs", nargs="+", default=list(DEMO_CONFIGS), metavar="NAME", help="configs to run"
    )
    parser.add_argument("--limit", type=int, default=None, help="at most N rows per config")
    parser.add_argument("--concurrency", type=int, default=2, help="parallel model calls")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    import datasets

    from koala.export import export
    from koala.mini import build_mini_tree
    from koala.models.cascade import Cascade
    from koala.models.vosk_ko import VoskKorean
    from koala.report import collect, significance, write_report
    from koala.runner import run_model, summary

    out = Path(args.out).resolve()
    t0 = time.perf_counter()
    print(f"[1/5] mini benchmark source tree -> {out / 'mini_source'}")
    src = build_mini_tree(out / "mini_source")

    print(f"[2/5] export (Parquet + dataset card) -> {out / 'mini_parquet'}")
    parquet = out / "mini_parquet"
    export(src, parquet, sorted({c for c in args.configs}))

    print("[3/5] load_dataset on the export")
    for config in args.configs:
        ds = datasets.load_dataset(str(parquet), config, split="test")
        audio = ds[0]["audio"]
        print(
            f"      {config:18s} {ds.num_rows:3d} rows, audio {audio['sampling_rate']} Hz, "
            f"first clip {len(audio['array']) / audio['sampling_rate']:.1f} s"
        )

    asr = VoskKorean()  # one recogniser: the cascade reuses the transcripts vosk-ko made
    run_dirs = []
    for model in (asr, Cascade(asr=asr)):
        run_dir = out / "run" / model.name  # a run directory holds one model's run
        run_dirs.append(run_dir)
        print(f"[4/5] run {model.name} -> {run_dir}")
        stats = run_model(
            model,
            args.configs,
            run_dir,
            data=str(parquet),
            limit=args.limit,
            concurrency=args.concurrency,
            progress=not args.no_progress,
        )
        print(summary(stats))

    print("[5/5] score and report")
    report_dir = out / "report"
    results = collect(run_dirs, rescore=True)
    payload = write_report(
        results,
        report_dir,
        [str(d) for d in run_dirs],
        significance=significance(run_dirs),
        html=True,
    )
    md = report_dir / "results.md"
    print()
    print(md.read_text(encoding="utf-8").split("## Plots")[0].rstrip())
    print()
    print(f"report: {md}")
    print(f"        {report_dir / 'results.json'}")
    for plot in ("pa_qa_segments.png", "clean_vs_noisy.png", "scf.png"):
        print(f"plot:   {report_dir / plot}")
    print(f"page:   {payload['html']}  (self-contained leaderboard page)")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s")
    _installed_calls()
    return 0


def _installed_calls() -> None:
    """End with the two calls users type, from the datasets and modules caches that
    ``koala-bench prepare --mini`` and ``koala-bench metrics install`` fill (``make demo``)."""
    import datasets
    import evaluate

    from koala.prepare import PreparedDatasetError, check_prepared

    print('\nload_dataset("koala-bench", "pa_qa")[0]:')
    try:
        check_prepared("pa_qa")  # names data another package version prepared
        row = datasets.load_dataset("koala-bench", "pa_qa", split="test")[0]
    except (PreparedDatasetError, FileNotFoundError, ValueError, ConnectionError) as exc:
        print(f"      not available ({exc}); run: koala-bench prepare --mini")
    else:
        audio = row.pop("audio")
        print(f"      audio: {len(audio['array']) / audio['sampling_rate']:.1f} s")
        for key, value in row.items():
            print(f"      {key}: {str(value)[:100]}")
    print('evaluate.load("koala/scf").compute(...):')
    try:
        scf = evaluate.load("koala/scf")
    except FileNotFoundError as exc:
        print(f"      not available ({exc}); run: koala-bench metrics install")
        return
    # three items answered right from text alone; two follow the counterfactual speech
    result = scf.compute(
        predictions=["A", "B", "A", "C"],
        references=["A", "B", "C", "D"],
        text_predictions=["B", "C", "A", "A"],
        text_references=["B", "C", "A", "B"],
        labels="letters",
    )
    print(f"      scf = {result['scf']:.3f}, parametric = {result['parametric_proportion']:.3f}")

"""A transformers ASR model over KoALa-Bench ASR, scored with the ``korean_cer`` metric.

    python examples/asr_transformers.py openai/whisper-small --data DIR_OR_HUB_ID \\
        [--config asr_zeroth] [--limit 100] [--batch-size 8]

Copy the loop into your own code: rows give ``row["audio"]["array"]`` and
``row["audio"]["sampling_rate"]``; ``korean_cer`` applies the published normalisation (Hangul,
digits and spaces kept, then spaces removed) and returns the corpus CER with its counts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets
import evaluate
from transformers import pipeline

METRICS = Path(__file__).resolve().parent.parent / "metrics"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a transformers ASR model (Hub id or local directory)")
    ap.add_argument("--data", required=True, help="export directory or Hub id")
    ap.add_argument("--config", default="asr_zeroth")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    ds = datasets.load_dataset(args.data, args.config, split="test")
    if args.limit:
        ds = ds.select(range(min(args.limit, len(ds))))
    asr = pipeline("automatic-speech-recognition", model=args.model, device=args.device)
    kwargs = {}
    if getattr(asr.model.config, "model_type", "") == "whisper":
        kwargs["generate_kwargs"] = {"language": "korean", "task": "transcribe"}

    predictions, references = [], []
    for batch in ds.iter(batch_size=args.batch_size):
        inputs = [{"raw": a["array"], "sampling_rate": a["sampling_rate"]} for a in batch["audio"]]
        outputs = asr(inputs, batch_size=args.batch_size, **kwargs)
        predictions += [o["text"] for o in outputs]
        references += batch["text"]

    cer = evaluate.load(str(METRICS / "korean_cer"))
    result = cer.compute(predictions=predictions, references=references)
    print(
        f"{args.model} on {args.config} ({len(references)} utterances): "
        f"CER {100 * result['cer']:.2f}%  (S {result['substitutions']}, "
        f"D {result['deletions']}, I {result['insertions']})"
    )
    for hyp, ref in list(zip(predictions, references, strict=True))[:3]:
        print(f"  ref: {ref}\n  hyp: {hyp}")


if __name__ == "__main__":
    main()

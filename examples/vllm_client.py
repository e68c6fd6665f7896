"""A client for a vLLM (or any OpenAI-compatible) server with audio input.

    vllm serve Qwen/Qwen2-Audio-7B-Instruct --port 8000      # elsewhere
    python examples/vllm_client.py Qwen/Qwen2-Audio-7B-Instruct --data DIR_OR_HUB_ID \\
        [--base-url http://127.0.0.1:8000/v1] [--config sqa_click] [--concurrency 16]

Each row's audio goes as a base64 WAV ``input_audio`` part next to the text prompt, with up to
``--concurrency`` requests in flight (retries with backoff on 429/5xx/time-outs); the API key,
if the server needs one, is read from ``$OPENAI_API_KEY``. Multiple-choice configs are scored
with ``choice_accuracy``, ASR configs with ``korean_cer``. ``koala-bench run --model
openai:MODEL@URL`` does the same for every config, resumably.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
from pathlib import Path

import datasets
import evaluate
import soundfile as sf

from koala.openai_client import ChatError, OpenAIClient

METRICS = Path(__file__).resolve().parent.parent / "metrics"


def wav_base64(array, sampling_rate: int) -> str:
    buf = io.BytesIO()
    sf.write(buf, array, sampling_rate, format="WAV", subtype="PCM_16")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def prompt_of(row: dict) -> str:
    if "choices" not in row:
        return "음성을 듣고 들리는 말을 한국어로 그대로 받아 적으세요. 받아 적은 문장만 쓰세요."
    lines = [f"질문: {row['question']}"] if row.get("question") else []
    lines += [f"({lab}) {c}" for lab, c in zip(row["choice_labels"], row["choices"], strict=True)]
    return "음성을 듣고 알맞은 답의 기호를 고르세요.\n\n" + "\n".join(lines) + "\n답: "


async def ask_all(client: OpenAIClient, rows: list[dict]) -> list[str]:
    async def one(row: dict) -> str:
        audio = row["audio"]
        content = [
            {
                "type": "input_audio",
                "input_audio": {
                    "data": wav_base64(audio["array"], audio["sampling_rate"]),
                    "format": "wav",
                },
            },
            {"type": "text", "text": prompt_of(row)},
        ]
        try:
            result = await client.achat(
                [{"role": "user", "content": content}], temperature=0, max_tokens=256
            )
            return result.text
        except ChatError as exc:  # counted as a wrong answer, not a crash
            print(f"row {row.get('id')}: {exc}")
            return ""

    async with client:
        return await asyncio.gather(*(one(r) for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="the model name the server serves")
    ap.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    ap.add_argument("--data", required=True, help="export directory or Hub id")
    ap.add_argument("--config", default="sqa_click")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args()

    ds = datasets.load_dataset(args.data, args.config, split="test")
    if args.limit:
        ds = ds.select(range(min(args.limit, len(ds))))
    rows = list(ds)
    client = OpenAIClient(
        args.base_url, args.model, concurrency=args.concurrency, timeout=args.timeout
    )
    answers = asyncio.run(ask_all(client, rows))

    if "choices" in ds.column_names:
        metric = evaluate.load(str(METRICS / "choice_accuracy"))
        result = metric.compute(
            predictions=answers,
            references=[r["answer"] for r in rows],
            choices=[r["choices"] for r in rows],
            labels=[r["choice_labels"] for r in rows],
        )
        print(
            f"{args.model} on {args.config}: accuracy {100 * result['accuracy']:.1f}% "
            f"({result['correct']}/{result['total']}, unparsed {result['unparsed']})"
        )
    else:
        metric = evaluate.load(str(METRICS / "korean_cer"))
        result = metric.compute(predictions=answers, references=[r["text"] for r in rows])
        print(f"{args.model} on {args.config}: CER {100 * result['cer']:.2f}%")


if __name__ == "__main__":
    main()

"""Logit-scored multiple choice with a Qwen2-Audio-style model (processor + model).

    python examples/logit_choice.py Qwen/Qwen2-Audio-7B-Instruct --data DIR_OR_HUB_ID \\
        [--config sqa_click] [--limit 50]

The published rule: "input = audio + prompt + "\\n답: "; the scores are the next-token
log-probabilities of each choice label (first single-token form among ``L``, ``(L)``,
`` (L)``, `` L``), argmax over the labels only." The per-label scores, in label order, go
straight into the ``choice_accuracy`` metric, which takes the argmax.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import datasets
import evaluate
import torch
from transformers import AutoProcessor, Qwen2AudioForConditionalGeneration

METRICS = Path(__file__).resolve().parent.parent / "metrics"


def label_token_id(tokenizer, label: str) -> int | None:
    for form in (label, f"({label})", f" ({label})", f" {label}"):
        ids = tokenizer.encode(form, add_special_tokens=False)
        if len(ids) == 1:
            return ids[0]
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model", help="a Qwen2-Audio-style model (Hub id or local directory)")
    ap.add_argument("--data", required=True, help="export directory or Hub id")
    ap.add_argument("--config", default="sqa_click", help="an sqa_* or pa_qa config")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()

    processor = AutoProcessor.from_pretrained(args.model)
    model = Qwen2AudioForConditionalGeneration.from_pretrained(args.model).to(args.device).eval()
    sr = processor.feature_extractor.sampling_rate
    ds = datasets.load_dataset(args.data, args.config, split="test")
    ds = ds.cast_column("audio", datasets.Audio(sampling_rate=sr))
    if args.limit:
        ds = ds.select(range(min(args.limit, len(ds))))

    scores, references, labels = [], [], []
    for row in ds:
        lines = [f"질문: {row['question']}"] if row["question"] else []
        lines += [
            f"({lab}) {c}" for lab, c in zip(row["choice_labels"], row["choices"], strict=True)
        ]
        prompt = "음성을 듣고 알맞은 답의 기호를 고르세요.\n\n" + "\n".join(lines) + "\n답: "
        messages = [
            {
                "role": "user",
                "content": [
                    {"type": "audio", "audio_url": "clip.wav"},
                    {"type": "text", "text": prompt},
                ],
            }
        ]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = processor(
            text=[text], audio=[row["audio"]["array"]], sampling_rate=sr, return_tensors="pt"
        ).to(args.device)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(**inputs).logits[0, -1].float(), dim=-1)
        ids = [label_token_id(processor.tokenizer, lab) for lab in row["choice_labels"]]
        scores.append([float(logprobs[i]) if i is not None else float("-inf") for i in ids])
        references.append(row["answer"])
        labels.append(row["choice_labels"])

    accuracy = evaluate.load(str(METRICS / "choice_accuracy"))
    result = accuracy.compute(predictions=scores, references=references, labels=labels)
    print(
        f"{args.model} on {args.config}: logit-based accuracy {100 * result['accuracy']:.1f}% "
        f"({result['correct']}/{result['total']})"
    )


if __name__ == "__main__":
    main()

"""The transformers: adapter on the lowest transformers setup.cfg accepts (run by
scripts/legacy_transformers.sh, which puts transformers 4.56 first on the path): a tiny
randomly initialised Qwen2-Audio with its real processor answers a batch of two clips through
the adapter, with the label scores of an independent forward pass. Imports nothing that needs
the newer huggingface-hub (no datasets)."""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import torch
import transformers
from transformers import (
    AutoProcessor,
    Qwen2AudioForConditionalGeneration,
)

from koala.models import Audio, Request
from koala.models.hf import HFAudioLM

MC = "질문 고르세요\n(A) 가\n(B) 나\n(C) 다\n(D) 라\n답: "


def tiny(path: str) -> None:
    from tiny_models import save_tiny_qwen2_audio

    save_tiny_qwen2_audio(path)


def clip(seconds: float, f: float) -> Audio:
    t = np.arange(int(seconds * 16000)) / 16000
    return Audio((0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32), 16000)


def main() -> int:
    print(f"transformers {transformers.__version__} from {transformers.__file__}")
    with tempfile.TemporaryDirectory() as path:
        tiny(path)
        model = HFAudioLM(path, max_new_tokens=3, batch_size=2)
        a, b = clip(1.0, 330), clip(1.5, 1200)
        answers = model.answer_batch(
            [Request(a, MC, ("A", "B", "C", "D")), Request(b, MC, ("A", "B", "C", "D"))]
        )
        failed = [x for x in answers if isinstance(x, BaseException)]
        assert not failed, failed
        got = model.choice_logprobs(a, MC, "ABCD")
        proc = AutoProcessor.from_pretrained(path)
        ref = Qwen2AudioForConditionalGeneration.from_pretrained(path).eval()
        content = [{"type": "audio", "audio_url": "x"}, {"type": "text", "text": MC}]
        text = proc.apply_chat_template(
            [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
        )
        inputs = proc(text=[text], audio=[a.array], sampling_rate=16000, return_tensors="pt")
        inputs.pop("token_type_ids", None)  # 4.56's fast tokenizer adds them; the model refuses
        with torch.no_grad():
            lp = torch.log_softmax(ref(**inputs).logits[0, -1].float(), -1)
        want = {k: float(lp[proc.tokenizer.encode(k, add_special_tokens=False)[0]]) for k in "ABCD"}
        assert all(abs(got[k] - want[k]) < 1e-4 for k in "ABCD"), (got, want)
        assert all(abs(answers[0].logprobs[k] - want[k]) < 1e-3 for k in "ABCD")
        assert answers[0].logprobs != answers[1].logprobs  # each item its own clip
    print("ok: the transformers: adapter runs on", transformers.__version__)
    return 0


if __name__ == "__main__":
    sys.exit(main())

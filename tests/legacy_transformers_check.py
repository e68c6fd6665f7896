"""The transformers: adapter on the lowest transformers setup.cfg accepts (run by
scripts/legacy_transformers.sh, which puts transformers 4.56 first on the path): a tiny
randomly initialised Qwen2-Audio with its real processor answers a batch of two clips through
the adapter, with the label scores of an independent forward pass. Imports nothing that needs
the newer huggingface-hub (no datasets)."""

from __future__ import annotations

import sys
import tempfile

import numpy as np
import tokenizers
import torch
import transformers
from transformers import (
    AutoProcessor,
    PreTrainedTokenizerFast,
    Qwen2AudioConfig,
    Qwen2AudioForConditionalGeneration,
    Qwen2AudioProcessor,
    WhisperFeatureExtractor,
)

from koala.models import Audio, Request
from koala.models.hf import HFAudioLM

MC = "질문 고르세요\n(A) 가\n(B) 나\n(C) 다\n(D) 라\n답: "


def tiny(path: str) -> None:
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>"]
    special.append("<|audio_eos|>")
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=special,
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["답: (A) (B) (C) (D) 질문 고르세요 A B C D"] * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>"
    )
    proc = Qwen2AudioProcessor(
        feature_extractor=WhisperFeatureExtractor(feature_size=128), tokenizer=fast
    )
    cfg = Qwen2AudioConfig(
        audio_config={
            "d_model": 16,
            "encoder_layers": 1,
            "encoder_attention_heads": 2,
            "encoder_ffn_dim": 32,
            "num_mel_bins": 128,
        },
        text_config={
            "model_type": "qwen2",
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 1,
            "intermediate_size": 64,
            "vocab_size": len(fast),
        },
        audio_token_index=fast.convert_tokens_to_ids("<|AUDIO|>"),
    )
    torch.manual_seed(0)
    proc.save_pretrained(path)
    Qwen2AudioForConditionalGeneration(cfg).eval().save_pretrained(path)


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

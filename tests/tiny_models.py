"""Tiny, randomly initialised models of real transformers classes with their real processors,
built offline (a byte-level BPE tokenizer trained here, no download), for the tests and the
minimum-version check (``tests/legacy_transformers_check.py``) alike."""

from __future__ import annotations

import os

#: the special tokens of Qwen2-Audio's tokenizer that its processor and chat template use
QWEN2_AUDIO_SPECIAL = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|AUDIO|>",
    "<|audio_bos|>",
    "<|audio_eos|>",
)


def save_tiny_qwen2_audio(path: str | os.PathLike[str]) -> None:
    """A randomly initialised ``Qwen2AudioForConditionalGeneration`` (one layer, hidden size
    16-32, seed 0) with a real ``Qwen2AudioProcessor`` (Whisper features, 128 mel bins),
    saved to ``path``."""
    import tokenizers
    import torch
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        WhisperFeatureExtractor,
    )

    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=list(QWEN2_AUDIO_SPECIAL),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(["답: (A) (B) (C) (D) 질문 음성을 듣고 고르세요 A B C D"] * 5, trainer)
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
    model = Qwen2AudioForConditionalGeneration(cfg).eval()
    proc.save_pretrained(path)
    model.save_pretrained(path)

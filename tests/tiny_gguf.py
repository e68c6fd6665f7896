"""A tiny llama-architecture GGUF whose next-token logits are set by the test.

Every token embeds to the same all-ones vector and the attention and feed-forward weights are
zero, so the residual stream stays all ones whatever the context; the final RMS norm keeps it
at ones (up to its epsilon), and token t's logit is the sum of its output row, set to
``logits.get(piece, 0)``. The model ignores its context: every position has the same
distribution, softmax(logits), which a test can compute on its own. The vocabulary is
SentencePiece-style: unknown, BOS and EOS, the 256 byte-fallback tokens, ChatML's two control
tokens and the test's pieces (so any text tokenizes, and the pieces come back as they are).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

N_EMBD = 32
N_HEAD = 4
N_FF = 64
RMS_EPS = 1e-5
CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def vocabulary(pieces: Sequence[str]) -> list[str]:
    """The token texts, in id order."""
    return [
        "<unk>",
        "<s>",
        "</s>",
        *[f"<0x{b:02X}>" for b in range(256)],
        "<|im_start|>",
        "<|im_end|>",
        *pieces,
    ]


def write_tiny_llama(path: Path, pieces: Sequence[str], logits: Mapping[str, float]) -> Path:
    """Write the model to ``path`` (see the module docstring)."""
    import gguf

    vocab = vocabulary(pieces)
    n_vocab = len(vocab)
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(4096)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(1)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD)
    w.add_layer_norm_rms_eps(RMS_EPS)
    w.add_rope_dimension_count(N_EMBD // N_HEAD)
    w.add_tokenizer_model("llama")
    w.add_token_list(vocab)
    w.add_token_scores([0.0] * 3 + [0.0] * 256 + [0.0, 0.0] + [-1.0] * len(pieces))
    types = (
        [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.BYTE] * 256
        + [gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
        + [gguf.TokenType.NORMAL] * len(pieces)
    )
    w.add_token_types(types)
    w.add_unk_token_id(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_chat_template(CHATML)
    f32 = np.float32
    w.add_tensor("token_embd.weight", np.ones((n_vocab, N_EMBD), dtype=f32))
    zeros = {
        "blk.0.attn_q.weight": (N_EMBD, N_EMBD),
        "blk.0.attn_k.weight": (N_EMBD, N_EMBD),
        "blk.0.attn_v.weight": (N_EMBD, N_EMBD),
        "blk.0.attn_output.weight": (N_EMBD, N_EMBD),
        "blk.0.ffn_gate.weight": (N_FF, N_EMBD),
        "blk.0.ffn_up.weight": (N_FF, N_EMBD),
        "blk.0.ffn_down.weight": (N_EMBD, N_FF),
    }
    w.add_tensor("blk.0.attn_norm.weight", np.ones(N_EMBD, dtype=f32))
    w.add_tensor("blk.0.ffn_norm.weight", np.ones(N_EMBD, dtype=f32))
    for name, shape in zeros.items():
        w.add_tensor(name, np.zeros(shape, dtype=f32))
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=f32))
    out = np.zeros((n_vocab, N_EMBD), dtype=f32)
    for i, piece in enumerate(vocab):
        out[i, :] = logits.get(piece, 0.0) / N_EMBD
    w.add_tensor("output.weight", out)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def expected_logprobs(pieces: Sequence[str], logits: Mapping[str, float]) -> dict[str, float]:
    """log softmax of the model's logits, per token text, computed here with the RMS norm's
    epsilon (the hidden state is ones / sqrt(1 + eps))."""
    scale = 1.0 / math.sqrt(1.0 + RMS_EPS)
    vocab = vocabulary(pieces)
    z = [logits.get(t, 0.0) * scale for t in vocab]
    m = max(z)
    log_norm = m + math.log(sum(math.exp(x - m) for x in z))
    return {t: x - log_norm for t, x in zip(vocab, z, strict=True)}

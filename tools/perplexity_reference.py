#!/usr/bin/env python3
"""Perplexity exactly as llama.cpp's `llama-perplexity` computes it, with transformers in fp32.

Our engine's perplexity command must match llama.cpp's numbers, so the reference follows its
method rather than the Hugging Face sliding-window recipe:
  tokens = encode(text, add_special_tokens=True); n_chunk = len(tokens) // n_ctx
  each chunk is an independent window of n_ctx tokens whose first token is replaced by BOS when
  the tokenizer adds one; only the second half of each window is scored (every scored token then
  has at least n_ctx/2 tokens of context): nll of window[j+1] given window[..j], j in [n_ctx/2, n_ctx-1).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_common  # noqa: E402


@torch.no_grad()
def llama_cpp_perplexity(model, tokens: list[int], n_ctx: int, bos_id: int | None) -> dict:
    """-> {n_ctx, n_chunk, count, nll (mean), ppl, logprobs (one per scored token, in order)}."""
    n_chunk = len(tokens) // n_ctx
    if n_chunk < 1:
        raise ValueError(f"text has {len(tokens)} tokens; need at least n_ctx = {n_ctx}")
    first = n_ctx // 2
    logprobs: list[float] = []
    for c in range(n_chunk):
        window = list(tokens[c * n_ctx : (c + 1) * n_ctx])
        if bos_id is not None:
            window[0] = bos_id
        logits = hf_common.forward_logits(model, window).double()  # [n_ctx, vocab]
        logp = torch.log_softmax(logits[first : n_ctx - 1], dim=-1)
        targets = torch.tensor(window[first + 1 : n_ctx])
        logprobs += logp.gather(1, targets[:, None])[:, 0].tolist()
    nll = -sum(logprobs) / len(logprobs)
    return {
        "n_ctx": n_ctx,
        "n_chunk": n_chunk,
        "count": len(logprobs),
        "nll": nll,
        "ppl": math.exp(nll),
        "logprobs": logprobs,
    }


def perplexity_of_text(model_dir: str, text: str, n_ctx: int, device: str = "cpu") -> dict:
    """Load model + tokenizer from a checkpoint directory and score text; adds add_bos/num_tokens."""
    tokenizer = hf_common.load_tokenizer(model_dir)
    model = hf_common.load_fp32_model(model_dir, device)
    tokens = hf_common.encode(tokenizer, text)
    bos_id = hf_common.bos_added(tokenizer)
    result = llama_cpp_perplexity(model, tokens, n_ctx, bos_id)
    result.update({"add_bos": bos_id is not None, "bos_id": bos_id, "num_tokens": len(tokens)})
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="Hugging Face checkpoint directory")
    ap.add_argument("--file", required=True, help="UTF-8 text file to score")
    ap.add_argument("--ctx", type=int, default=512, help="n_ctx (llama.cpp -c)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = ap.parse_args()
    with open(args.file, encoding="utf-8") as f:
        text = f.read()
    r = perplexity_of_text(args.model, text, args.ctx, args.device)
    hf_common.log(
        f"tokens {r['num_tokens']}  add_bos {r['add_bos']}  n_ctx {r['n_ctx']}  n_chunk {r['n_chunk']}  "
        f"scored {r['count']}  mean nll {r['nll']:.6f}  ppl {r['ppl']:.6f}"
    )


if __name__ == "__main__":
    main()

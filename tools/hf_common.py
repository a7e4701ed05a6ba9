"""Helpers shared by the reference-data scripts in tools/.

The goldens, the demo trainer and the perplexity tool must load checkpoints, decode greedily and
write tokenizer/generation files in exactly one way, so that numbers produced by different scripts
mean the same thing. Everything here runs on CPU or CUDA with torch + transformers + tokenizers.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass

import torch

# ChatML, as Qwen2/Qwen3 checkpoints ship it (no system-prompt default, so the rendering is obvious).
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

# Llama-3 style headers. With a vocabulary that lacks the header tokens they are plain text, which is
# still a valid (if unusual) template and exercises the template engine the same way.
LLAMA3_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}"
)

# Mistral instruct style: user turns wrapped in [INST] ... [/INST], assistant turns closed by eos.
MISTRAL_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% else %}{{ message['content'] + eos_token }}{% endif %}"
    "{% endfor %}"
)


def log(*args) -> None:
    """print that reaches a captured stdout at once (the GPU run is read through a pipe)."""
    print(*args, flush=True)


def load_fp32_model(model_dir: str, device: str = "cpu"):
    """The reference forward: stored weights (whatever their dtype) upcast to fp32, eager attention.

    Upcasting after loading means bf16/fp16 checkpoints are evaluated on exactly their stored values.
    """
    from transformers import AutoModelForCausalLM

    # NOTE: TF32 matmuls would make the "fp32" reference differ by ~1e-3 between runs and shapes.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    model = AutoModelForCausalLM.from_pretrained(
        model_dir, dtype=torch.float32, attn_implementation="eager"
    )
    return model.to(device).eval()


def load_tokenizer(model_dir: str):
    """AutoTokenizer, i.e. what transformers and vLLM users get from the directory."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def encode(tokenizer, text: str) -> list[int]:
    """Encode like an inference server: special tokens added per the tokenizer's post-processor."""
    return list(tokenizer(text, add_special_tokens=True).input_ids)


def bos_added(tokenizer) -> int | None:
    """The BOS id if encoding with special tokens prepends it (llama.cpp's add_bos), else None."""
    with_special = tokenizer("a", add_special_tokens=True).input_ids
    without = tokenizer("a", add_special_tokens=False).input_ids
    bos = tokenizer.bos_token_id
    if bos is not None and len(with_special) == len(without) + 1 and with_special[0] == bos:
        return bos
    return None


def top2_margin(logits: torch.Tensor) -> float:
    """Gap between the best and second-best logit of one row [vocab]; small gaps make argmax fragile."""
    top = torch.topk(logits.float(), 2).values
    return float(top[0] - top[1])


@dataclass
class GreedyRun:
    prompt_ids: list[int]
    greedy_ids: list[int]  # n_steps tokens
    margins: list[float]  # n_steps + 1: one per row of step_logits
    step_logits: torch.Tensor  # [n_steps + 1, vocab] fp32 on CPU
    prefill_logits: torch.Tensor  # [len(prompt_ids), vocab] fp32 on CPU


@torch.no_grad()
def forward_logits(model, ids: list[int]) -> torch.Tensor:
    """Logits of every position of one sequence, full forward, no cache. -> [len(ids), vocab] on CPU."""
    device = next(model.parameters()).device
    x = torch.tensor([ids], dtype=torch.long, device=device)
    return model(input_ids=x, use_cache=False).logits[0].float().cpu()


@torch.no_grad()
def greedy_reference(model, prompt_ids: list[int], n_steps: int) -> GreedyRun:
    """Greedy decode where every step is a full re-forward of the whole sequence (no KV cache).

    Row 0 of step_logits is the last prompt position; row k is the position of greedy token k.
    """
    ids = list(prompt_ids)
    rows, greedy = [], []
    prefill = None
    for step in range(n_steps + 1):
        logits = forward_logits(model, ids)
        if prefill is None:
            prefill = logits
        rows.append(logits[-1])
        if step < n_steps:
            token = int(torch.argmax(logits[-1]))
            greedy.append(token)
            ids.append(token)
    step_logits = torch.stack(rows)
    margins = [top2_margin(r) for r in step_logits]
    return GreedyRun(list(prompt_ids), greedy, margins, step_logits, prefill)


@torch.no_grad()
def kv_cache_logits(model, prompt_ids: list[int], forced_ids: list[int]) -> torch.Tensor:
    """Prefill once, then feed forced_ids one token at a time through the KV cache.

    -> [len(forced_ids) + 1, vocab]: same row meaning as GreedyRun.step_logits.
    """
    from transformers import DynamicCache

    device = next(model.parameters()).device
    cache = DynamicCache(config=model.config)
    out = model(input_ids=torch.tensor([prompt_ids], device=device), past_key_values=cache, use_cache=True)
    rows = [out.logits[0, -1].float().cpu()]
    for token in forced_ids:
        out = model(input_ids=torch.tensor([[token]], device=device), past_key_values=cache, use_cache=True)
        rows.append(out.logits[0, -1].float().cpu())
    return torch.stack(rows)


def check_kv_cache_agrees(model, run: GreedyRun, tol: float = 1e-4) -> float:
    """Incremental decode must reproduce the re-forward logits; returns the max abs difference."""
    cached = kv_cache_logits(model, run.prompt_ids, run.greedy_ids)
    diff = float((cached - run.step_logits).abs().max())
    scale = float(run.step_logits.abs().max())
    if diff > tol * max(1.0, scale):
        raise RuntimeError(f"KV-cache decode disagrees with re-forward: max |diff| {diff} (scale {scale})")
    return diff


def write_tokenizer_files(
    out_dir: str,
    tokenizer_json: str,
    chat_template: str,
    bos_token: str | None,
    eos_token: str | None,
    model_max_length: int,
) -> None:
    """tokenizer.json as given plus a tokenizer_config.json naming the generic fast class.

    PreTrainedTokenizerFast loads tokenizer.json verbatim; model-specific classes may rebuild
    normalizers or pre-tokenizers, which would make the reference depend on class logic.
    """
    dst = os.path.join(out_dir, "tokenizer.json")
    if os.path.abspath(tokenizer_json) != os.path.abspath(dst):
        shutil.copyfile(tokenizer_json, dst)
    cfg = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": bos_token,
        "eos_token": eos_token,
        "pad_token": None,
        "clean_up_tokenization_spaces": False,
        "model_max_length": model_max_length,
        "chat_template": chat_template,
    }
    write_json(os.path.join(out_dir, "tokenizer_config.json"), cfg)


def write_generation_config(out_dir: str, bos_id: int | None, eos_id, sampling: dict | None) -> None:
    """generation_config.json: eos_token_id may be an int or a list (both occur in real checkpoints)."""
    cfg = {"eos_token_id": eos_id} if bos_id is None else {"bos_token_id": bos_id, "eos_token_id": eos_id}
    if sampling:
        cfg.update({"do_sample": True, **sampling})
    cfg["transformers_version"] = _transformers_version()
    write_json(os.path.join(out_dir, "generation_config.json"), cfg)


def write_json(path: str, obj) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(path, n)) for n in os.listdir(path))


def _transformers_version() -> str:
    import transformers

    return transformers.__version__

#!/usr/bin/env python3
"""What transformers itself gets in bf16 on the golden checkpoints: the noise floor of bf16.

For each case of tests/data/golden this writes bf16_reference.json: per prompt, the relative L2
error of transformers' bf16 logits (weights and activations in bf16, eager attention, CPU) against
the fp32 goldens at each of the 9 steps (teacher-forced on the fp32 greedy tokens), and the bf16
model's own free-running greedy ids. The GPU test compares tokamak's bf16 error with this floor.

    python3 tools/bf16_reference.py [--cases llama_gqa,...]
"""
from __future__ import annotations

import argparse
import json
import os

import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

GOLDEN = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "golden")
CASES = ["llama_gqa", "llama3_scaled", "mistral_odd", "qwen2_bias", "qwen3_qknorm"]


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).norm() / b.norm()).item()


def case_reference(case: str) -> dict:
    d = os.path.join(GOLDEN, case)
    golden = json.load(open(os.path.join(d, "golden.json")))
    logits = load_file(os.path.join(d, "logits.safetensors"))
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").eval()
    prompts = []
    for i, p in enumerate(golden["prompts"]):
        n, ids = len(p["prompt_ids"]), p["prompt_ids"] + p["greedy_ids"]
        with torch.no_grad():
            out = model(torch.tensor([ids])).logits[0].float()
        errors = [rel_l2(out[n - 1 + k], logits[f"prompt{i}.steps"][k]) for k in range(9)]
        seq = list(p["prompt_ids"])
        for _ in range(8):  # free-running bf16 greedy
            with torch.no_grad():
                seq.append(int(model(torch.tensor([seq])).logits[0, -1].float().argmax()))
        prompts.append({"step_rel_l2": [round(e, 6) for e in errors], "greedy_ids": seq[n:]})
    return {"case": case, "what": "transformers bf16 (CPU, eager) vs the fp32 goldens",
            "torch": torch.__version__, "prompts": prompts}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cases", default=",".join(CASES))
    for case in ap.parse_args().cases.split(","):
        ref = case_reference(case)
        with open(os.path.join(GOLDEN, case, "bf16_reference.json"), "w") as f:
            json.dump(ref, f, indent=1)
        worst = max(max(p["step_rel_l2"]) for p in ref["prompts"])
        same = [p["greedy_ids"] == g["greedy_ids"]
                for p, g in zip(ref["prompts"], json.load(open(os.path.join(GOLDEN, case, "golden.json")))["prompts"])]
        print(f"{case}: worst step rel L2 {worst:.4f}; bf16 greedy equals fp32 greedy: {same}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Tiny FP8 checkpoints in every format tokamak reads, with reference logits (tests/data/fp8).

Each case takes one golden checkpoint's weights (tests/data/golden, bf16/fp16/fp32), keeps the first
512 rows of its vocabulary, quantizes its layer projections as one format says, and writes a Hugging
Face checkpoint: config.json with the format's quantization_config, model.safetensors with FP8 e4m3
weights (F8_E4M3), their scales and the unquantized tensors in bf16. `reference.safetensors` holds
the logits of one teacher-forced sequence (a golden prompt and its greedy continuation, ids mod
512) from this script's own numpy forward of the same quantized arithmetic. `online_bf16` holds the
bf16 weights of ct_channel_token unquantized, with its logits: `--quantization fp8` (per-channel
weights, per-token inputs) must reproduce them.

  weights   w = fp8 * scale (scale per tensor, per output channel or per 128x128 block)
  inputs    x -> fp8(clip(x / s, +-448)) * s before every quantized product; s static per tensor
            (the checkpoint's input_scale), or amax / 448 of each token (clamped to
            activation_scale_ub for fbgemm) or of each 1x128 group, at least 1 / (448 * 512)
  fused     q/k/v and gate/up with per-tensor scales share the largest: fp8(q * s_i / s_max);
            their static input scale is the largest of the parts'

The FP8 rounding is ml_dtypes' float8_e4m3fn (round to nearest even), independent of tokamak's.
Everything else runs in float32, as tokamak's CPU backend does; tokamak must match within 1e-3
relative L2 per row (tests/unit/test_fp8_checkpoints.cpp). Deterministic: re-running rewrites
identical files.

    python3 -m venv /tmp/fp8venv && /tmp/fp8venv/bin/pip install numpy ml_dtypes
    /tmp/fp8venv/bin/python tools/make_fp8_checkpoints.py [--golden tests/data/golden] [--out tests/data/fp8]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import struct

import ml_dtypes
import numpy as np

FP8 = ml_dtypes.float8_e4m3fn
FP8_MAX = 448.0
MIN_SCALE = np.float32(1.0 / (448.0 * 512.0))
BLOCK = 128
VOCAB = 512
PROMPT = 1  # the golden prompt each case replays

# case -> (golden case, config key, quantization_config, weight scheme, input scheme)
CASES = {
    "ct_tensor_static": ("llama_gqa", "quantization_config", {
        "quant_method": "compressed-tensors", "format": "float-quantized", "quantization_status": "compressed",
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False,
                                  "symmetric": True},
            "output_activations": None}},
        "ignore": ["lm_head", "re:.*layers\\.1\\.mlp\\.down_proj"], "kv_cache_scheme": None},
        "tensor", "static"),
    "ct_channel_token": ("qwen2_bias", "compression_config", {
        "quant_method": "compressed-tensors", "format": "naive-quantized",
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "dynamic": False, "symmetric": True},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True,
                                  "symmetric": True}}},
        "ignore": ["lm_head"]},
        "channel", "token"),
    "ct_weight_only": ("qwen2_bias", "quantization_config", {
        "quant_method": "compressed-tensors", "format": "float-quantized",
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "channel", "dynamic": False, "symmetric": True},
            "input_activations": None}},
        "ignore": ["lm_head"]},
        "channel", "none"),
    "ct_block_group": ("mistral_odd", "quantization_config", {
        "quant_method": "compressed-tensors", "format": "float-quantized",
        "config_groups": {"group_0": {
            "targets": ["Linear"],
            "weights": {"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128],
                        "dynamic": False, "symmetric": True},
            "input_activations": {"num_bits": 8, "type": "float", "strategy": "group", "group_size": 128,
                                  "dynamic": True, "symmetric": True}}},
        "ignore": ["lm_head"]},
        "block", "group"),
    "fp8_block": ("qwen3_qknorm", "quantization_config", {
        "quant_method": "fp8", "activation_scheme": "dynamic", "weight_block_size": [128, 128],
        "ignored_layers": ["lm_head"]},
        "block", "group"),
    "fp8_tensor_static": ("llama3_scaled", "quantization_config", {
        "quant_method": "fp8", "activation_scheme": "static", "ignored_layers": ["lm_head"]},
        "tensor", "static"),
    "fbgemm_channel": ("llama_gqa", "quantization_config", {
        "quant_method": "fbgemm_fp8", "activation_scale_ub": None,  # set from the data below
        "modules_to_not_convert": ["lm_head", "layers.0.self_attn.o_proj"]},
        "channel", "token_ub"),
}


# ---- safetensors without the safetensors package (F8_E4M3 and BF16 written as raw bytes)

def read_safetensors(path: str) -> dict[str, np.ndarray]:
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b, e = t["data_offsets"]
        raw = data[8 + n + b:8 + n + e]
        if t["dtype"] == "BF16":
            a = (np.frombuffer(raw, np.uint16).astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(raw, {"F32": np.float32, "F16": np.float16}[t["dtype"]]).astype(np.float32)
        out[name] = a.reshape(t["shape"])
    return out


def to_bf16(a: np.ndarray) -> np.ndarray:
    """Round float32 to bf16 (nearest even), returned as float32 values."""
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16 << 16).astype(np.uint32)
    return u.view(np.float32)


def write_safetensors(path: str, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        dtype, a = tensors[name]
        if dtype == "BF16":
            raw = (a.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16).tobytes()
        elif dtype == "F8_E4M3":
            raw = a.astype(FP8).view(np.uint8).tobytes()
        else:
            raw = a.astype(np.float32).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


# ---- quantization

def fp8(x: np.ndarray) -> np.ndarray:
    """float32 -> the nearest e4m3fn value (saturated at +-448), as float32."""
    return np.clip(x, -FP8_MAX, FP8_MAX).astype(np.float32).astype(FP8).astype(np.float32)


def dyn_scale(amax: np.ndarray) -> np.ndarray:
    return np.maximum(amax.astype(np.float32) / np.float32(FP8_MAX), MIN_SCALE).astype(np.float32)


def quantize_weight(w: np.ndarray, scheme: str) -> tuple[np.ndarray, np.ndarray]:
    """w [out, in] -> (fp8 values as float32, scale) with the scale shaped as checkpoints store it."""
    out, inn = w.shape
    if scheme == "tensor":
        s = dyn_scale(np.abs(w).max(keepdims=True).reshape(1))
        return fp8(w / s[0]), s
    if scheme == "channel":
        s = dyn_scale(np.abs(w).max(1, keepdims=True))  # [out, 1]
        return fp8(w / s), s
    rb, cb = -(-out // BLOCK), -(-inn // BLOCK)
    s = np.zeros((rb, cb), np.float32)
    q = np.zeros_like(w)
    for i in range(rb):
        for j in range(cb):
            blk = w[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK]
            s[i, j] = dyn_scale(np.abs(blk).max())
            q[i * BLOCK:(i + 1) * BLOCK, j * BLOCK:(j + 1) * BLOCK] = fp8(blk / s[i, j])
    return q, s


def dequantize_weight(q: np.ndarray, s: np.ndarray, scheme: str) -> np.ndarray:
    if scheme == "tensor":
        return (q * s[0]).astype(np.float32)
    if scheme == "channel":
        return (q * s.reshape(-1, 1)).astype(np.float32)
    expanded = np.repeat(np.repeat(s, BLOCK, 0), BLOCK, 1)[:q.shape[0], :q.shape[1]]
    return (q * expanded).astype(np.float32)


def quantize_input(x: np.ndarray, scheme: str, static: float | None, ub: float | None) -> np.ndarray:
    """x [T, K] as an FP8 GEMM sees it: quantized, then dequantized."""
    if scheme == "none":
        return x
    if scheme == "static":
        s = np.float32(static)
        return fp8(x / s) * s
    if scheme in ("token", "token_ub"):
        amax = np.abs(x).max(1, keepdims=True)
        if scheme == "token_ub":
            amax = np.minimum(amax, np.float32(ub))
        s = dyn_scale(amax)
        return fp8(x / s) * s
    out = np.empty_like(x)
    for g in range(0, x.shape[1], BLOCK):
        part = x[:, g:g + BLOCK]
        s = dyn_scale(np.abs(part).max(1, keepdims=True))
        out[:, g:g + BLOCK] = fp8(part / s) * s
    return out


# ---- the forward (float32), every projection through `linear`

def rms_norm(x, w, eps):
    return (x * (1.0 / np.sqrt((x * x).mean(-1, keepdims=True) + np.float32(eps))) * w).astype(np.float32)


def inv_freq(cfg: dict, d: int) -> np.ndarray:
    rp = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    theta = cfg.get("rope_theta") or rp.get("rope_theta", 10000.0)
    inv = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    if rp.get("rope_type") == "llama3":
        factor, lo, hi, old = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"], \
            rp["original_max_position_embeddings"]
        wavelen = 2 * math.pi / inv
        scaled = np.where(wavelen > old / lo, inv / factor, inv)
        smooth = (old / wavelen - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        inv = np.where((wavelen >= old / hi) & (wavelen <= old / lo), smoothed, scaled)
    return inv.astype(np.float32)


def rope(x, inv):  # x [T, heads, D], neox halves
    f = np.arange(x.shape[0], dtype=np.float32)[:, None] * inv[None]
    cos, sin = np.cos(np.concatenate([f, f], -1))[:, None], np.sin(np.concatenate([f, f], -1))[:, None]
    h = x.shape[-1] // 2
    return (x * cos + np.concatenate([-x[..., h:], x[..., :h]], -1) * sin).astype(np.float32)


def forward(cfg: dict, w: dict, ids: list[int], linear) -> np.ndarray:
    heads, kvh = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d = cfg.get("head_dim") or cfg["hidden_size"] // heads
    eps, T = cfg["rms_norm_eps"], len(ids)
    inv = inv_freq(cfg, d)
    x = w["model.embed_tokens.weight"][ids]
    mask = np.triu(np.ones((T, T), bool), 1)
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        h = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        qkv = linear(p + "self_attn.qkv", h)
        q, k, v = np.split(qkv, [heads * d, (heads + kvh) * d], 1)
        q, k, v = q.reshape(T, heads, d), k.reshape(T, kvh, d), v.reshape(T, kvh, d)
        if p + "self_attn.q_norm.weight" in w:
            q = rms_norm(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q, inv), rope(k, inv)
        k, v = np.repeat(k, heads // kvh, 1), np.repeat(v, heads // kvh, 1)
        s = np.einsum("thd,shd->hts", q, k) / np.float32(math.sqrt(d))
        s = np.where(mask, -np.inf, s)
        e = np.exp(s - s.max(-1, keepdims=True))
        o = np.einsum("hts,shd->thd", e / e.sum(-1, keepdims=True), v).reshape(T, heads * d).astype(np.float32)
        x = x + linear(p + "self_attn.o_proj", o)
        h = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        gu = linear(p + "mlp.gate_up", h)
        g, u = np.split(gu, 2, 1)
        act = (g / (1 + np.exp(-g)) * u).astype(np.float32)
        x = x + linear(p + "mlp.down_proj", act)
    h = rms_norm(x, w["model.norm.weight"], eps)
    return linear("lm_head", h)


FUSED = {"self_attn.qkv": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
         "mlp.gate_up": ["mlp.gate_proj", "mlp.up_proj"]}


def parts_of(module: str) -> list[str]:
    for fused, parts in FUSED.items():
        if module.endswith(fused):
            prefix = module[:-len(fused)]
            return [prefix + p for p in parts]
    return [module]


def ignored(qc: dict, module: str) -> bool:
    import re
    if qc["quant_method"] == "compressed-tensors":
        return any(re.fullmatch(e[3:], module) if e.startswith("re:") else e == module for e in qc["ignore"])
    names = qc.get("ignored_layers", []) + qc.get("modules_to_not_convert", [])
    return any(e in module for e in names)


def make_case(name: str, golden_root: str, out_root: str) -> None:
    src, key, qc, wscheme, ischeme = CASES[name]
    qc = json.loads(json.dumps(qc))
    gdir = os.path.join(golden_root, src)
    cfg = json.load(open(os.path.join(gdir, "config.json")))
    gold = read_safetensors(os.path.join(gdir, "model.safetensors"))
    golden = json.load(open(os.path.join(gdir, "golden.json")))["prompts"][PROMPT]
    ids = [t % VOCAB for t in golden["prompt_ids"] + golden["greedy_ids"]]
    cfg["vocab_size"] = VOCAB
    w = {k: to_bf16(v[:VOCAB] if k in ("model.embed_tokens.weight", "lm_head.weight") else v) for k, v in gold.items()}
    bias = lambda m: w.get(m + ".bias")  # noqa: E731

    def float_linear(module, x):
        parts = parts_of(module)
        if module == "lm_head" and "lm_head.weight" not in w:
            return x @ w["model.embed_tokens.weight"].T
        y = x @ np.concatenate([w[p + ".weight"] for p in parts]).T
        b = [bias(p) for p in parts]
        return y + np.concatenate(b) if b[0] is not None else y

    # Calibration: the float forward's inputs of every linear (static input scales, the fbgemm bound).
    seen: dict[str, np.ndarray] = {}

    def calibrating(module, x):
        seen[module] = x
        return float_linear(module, x)

    forward(cfg, w, ids, calibrating)
    if ischeme == "token_ub":  # below some tokens' amax, so that the clamp matters
        amaxes = np.concatenate([np.abs(x).max(1) for m, x in seen.items() if m != "lm_head"])
        qc["activation_scale_ub"] = float(np.float32(np.quantile(amaxes, 0.75)))

    tensors = {k: ("BF16", v) for k, v in w.items() if not k.endswith("_proj.weight")}
    quantized: dict[str, tuple[np.ndarray, float | None]] = {}  # module -> (dequantized weight, static scale)
    scale_name = "weight_scale_inv" if qc["quant_method"] == "fp8" and wscheme == "block" else "weight_scale"
    for module in seen:
        parts = parts_of(module)
        if module == "lm_head" or ignored(qc, parts[0]):
            for p in parts:
                if p + ".weight" in w:
                    tensors[p + ".weight"] = ("BF16", w[p + ".weight"])
            continue
        qs, ss, statics = [], [], []
        for i, p in enumerate(parts):
            q, s = quantize_weight(w[p + ".weight"], wscheme)
            tensors[p + ".weight"] = ("F8_E4M3", q)
            tensors[p + "." + scale_name] = ("F32", s)
            qs.append(q), ss.append(s)
            if ischeme == "static":  # parts differ a little, so that the largest must win
                st = np.float32(dyn_scale(np.abs(seen[module]).max()) * np.float32(1 + 0.05 * i))
                tensors[p + ".input_scale"] = ("F32", st.reshape(1))
                statics.append(st)
        if wscheme == "tensor":  # one scale for the fused matrix: the largest, values requantized
            s_max = max(s[0] for s in ss)
            qs = [fp8(q * np.float32(s[0] / s_max)) if s[0] != s_max else q for q, s in zip(qs, ss)]
            deq = np.concatenate(qs) * s_max
        else:
            deq = np.concatenate([dequantize_weight(q, s, wscheme) for q, s in zip(qs, ss)])
        quantized[module] = (deq.astype(np.float32), max(statics) if statics else None)

    def fp8_linear(module, x):
        if module not in quantized:
            return float_linear(module, x)
        deq, static = quantized[module]
        xq = quantize_input(x, ischeme, static, qc.get("activation_scale_ub"))
        y = xq @ deq.T
        b = [bias(p) for p in parts_of(module)]
        return y + np.concatenate(b) if b[0] is not None else y

    logits = forward(cfg, w, ids, fp8_linear).astype(np.float32)
    cfg[key] = qc
    out = os.path.join(out_root, name)
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), tensors)
    write_safetensors(os.path.join(out, "reference.safetensors"), {"logits": ("F32", logits)})
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"case": name, "from": src, "token_ids": ids, "weights": wscheme, "inputs": ischeme,
                   "quantized_modules": sorted(quantized)}, f, indent=1)
        f.write("\n")
    if name == "ct_channel_token":  # --quantization fp8 of these bf16 weights must give the same logits
        write_online_case(out_root, name, cfg, key, w, ids, logits)
    float_logits = forward(cfg, w, ids, float_linear)
    err = np.linalg.norm(logits - float_logits, axis=1) / np.linalg.norm(float_logits, axis=1)
    print(f"{name:<20} from {src:<14} {len(quantized):2d} quantized linears, FP8 vs float logits: "
          f"worst row rel L2 {err.max():.4f}")


def write_online_case(out_root: str, name: str, cfg: dict, key: str, w: dict, ids: list[int],
                      logits: np.ndarray) -> None:
    """online_bf16: the bf16 weights `name` quantized, no quantization_config, `name`'s logits."""
    out = os.path.join(out_root, "online_bf16")
    os.makedirs(out, exist_ok=True)
    plain = {k: v for k, v in cfg.items() if k != key}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(plain, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out, "model.safetensors"), {k: ("BF16", v) for k, v in w.items()})
    write_safetensors(os.path.join(out, "reference.safetensors"), {"logits": ("F32", logits)})
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump({"case": "online_bf16", "from": name, "token_ids": ids, "weights": "channel (--quantization fp8)",
                   "inputs": "token"}, f, indent=1)
        f.write("\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--golden", default=os.path.join(here, "..", "tests", "data", "golden"))
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "data", "fp8"))
    args = ap.parse_args()
    for name in CASES:
        make_case(name, args.golden, args.out)


if __name__ == "__main__":
    main()

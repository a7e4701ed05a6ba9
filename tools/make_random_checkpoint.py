# A Llama-3-8B-shaped bf16 checkpoint of random weights (Hugging Face names and layout, 4 shards,
# 16.06 GB) for load-time runs on the GPU host: python3 tools/make_random_checkpoint.py OUT_DIR
# (needs torch with CUDA and safetensors; copy a tokenizer.json beside it for `generate`).
import json, os, sys, torch
from safetensors.torch import save_file
out = sys.argv[1]; os.makedirs(out, exist_ok=True)
L, H, I, V = 32, 4096, 14336, 128256
cfg = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
       "num_hidden_layers": L, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": V,
       "max_position_embeddings": 8192, "rms_norm_eps": 1e-5, "rope_theta": 500000.0, "torch_dtype": "bfloat16",
       "bos_token_id": 128000, "eos_token_id": 128001, "tie_word_embeddings": False, "hidden_act": "silu"}
json.dump(cfg, open(f"{out}/config.json", "w"))
shapes = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,), "lm_head.weight": (V, H)}
for l in range(L):
    p = f"model.layers.{l}."
    shapes.update({p + "self_attn.q_proj.weight": (H, H), p + "self_attn.k_proj.weight": (1024, H),
                   p + "self_attn.v_proj.weight": (1024, H), p + "self_attn.o_proj.weight": (H, H),
                   p + "mlp.gate_proj.weight": (I, H), p + "mlp.up_proj.weight": (I, H), p + "mlp.down_proj.weight": (H, I),
                   p + "input_layernorm.weight": (H,), p + "post_attention_layernorm.weight": (H,)})
names = list(shapes); shards = 4; per = (len(names) + shards - 1) // shards; index = {}
g = torch.Generator(device="cuda").manual_seed(0)
for s in range(shards):
    part = names[s * per:(s + 1) * per]; fn = f"model-{s+1:05d}-of-{shards:05d}.safetensors"
    t = {n: (torch.randn(shapes[n], generator=g, device="cuda", dtype=torch.float32) * 0.02).to(torch.bfloat16).cpu() for n in part}
    save_file(t, f"{out}/{fn}", metadata={"format": "pt"}); index.update({n: fn for n in part})
json.dump({"metadata": {}, "weight_map": index}, open(f"{out}/model.safetensors.index.json", "w"))
print("checkpoint written", sum(os.path.getsize(f"{out}/{f}") for f in os.listdir(out)) / 1e9, "GB")

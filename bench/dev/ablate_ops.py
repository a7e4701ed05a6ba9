# Ablation of a decode step's ops (docs/BENCHMARKS.md, "Batch-1 decode in the graph"): patches a
# COPY of the source tree so that TOKAMAK_SKIP=op,... leaves those ops out of every layer of
# Model::forward (their kernels are not launched; the outputs are wrong, only the step's time
# means anything). bf16 only (FP8's deferred scales check what is skipped). Never apply it to the
# working tree:
#   cp -r . /tmp/abl && python3 bench/dev/ablate_ops.py /tmp/abl && cmake -S /tmp/abl -B /tmp/abl-build ...
#   TOKAMAK_SKIP=qkv /tmp/abl-build/tokamak bench latency --model-config llama-3-8b --random-weights --batch 1
# ops: norm1 norm2 qkv rope attn o_proj gate_up silu down
import sys
p = sys.argv[1] + '/src/model/model.cpp'
s = open(p).read()
def rep(old, new):
    global s
    assert s.count(old) == 1, old
    s = s.replace(old, new)
rep('#include "model/model.h"\n', '#include "model/model.h"\n#include <cstdlib>\n#include <string>\nstatic bool skip(const char* n) { static const std::string v = std::getenv("TOKAMAK_SKIP") ? std::getenv("TOKAMAK_SKIP") : ""; return ("," + v + ",").find("," + std::string(n) + ",") != std::string::npos; }\n')
rep('  linear(normed, Fp8Producer::kNorm, w.qkv, qkv, nullptr);\n', '  if (!skip("qkv")) linear(normed, Fp8Producer::kNorm, w.qkv, qkv, nullptr);\n')
rep('  backend_.rope_kv_store(plan, qkv,', '  if (!skip("rope")) backend_.rope_kv_store(plan, qkv,')
rep('  backend_.attention(plan, qkv, cache, layer, s, attn);\n', '  if (!skip("attn")) backend_.attention(plan, qkv, cache, layer, s, attn);\n')
rep('  linear(attn, Fp8Producer::kNone, w.o_proj,', '  if (!skip("o_proj")) linear(attn, Fp8Producer::kNone, w.o_proj,')
rep('  linear(normed, Fp8Producer::kNorm, w.gate_up,', '  if (!skip("gate_up")) linear(normed, Fp8Producer::kNorm, w.gate_up,')
rep('  activation(gate_up, gate_up_scales, w.down, mlp);\n', '  if (!skip("silu")) activation(gate_up, gate_up_scales, w.down, mlp);\n')
rep('  linear(mlp, Fp8Producer::kSiluMul, w.down,', '  if (!skip("down")) linear(mlp, Fp8Producer::kSiluMul, w.down,')
rep('    pre_norm(residual, l == 0 ?', '    if (!skip("norm1")) pre_norm(residual, l == 0 ?')
rep('    pre_norm(residual, &delta, delta_scales, w.post_attn_norm,', '    if (!skip("norm2")) pre_norm(residual, &delta, delta_scales, w.post_attn_norm,')
open(p, 'w').write(s)

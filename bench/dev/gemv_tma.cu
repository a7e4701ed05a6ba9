// A TMA-fed one-row GEMV for decode's bf16 products, standalone, against the register-pipeline
// GEMV (src/kernels/gemv.cu's kernel at its kept configuration) and a plain read of the same
// bytes, each as 20 chained programmatic launches replayed from a graph (as in a decode step).
// Why (docs/BENCHMARKS.md, "Batch-1 decode in the graph"): inside the graph qkv and o_proj read at
// 3.2-3.3 TB/s where a plain read of their size reaches 3.9-4.1. The register GEMV's warp loads
// cover 64 bytes of each of 8 rows (the MMA fixes which lane holds which row); here the tensor
// copy engine brings kR rows x 128 bytes per stage into a ring of shared memory (128-byte swizzle,
// so the fragment reads are conflict-free) and the warps only do the MMAs.
//
// Block: warp 0 issues the copies (one lane; the weight tiles of the first stages before
// griddepcontrol.wait, x after it), kC consumer warps take the 16-row tiles and split the stages
// between them; a full and an empty mbarrier per stage. Weights [n, k] bf16, x [m <= 8, k] bf16,
// out [m, n] fp32. Every variant's output is checked against the register GEMV's (relative L2
// under 5e-5, else WRONG) before it is timed; weights rotate through > 400 MB (past the L2).
//
// Measured once (H200, 2026-12-02, session 7; us per launch in the graph, m = 1):
//   shape     register  R16S8C1  R16S12C2  R32S8C2  R32S8C4  R64S6C4  plain read
//   qkv         16.85    16.66     27.64    17.13    14.96    16.72     13.19
//   o_proj      11.00    14.50     11.12    14.83    11.50    15.49      9.29
//   down        33.41    45.06     31.27    46.07    33.95    48.93     28.53
//   gate_up     59.45   131.03     85.90    64.94    67.98    68.19     55.14
// Nothing wins across shapes, so the register GEMV stays. NOTE: the variants with two consumer
// groups (R16 S12 C2, R32 S8 C4) were WRONG on gate_up (relative L2 2.9e-3 at m = 8 and 7.4e-2
// at m = 1; right on the three smaller shapes): a race not yet found, so their times above are
// not results. (That run's threshold was 1e-5, which the single-group variants missed on down by
// accumulation order alone, 1.39e-5 at k = 14336.)
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a bench/dev/gemv_tma.cu -o gemv_tma -lcuda
//   ./gemv_tma
#include <cuda.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../../src/kernels/mma.cuh"  // ld_stream, ld_l2, mma_16816: the kept kernel's own
#include "dev_check.h"
#include "dev_mbarrier.cuh"

using bf16 = __nv_bfloat16;
using tk::kernels::tile::ld_l2;
using tk::kernels::tile::ld_stream;
using tk::kernels::tile::mma_16816;
using tk::kernels::tile::smem_u32;

__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;\n" ::: "memory"); }
__device__ __forceinline__ void pdl_trigger() { asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory"); }

// The two MMAs of one 16-byte piece of rows g (a), g + 8 (b) and x row g (x): the permuted-k
// pairing of gemv.cu (bytes 0-7 one MMA, 8-15 the other, both operands alike).
__device__ __forceinline__ void mma2(float (&acc)[4], const uint4& a, const uint4& b, const uint4& x) {
  const uint32_t lo[4] = {a.x, b.x, a.y, b.y}, hi[4] = {a.z, b.z, a.w, b.w};
  mma_16816<bf16>(acc, lo, x.x, x.y);
  mma_16816<bf16>(acc, hi, x.z, x.w);
}

// ---- the register GEMV (gemv.cu at 8 warps, 2 chunks a step, 4 blocks an SM, one token tile) ----
constexpr int kRegWarps = 8, kRegUnroll = 2, kRegStep = kRegWarps * kRegUnroll * 64;
__global__ void __launch_bounds__(kRegWarps * 32, 4)
    gemv_reg(const uint8_t* __restrict__ x, const uint8_t* __restrict__ w, float* __restrict__ out, int m, int n,
             int k) {
  __shared__ float partial[kRegWarps][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16, kb = 2ll * k;
  const bool lo_ok = row0 + g < n, hi_ok = row0 + g + 8 < n, x_ok = g < m;
  const uint8_t* wl = w + (row0 + g) * kb + q * 16;
  const uint8_t* wh = w + (row0 + g + 8) * kb + q * 16;
  const uint8_t* xr = x + g * kb + q * 16;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  struct Ops {
    uint4 lo[kRegUnroll], hi[kRegUnroll], xv[kRegUnroll];
  };
  auto load_w = [&](int64_t s, Ops& o) {
#pragma unroll
    for (int u = 0; u < kRegUnroll; ++u) {
      const int64_t kk = s * kRegStep + (warp * kRegUnroll + u) * 64;
      const bool ok = kk + q * 16 < kb;
      o.lo[u] = ok && lo_ok ? ld_stream(wl + kk) : zero;
      o.hi[u] = ok && hi_ok ? ld_stream(wh + kk) : zero;
    }
  };
  auto load_x = [&](int64_t s, Ops& o) {
#pragma unroll
    for (int u = 0; u < kRegUnroll; ++u) {
      const int64_t kk = s * kRegStep + (warp * kRegUnroll + u) * 64;
      o.xv[u] = kk + q * 16 < kb && x_ok ? ld_l2(xr + kk) : zero;
    }
  };
  float acc[4] = {};
  const int64_t steps = (kb + kRegStep - 1) / kRegStep;
  Ops cur, next;
  load_w(0, cur);
  pdl_wait();
  pdl_trigger();
  load_x(0, cur);
  for (int64_t s = 0; s < steps; ++s) {
    if (s + 1 < steps) load_w(s + 1, next), load_x(s + 1, next);
#pragma unroll
    for (int u = 0; u < kRegUnroll; ++u) mma2(acc, cur.lo[u], cur.hi[u], cur.xv[u]);
    cur = next;
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = acc[j];
  __syncthreads();
  for (int v = threadIdx.x; v < 128; v += kRegWarps * 32) {
    const int j = v / 32, l = v % 32;
    const int64_t row = row0 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = 2 * (l % 4) + (j & 1);
    if (row >= n || token >= m) continue;
    float sum = 0.f;
    for (int wi = 0; wi < kRegWarps; ++wi) sum += partial[wi][j][l];
    out[token * n + row] = sum;
  }
}

// ---- the TMA-fed GEMV ----------------------------------------------------------------------
using dev::mbar_expect_tx;
using dev::mbar_init;
using dev::mbar_wait;
using dev::mbar_arrive;
// The box of `map` at element coordinates (c0 along k, c1 along rows) into dst; bytes to `bar`.
__device__ __forceinline__ void tma_2d(void* dst, const CUtensorMap* map, int c0, int c1, uint64_t* bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
      " [%0], [%1, {%2, %3}], [%4];\n" ::"r"(smem_u32(dst)),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(c0), "r"(c1), "r"(smem_u32(bar))
      : "memory");
}
__device__ __forceinline__ uint4 lds(const uint8_t* p) { return *reinterpret_cast<const uint4*>(p); }

constexpr int kBoxK = 64;  // bf16 elements of k per stage: 128 bytes a row (the 128-byte swizzle's width)

template <int kR, int kS, int kC>
constexpr int tma_smem_bytes() {
  return kS * (kR * 128 + 1024) + 1024;  // stages of weight rows then 8 x rows; 1024 for the alignment
}

// kR weight rows a block (16, 32 or 64), kS stages, kC consumer warps (a multiple of kR / 16).
template <int kR, int kS, int kC>
__global__ void __launch_bounds__((kC + 1) * 32)
    gemv_tma(const __grid_constant__ CUtensorMap wmap, const __grid_constant__ CUtensorMap xmap,
             float* __restrict__ out, int m, int n, int k) {
  constexpr int kTiles = kR / 16, kGroups = kC / kTiles, kWBytes = kR * 128, kStage = kWBytes + 1024;
  static_assert(kC % kTiles == 0, "whole tiles per consumer group");
  extern __shared__ uint8_t smem_raw[];
  uint8_t* smem = reinterpret_cast<uint8_t*>((reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~uintptr_t{1023});
  __shared__ uint64_t full[kS], empty[kS];
  __shared__ float partial[kC][4][32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int row0 = blockIdx.x * kR, iters = (k + kBoxK - 1) / kBoxK;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kS; ++s) mbar_init(&full[s], 1), mbar_init(&empty[s], kTiles);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (warp == 0) {  // the producer
    if (lane == 0) {
      const int pre = min(kS, iters);
      for (int it = 0; it < pre; ++it) {  // the weights are the step's constants: before the wait
        mbar_expect_tx(&full[it], kStage);
        tma_2d(smem + it * kStage, &wmap, it * kBoxK, row0, &full[it]);
      }
      pdl_wait();
      pdl_trigger();
      for (int it = 0; it < pre; ++it) tma_2d(smem + it * kStage + kWBytes, &xmap, it * kBoxK, 0, &full[it]);
      for (int it = kS; it < iters; ++it) {
        const int slot = it % kS;
        mbar_wait(&empty[slot], static_cast<uint32_t>((it / kS - 1) & 1));
        mbar_expect_tx(&full[slot], kStage);
        tma_2d(smem + slot * kStage, &wmap, it * kBoxK, row0, &full[slot]);
        tma_2d(smem + slot * kStage + kWBytes, &xmap, it * kBoxK, 0, &full[slot]);
      }
    } else {
      pdl_wait();
    }
    return;
  }
  const int c = warp - 1, tile = c % kTiles, group = c / kTiles, g = lane / 4, q = lane % 4;
  float acc[4] = {};
  for (int it = group; it < iters; it += kGroups) {
    const int slot = it % kS;
    mbar_wait(&full[slot], static_cast<uint32_t>((it / kS) & 1));
    const uint8_t* ws = smem + slot * kStage;
    const uint8_t* xs = ws + kWBytes;
    const int rl = tile * 16 + g;  // and rl + 8; both are g modulo 8, the swizzle's row phase
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const int chunk = ((q + 4 * h) ^ g) * 16;
      mma2(acc, lds(ws + rl * 128 + chunk), lds(ws + (rl + 8) * 128 + chunk), lds(xs + g * 128 + chunk));
    }
    __syncwarp();
    if (lane == 0) mbar_arrive(&empty[slot]);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[c][j][lane] = acc[j];
  asm volatile("bar.sync 1, %0;\n" ::"n"(kC * 32) : "memory");  // the consumers only (warp 0 has left)
  pdl_wait();
  pdl_trigger();
  for (int v = threadIdx.x - 32; v < kTiles * 128; v += kC * 32) {
    const int t = v / 128, j = (v / 32) % 4, l = v % 32;
    const int row = row0 + t * 16 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = 2 * (l % 4) + (j & 1);
    if (row >= n || token >= m) continue;
    float sum = 0.f;
    for (int gi = 0; gi < kGroups; ++gi) sum += partial[gi * kTiles + t][j][l];
    out[token * n + row] = sum;
  }
}

// ---- plain read (the ceiling) ----------------------------------------------------------------
__global__ void __launch_bounds__(256) read_once(const uint4* __restrict__ p, int64_t n16, unsigned* sink) {
  pdl_wait();
  pdl_trigger();
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  unsigned acc = 0;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n16; i += stride) {
    const uint4 v = ld_stream(p + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

__global__ void fill_bf16(bf16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 15, h *= 2246822519u, h ^= h >> 13;
    p[i] = __float2bfloat16((static_cast<float>(h & 0xffff) / 65536.f - 0.5f) * 0.25f);
  }
}

// ---- host -----------------------------------------------------------------------------------
CUtensorMap make_map(const bf16* base, int rows, int k, int box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(k), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(k) * 2};
  const cuuint32_t box[2] = {kBoxK, static_cast<cuuint32_t>(box_rows)}, estride[2] = {1, 1};
  const CUresult r = cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<bf16*>(base), dims,
                                            strides, box, estride, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                            CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                            CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS) {
    std::printf("cuTensorMapEncodeTiled failed (%d): rows %d k %d box %d\n", static_cast<int>(r), rows, k, box_rows);
    std::exit(1);
  }
  return map;
}

cudaLaunchConfig_t config(dim3 grid, dim3 block, size_t smem, cudaStream_t s, bool programmatic,
                          cudaLaunchAttribute* attr) {
  cudaLaunchConfig_t c = {};
  c.gridDim = grid, c.blockDim = block, c.dynamicSmemBytes = smem, c.stream = s;
  attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr->val.programmaticStreamSerializationAllowed = 1;
  c.attrs = attr, c.numAttrs = programmatic ? 1 : 0;
  return c;
}

struct Problem {
  int n, k, m;
  const bf16* w;  // one of the rotating copies
  const bf16* x;
  float* out;
};

using Launcher = void (*)(const Problem&, cudaStream_t, bool);

void launch_reg(const Problem& p, cudaStream_t s, bool prog) {
  cudaLaunchAttribute a;
  cudaLaunchConfig_t c = config(dim3((p.n + 15) / 16), dim3(kRegWarps * 32), 0, s, prog, &a);
  CK(cudaLaunchKernelEx(&c, gemv_reg, reinterpret_cast<const uint8_t*>(p.x), reinterpret_cast<const uint8_t*>(p.w),
                        p.out, p.m, p.n, p.k));
}

template <int kR, int kS, int kC>
void launch_tma(const Problem& p, cudaStream_t s, bool prog) {
  constexpr int smem = tma_smem_bytes<kR, kS, kC>();
  static bool once = [] {
    CK(cudaFuncSetAttribute(gemv_tma<kR, kS, kC>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)once;
  // Tensor maps are built per call here (host time, outside the graph's replays); a real kernel
  // keeps one per weight.
  const CUtensorMap wmap = make_map(p.w, p.n, p.k, kR), xmap = make_map(p.x, p.m, p.k, 8);
  cudaLaunchAttribute a;
  cudaLaunchConfig_t c = config(dim3((p.n + kR - 1) / kR), dim3((kC + 1) * 32), smem, s, prog, &a);
  CK(cudaLaunchKernelEx(&c, gemv_tma<kR, kS, kC>, wmap, xmap, p.out, p.m, p.n, p.k));
}

unsigned* g_sink = nullptr;
void launch_read(const Problem& p, cudaStream_t s, bool prog) {
  int sms = 0;
  CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  cudaLaunchAttribute a;
  cudaLaunchConfig_t c = config(dim3(sms * 8), dim3(256), 0, s, prog, &a);
  CK(cudaLaunchKernelEx(&c, read_once, reinterpret_cast<const uint4*>(p.w), int64_t{p.n} * p.k * 2 / 16, g_sink));
}

double rel_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) num += (a[i] - b[i]) * double(a[i] - b[i]), den += double(b[i]) * b[i];
  return std::sqrt(num / std::max(den, 1e-30));
}

int main() {
  struct Variant {
    const char* name;
    Launcher launch;
  };
  const Variant variants[] = {
      {"register GEMV", launch_reg},          {"tma R16 S8 C1", launch_tma<16, 8, 1>},
      {"tma R16 S12 C2", launch_tma<16, 12, 2>}, {"tma R32 S8 C2", launch_tma<32, 8, 2>},
      {"tma R32 S8 C4", launch_tma<32, 8, 4>},  {"tma R64 S6 C4", launch_tma<64, 6, 4>},
      {"plain read", launch_read},
  };
  struct Shape {
    int n, k;
    const char* what;
  };
  const Shape shapes[] = {{1000, 4000, "odd (check only)"}, {6144, 4096, "qkv"}, {4096, 4096, "o_proj"},
                          {4096, 14336, "down"},           {28672, 4096, "gate_up"}};
  cudaStream_t s;
  CK(cudaStreamCreate(&s));
  CK(cudaMalloc(&g_sink, 4));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  for (const Shape& sh : shapes) {
    const int64_t welems = int64_t{sh.n} * sh.k, bytes = welems * 2;
    const int copies = static_cast<int>(std::max<int64_t>(2, (400ll << 20) / bytes + 1));
    std::vector<bf16*> ws(copies);
    for (int i = 0; i < copies; ++i) {
      CK(cudaMalloc(&ws[i], bytes));
      fill_bf16<<<1024, 256, 0, s>>>(ws[i], welems, 17 + i);
    }
    bf16* x;
    float* out;
    CK(cudaMalloc(&x, 8ll * sh.k * 2));
    CK(cudaMalloc(&out, 8ll * sh.n * 4));
    fill_bf16<<<64, 256, 0, s>>>(x, 8ll * sh.k, 99);
    CK(cudaStreamSynchronize(s));
    std::printf("%s: n %d, k %d, %.1f MB\n", sh.what, sh.n, sh.k, bytes / 1e6);
    for (int m : {1, 8}) {  // correctness against the register GEMV
      std::vector<float> ref;
      for (const Variant& v : variants) {
        if (v.launch == launch_read) continue;
        CK(cudaMemset(out, 0xff, 8ll * sh.n * 4));
        v.launch({sh.n, sh.k, m, ws[0], x, out}, s, false);
        CK(cudaStreamSynchronize(s));
        std::vector<float> got(int64_t{m} * sh.n);
        CK(cudaMemcpy(got.data(), out, got.size() * 4, cudaMemcpyDeviceToHost));
        if (ref.empty()) {
          ref = got;
          continue;
        }
        const double err = rel_l2(got, ref);
        if (!(err < 5e-5)) std::printf("  WRONG %s m=%d: rel L2 %.3g\n", v.name, m, err);
      }
    }
    if (sh.k == 4000) continue;
    for (const Variant& v : variants) {  // 20 chained programmatic launches a graph, median of 9 replays
      cudaGraph_t g;
      cudaGraphExec_t ge;
      CK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
      for (int i = 0; i < 20; ++i) v.launch({sh.n, sh.k, 1, ws[i % copies], x, out}, s, i > 0);
      CK(cudaStreamEndCapture(s, &g));
      CK(cudaGraphInstantiate(&ge, g, 0));
      std::vector<float> t;
      for (int r = 0; r < 10; ++r) {
        CK(cudaEventRecord(e0, s));
        CK(cudaGraphLaunch(ge, s));
        CK(cudaEventRecord(e1, s));
        CK(cudaEventSynchronize(e1));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, e0, e1));
        if (r > 0) t.push_back(ms * 1e3f / 20.f);
      }
      std::sort(t.begin(), t.end());
      std::printf("  %-16s %8.2f us  %5.2f TB/s\n", v.name, t[t.size() / 2], bytes / t[t.size() / 2] / 1e6);
      CK(cudaGraphExecDestroy(ge));
      CK(cudaGraphDestroy(g));
    }
    for (bf16* p : ws) CK(cudaFree(p));
    CK(cudaFree(x));
    CK(cudaFree(out));
  }
  CK(cudaGetLastError());
  return 0;
}

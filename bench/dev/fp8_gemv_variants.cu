// Variants of the FP8 GEMV (src/kernels/fp8_gemv.cu) timed side by side, standalone (no tokamak
// libraries): warps per block (the split of k), 64-byte chunks per warp per step (loads in
// flight), 16-row tiles per warp and register caps (blocks per SM); a persistent grid looping over
// tiles; a cp.async.bulk ring of shared-memory stages. Each variant's output is checked against
// the first's (the accumulation order differs: within 1e-5 relative L2 in fp32, else WRONG)
// before it is timed; times are the mean of 200 launches back to back (as in a decode graph) over
// weights rotated through > L2, beside a "floor" (one block of the first variant). The kept kernel
// is "W8 U2 RT1 mb4"; results in docs/BENCHMARKS.md ("FP8 GEMV for decode's linears").
//
//   nvcc -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a bench/dev/fp8_gemv_variants.cu -o fp8_gemv_variants
//   ./fp8_gemv_variants
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "../../src/kernels/mma.cuh"  // ld_stream, mma_e4m3: the kept kernel's own
#include "dev_check.h"
#include "dev_mbarrier.cuh"

using tk::kernels::tile::ld_stream;
using tk::kernels::tile::mma_e4m3;

// kW warps split k; each warp kU 64-byte chunks per step of kRT 16-row tiles; fp32 out, one token tile.
template <int kW, int kU, int kRT, int kMinBlocks = 1>
__global__ void __launch_bounds__(kW * 32, kMinBlocks) gemv(const uint8_t* __restrict__ x, const uint8_t* __restrict__ w,
                                                float alpha, float* __restrict__ out, int m, int64_t n, int64_t k) {
  constexpr int kStepK = kW * kU * 64;
  __shared__ float partial[kW][kRT][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16 * kRT;
  const bool x_ok = g < m;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  struct Ops {
    uint4 lo[kRT][kU], hi[kRT][kU], xv[kU];
  };
  auto load = [&](int64_t s, Ops& o) {
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t kk = s * kStepK + (warp * kU + u) * 64 + q * 16;
      const bool k_ok = kk < k;
#pragma unroll
      for (int r = 0; r < kRT; ++r) {
        const int64_t rl = row0 + r * 16 + g, rh = rl + 8;
        o.lo[r][u] = k_ok && rl < n ? ld_stream(w + rl * k + kk) : zero;
        o.hi[r][u] = k_ok && rh < n ? ld_stream(w + rh * k + kk) : zero;
      }
      o.xv[u] = k_ok && x_ok ? __ldg(reinterpret_cast<const uint4*>(x + g * k + kk)) : zero;
    }
  };
  float acc[kRT][4] = {};
  const int64_t steps = (k + kStepK - 1) / kStepK;
  Ops cur, next;
  load(0, cur);
  for (int64_t s = 0; s < steps; ++s) {
    if (s + 1 < steps) load(s + 1, next);
#pragma unroll
    for (int u = 0; u < kU; ++u)
#pragma unroll
      for (int r = 0; r < kRT; ++r) {
        const uint4 a = cur.lo[r][u], b = cur.hi[r][u], xv = cur.xv[u];
        mma_e4m3(acc[r], a.x, b.x, a.y, b.y, xv.x, xv.y);
        mma_e4m3(acc[r], a.z, b.z, a.w, b.w, xv.z, xv.w);
      }
    cur = next;
  }
#pragma unroll
  for (int r = 0; r < kRT; ++r)
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][r][j][lane] = acc[r][j];
  __syncthreads();
  for (int v = threadIdx.x; v < kRT * 128; v += kW * 32) {
    const int r = v / 128, j = (v / 32) % 4, l = v % 32;
    const int64_t row = row0 + r * 16 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = 2 * (l % 4) + (j & 1);
    if (row >= n || token >= m) continue;
    float sum = 0.f;
#pragma unroll
    for (int wi = 0; wi < kW; ++wi) sum += partial[wi][r][j][l];
    out[token * n + row] = alpha * sum;
  }
}

// Bulk-copy variant: the block's 16 weight rows and the tokens' x rows are staged through a
// ring of kS shared-memory stages, kC bytes of each row per stage, by cp.async.bulk (one thread
// issues them; an mbarrier per stage counts the bytes), so the bytes in flight do not depend on
// registers. Rows padded by 64 bytes: the 16-byte reads of rows g and g + 1 by a quarter warp hit
// 32 distinct banks. Rows past n and tokens past m are not copied (their garbage reaches only
// outputs that are not stored); a k tail copies fewer bytes and the lanes past k use zeros.
__device__ __forceinline__ uint32_t smem_u32(const void* p) { return static_cast<uint32_t>(__cvta_generic_to_shared(p)); }
using dev::mbar_expect_tx;
using dev::mbar_init;
using dev::mbar_wait;
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_u32(dst)),
               "l"(src), "r"(bytes), "r"(smem_u32(bar))
               : "memory");
}

template <int kW, int kS, int kC>
__global__ void __launch_bounds__(kW * 32) gemv_bulk(const uint8_t* __restrict__ x, const uint8_t* __restrict__ w,
                                                     float alpha, float* __restrict__ out, int m, int64_t n, int64_t k) {
  constexpr int kLd = kC + 64, kStage = 24 * kLd;  // 16 weight rows, then 8 x rows
  extern __shared__ __align__(128) uint8_t smem[];
  __shared__ uint64_t full[kS];
  __shared__ float partial[kW][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  const int rows = static_cast<int>((n - row0 < 16 ? n - row0 : 16)), tokens = min(m, 8);
  const int64_t iters = (k + kC - 1) / kC;
  auto issue = [&](int64_t it) {
    const int slot = static_cast<int>(it % kS);
    const int64_t kc = it * kC;
    const uint32_t bytes = static_cast<uint32_t>(k - kc < kC ? k - kc : kC);
    uint8_t* st = smem + slot * kStage;
    mbar_expect_tx(&full[slot], bytes * (rows + tokens));
    for (int r = 0; r < rows; ++r) bulk_copy(st + r * kLd, w + (row0 + r) * k + kc, bytes, &full[slot]);
    for (int t = 0; t < tokens; ++t) bulk_copy(st + (16 + t) * kLd, x + t * k + kc, bytes, &full[slot]);
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < kS; ++s) mbar_init(&full[s], 1);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();
  if (threadIdx.x == 0)
    for (int64_t it = 0; it < kS && it < iters; ++it) issue(it);
  float acc[4] = {};
  const uint4 zero = make_uint4(0, 0, 0, 0);
  for (int64_t it = 0; it < iters; ++it) {
    const int slot = static_cast<int>(it % kS);
    mbar_wait(&full[slot], static_cast<uint32_t>((it / kS) & 1));
    const uint8_t* st = smem + slot * kStage;
#pragma unroll
    for (int c = warp; c < kC / 64; c += kW) {
      const int off = c * 64 + q * 16;
      const bool ok = it * kC + off < k;
      const uint4 a = ok ? *reinterpret_cast<const uint4*>(st + g * kLd + off) : zero;
      const uint4 b = ok ? *reinterpret_cast<const uint4*>(st + (g + 8) * kLd + off) : zero;
      const uint4 xv = ok ? *reinterpret_cast<const uint4*>(st + (16 + g) * kLd + off) : zero;
      mma_e4m3(acc, a.x, b.x, a.y, b.y, xv.x, xv.y);
      mma_e4m3(acc, a.z, b.z, a.w, b.w, xv.z, xv.w);
    }
    __syncthreads();  // every warp is done with the slot before it is refilled
    if (threadIdx.x == 0 && it + kS < iters) issue(it + kS);
  }
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = acc[j];
  __syncthreads();
  for (int v = threadIdx.x; v < 128; v += kW * 32) {
    const int j = (v / 32) % 4, l = v % 32;
    const int64_t row = row0 + l / 4 + (j >= 2 ? 8 : 0);
    const int token = 2 * (l % 4) + (j & 1);
    if (row >= n || token >= m) continue;
    float sum = 0.f;
#pragma unroll
    for (int wi = 0; wi < kW; ++wi) sum += partial[wi][j][l];
    out[token * n + row] = alpha * sum;
  }
}

template <int kW, int kS, int kC>
void launch_bulk(const uint8_t* x, const uint8_t* w, float* out, int m, int64_t n, int64_t k, cudaStream_t s) {
  constexpr int smem = kS * 24 * (kC + 64);
  static bool once = [] {
    CK(cudaFuncSetAttribute(gemv_bulk<kW, kS, kC>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    return true;
  }();
  (void)once;
  gemv_bulk<kW, kS, kC><<<static_cast<unsigned>((n + 15) / 16), kW * 32, smem, s>>>(x, w, 1.f, out, m, n, k);
}

// Persistent variant: a grid of at most the resident blocks, each looping over the 16-row tiles
// blockIdx.x, + gridDim.x, ...; the loads of the next (tile, step) are issued before this one's
// MMAs across tile boundaries, so an SM streams without a ramp per tile and the last wave is
// never a partial one. kMinBlocks caps the registers (launch bounds) for more resident blocks.
template <int kW, int kU, int kMinBlocks>
__global__ void __launch_bounds__(kW * 32, kMinBlocks)
    gemv_persist(const uint8_t* __restrict__ x, const uint8_t* __restrict__ w, float alpha, float* __restrict__ out,
                 int m, int64_t n, int64_t k) {
  constexpr int kStepK = kW * kU * 64;
  __shared__ float partial[kW][4][32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, g = lane / 4, q = lane % 4;
  const int64_t tiles = (n + 15) / 16, steps = (k + kStepK - 1) / kStepK;
  const int64_t my_tiles = (tiles - blockIdx.x + gridDim.x - 1) / gridDim.x, items = my_tiles * steps;
  const bool x_ok = g < m;
  const uint4 zero = make_uint4(0, 0, 0, 0);
  struct Ops {
    uint4 lo[kU], hi[kU], xv[kU];
  };
  auto load = [&](int64_t i, Ops& o) {
    const int64_t row0 = (blockIdx.x + (i / steps) * gridDim.x) * 16, s = i % steps;
    const int64_t rl = row0 + g, rh = rl + 8;
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t kk = s * kStepK + (warp * kU + u) * 64 + q * 16;
      const bool k_ok = kk < k;
      o.lo[u] = k_ok && rl < n ? ld_stream(w + rl * k + kk) : zero;
      o.hi[u] = k_ok && rh < n ? ld_stream(w + rh * k + kk) : zero;
      o.xv[u] = k_ok && x_ok ? __ldg(reinterpret_cast<const uint4*>(x + g * k + kk)) : zero;
    }
  };
  float acc[4] = {};
  Ops cur, next;
  if (items > 0) load(0, cur);
  for (int64_t i = 0; i < items; ++i) {
    if (i + 1 < items) load(i + 1, next);
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const uint4 a = cur.lo[u], b = cur.hi[u], xv = cur.xv[u];
      mma_e4m3(acc, a.x, b.x, a.y, b.y, xv.x, xv.y);
      mma_e4m3(acc, a.z, b.z, a.w, b.w, xv.z, xv.w);
    }
    cur = next;
    if (i % steps != steps - 1) continue;
#pragma unroll
    for (int j = 0; j < 4; ++j) partial[warp][j][lane] = acc[j], acc[j] = 0.f;
    __syncthreads();
    const int64_t row0 = (blockIdx.x + (i / steps) * gridDim.x) * 16;
    for (int v = threadIdx.x; v < 128; v += kW * 32) {
      const int j = (v / 32) % 4, l = v % 32;
      const int64_t row = row0 + l / 4 + (j >= 2 ? 8 : 0);
      const int token = 2 * (l % 4) + (j & 1);
      if (row >= n || token >= m) continue;
      float sum = 0.f;
#pragma unroll
      for (int wi = 0; wi < kW; ++wi) sum += partial[wi][j][l];
      out[token * n + row] = alpha * sum;
    }
    __syncthreads();
  }
}

template <int kW, int kU, int kMinBlocks>
void launch_persist(const uint8_t* x, const uint8_t* w, float* out, int m, int64_t n, int64_t k, cudaStream_t s) {
  static int slots = [] {
    int per_sm = 0, sms = 0, dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, gemv_persist<kW, kU, kMinBlocks>, kW * 32, 0));
    return per_sm * sms;
  }();
  const int64_t tiles = (n + 15) / 16;
  gemv_persist<kW, kU, kMinBlocks><<<static_cast<unsigned>(tiles < slots ? tiles : slots), kW * 32, 0, s>>>(
      x, w, 1.f, out, m, n, k);
}

struct Variant {
  const char* name;
  void (*launch)(const uint8_t*, const uint8_t*, float*, int, int64_t, int64_t, cudaStream_t);
};

template <int kW, int kU, int kRT, int kMinBlocks = 1>
void launch(const uint8_t* x, const uint8_t* w, float* out, int m, int64_t n, int64_t k, cudaStream_t s) {
  const int64_t rows = 16 * kRT;
  gemv<kW, kU, kRT, kMinBlocks><<<static_cast<unsigned>((n + rows - 1) / rows), kW * 32, 0, s>>>(x, w, 1.f, out, m, n, k);
}

__global__ void fill_fp8(uint8_t* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n; i += int64_t{gridDim.x} * blockDim.x) {
    uint32_t h = static_cast<uint32_t>(i) * 2654435761u ^ seed;
    h ^= h >> 13, h *= 0x5bd1e995u, h ^= h >> 15;
    uint8_t b = static_cast<uint8_t>(h);
    if ((b & 0x7f) == 0x7f) b &= 0xfe;  // no NaN codes
    p[i] = b & 0xbf;                     // |v| < 2: products stay small
  }
}

int main() {
  const Variant variants[] = {
      {"W8 U4 RT1 (tree)", launch<8, 4, 1>},   {"W8 U2 RT1", launch<8, 2, 1>},
      {"W8 U2 RT1 mb4", launch<8, 2, 1, 4>},   {"W8 U4 RT1 mb3", launch<8, 4, 1, 3>},
      {"W4 U4 RT1 mb6", launch<4, 4, 1, 6>},   {"W4 U2 RT1 mb8", launch<4, 2, 1, 8>},
      {"pers W8 U4 mb2", launch_persist<8, 4, 2>}, {"pers W8 U2 mb4", launch_persist<8, 2, 4>},
      {"pers W8 U4 mb3", launch_persist<8, 4, 3>}, {"pers W4 U4 mb4", launch_persist<4, 4, 4>},
      {"pers W4 U2 mb8", launch_persist<4, 2, 8>}, {"pers W16 U2 mb2", launch_persist<16, 2, 2>},
      {"bulk W8 S2 C2048", launch_bulk<8, 2, 2048>},
  };
  struct Shape {
    int64_t n, k;
    const char* what;
  };
  const Shape shapes[] = {{6144, 4096, "qkv"}, {4096, 4096, "o_proj"}, {28672, 4096, "gate_up"}, {4096, 14336, "down"}};
  cudaStream_t stream;
  CK(cudaStreamCreate(&stream));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  for (const Shape& s : shapes) {
    const int64_t bytes = s.n * s.k;
    const int sets = static_cast<int>(std::max<int64_t>(2, (400ll << 20) / bytes));
    std::vector<uint8_t*> ws(sets);
    for (auto& p : ws) {
      CK(cudaMalloc(&p, bytes));
      fill_fp8<<<1024, 256, 0, stream>>>(p, bytes, 17);
    }
    uint8_t* x;
    float *out, *ref;
    CK(cudaMalloc(&x, 16 * s.k));
    CK(cudaMalloc(&out, 16 * s.n * 4));
    CK(cudaMalloc(&ref, 16 * s.n * 4));
    fill_fp8<<<64, 256, 0, stream>>>(x, 16 * s.k, 5);
    for (int m : {1, 8}) {
      std::printf("%-8s M=%d K=%lld N=%lld\n", s.what, m, static_cast<long long>(s.k), static_cast<long long>(s.n));
      variants[0].launch(x, ws[0], ref, m, s.n, s.k, stream);
      std::vector<float> want(m * s.n), got(m * s.n);
      CK(cudaMemcpyAsync(want.data(), ref, m * s.n * 4, cudaMemcpyDeviceToHost, stream));
      CK(cudaStreamSynchronize(stream));
      {  // the floor: one block of the first variant, launched the same way
        for (int i = 0; i < 20; ++i) variants[0].launch(x, ws[0], out, m, 16, s.k, stream);
        CK(cudaEventRecord(a, stream));
        for (int i = 0; i < 200; ++i) variants[0].launch(x, ws[0], out, m, 16, s.k, stream);
        CK(cudaEventRecord(b, stream));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        std::printf("  %-18s %7.2f us  (16 rows: launch + one block's latency)\n", "floor", ms * 1e3 / 200);
      }
      for (const Variant& v : variants) {
        v.launch(x, ws[0], out, m, s.n, s.k, stream);
        CK(cudaMemcpyAsync(got.data(), out, m * s.n * 4, cudaMemcpyDeviceToHost, stream));
        CK(cudaStreamSynchronize(stream));
        double num = 0, den = 0;
        for (size_t i = 0; i < got.size(); ++i) num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
        const double err = std::sqrt(num / std::max(den, 1e-30));
        for (int i = 0; i < 20; ++i) v.launch(x, ws[i % sets], out, m, s.n, s.k, stream);
        constexpr int kReps = 200;
        CK(cudaEventRecord(a, stream));
        for (int i = 0; i < kReps; ++i) v.launch(x, ws[i % sets], out, m, s.n, s.k, stream);
        CK(cudaEventRecord(b, stream));
        CK(cudaEventSynchronize(b));
        float ms = 0;
        CK(cudaEventElapsedTime(&ms, a, b));
        double us = ms * 1e3 / kReps;
        std::printf("  %-18s %7.2f us  %5.2f TB/s  err %.1e%s\n", v.name, us, bytes / us * 1e-6, err,
                    err > 1e-5 ? "  WRONG" : "");
      }
    }
    for (auto p : ws) CK(cudaFree(p));
    CK(cudaFree(x));
    CK(cudaFree(out));
    CK(cudaFree(ref));
  }
  CK(cudaGetLastError());
  return 0;
}

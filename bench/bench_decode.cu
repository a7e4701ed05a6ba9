// Split-KV decode attention at Llama-3-8B shapes (bf16, 32 q heads / 8 kv heads, head_dim 128,
// page 16): batch x context from one long sequence to many short ones. Decode attention reads
// every cached K and V byte once and does ~1 FLOP per byte, so it is reported as TB/s of K+V
// bytes against the copy ceiling; the 1x4096 row is a latency bar. Caches are random (never
// zeros), pages scattered over the pool, and several caches rotate so L2 does not serve them.
// A head-size sweep (32, 64, 80, 96, 256 at the same head counts) follows, and the FP8 KV cache
// rows (--kv-cache-dtype fp8: e4m3 K/V, bytes = the fp8 K+V read) close the table, each with the
// bf16 row's time at the same shape and the speed-up in its note.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "bench/bench.h"
#include "cuda/cuda.h"
#include "kernels/kernels.h"

namespace tk::bench {
namespace {

constexpr int kHq = 32, kHkv = 8, kPage = 16;

struct DecodeShape {
  int batch, context, query_len;
  const char* bar;
  bool graph;  // also time a CUDA-graph replay (what the engine runs: no launch gaps)
  int head_dim = 128;
  bool fp8 = false;  // FP8 KV cache (k_scale 0.37, v_scale 1.9)
};

// Everything one shape needs on the device; `sets` copies of the cache in one pool.
struct DecodeInputs {
  DeviceBuffer k, v, q, out, query_start, context_lens, page_tables, workspace;
  int sets = 1, pages_per_seq = 0;
  kernels::PagedAttentionParams params;
  kernels::DecodePlan plan;
};

// fp8 e4m3 bytes of random bf16 values (quantize_fp8_rows: per-row scales, never NaN bytes).
Status fill_random_fp8(const Context& ctx, DeviceBuffer& dst, int64_t elems, int d, uint64_t seed) {
  const int64_t rows = elems / d;
  TK_ASSIGN_OR_RETURN(DeviceBuffer src, DeviceBuffer::allocate(elems * 2));
  TK_ASSIGN_OR_RETURN(DeviceBuffer scales, DeviceBuffer::allocate(rows * sizeof(float)));
  TK_RETURN_IF_ERROR(kernels::fill_random(src.data(), DType::kBF16, elems, seed, 0.f, 1.f, ctx.stream));
  kernels::QuantizeFp8RowsParams qp;
  qp.x = src.data(), qp.rows = rows, qp.cols = d, qp.ld = d;
  qp.q = dst.data(), qp.scales = static_cast<float*>(scales.data()), qp.dtype = DType::kBF16;
  TK_RETURN_IF_ERROR(kernels::quantize_fp8_rows(qp, ctx.stream));
  CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  return Status::ok_status();
}

Result<DecodeInputs> make_inputs(const Context& ctx, const DecodeShape& s) {
  DecodeInputs in;
  const int d = s.head_dim;
  const int kv_bytes = s.fp8 ? 1 : 2;
  const int64_t kv_elems_per_set = static_cast<int64_t>(s.batch) * s.context * kHkv * d;
  in.sets = rotation_sets(ctx, 2 * kv_elems_per_set * kv_bytes);
  in.pages_per_seq = (s.context + kPage - 1) / kPage;
  const int64_t pages_per_set = static_cast<int64_t>(s.batch) * in.pages_per_seq;
  const int64_t pool_elems = in.sets * pages_per_set * kHkv * kPage * d;
  const int num_tokens = s.batch * s.query_len;
  TK_ASSIGN_OR_RETURN(in.k, DeviceBuffer::allocate(pool_elems * kv_bytes));
  TK_ASSIGN_OR_RETURN(in.v, DeviceBuffer::allocate(pool_elems * kv_bytes));
  TK_ASSIGN_OR_RETURN(in.q, DeviceBuffer::allocate(static_cast<size_t>(num_tokens) * kHq * d * 2));
  TK_ASSIGN_OR_RETURN(in.out, DeviceBuffer::allocate(static_cast<size_t>(num_tokens) * kHq * d * 2));
  if (s.fp8) {
    TK_RETURN_IF_ERROR(fill_random_fp8(ctx, in.k, pool_elems, d, 21));
    TK_RETURN_IF_ERROR(fill_random_fp8(ctx, in.v, pool_elems, d, 22));
  } else {
    TK_RETURN_IF_ERROR(kernels::fill_random(in.k.data(), DType::kBF16, pool_elems, 21, 0.f, 1.f, ctx.stream));
    TK_RETURN_IF_ERROR(kernels::fill_random(in.v.data(), DType::kBF16, pool_elems, 22, 0.f, 1.f, ctx.stream));
  }
  TK_RETURN_IF_ERROR(
      kernels::fill_random(in.q.data(), DType::kBF16, int64_t{num_tokens} * kHq * d, 23, 0.f, 1.f, ctx.stream));

  // Set i's sequences own a shuffled slice of the pool's pages.
  std::vector<int32_t> tables(static_cast<size_t>(in.sets) * pages_per_set);
  std::mt19937 rng(5);
  for (int i = 0; i < in.sets; ++i) {
    auto first = tables.begin() + static_cast<int64_t>(i) * pages_per_set;
    std::iota(first, first + pages_per_set, static_cast<int32_t>(i * pages_per_set));
    std::shuffle(first, first + pages_per_set, rng);
  }
  std::vector<int32_t> starts(s.batch + 1), lens(s.batch, s.context);
  for (int b = 0; b <= s.batch; ++b) starts[b] = b * s.query_len;
  TK_ASSIGN_OR_RETURN(in.page_tables, DeviceBuffer::allocate(tables.size() * 4));
  TK_ASSIGN_OR_RETURN(in.query_start, DeviceBuffer::allocate(starts.size() * 4));
  TK_ASSIGN_OR_RETURN(in.context_lens, DeviceBuffer::allocate(lens.size() * 4));
  CUDA_CHECK(cudaMemcpy(in.page_tables.data(), tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(in.query_start.data(), starts.data(), starts.size() * 4, cudaMemcpyHostToDevice));
  CUDA_CHECK(cudaMemcpy(in.context_lens.data(), lens.data(), lens.size() * 4, cudaMemcpyHostToDevice));

  kernels::PagedAttentionParams& p = in.params;
  p.q = in.q.data(), p.q_stride = kHq * d, p.out = in.out.data();
  p.query_start = static_cast<const int32_t*>(in.query_start.data());
  p.context_lens = static_cast<const int32_t*>(in.context_lens.data());
  p.max_pages_per_seq = in.pages_per_seq;
  p.num_seqs = s.batch, p.num_tokens = num_tokens, p.max_query_len = s.query_len, p.max_context_len = s.context;
  p.page_size = kPage, p.num_q_heads = kHq, p.num_kv_heads = kHkv, p.head_dim = d;
  p.scale = 1.f / std::sqrt(static_cast<float>(d)), p.dtype = DType::kBF16;
  p.kv_quant = {s.fp8, 0.37f, 1.9f};
  in.plan = kernels::plan_decode(s.batch, s.context, s.query_len, kHkv, kPage, ctx.sm_count);
  TK_ASSIGN_OR_RETURN(in.workspace, DeviceBuffer::allocate(std::max<size_t>(in.plan.workspace_bytes, 16)));
  return std::move(in);
}

// Params of rotation set i: the same pool offsets through that set's page table (pages of
// different sets never overlap, so set i + 1 finds none of set i's bytes in L2).
kernels::PagedAttentionParams params_for_set(const DecodeInputs& in, int i) {
  kernels::PagedAttentionParams p = in.params;
  p.k_cache = in.k.data(), p.v_cache = in.v.data();
  p.page_table = static_cast<const int32_t*>(in.page_tables.data()) +
                 static_cast<int64_t>(i % in.sets) * p.num_seqs * in.pages_per_seq;
  return p;
}

// Median of graph replays, one graph per rotation set (the graph bakes in its page table).
Result<double> graph_us(const Context& ctx, DecodeInputs& in) {
  std::vector<cudaGraphExec_t> execs(in.sets);
  for (int i = 0; i < in.sets; ++i) {
    cudaGraph_t graph;
    CUDA_CHECK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal));
    Status st = kernels::decode_attention(params_for_set(in, i), in.plan, in.workspace.data(), ctx.stream);
    CUDA_CHECK(cudaStreamEndCapture(ctx.stream, &graph));
    TK_RETURN_IF_ERROR(st);
    CUDA_CHECK(cudaGraphInstantiate(&execs[i], graph, 0));
    CUDA_CHECK(cudaGraphDestroy(graph));
  }
  const double us = median_us(ctx, [&](int i) { CUDA_CHECK(cudaGraphLaunch(execs[i % in.sets], ctx.stream)); });
  for (cudaGraphExec_t e : execs) CUDA_CHECK(cudaGraphExecDestroy(e));
  return us;
}

// Per call, when kCalls calls (rotating sets) replay back to back from one graph: what a decode
// step that runs attention layer after layer pays, without the single-launch floor.
Result<double> graph_batch_us(const Context& ctx, DecodeInputs& in) {
  constexpr int kCalls = 20;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CUDA_CHECK(cudaStreamBeginCapture(ctx.stream, cudaStreamCaptureModeThreadLocal));
  Status st;
  for (int i = 0; i < kCalls && st.ok(); ++i)
    (void)(st = kernels::decode_attention(params_for_set(in, i), in.plan, in.workspace.data(), ctx.stream));
  CUDA_CHECK(cudaStreamEndCapture(ctx.stream, &graph));
  TK_RETURN_IF_ERROR(st);
  CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
  CUDA_CHECK(cudaGraphDestroy(graph));
  const double us = median_us(ctx, [&](int) { CUDA_CHECK(cudaGraphLaunch(exec, ctx.stream)); }, 20, 3);
  CUDA_CHECK(cudaGraphExecDestroy(exec));
  return us / kCalls;
}

Row make_row(const DecodeShape& s, const DecodeInputs& in, double us, const char* how) {
  const int d = s.head_dim;
  Row r;
  r.kernel = std::string("decode_attention") + (s.fp8 ? " fp8kv" : "") + how;
  r.shape = (s.fp8 ? "bf16 q, fp8 KV " : "bf16 ") + std::to_string(s.batch) + "x" + std::to_string(s.context) +
            (s.query_len > 1 ? " L=" + std::to_string(s.query_len) : "") + " 32/8 d" + std::to_string(d);
  r.us = us;
  r.bytes = 2.0 * s.batch * s.context * kHkv * d * (s.fp8 ? 1 : 2);  // K + V, bf16 or fp8
  r.flops = 4.0 * s.batch * s.query_len * s.context * kHq * d;
  r.note = std::string(s.bar) + "; splits " + std::to_string(in.plan.num_splits) + "x" +
           std::to_string(in.plan.split_tokens);
  return r;
}

// The planner's choice beside forced split counts, one launch and (for the graph shapes) graph
// x20: the data the planner's cost model is tuned on.
Status sweep_splits(const Context& ctx, const DecodeShape& s, DecodeInputs& in, std::vector<Row>& rows) {
  const kernels::DecodePlan chosen = in.plan;
  for (int splits : {1, 2, 4, 8, 16, 24, 32, 48, 64}) {
    const int split_tokens = ((s.context + splits - 1) / splits + kPage - 1) / kPage * kPage;
    if (splits == chosen.num_splits || (s.context + split_tokens - 1) / split_tokens != splits) continue;
    in.plan.num_splits = splits, in.plan.split_tokens = split_tokens;
    in.plan.workspace_bytes = static_cast<size_t>(splits) * s.batch * kHq * (s.head_dim + 1) * sizeof(float);
    DeviceBuffer ws;
    TK_ASSIGN_OR_RETURN(ws, DeviceBuffer::allocate(std::max<size_t>(in.plan.workspace_bytes, 16)));
    Status st;
    const double us = median_us(ctx, [&](int i) {
      if (st.ok()) (void)(st = kernels::decode_attention(params_for_set(in, i), in.plan, ws.data(), ctx.stream));
    });
    TK_RETURN_IF_ERROR(st);
    const std::string note = "forced splits " + std::to_string(splits) + "x" + std::to_string(split_tokens);
    rows.push_back(make_row(s, in, us, " sweep"));
    rows.back().note = note;
    if (!s.graph) continue;
    std::swap(in.workspace, ws);
    Result<double> bus = graph_batch_us(ctx, in);
    std::swap(in.workspace, ws);
    TK_RETURN_IF_ERROR(bus.status());
    rows.push_back(make_row(s, in, *bus, " sweep (graph x20)"));
    rows.back().note = note;
  }
  in.plan = chosen;
  return Status::ok_status();
}

// The FP8 KV cache at the decode table's shapes: the bf16 kernel and the fp8 one timed back to back
// (the same page tables, the same plan), the fp8 row's note carrying the bf16 time and the
// speed-up in tokens/s (time ratio: same tokens). Bar: >= 1.8x at 1x131072 and 64x2048.
Status bench_fp8_rows(const Context& ctx, std::vector<Row>& rows) {
  const DecodeShape shapes[] = {
      {1, 4096, 1, "fp8 KV (no bar)", true},    {1, 32768, 1, "fp8 KV (no bar)", true},
      {1, 131072, 1, "bar >= 1.8x bf16", false}, {16, 4096, 1, "fp8 KV (no bar)", true},
      {64, 2048, 1, "bar >= 1.8x bf16", false},  {128, 1024, 1, "fp8 KV (no bar)", false},
      {8, 16384, 1, "fp8 KV (no bar)", false},   {16, 4096, 1, "fp8 KV head-size sweep (no bar)", false, 64},
      {16, 4096, 1, "fp8 KV head-size sweep (no bar)", false, 80}, {16, 4096, 1, "fp8 KV head-size sweep (no bar)", false, 256},
  };
  for (DecodeShape s : shapes) {
    double us[2] = {0, 0};  // bf16, fp8
    DecodeInputs fp8_in;
    for (int fp8 = 0; fp8 < 2; ++fp8) {
      s.fp8 = fp8 == 1;
      TK_ASSIGN_OR_RETURN(DecodeInputs in, make_inputs(ctx, s));
      Status st;
      us[fp8] = median_us(ctx, [&](int i) {
        if (st.ok())
          (void)(st = kernels::decode_attention(params_for_set(in, i), in.plan, in.workspace.data(), ctx.stream));
      });
      TK_RETURN_IF_ERROR(st);
      if (s.fp8) fp8_in = std::move(in);
    }
    char note[96];
    std::snprintf(note, sizeof note, "; bf16 %.1f us, fp8 x%.2f", us[0], us[0] / us[1]);
    rows.push_back(make_row(s, fp8_in, us[1], ""));
    rows.back().note = std::string(s.bar) + note + "; splits " + std::to_string(fp8_in.plan.num_splits) + "x" +
                       std::to_string(fp8_in.plan.split_tokens);
    if (s.graph) {
      TK_ASSIGN_OR_RETURN(double bus, graph_batch_us(ctx, fp8_in));
      rows.push_back(make_row(s, fp8_in, bus, " (graph x20)"));
    }
    if (s.batch <= 16 && s.head_dim == 128) TK_RETURN_IF_ERROR(sweep_splits(ctx, s, fp8_in, rows));
  }
  return Status::ok_status();
}

}  // namespace

Status bench_decode_attention(const Context& ctx, std::vector<Row>& rows) {
  const DecodeShape shapes[] = {
      {1, 4096, 1, "bar <= 8 us", true},        {1, 32768, 1, "bar >= 3.8 TB/s", true},
      {1, 131072, 1, "bar >= 3.8 TB/s", false}, {16, 4096, 1, "bar >= 3.8 TB/s", true},
      {64, 2048, 1, "bar >= 3.8 TB/s", false},  {8, 16384, 1, "bar >= 3.8 TB/s", false},
      {128, 1024, 1, "bar >= 3.8 TB/s", false}, {16, 4096, 4, "speculative L=4 (no bar)", false},
      {1, 1024, 1, "planner data (no bar)", true}, {1, 2048, 1, "planner data (no bar)", true},
      {1, 4096, 1, "head-size sweep (no bar)", true, 32},   {16, 4096, 1, "head-size sweep (no bar)", false, 32},
      {1, 4096, 1, "head-size sweep (no bar)", true, 64},   {16, 4096, 1, "head-size sweep (no bar)", false, 64},
      {1, 4096, 1, "head-size sweep (no bar)", true, 80},   {16, 4096, 1, "head-size sweep (no bar)", false, 80},
      {1, 4096, 1, "head-size sweep (no bar)", true, 96},   {16, 4096, 1, "head-size sweep (no bar)", false, 96},
      {1, 4096, 1, "head-size sweep (no bar)", true, 256},  {16, 4096, 1, "head-size sweep (no bar)", false, 256},
      {1000, 129, 1, "serving 128/128, first step (no bar)", false},
      {1000, 256, 1, "serving 128/128, last step (no bar)", false},
      {256, 1152, 1, "serving 1024/128 (no bar)", false},
  };
  for (const DecodeShape& s : shapes) {
    TK_ASSIGN_OR_RETURN(DecodeInputs in, make_inputs(ctx, s));
    Status st;
    const double us = median_us(ctx, [&](int i) {
      if (st.ok())
        (void)(st = kernels::decode_attention(params_for_set(in, i), in.plan, in.workspace.data(), ctx.stream));
    });
    TK_RETURN_IF_ERROR(st);
    rows.push_back(make_row(s, in, us, ""));
    if (s.graph) {
      TK_ASSIGN_OR_RETURN(double gus, graph_us(ctx, in));
      rows.push_back(make_row(s, in, gus, " (graph)"));
      TK_ASSIGN_OR_RETURN(double bus, graph_batch_us(ctx, in));
      rows.push_back(make_row(s, in, bus, " (graph x20)"));
    }
    if (s.batch <= 16 && s.query_len == 1 && s.head_dim == 128) TK_RETURN_IF_ERROR(sweep_splits(ctx, s, in, rows));
  }
  return bench_fp8_rows(ctx, rows);
}

}  // namespace tk::bench

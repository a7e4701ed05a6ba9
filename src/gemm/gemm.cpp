// cuBLASLt GEMMs. Row-major out[M,N] = x[M,K] w[N,K]^T is column-major out^T[N,M] =
// w^T x^T: A = w (transposed, ld K), B = x (ld ldx), C = out (ld ldo). One plan per shape,
// built on first use with cuBLASLt's heuristic and cached (plans are a few hundred bytes).
#include <cublasLt.h>

#include "cuda/cuda.h"
#include "gemm/gemm.h"

namespace tk {
namespace {

#define LT_CHECK(expr)                                                                          \
  do {                                                                                          \
    cublasStatus_t s_ = (expr);                                                                 \
    if (s_ != CUBLAS_STATUS_SUCCESS)                                                            \
      return internal_error(std::string(#expr) + " failed: " + cublasLtGetStatusString(s_)); \
  } while (0)

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF16: return CUDA_R_16F;
    case DType::kF8E4M3: return CUDA_R_8F_E4M3;
    default: return CUDA_R_32F;
  }
}

// m, n, k, ldx, ldo, in dtype, out dtype, bias, scale mode (0: none, 1: FP8 scalars, 2: FP8 outer vectors)
using PlanKey = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int, int, bool, int>;

struct Plan {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (op) cublasLtMatmulDescDestroy(op);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

Status check_args(const GemmArgs& g) {
  if (!g.x || !g.w || !g.out) return invalid_argument("gemm: null pointer");
  if (g.m <= 0 || g.n <= 0 || g.k <= 0) return invalid_argument("gemm: empty shape");
  if (g.in_dtype != DType::kBF16 && g.in_dtype != DType::kF16)
    return unsupported(std::string("gemm: input dtype ") + dtype_name(g.in_dtype));
  if (g.out_dtype != g.in_dtype && g.out_dtype != DType::kF32)
    return unsupported(std::string("gemm: output dtype ") + dtype_name(g.out_dtype));
  if (g.bias && g.out_dtype != g.in_dtype) return unsupported("gemm: bias with an fp32 output");
  if (g.k % 8 != 0 || (g.ldx ? g.ldx : g.k) % 8 != 0) return unsupported("gemm: k and ldx must be multiples of 8");
  return Status::ok_status();
}

}  // namespace

struct GemmRunner::Impl {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer workspace;
  std::map<PlanKey, std::unique_ptr<Plan>> plans;

  ~Impl() {
    plans.clear();
    if (handle) cublasLtDestroy(handle);
  }

  // scale_mode: 0 none, 1 FP8 per-tensor scalars, 2 FP8 outer vectors (A: per row of w, B: per
  // row of x).
  Result<Plan*> plan_for(const GemmArgs& g, int64_t ldx, int64_t ldo, int scale_mode = 0) {
    PlanKey key{g.m,  g.n, g.k, ldx, ldo, static_cast<int>(g.in_dtype), static_cast<int>(g.out_dtype), g.bias != nullptr,
                scale_mode};
    auto it = plans.find(key);
    if (it != plans.end()) return it->second.get();
    auto p = std::make_unique<Plan>();
    LT_CHECK(cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
    LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
    if (scale_mode == 2) {
      cublasLtMatmulMatrixScale_t vec = CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F;
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_MODE, &vec, sizeof(vec)));
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_MODE, &vec, sizeof(vec)));
    }
    if (g.bias) {
      cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
      cudaDataType_t bias_type = cuda_type(g.out_dtype);
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
      LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bias_type, sizeof(bias_type)));
    }
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->a, cuda_type(g.in_dtype), g.k, g.n, g.k));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->b, cuda_type(g.in_dtype), g.k, g.m, ldx));
    LT_CHECK(cublasLtMatrixLayoutCreate(&p->c, cuda_type(g.out_dtype), g.n, g.m, ldo));
    cublasLtMatmulPreference_t pref = nullptr;
    LT_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    size_t ws = workspace.size();
    cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle, p->op, p->a, p->b, p->c, p->c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (s != CUBLAS_STATUS_SUCCESS || found == 0)
      return unsupported(std::string("gemm: cuBLASLt has no ") + (scale_mode == 2 ? "FP8 outer-vector-scaled " : scale_mode == 1 ? "FP8 " : "") +
                         "algorithm for m=" + std::to_string(g.m) + " n=" + std::to_string(g.n) +
                         " k=" + std::to_string(g.k));
    p->algo = result.algo;
    Plan* raw = p.get();
    plans.emplace(key, std::move(p));
    return raw;
  }
};

GemmRunner::GemmRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GemmRunner::~GemmRunner() = default;

Result<std::unique_ptr<GemmRunner>> GemmRunner::create(size_t workspace_bytes) {
  auto impl = std::make_unique<Impl>();
  LT_CHECK(cublasLtCreate(&impl->handle));
  TK_ASSIGN_OR_RETURN(impl->workspace, DeviceBuffer::allocate(workspace_bytes));
  return std::unique_ptr<GemmRunner>(new GemmRunner(std::move(impl)));
}

size_t GemmRunner::cached_plans() const { return impl_->plans.size(); }

Status GemmRunner::matmul(const GemmArgs& g, cudaStream_t stream) {
  TK_RETURN_IF_ERROR(check_args(g));
  const int64_t ldx = g.ldx ? g.ldx : g.k, ldo = g.ldo ? g.ldo : g.n;
  TK_ASSIGN_OR_RETURN(Plan * p, impl_->plan_for(g, ldx, ldo));
  if (g.bias) LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g.bias, sizeof(g.bias)));
  const float alpha = 1.f, beta = 0.f;
  LT_CHECK(cublasLtMatmul(impl_->handle, p->op, &alpha, g.w, p->a, g.x, p->b, &beta, g.out, p->c, g.out, p->c, &p->algo,
                          impl_->workspace.data(), impl_->workspace.size(), stream));
  return Status::ok_status();
}

// The A/B scale pointers are set per call like the bias pointer: a plan is shared by every
// weight of its shape.
Status GemmRunner::matmul_fp8(const Fp8GemmArgs& f, cudaStream_t stream) {
  if (!f.x || !f.w || !f.out || !f.x_scale || !f.w_scale) return invalid_argument("gemm fp8: null pointer");
  if (f.m <= 0 || f.n <= 0 || f.k <= 0) return invalid_argument("gemm fp8: empty shape");
  if (f.k % 16 != 0) return unsupported("gemm fp8: k must be a multiple of 16, got " + std::to_string(f.k));
  if (f.out_dtype != DType::kBF16 && f.out_dtype != DType::kF16 && f.out_dtype != DType::kF32)
    return unsupported(std::string("gemm fp8: output dtype ") + dtype_name(f.out_dtype));
  if (f.bias && f.out_dtype == DType::kF32) return unsupported("gemm fp8: bias with an fp32 output");
  GemmArgs g;
  g.x = f.x, g.w = f.w, g.bias = f.bias, g.out = f.out, g.m = f.m, g.n = f.n, g.k = f.k;
  g.in_dtype = DType::kF8E4M3, g.out_dtype = f.out_dtype;
  const int64_t ldo = f.ldo ? f.ldo : f.n;
  TK_ASSIGN_OR_RETURN(Plan * p, impl_->plan_for(g, f.k, ldo, f.per_row_scales ? 2 : 1));
  if (f.bias) LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &f.bias, sizeof(f.bias)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &f.w_scale, sizeof(f.w_scale)));
  LT_CHECK(cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &f.x_scale, sizeof(f.x_scale)));
  const float alpha = 1.f, beta = 0.f;
  LT_CHECK(cublasLtMatmul(impl_->handle, p->op, &alpha, f.w, p->a, f.x, p->b, &beta, f.out, p->c, f.out, p->c, &p->algo,
                          impl_->workspace.data(), impl_->workspace.size(), stream));
  return Status::ok_status();
}

}  // namespace tk

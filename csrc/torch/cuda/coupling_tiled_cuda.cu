// Cooperative CUDA kernels for wide coupling conditioners (see coupling_tiled.cuh for the design).
#include "coupling_tiled.cuh"

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>

#include <algorithm>

#include "../../common/coupling.h"
#include "flows_cuda.cuh"

namespace pyvi {
namespace {

constexpr int kThreads = 256;  // 16 x 16 threads, each a 4 x 4 register tile of a <= 64 x 64 product
constexpr int kSide = 16;
constexpr int kTileSizes[] = {64, 32, 16};  // samples per tile, the largest whose buffers fit

/// Offsets (elements of T) of one tile's shared-memory buffers; the same arithmetic on host and device.
struct TileLayout {
  int S, ldh, out_cols;
  int64_t weights, bias, acts, grads, x, g, out, g_out, log_det, total;
};

__host__ __device__ inline TileLayout tile_layout(int S, const CouplingShape& s, bool backward) {
  TileLayout t{};
  const int max_moved = s.dim - s.dim / 2, max_out = 2 * max_moved;  // num_out <= 2 ceil(D / 2)
  const int max_rows = s.hidden > max_out ? s.hidden : max_out;
  const int max_ld = (s.hidden > s.dim ? s.hidden : s.dim) + 1;  // a staged layer's row length + 1
  const int num_acts = backward ? s.depth : 2;                   // backward keeps every layer's activations
  t.S = S;
  t.ldh = s.hidden + 1;  // odd strides: row and column walks both hit distinct shared-memory banks
  t.out_cols = max_out;
  int64_t at = 0;
  t.weights = at, at += int64_t(max_rows) * max_ld;
  t.bias = at, at += max_rows;
  t.acts = at, at += int64_t(num_acts) * S * t.ldh;
  t.grads = at, at += backward ? 2 * int64_t(S) * t.ldh : 0;
  t.x = at, at += int64_t(S) * s.dim;
  t.g = at, at += backward ? int64_t(S) * s.dim : 0;
  t.out = at, at += int64_t(S) * max_out;
  t.g_out = at, at += backward ? int64_t(S) * max_out : 0;
  t.log_det = at, at += S;
  t.total = at;
  return t;
}

/// Copies a (rows, cols) row-major layer and its bias into shared memory, rows padded to cols + 1.
template <typename T>
__device__ __forceinline__ void stage_layer(const T* __restrict__ w, int rows, int cols, T* sw, T* sb) {
  const int ld = cols + 1;
  for (int i = threadIdx.x; i < rows * cols; i += blockDim.x) {
    const int r = i / cols;
    sw[r * ld + (i - r * cols)] = w[i];
  }
  for (int i = threadIdx.x; i < rows; i += blockDim.x) sb[i] = w[int64_t(rows) * cols + i];
}

/// epi(m, n, sum_{k<K} A[m am + k ak] B[k bk + n bn]) for every m < M <= 64, n < N <= 64, one thread per
/// 4 x 4 register tile (rows ty + 16 i, columns tx + 16 j: a warp reads 16 consecutive B entries and 2
/// A entries per k). Out-of-range rows and columns read clamped (valid) addresses and are not written.
template <typename T, typename Epilogue>
__device__ __forceinline__ void block_gemm(int M, int N, int K, const T* A, int am, int ak, const T* B, int bk, int bn,
                                           Epilogue epi) {
  const int tx = threadIdx.x % kSide, ty = threadIdx.x / kSide;
  if (ty >= M || tx >= N) return;
  const T* a_row[4];
  int b_col[4];
  for (int i = 0; i < 4; ++i) a_row[i] = A + min(ty + kSide * i, M - 1) * am;
  for (int j = 0; j < 4; ++j) b_col[j] = min(tx + kSide * j, N - 1) * bn;
  T acc[4][4];
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) acc[i][j] = T(0);
  for (int k = 0; k < K; ++k) {
    T a[4], b[4];
    for (int i = 0; i < 4; ++i) a[i] = a_row[i][k * ak];
    for (int j = 0; j < 4; ++j) b[j] = B[k * bk + b_col[j]];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j) {
      const int m = ty + kSide * i, n = tx + kSide * j;
      if (m < M && n < N) epi(m, n, acc[i][j]);
    }
}

template <typename T>
__device__ __forceinline__ T relu(T v) {
  return v > T(0) ? v : T(0);
}

/// One coupling's conditioner on the tile: activations of every hidden layer (acts[l], S x ldh; the
/// backward keeps them all, the forward ping-pongs two) and the outputs (out, S x out_cols).
template <typename T>
__device__ void tile_mlp_forward(const T* __restrict__ w, const CouplingShape& s, int cn, int num_out,
                                 const TileLayout& L, const T* input, int input_ld, T* sw, T* sb, T* acts,
                                 bool keep_all, T* out) {
  const int H = s.hidden, ldh = L.ldh, S = L.S;
  stage_layer(w, H, cn, sw, sb);
  __syncthreads();
  block_gemm<T>(S, H, cn, input, input_ld, 1, sw, 1, cn + 1,
                [&](int m, int n, T acc) { acts[m * ldh + n] = relu(acc + sb[n]); });
  __syncthreads();
  const T* layer = w + int64_t(H) * cn + H;
  int cur = 0;
  for (int l = 1; l < s.depth; ++l) {
    const int next = keep_all ? l : 1 - cur;
    stage_layer(layer, H, H, sw, sb);
    __syncthreads();
    const T* src = acts + int64_t(cur) * S * ldh;
    T* dst = acts + int64_t(next) * S * ldh;
    block_gemm<T>(S, H, H, src, ldh, 1, sw, 1, ldh, [&](int m, int n, T acc) { dst[m * ldh + n] = relu(acc + sb[n]); });
    __syncthreads();
    cur = next;
    layer += int64_t(H) * H + H;
  }
  stage_layer(layer, num_out, H, sw, sb);
  __syncthreads();
  const T* last = acts + int64_t(cur) * S * ldh;
  block_gemm<T>(S, num_out, H, last, ldh, 1, sw, 1, ldh,
                [&](int m, int n, T acc) { out[m * L.out_cols + n] = acc + sb[n]; });
  __syncthreads();
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    coupling_forward_tiled_kernel(const T* __restrict__ params, CouplingShape s, T bound, int S, const T* __restrict__ z,
                                  T* __restrict__ x_out, T* __restrict__ log_det_out, T* __restrict__ states,
                                  int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* smem = reinterpret_cast<T*>(shared_raw);
  const TileLayout L = tile_layout(S, s, false);
  T *sw = smem + L.weights, *sb = smem + L.bias, *acts = smem + L.acts, *xs = smem + L.x, *out = smem + L.out,
    *ld = smem + L.log_det;
  const int D = s.dim;
  const int64_t state_stride = int64_t(s.num_couplings + 1) * D;
  const int64_t num_tiles = (batch + S - 1) / S;
  for (int64_t tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const int64_t first = tile * S;
    const int rows = batch - first < S ? static_cast<int>(batch - first) : S;
    for (int i = threadIdx.x; i < S * D; i += blockDim.x) xs[i] = i < rows * D ? z[first * D + i] : T(0);
    for (int r = threadIdx.x; r < S; r += blockDim.x) ld[r] = T(0);
    __syncthreads();
    int64_t offset = 0;
    for (int k = 0; k < s.num_couplings; ++k) {
      for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
        const int r = i / D;
        states[(first + r) * state_stride + int64_t(k) * D + (i - r * D)] = xs[i];
      }
      int cs, cn, ms, mn;
      coupling_halves(s, k, &cs, &cn, &ms, &mn);
      const int num_out = mn * (s.affine ? 2 : 1);
      tile_mlp_forward(params + offset, s, cn, num_out, L, xs + cs, D, sw, sb, acts, false, out);
      for (int r = threadIdx.x; r < S; r += blockDim.x) {
        T* x = xs + r * D;
        const T* o = out + r * L.out_cols;
        if (s.affine) {
          T total = ld[r];
          for (int j = 0; j < mn; ++j) {
            T th, sech2;
            flow_math::tanh_and_sech2(o[j] / bound, &th, &sech2);
            const T scale = bound * th;
            x[ms + j] = x[ms + j] * flow_math::exp(scale) + o[mn + j];
            total += scale;
          }
          ld[r] = total;
        } else {
          for (int j = 0; j < mn; ++j) x[ms + j] += o[j];
        }
      }
      __syncthreads();
      offset += coupling_mlp_size(s, k);
    }
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) {
      const int r = i / D, d = i - r * D;
      states[(first + r) * state_stride + int64_t(s.num_couplings) * D + d] = xs[i];
      x_out[first * D + i] = s.affine ? xs[i] : xs[i] * flow_math::exp(params[offset + d]);
    }
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
      T total = ld[r];
      if (!s.affine)
        for (int d = 0; d < D; ++d) total += params[offset + d];
      log_det_out[first + r] = total;
    }
    __syncthreads();
  }
}

template <typename T>
__global__ void __launch_bounds__(kThreads)
    coupling_backward_tiled_kernel(const T* __restrict__ params, CouplingShape s, T bound, int S,
                                   const T* __restrict__ grad_x, const T* __restrict__ grad_log_det,
                                   const T* __restrict__ states, T* __restrict__ grad_z, T* __restrict__ partial,
                                   int64_t num_params, int64_t batch) {
  extern __shared__ __align__(16) unsigned char shared_raw[];
  T* smem = reinterpret_cast<T*>(shared_raw);
  const TileLayout L = tile_layout(S, s, true);
  T *sw = smem + L.weights, *sb = smem + L.bias, *acts = smem + L.acts, *xin = smem + L.x, *g = smem + L.g,
    *out = smem + L.out, *gout = smem + L.g_out, *gld = smem + L.log_det;
  T* gh = smem + L.grads;
  T* gp = gh + int64_t(S) * L.ldh;
  const int D = s.dim, H = s.hidden, ldh = L.ldh, oc = L.out_cols;
  const int64_t state_stride = int64_t(s.num_couplings + 1) * D;
  const int64_t per_layer = int64_t(H) * H + H;  // a hidden layer's W (H x H) and b (H)
  T* row = partial + int64_t(blockIdx.x) * num_params;  // this block's own sums: no other block writes them
  for (int64_t i = threadIdx.x; i < num_params; i += blockDim.x) row[i] = T(0);
  __syncthreads();
  const int64_t num_tiles = (batch + S - 1) / S;
  for (int64_t tile = blockIdx.x; tile < num_tiles; tile += gridDim.x) {
    const int64_t first = tile * S;
    const int rows = batch - first < S ? static_cast<int>(batch - first) : S;
    // Rows past the batch carry zero upstream gradients, so they add nothing to any sum.
    for (int i = threadIdx.x; i < S * D; i += blockDim.x) g[i] = i < rows * D ? grad_x[first * D + i] : T(0);
    for (int r = threadIdx.x; r < S; r += blockDim.x) gld[r] = r < rows ? grad_log_det[first + r] : T(0);
    __syncthreads();
    int64_t offset = coupling_num_params(s) - (s.affine ? 0 : D);
    if (!s.affine) {  // NICE's final scaling x * exp(log_scale)
      for (int d = threadIdx.x; d < D; d += blockDim.x) {
        const T e = flow_math::exp(params[offset + d]);
        T sum = T(0);
        for (int r = 0; r < rows; ++r)
          sum += g[r * D + d] * states[(first + r) * state_stride + int64_t(s.num_couplings) * D + d] * e + gld[r];
        row[offset + d] += sum;
      }
      __syncthreads();
      for (int i = threadIdx.x; i < S * D; i += blockDim.x) g[i] *= flow_math::exp(params[offset + i % D]);
      __syncthreads();
    }
    for (int k = s.num_couplings - 1; k >= 0; --k) {
      offset -= coupling_mlp_size(s, k);
      int cs, cn, ms, mn;
      coupling_halves(s, k, &cs, &cn, &ms, &mn);
      const int num_out = mn * (s.affine ? 2 : 1);
      for (int i = threadIdx.x; i < S * D; i += blockDim.x) {
        const int r = i / D;
        xin[i] = r < rows ? states[(first + r) * state_stride + int64_t(k) * D + (i - r * D)] : T(0);
      }
      __syncthreads();
      const T* w = params + offset;
      tile_mlp_forward(w, s, cn, num_out, L, xin + cs, D, sw, sb, acts, true, out);  // sw: the output layer now
      for (int r = threadIdx.x; r < S; r += blockDim.x) {
        T* gr = g + r * D;
        T* go = gout + r * oc;
        const T* o = out + r * oc;
        if (s.affine) {
          for (int j = 0; j < mn; ++j) {
            T th, sech2;
            flow_math::tanh_and_sech2(o[j] / bound, &th, &sech2);
            const T e = flow_math::exp(bound * th);
            const T g_moved = gr[ms + j];
            // y = x e^s + t: dy/ds = x e^s and log|det| gains s; s = bound tanh(raw / bound).
            go[j] = (g_moved * xin[r * D + ms + j] * e + gld[r]) * sech2;
            go[mn + j] = g_moved;
            gr[ms + j] = g_moved * e;
          }
        } else {
          for (int j = 0; j < mn; ++j) go[j] = gr[ms + j];
        }
      }
      __syncthreads();
      const int64_t layer0 = int64_t(H) * cn;
      const int64_t out_at = offset + layer0 + H + int64_t(s.depth - 1) * per_layer;  // W_out, b_out
      const T* last = acts + int64_t(s.depth - 1) * S * ldh;
      // Output layer: dW_out[o][h] += sum_r g_out[r][o] last[r][h], db_out[o] += sum_r g_out[r][o].
      block_gemm<T>(num_out, H, S, gout, 1, oc, last, ldh, 1,
                    [&](int m, int n, T acc) { row[out_at + int64_t(m) * H + n] += acc; });
      for (int o = threadIdx.x; o < num_out; o += blockDim.x) {
        T sum = T(0);
        for (int r = 0; r < S; ++r) sum += gout[r * oc + o];
        row[out_at + int64_t(num_out) * H + o] += sum;
      }
      // dL/d(last layer's pre-activation) = (g_out W_out) * ReLU'(last); sw holds W_out (num_out x ldh).
      block_gemm<T>(S, H, num_out, gout, oc, 1, sw, ldh, 1,
                    [&](int m, int n, T acc) { gh[m * ldh + n] = last[m * ldh + n] > T(0) ? acc : T(0); });
      __syncthreads();
      for (int l = s.depth - 1; l >= 1; --l) {
        const int64_t at = offset + layer0 + H + int64_t(l - 1) * per_layer;
        const T* prev = acts + int64_t(l - 1) * S * ldh;
        block_gemm<T>(H, H, S, gh, 1, ldh, prev, ldh, 1,
                      [&](int m, int n, T acc) { row[at + int64_t(m) * H + n] += acc; });
        for (int h = threadIdx.x; h < H; h += blockDim.x) {
          T sum = T(0);
          for (int r = 0; r < S; ++r) sum += gh[r * ldh + h];
          row[at + int64_t(H) * H + h] += sum;
        }
        stage_layer(params + at, H, H, sw, sb);
        __syncthreads();
        block_gemm<T>(S, H, H, gh, ldh, 1, sw, ldh, 1,
                      [&](int m, int n, T acc) { gp[m * ldh + n] = prev[m * ldh + n] > T(0) ? acc : T(0); });
        __syncthreads();
        T* swap = gh;
        gh = gp;
        gp = swap;
      }
      // First layer: dW_0[h][j] += sum_r gh[r][h] x[r][cs + j], db_0; dL/dx[cs + j] += sum_h gh[r][h] W_0[h][j].
      block_gemm<T>(H, cn, S, gh, 1, ldh, xin + cs, D, 1,
                    [&](int m, int n, T acc) { row[offset + int64_t(m) * cn + n] += acc; });
      for (int h = threadIdx.x; h < H; h += blockDim.x) {
        T sum = T(0);
        for (int r = 0; r < S; ++r) sum += gh[r * ldh + h];
        row[offset + layer0 + h] += sum;
      }
      stage_layer(w, H, cn, sw, sb);
      __syncthreads();
      block_gemm<T>(S, cn, H, gh, ldh, 1, sw, cn + 1, 1, [&](int m, int n, T acc) { g[m * D + cs + n] += acc; });
      __syncthreads();
    }
    for (int i = threadIdx.x; i < rows * D; i += blockDim.x) grad_z[first * D + i] = g[i];
    __syncthreads();
  }
}

/// The largest tile (samples) whose shared memory fits this device's per-block opt-in limit, or 0.
int pick_tile(const CouplingShape& s, bool backward, int64_t element, int64_t* bytes) {
  const int64_t limit = static_cast<int64_t>(at::cuda::getCurrentDeviceProperties()->sharedMemPerBlockOptin);
  for (int S : kTileSizes) {
    const int64_t need = tile_layout(S, s, backward).total * element;
    if (need <= limit) {
      *bytes = need;
      return S;
    }
  }
  return 0;
}

/// Grid of a persistent launch: every resident block of the device, at most one per tile.
template <typename Kernel>
int64_t launch_blocks(Kernel kernel, int64_t bytes, int64_t num_tiles) {
  C10_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
  int per_sm = 0;
  C10_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, static_cast<size_t>(bytes)));
  const int64_t resident = int64_t(std::max(per_sm, 1)) * at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
  return std::min(resident, num_tiles);
}

}  // namespace

bool coupling_tiled_supported(const CouplingShape& shape, at::ScalarType dtype) {
  if (shape.hidden < kCouplingTiledMinHidden) return false;
  int64_t bytes = 0;
  const int64_t element = dtype == at::kDouble ? 8 : 4;
  return pick_tile(shape, true, element, &bytes) > 0 && pick_tile(shape, false, element, &bytes) > 0;
}

void coupling_forward_tiled_cuda(const CouplingConfig& config, const at::Tensor& z, const at::Tensor& params,
                                 at::Tensor& x, at::Tensor& log_det, at::Tensor& states) {
  const int64_t batch = z.size(0);
  if (batch == 0) return;
  const c10::cuda::CUDAGuard guard(z.device());
  AT_DISPATCH_FLOATING_TYPES(z.scalar_type(), "coupling_forward_tiled_cuda", [&] {
    int64_t bytes = 0;
    const int S = pick_tile(config.shape, false, sizeof(scalar_t), &bytes);
    TORCH_CHECK(S > 0, "coupling_forward_tiled_cuda: no tile fits in shared memory (check coupling_tiled_supported)");
    const auto kernel = coupling_forward_tiled_kernel<scalar_t>;
    const int64_t blocks = launch_blocks(kernel, bytes, (batch + S - 1) / S);
    kernel<<<static_cast<unsigned>(blocks), kThreads, bytes, at::cuda::getCurrentCUDAStream()>>>(
        params.const_data_ptr<scalar_t>(), config.shape, static_cast<scalar_t>(config.scale_bound), S,
        z.const_data_ptr<scalar_t>(), x.mutable_data_ptr<scalar_t>(), log_det.mutable_data_ptr<scalar_t>(),
        states.mutable_data_ptr<scalar_t>(), batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void coupling_backward_tiled_cuda(const CouplingConfig& config, const at::Tensor& grad_x,
                                  const at::Tensor& grad_log_det, const at::Tensor& params, const at::Tensor& states,
                                  at::Tensor& grad_z, at::Tensor& grad_params) {
  const int64_t batch = grad_x.size(0), num_params = params.size(0);
  if (batch == 0) {
    grad_params.zero_();
    return;
  }
  const c10::cuda::CUDAGuard guard(grad_x.device());
  AT_DISPATCH_FLOATING_TYPES(grad_x.scalar_type(), "coupling_backward_tiled_cuda", [&] {
    int64_t bytes = 0;
    const int S = pick_tile(config.shape, true, sizeof(scalar_t), &bytes);
    TORCH_CHECK(S > 0, "coupling_backward_tiled_cuda: no tile fits in shared memory (check coupling_tiled_supported)");
    const auto kernel = coupling_backward_tiled_kernel<scalar_t>;
    const int64_t blocks = launch_blocks(kernel, bytes, (batch + S - 1) / S);
    at::Tensor partial = at::empty({blocks, num_params}, grad_x.options());
    const auto stream = at::cuda::getCurrentCUDAStream();
    kernel<<<static_cast<unsigned>(blocks), kThreads, bytes, stream>>>(
        params.const_data_ptr<scalar_t>(), config.shape, static_cast<scalar_t>(config.scale_bound), S,
        grad_x.const_data_ptr<scalar_t>(), grad_log_det.const_data_ptr<scalar_t>(), states.const_data_ptr<scalar_t>(),
        grad_z.mutable_data_ptr<scalar_t>(), partial.mutable_data_ptr<scalar_t>(), num_params, batch);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    sum_rows_kernel<scalar_t><<<sum_rows_blocks(num_params), 256, 0, stream>>>(
        partial.const_data_ptr<scalar_t>(), blocks, num_params, grad_params.mutable_data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace pyvi

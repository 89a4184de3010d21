// GroupNorm (+ ReLU) over channels-last activations, two kernels per direction:
//   forward:  statistics (per block, per channel partial sums of x - shift and its square), then
//             apply (reduce the sample's partials, group mean/rstd, write the output);
//   backward: reduce (per block, per channel sums of g*xhat and g, g the gradient after the ReLU
//             mask), then apply (group coefficients, write grad x).
// Each thread owns eight consecutive channels for all its pixels, so the channel's scale and shift
// stay in registers and every load is 16 bytes. The variance uses sums shifted by one sample of
// the group (the first pixel's value) so that a large mean does not cancel the variance away.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>

#include "ops/cuda/group_norm_kernels.h"
#include "ops/cuda/vec8.cuh"

namespace vitlab::kernels {
namespace {

// Small blocks: several per SM, so that one block's reduction tail overlaps other blocks' loads
// (H200, BiT-R50x1 img/s: 512 threads 6,170, 256 threads 6,600, 128 threads +3% over 256).
// Rows wider than that (over 1024 channels) take blocks of up to 512 threads, one row per step.
constexpr int kThreads = 128;
constexpr int kBlocksPerSm = 4;  // the grid aimed at, over the batch
constexpr int kWideThreads = 512;
constexpr int kMaxGroups = kMaxGroupNormGroups;
constexpr int kMaxChannels = kMaxGroupNormChannels;  // shared-memory sums: 2 * 4096 floats
constexpr int kMinRowSteps = 16;  // rows per thread before a sample is split over more blocks

// Where a thread works: its eight channels and its first pixel within the block's range.
struct Slot {
  int channel0;  // first of the thread's 8 channels
  int row;       // pixel offset within a step
  int rows_per_step;
  int64_t begin, end;  // the block's pixels
};
__device__ __forceinline__ Slot thread_slot(int channels, int64_t pixels, int splits) {
  const int per_row = channels / 8;
  Slot s;
  s.channel0 = (threadIdx.x % per_row) * 8;
  s.row = threadIdx.x / per_row;
  s.rows_per_step = blockDim.x / per_row;
  const int64_t chunk = (pixels + splits - 1) / splits;
  s.begin = min(pixels, static_cast<int64_t>(blockIdx.x) * chunk);
  s.end = min(pixels, s.begin + chunk);
  return s;
}

// Sums two 8-channel accumulators over the block's rows into shared memory (sums[0..C) and
// sums[C..2C)), in a fixed order. Lanes of one warp that share channels are added by shuffles
// first, when the row width divides the warp.
__device__ void reduce_rows(float (&a)[8], float (&b)[8], float* sums, int channels,
                            const Slot& s) {
  const int per_row = channels / 8;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  bool contributes = true;
  int slot = s.row, slots = s.rows_per_step;
  if (per_row < 32 && 32 % per_row == 0) {
    for (int offset = 16; offset >= per_row; offset >>= 1) {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        a[k] += __shfl_xor_sync(0xffffffffu, a[k], offset);
        b[k] += __shfl_xor_sync(0xffffffffu, b[k], offset);
      }
    }
    contributes = lane < per_row;
    slot = warp;
    slots = (blockDim.x + 31) / 32;
  }
  for (int i = threadIdx.x; i < 2 * channels; i += blockDim.x) sums[i] = 0.f;
  __syncthreads();
  for (int i = 0; i < slots; ++i) {
    if (contributes && slot == i) {
#pragma unroll
      for (int k = 0; k < 8; ++k) {
        sums[s.channel0 + k] += a[k];
        sums[channels + s.channel0 + k] += b[k];
      }
    }
    __syncthreads();
  }
}

// Writes the block's per-channel sums to partial (2, N, splits, C).
__device__ void store_partials(const float* sums, float* partial, int64_t samples, int channels,
                               int splits) {
  const int64_t n = blockIdx.y;
  const int64_t plane = samples * splits * channels;
  float* out = partial + (n * splits + blockIdx.x) * channels;
  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    out[c] = sums[c];
    out[plane + c] = sums[channels + c];
  }
}

// The sample's partials summed over its blocks, into sums[0..C) and sums[C..2C).
__device__ void load_sample_sums(const float* partial, float* sums, int64_t samples, int channels,
                                 int splits) {
  const int64_t n = blockIdx.y;
  const int64_t plane = samples * splits * channels;
  const float* in = partial + n * splits * channels;
  for (int c = threadIdx.x; c < channels; c += blockDim.x) {
    float a = 0.f, b = 0.f;
    for (int s = 0; s < splits; ++s) {
      a += in[s * channels + c];
      b += in[plane + s * channels + c];
    }
    sums[c] = a;
    sums[channels + c] = b;
  }
  __syncthreads();
}

// y = x * scale + shift with scale = rstd * gamma: one formula, so the backward's ReLU mask (from
// the saved mean and rstd) matches the forward's bit for bit.
__device__ __forceinline__ float2 affine(float mean, float rstd, float gamma, float beta) {
  const float scale = rstd * gamma;
  return make_float2(scale, __fmaf_rn(-mean, scale, beta));
}

template <typename TX>
__device__ __forceinline__ float first_value(const TX* x, int64_t n, int64_t pixels, int channels,
                                             int c) {
  return static_cast<float>(x[n * pixels * channels + c]);
}

// v rounded to T, as ATen's add of two T tensors rounds its result.
__device__ __forceinline__ float round_to(float v, const float*) {
  return v;
}
__device__ __forceinline__ float round_to(float v, const __nv_bfloat16*) {
  return __bfloat162float(__float2bfloat16_rn(v));
}

// The normalised input at `at`: x, or x + delta (rounded to TX, and written to sum).
template <typename TX, bool kDelta>
__device__ __forceinline__ Vec8 load_input(const TX* x, const TX* delta, TX* sum, int64_t at) {
  Vec8 v = load8(x + at);
  if (kDelta) {
    const Vec8 d = load8(delta + at);
#pragma unroll
    for (int k = 0; k < 8; ++k) v.v[k] = round_to(v.v[k] + d.v[k], x);
    store8(sum + at, v);
  }
  return v;
}

template <int kBlock, typename TX, bool kDelta>
__global__ void __launch_bounds__(kBlock) forward_stats_kernel(GroupNormForwardArgs a, int splits) {
  __shared__ float sums[2 * kMaxChannels];
  const auto* x = static_cast<const TX*>(a.x);
  const auto* delta = static_cast<const TX*>(a.delta);
  auto* sum = static_cast<TX*>(a.sum);
  const int C = a.channels, per_group = C / a.groups;
  const Slot s = thread_slot(C, a.pixels, splits);
  const int64_t n = blockIdx.y, sample = n * a.pixels * C;
  float shift[8], s1[8], s2[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    // The group's first value (of the rounded sum): the apply kernel reads the same one.
    const int64_t first = sample + (s.channel0 + k) / per_group * per_group;
    shift[k] = kDelta ? round_to(static_cast<float>(x[first]) + static_cast<float>(delta[first]), x)
                      : static_cast<float>(x[first]);
    s1[k] = s2[k] = 0.f;
  }
  const int64_t base = sample + s.channel0;
  const int64_t step = s.rows_per_step;
  int64_t p = s.begin + s.row;
  for (; p + step < s.end; p += 2 * step) {  // two loads in flight
    const Vec8 u = load_input<TX, kDelta>(x, delta, sum, base + p * C);
    const Vec8 w = load_input<TX, kDelta>(x, delta, sum, base + (p + step) * C);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float du = u.v[k] - shift[k], dw = w.v[k] - shift[k];
      s1[k] += du + dw;
      s2[k] = __fmaf_rn(du, du, __fmaf_rn(dw, dw, s2[k]));
    }
  }
  if (p < s.end) {
    const Vec8 u = load_input<TX, kDelta>(x, delta, sum, base + p * C);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float d = u.v[k] - shift[k];
      s1[k] += d;
      s2[k] = __fmaf_rn(d, d, s2[k]);
    }
  }
  reduce_rows(s1, s2, sums, C, s);
  store_partials(sums, a.partial, a.samples, C, splits);
}

// Writes the output. kSavedStats: the group statistics are read from a.mean and a.rstd (a
// recomputation of an earlier forward's output, bit for bit), not reduced from the partials.
template <int kBlock, typename TX, typename TOut, bool kRelu, bool kSavedStats>
__global__ void __launch_bounds__(kBlock) forward_apply_kernel(GroupNormForwardArgs a, int splits) {
  __shared__ float sums[kSavedStats ? 1 : 2 * kMaxChannels];
  __shared__ float group_mean[kMaxGroups], group_rstd[kMaxGroups];
  const auto* x = static_cast<const TX*>(a.x);
  const int C = a.channels, G = a.groups, per_group = C / G;
  const int64_t n = blockIdx.y;
  if constexpr (kSavedStats) {
    for (int g = threadIdx.x; g < G; g += blockDim.x)
      group_mean[g] = a.mean[n * G + g], group_rstd[g] = a.rstd[n * G + g];
  } else {
    load_sample_sums(a.partial, sums, a.samples, C, splits);
    const float count = static_cast<float>(a.pixels) * per_group;
    for (int g = threadIdx.x; g < G; g += blockDim.x) {
      float t1 = 0.f, t2 = 0.f;
      for (int c = g * per_group; c < (g + 1) * per_group; ++c) t1 += sums[c], t2 += sums[C + c];
      const float shifted_mean = t1 / count;
      const float var = fmaxf(t2 / count - shifted_mean * shifted_mean, 0.f);  // biased, as ATen
      const float mean = first_value(x, n, a.pixels, C, g * per_group) + shifted_mean;
      const float rstd = rsqrtf(var + a.eps);
      group_mean[g] = mean, group_rstd[g] = rstd;
      if (blockIdx.x == 0) a.mean[n * G + g] = mean, a.rstd[n * G + g] = rstd;
    }
  }
  __syncthreads();
  const Slot s = thread_slot(C, a.pixels, splits);
  float scale[8], shift[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int c = s.channel0 + k, g = c / per_group;
    const float2 f = affine(group_mean[g], group_rstd[g], a.gamma[c], a.beta[c]);
    scale[k] = f.x, shift[k] = f.y;
  }
  const TX* in = x + n * a.pixels * C + s.channel0;
  TOut* out = static_cast<TOut*>(a.out) + n * a.pixels * C + s.channel0;
#pragma unroll 4
  for (int64_t p = s.begin + s.row; p < s.end; p += s.rows_per_step) {
    Vec8 v = load8(in + p * C);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float y = __fmaf_rn(v.v[k], scale[k], shift[k]);
      v.v[k] = kRelu ? fmaxf(y, 0.f) : y;
    }
    store8(out + p * C, v);
  }
}

// The per-thread constants of the backward: the group statistics and the affine map per channel.
struct BackwardChannels {
  float mean[8], rstd[8], scale[8], shift[8], gamma[8];
};
__device__ __forceinline__ BackwardChannels backward_channels(const GroupNormBackwardArgs& a,
                                                              int channel0) {
  const int per_group = a.channels / a.groups;
  const int64_t n = blockIdx.y;
  BackwardChannels b;
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int c = channel0 + k, g = c / per_group;
    b.mean[k] = a.mean[n * a.groups + g];
    b.rstd[k] = a.rstd[n * a.groups + g];
    b.gamma[k] = a.gamma[c];
    const float2 f = affine(b.mean[k], b.rstd[k], b.gamma[k], a.beta[c]);
    b.scale[k] = f.x, b.shift[k] = f.y;
  }
  return b;
}

// The incoming gradient with the ReLU's mask applied (output > 0, as ATen's threshold_backward).
template <bool kRelu>
__device__ __forceinline__ float masked(float grad, float x, const BackwardChannels& b, int k) {
  return (!kRelu || __fmaf_rn(x, b.scale[k], b.shift[k]) > 0.f) ? grad : 0.f;
}

template <int kBlock, typename TX, typename TG, bool kRelu>
__global__ void __launch_bounds__(kBlock)
    backward_reduce_kernel(GroupNormBackwardArgs a, int splits) {
  __shared__ float sums[2 * kMaxChannels];
  const int C = a.channels;
  const Slot s = thread_slot(C, a.pixels, splits);
  const BackwardChannels b = backward_channels(a, s.channel0);
  const int64_t offset = static_cast<int64_t>(blockIdx.y) * a.pixels * C + s.channel0;
  const TX* x = static_cast<const TX*>(a.x) + offset;
  const TG* grad = static_cast<const TG*>(a.grad_out) + offset;
  float dot[8] = {}, total[8] = {};  // sum g * xhat, sum g
#pragma unroll 2
  for (int64_t p = s.begin + s.row; p < s.end; p += s.rows_per_step) {
    const Vec8 xv = load8(x + p * C), gv = load8(grad + p * C);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      const float g = masked<kRelu>(gv.v[k], xv.v[k], b, k);
      dot[k] = __fmaf_rn(g, (xv.v[k] - b.mean[k]) * b.rstd[k], dot[k]);
      total[k] += g;
    }
  }
  reduce_rows(dot, total, sums, C, s);
  store_partials(sums, a.partial, a.samples, C, splits);
}

template <int kBlock, typename TX, typename TG, bool kRelu>
__global__ void __launch_bounds__(kBlock)
    backward_apply_kernel(GroupNormBackwardArgs a, int splits) {
  __shared__ float sums[2 * kMaxChannels];
  __shared__ float group_dot[kMaxGroups], group_total[kMaxGroups];
  const int C = a.channels, G = a.groups, per_group = C / G;
  load_sample_sums(a.partial, sums, a.samples, C, splits);
  const float count = static_cast<float>(a.pixels) * per_group;
  for (int g = threadIdx.x; g < G; g += blockDim.x) {
    float t1 = 0.f, t2 = 0.f;
    for (int c = g * per_group; c < (g + 1) * per_group; ++c) {
      t1 = __fmaf_rn(a.gamma[c], sums[c], t1);
      t2 = __fmaf_rn(a.gamma[c], sums[C + c], t2);
    }
    group_dot[g] = t1 / count, group_total[g] = t2 / count;
  }
  __syncthreads();
  const Slot s = thread_slot(C, a.pixels, splits);
  const BackwardChannels b = backward_channels(a, s.channel0);
  float dot[8], total[8];
#pragma unroll
  for (int k = 0; k < 8; ++k) {
    const int g = (s.channel0 + k) / per_group;
    dot[k] = group_dot[g], total[k] = group_total[g];
  }
  const int64_t offset = static_cast<int64_t>(blockIdx.y) * a.pixels * C + s.channel0;
  const TX* x = static_cast<const TX*>(a.x) + offset;
  const TG* grad = static_cast<const TG*>(a.grad_out) + offset;
  TX* grad_x = static_cast<TX*>(a.grad_x) + offset;
  const TX* grad_sum = a.grad_sum ? static_cast<const TX*>(a.grad_sum) + offset : nullptr;
#pragma unroll 2
  for (int64_t p = s.begin + s.row; p < s.end; p += s.rows_per_step) {
    const Vec8 xv = load8(x + p * C), gv = load8(grad + p * C);
    Vec8 out = {};
    if (grad_sum) out = load8(grad_sum + p * C);
#pragma unroll
    for (int k = 0; k < 8; ++k) {
      // d/dx of gamma * xhat + beta over the group: rstd * (gamma g - mean(gamma g)
      //                                                     - xhat * mean(gamma g xhat)).
      const float g = masked<kRelu>(gv.v[k], xv.v[k], b, k);
      const float xhat = (xv.v[k] - b.mean[k]) * b.rstd[k];
      out.v[k] += b.rstd[k] * (b.gamma[k] * g - __fmaf_rn(xhat, dot[k], total[k]));
    }
    store8(grad_x + p * C, out);
  }
}

// Calls launch(block, x, other, relu) with the block size as std::integral_constant, the element
// types as tag values and the ReLU as std::bool_constant.
template <typename F>
void dispatch_types(int threads, ElemType x_type, ElemType other_type, bool relu, F&& launch) {
  auto with_block = [&](auto x_tag, auto other_tag, auto relu_tag) {
    if (threads <= kThreads)
      launch(std::integral_constant<int, kThreads>{}, x_tag, other_tag, relu_tag);
    else
      launch(std::integral_constant<int, kWideThreads>{}, x_tag, other_tag, relu_tag);
  };
  auto with_relu = [&](auto x_tag, auto other_tag) {
    if (relu)
      with_block(x_tag, other_tag, std::true_type{});
    else
      with_block(x_tag, other_tag, std::false_type{});
  };
  auto with_other = [&](auto x_tag) {
    if (other_type == ElemType::kBFloat16)
      with_relu(x_tag, __nv_bfloat16{});
    else
      with_relu(x_tag, float{});
  };
  if (x_type == ElemType::kBFloat16)
    with_other(__nv_bfloat16{});
  else
    with_other(float{});
}

}  // namespace

GroupNormLaunch group_norm_launch(int64_t samples, int64_t pixels, int64_t channels, int sm_count) {
  const int per_row = static_cast<int>(channels / 8);
  const int rows_per_step = std::max(1, kThreads / per_row);
  GroupNormLaunch l;
  l.threads = rows_per_step * per_row;
  // About kBlocksPerSm blocks per SM over the batch, but every block keeps at least kMinRowSteps
  // rows per thread, so small feature maps are not split into partial sums.
  const int64_t wanted = (kBlocksPerSm * static_cast<int64_t>(sm_count) + samples - 1) / samples;
  const int64_t most = std::max<int64_t>(1, pixels / (rows_per_step * kMinRowSteps));
  l.splits = static_cast<int>(std::max<int64_t>(1, std::min(wanted, most)));
  return l;
}

void group_norm_forward(const GroupNormForwardArgs& a, const GroupNormLaunch& l,
                        void* cuda_stream) {
  auto stream = static_cast<cudaStream_t>(cuda_stream);
  const dim3 grid(l.splits, static_cast<unsigned>(a.samples));
  dispatch_types(
      l.threads, a.x_type, a.out_type, a.relu,
      [&](auto block, auto x_tag, auto out_tag, auto relu_tag) {
        constexpr int kBlock = decltype(block)::value;
        using TX = decltype(x_tag);
        using TOut = decltype(out_tag);
        if (a.delta) {
          forward_stats_kernel<kBlock, TX, true><<<grid, l.threads, 0, stream>>>(a, l.splits);
        } else {
          forward_stats_kernel<kBlock, TX, false><<<grid, l.threads, 0, stream>>>(a, l.splits);
        }
        GroupNormForwardArgs apply = a;  // normalises the sum the statistics wrote
        if (a.delta) apply.x = a.sum;
        forward_apply_kernel<kBlock, TX, TOut, decltype(relu_tag)::value, false>
            <<<grid, l.threads, 0, stream>>>(apply, l.splits);
      });
}

void group_norm_apply(const GroupNormForwardArgs& a, const GroupNormLaunch& l, void* cuda_stream) {
  auto stream = static_cast<cudaStream_t>(cuda_stream);
  const dim3 grid(l.splits, static_cast<unsigned>(a.samples));
  dispatch_types(l.threads, a.x_type, a.out_type, a.relu,
                 [&](auto block, auto x_tag, auto out_tag, auto relu_tag) {
                   forward_apply_kernel<decltype(block)::value, decltype(x_tag), decltype(out_tag),
                                        decltype(relu_tag)::value, true>
                       <<<grid, l.threads, 0, stream>>>(a, l.splits);
                 });
}

void group_norm_backward(const GroupNormBackwardArgs& a, const GroupNormLaunch& l,
                         void* cuda_stream) {
  auto stream = static_cast<cudaStream_t>(cuda_stream);
  const dim3 grid(l.splits, static_cast<unsigned>(a.samples));
  dispatch_types(
      l.threads, a.x_type, a.grad_out_type, a.relu,
      [&](auto block, auto x_tag, auto grad_tag, auto relu_tag) {
        constexpr int kBlock = decltype(block)::value;
        using TX = decltype(x_tag);
        using TG = decltype(grad_tag);
        constexpr bool kRelu = decltype(relu_tag)::value;
        backward_reduce_kernel<kBlock, TX, TG, kRelu><<<grid, l.threads, 0, stream>>>(a, l.splits);
        backward_apply_kernel<kBlock, TX, TG, kRelu><<<grid, l.threads, 0, stream>>>(a, l.splits);
      });
}

}  // namespace vitlab::kernels

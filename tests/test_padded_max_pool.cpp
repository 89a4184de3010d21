// The stems' padded max-pool (ops/max_pool.h): the CUDA kernels against ATen's pad +
// max_pool2d, values and gradients, with ties everywhere (small integers) so that the argmax
// order matters.
#include "ops/fast_kernels.h"
#include "ops/max_pool.h"
#include "test_helpers.h"

using namespace vitlab;
using ops::Padding2d;

namespace {
// The op with the fast-kernels switch on or off (ops/fast_kernels.h).
torch::Tensor padded_max_pool(const torch::Tensor& x, int64_t kernel, int64_t stride,
                              const Padding2d& padding, double pad_value, bool kernels) {
  const ops::FastKernels fast(kernels);
  return ops::padded_max_pool(x, kernel, stride, padding, pad_value);
}
bool max_pool_kernels_apply(const torch::Tensor& x, int64_t kernel, const Padding2d& padding) {
  const ops::FastKernels fast(true);
  return ops::max_pool_kernels_apply(x, kernel, padding);
}
}  // namespace

namespace {
std::pair<torch::Tensor, torch::Tensor> pool_and_grad(const torch::Tensor& x0, int64_t kernel,
                                                      int64_t stride, const Padding2d& padding,
                                                      double pad_value, bool kernels,
                                                      const torch::Tensor& grad_out) {
  auto x = x0.detach().clone(at::MemoryFormat::ChannelsLast).requires_grad_();
  auto out = padded_max_pool(x, kernel, stride, padding, pad_value, kernels);
  (out.to(torch::kFloat) * grad_out).sum().backward();
  return {out.detach(), x.grad()};
}
}  // namespace

TEST_CASE("padded max-pool kernels match ATen's pad + max_pool2d", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    std::vector<int64_t> shape;
    int64_t kernel, stride;
    Padding2d padding;
    double pad_value;
  };
  const std::vector<Case> cases = {
      {{2, 64, 112, 112}, 3, 2, {1, 1, 1, 1}, 0.0},   // timm's BiT stem
      {{2, 64, 112, 112}, 3, 2, {0, 1, 0, 1}, -inf},  // TF SAME on an even map
      {{3, 16, 13, 14}, 3, 2, {1, 1, 1, 1}, 0.0},    {{3, 16, 13, 14}, 3, 2, {1, 1, 0, 1}, -inf},
      {{1, 8, 9, 9}, 2, 2, {0, 0, 0, 0}, 0.0},       {{2, 24, 10, 11}, 3, 1, {1, 1, 1, 1}, -2.0}};
  for (size_t i = 0; i < cases.size(); ++i) {
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      DYNAMIC_SECTION("case " << i << " dtype " << dtype) {
        const auto& k = cases[i];
        torch::manual_seed(static_cast<uint64_t>(i));
        const auto x = torch::randint(-3, 4, k.shape, f32).to(dtype);  // ties in most windows
        REQUIRE(max_pool_kernels_apply(x.contiguous(at::MemoryFormat::ChannelsLast), k.kernel,
                                       k.padding));
        const auto ref_out = padded_max_pool(x, k.kernel, k.stride, k.padding, k.pad_value, false);
        const auto grad_out = torch::randn(ref_out.sizes(), f32);
        const auto ref =
            pool_and_grad(x, k.kernel, k.stride, k.padding, k.pad_value, false, grad_out);
        const auto got =
            pool_and_grad(x, k.kernel, k.stride, k.padding, k.pad_value, true, grad_out);
        REQUIRE(got.first.sizes() == ref.first.sizes());
        CHECK(got.first.scalar_type() == dtype);
        CHECK(got.first.is_contiguous(at::MemoryFormat::ChannelsLast));
        CHECK(torch::equal(got.first, ref.first));  // a maximum is exact
        // The same argmax (first in row-major order) gets each window's gradient; where windows
        // overlap, up to four float32 terms are added in another order.
        CHECK(test::allclose_as_float(got.second, ref.second, 1e-6, 1e-6));
      }
    }
  }
}

TEST_CASE("padded max-pool declines what the kernels do not handle", "[models]") {
  const auto x = torch::randn({2, 12, 9, 9});
  CHECK_FALSE(max_pool_kernels_apply(x, 3, {1, 1, 1, 1}));  // CPU
  // What the kernels decline, ATen computes: explicit padding, then the pool.
  CHECK(torch::equal(padded_max_pool(x, 3, 2, {1, 1, 0, 1}, 0.0, true),
                     torch::max_pool2d(torch::constant_pad_nd(x, {1, 1, 0, 1}, 0.0), 3, 2)));
  if (!torch::cuda::is_available()) return;
  const auto cuda = torch::TensorOptions().device(torch::kCUDA, 0);
  const auto cl = torch::randn({2, 16, 9, 9}, cuda).contiguous(at::MemoryFormat::ChannelsLast);
  CHECK(max_pool_kernels_apply(cl, 3, {1, 1, 1, 1}));
  CHECK_FALSE(max_pool_kernels_apply(cl.contiguous(), 3, {1, 1, 1, 1}));  // NCHW
  CHECK_FALSE(max_pool_kernels_apply(cl, 3, {3, 0, 0, 0}));               // padding >= kernel
  CHECK_FALSE(max_pool_kernels_apply(cl.narrow(1, 0, 12), 3, {1, 1, 1, 1}));
}

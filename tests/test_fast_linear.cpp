// The fast path's linear layers (models/fast_linear.h): same outputs and gradients as autocast's
// at::linear (+ GELU), with the bias gradient summed by vitlab's kernel.
#include "core/compat.h"
#include "models/fast_linear.h"
#include "test_helpers.h"

using namespace vitlab;

namespace {
struct LinearResult {
  torch::Tensor out, grad_x, grad_weight, grad_bias;
};

LinearResult run_linear(bool fast, const torch::Tensor& x0, torch::nn::Linear& layer,
                        Activation act, const torch::Tensor& grad_out) {
  auto x = x0.detach().clone().requires_grad_();
  layer->zero_grad();
  LinearResult r;
  {
    compat::CudaAutocast autocast(true);
    if (fast) CHECK(fast_linear_applies(x, layer) == (layer->weight.size(0) % 8 == 0));
    r.out = linear_act(x, layer, act, fast);
  }
  (r.out.to(torch::kFloat) * grad_out).sum().backward();
  r.grad_x = x.grad();
  r.grad_weight = layer->weight.grad().clone();
  r.grad_bias = layer->bias.grad().clone();
  return r;
}
}  // namespace

TEST_CASE("fast linear layers match autocast's linear and GELU, values and gradients", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  for (int64_t out_features : {64, 100, 768, 3072}) {
    for (auto act : {Activation::kNone, Activation::kGelu}) {
      for (auto in_dtype : {torch::kFloat, torch::kBFloat16}) {
        DYNAMIC_SECTION("out " << out_features << " gelu " << (act == Activation::kGelu)
                               << " bf16 input " << (in_dtype == torch::kBFloat16)) {
          torch::manual_seed(out_features);
          torch::nn::Linear layer(192, out_features);
          layer->to(device);
          {
            torch::NoGradGuard no_grad;
            layer->bias.normal_(0.0, 0.5);
          }
          const auto x =
              torch::randn({4, 777, 192}, torch::TensorOptions().device(device)).to(in_dtype);
          const auto grad_out =
              torch::randn({4, 777, out_features}, torch::TensorOptions().device(device));
          const auto ref = run_linear(false, x, layer, act, grad_out);
          const auto got = run_linear(true, x, layer, act, grad_out);
          REQUIRE(got.out.scalar_type() == torch::kBFloat16);
          CHECK(torch::equal(got.out, ref.out));  // the same at::linear (and at::gelu) calls
          REQUIRE(got.grad_x.scalar_type() == in_dtype);
          // GELU's derivative with the same float32 formula; the matmuls in the same dtypes. The
          // bias gradient is summed in another order and rounded to bf16 as autocast's: one bf16
          // step at most.
          CHECK(test::allclose_as_float(got.grad_x, ref.grad_x, 1e-2, 1e-3));
          CHECK(test::allclose_as_float(got.grad_weight, ref.grad_weight, 1e-2, 1e-2));
          CHECK(test::allclose_as_float(got.grad_bias, ref.grad_bias, 8e-3, 1e-2));
          CHECK(got.grad_weight.scalar_type() == torch::kFloat);
          CHECK(got.grad_bias.scalar_type() == torch::kFloat);
        }
      }
    }
  }
}

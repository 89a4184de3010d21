// The fast path's linear layers (ops/linear.h): same outputs and gradients as autocast's
// at::linear (+ GELU), with the bias gradient summed by vitlab's kernel.
#include "core/compat.h"
#include "core/cuda_util.h"
#include "ops/fast_kernels.h"
#include "ops/linear.h"
#include "test_helpers.h"

using namespace vitlab;
using namespace vitlab::ops;

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
    const FastKernels kernels(fast);
    if (fast) CHECK(fast_linear_applies(x, layer->weight, layer->bias) == (layer->weight.size(0) % 8 == 0));
    r.out = linear(x, layer->weight, layer->bias, act);
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

namespace {
struct QkvResult {
  std::vector<torch::Tensor> out;
  torch::Tensor grad_x, grad_weight, grad_bias;
};

// q, k, v from the projection; the loss uses the first `used` of them (an unused output has no
// gradient at all, which the fast backward must treat as zeros).
QkvResult run_qkv(bool fast, const torch::Tensor& x0, torch::nn::Linear& layer, int64_t heads,
                  const std::vector<torch::Tensor>& grad_out, int used) {
  auto x = x0.detach().clone().requires_grad_();
  layer->zero_grad();
  QkvResult r;
  {
    compat::CudaAutocast autocast(true);
    const FastKernels kernels(fast);
    r.out = qkv_projection(x, layer->weight, layer->bias, heads);
  }
  auto loss = torch::zeros({}, x.options().dtype(torch::kFloat));
  for (int j = 0; j < used; ++j) loss = loss + (r.out[j].to(torch::kFloat) * grad_out[j]).sum();
  loss.backward();
  r.grad_x = x.grad();
  r.grad_weight = layer->weight.grad().clone();
  r.grad_bias = layer->bias.grad().clone();
  return r;
}

}  // namespace

TEST_CASE("the fast qkv projection takes q, k and v's gradients without stacking them", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  const int64_t width = 96, heads = 4;
  for (auto in_dtype : {torch::kFloat, torch::kBFloat16}) {
    for (int used : {3, 2}) {
      DYNAMIC_SECTION("bf16 input " << (in_dtype == torch::kBFloat16) << " outputs used " << used) {
        torch::manual_seed(used);
        torch::nn::Linear layer(width, 3 * width);
        layer->to(device);
        {
          torch::NoGradGuard no_grad;
          layer->bias.normal_(0.0, 0.5);
        }
        const auto f32 = torch::TensorOptions().device(device);
        const auto x = torch::randn({4, 333, width}, f32).to(in_dtype);
        std::vector<torch::Tensor> grad_out;
        for (int j = 0; j < 3; ++j)
          grad_out.push_back(torch::randn({4, 333, heads, width / heads}, f32));
        const auto ref = run_qkv(false, x, layer, heads, grad_out, used);
        const auto got = run_qkv(true, x, layer, heads, grad_out, used);
        REQUIRE(got.out.size() == 3);
        for (int j = 0; j < 3; ++j) {
          CHECK(got.out[j].sizes() == torch::IntArrayRef({4, 333, heads, width / heads}));
          CHECK(torch::equal(got.out[j], ref.out[j]));  // the same at::linear, the same views
        }
        REQUIRE(got.grad_x.scalar_type() == in_dtype);
        CHECK(got.grad_weight.scalar_type() == torch::kFloat);
        // dx is rounded to bf16 after each of the three products (autocast's path: once), the
        // weight gradient is not rounded at all: a few bf16 steps of the largest value at most.
        CHECK(test::close_to_scale(got.grad_x, ref.grad_x, 2e-2));
        CHECK(test::close_to_scale(got.grad_weight, ref.grad_weight, 1e-2));
        CHECK(test::allclose_as_float(got.grad_bias, ref.grad_bias, 8e-3, 1e-2));
        if (used == 2) {  // v had no gradient: its rows of W and b get zeros
          CHECK(got.grad_weight.narrow(0, 2 * width, width).abs().max().item<double>() == 0.0);
          CHECK(got.grad_bias.narrow(0, 2 * width, width).abs().max().item<double>() == 0.0);
        }
      }
    }
  }
}

TEST_CASE("the fast path's GELU tables give ATen's GELU and derivative for every bf16 input",
          "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  // All 65536 bf16 bit patterns (zeros, subnormals, both ends of the tables' window, infinities,
  // NaNs), as a (8192, 8) matrix.
  const auto bits = torch::arange(65536, torch::kInt32).to(torch::kInt16);
  const auto h = bits.view(torch::kBFloat16).reshape({8192, 8}).to(device);
  // Bitwise equal, where a NaN matches any NaN (its payload is not part of the function).
  const auto same_bits = [](const torch::Tensor& a, const torch::Tensor& b) {
    const auto equal_bits = a.view(torch::kInt16) == b.view(torch::kInt16);
    return (equal_bits | (a.isnan() & b.isnan())).all().item<bool>();
  };
  CHECK(same_bits(fast_gelu(h), torch::gelu(h)));
  for (double scale : {1.0, -3.0e-3, 7.5e4}) {
    torch::manual_seed(static_cast<uint64_t>(scale * 1000 + 1e5));
    const auto grad = (torch::randn({8192, 8}, device) * scale).to(torch::kBFloat16);
    CHECK(same_bits(fast_gelu_backward(grad, h), at::gelu_backward(grad, h)));
  }
}

TEST_CASE("the GELU tables prepared for \"cuda\" without an index serve a captured step", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  // The tables are kept per device index; "cuda" means the current device. Built outside the
  // capture, they must be found inside it (building them there is refused).
  prepare_fast_linears(torch::Device(torch::kCUDA));
  const torch::Device device(torch::kCUDA, 0);
  torch::manual_seed(3);
  const auto h = torch::randn({64, 16}, device).to(torch::kBFloat16);
  torch::Tensor out;
  cuda::Graph graph;
  graph.warm_up(device, [] {});  // capture follows an eager run on the same stream
  REQUIRE_NOTHROW(graph.capture(device, [&] { out = fast_gelu(h); }));
  graph.replay();
  cuda::synchronize(device);
  CHECK(out.view(torch::kInt16).equal(torch::gelu(h).view(torch::kInt16)));
}

// The fused residual-add + LayerNorm path (ops/layer_norm.h): the CUDA kernels against ATen's
// LayerNorm (values and gradients), and the bias-gradient hand-off from a norm to a linear layer.
#include "core/compat.h"
#include "core/cuda_util.h"
#include "ops/fast_kernels.h"
#include "ops/layer_norm.h"
#include "ops/linear.h"
#include "test_helpers.h"

using namespace vitlab;

namespace {
// The op's view of a LibTorch LayerNorm module (the reference runs the module itself).
ops::LayerNormParams params(const torch::nn::LayerNorm& norm) {
  return {norm->weight, norm->bias, norm->options.eps()};
}

struct NormResult {
  torch::ScalarType out_dtype;
  torch::Tensor sum, out, grad_x, grad_delta, grad_gamma, grad_beta;
};

// Runs (x + delta -> LN) forward and backward, fused or with ATen, from the same leaves and
// output gradients. An undefined delta means LN(x) alone.
NormResult run_norm(bool fused, const torch::Tensor& x0, const torch::Tensor& delta0,
                    torch::nn::LayerNorm& norm, bool bf16_autocast, const torch::Tensor& grad_out,
                    const torch::Tensor& grad_sum, bool keep_inputs = false) {
  auto x = x0.detach().clone().requires_grad_();
  auto delta = delta0.defined() ? delta0.detach().clone().requires_grad_() : torch::Tensor();
  for (auto& p : norm->parameters()) p.mutable_grad() = torch::Tensor();
  NormResult r;
  {
    compat::CudaAutocast autocast(bf16_autocast);
    if (fused) {
      const ops::FastKernels kernels(true);
      const ops::NormUse use{/*feeds_matmul=*/true, /*stream_saved=*/keep_inputs};
      if (delta.defined())
        std::tie(r.sum, r.out) = ops::add_layer_norm(x, delta, params(norm), use);
      else
        r.out = ops::layer_norm(x, params(norm), use);
    } else {
      r.sum = delta.defined() ? x + delta : x;
      r.out = norm->forward(r.sum);
    }
  }
  r.out_dtype = r.out.scalar_type();
  // What the next linear does under autocast (a no-op where the kernel already wrote bf16).
  if (bf16_autocast) r.out = r.out.to(torch::kBFloat16);
  auto loss = (r.out.to(torch::kFloat) * grad_out).sum();
  if (delta.defined()) loss = loss + (r.sum * grad_sum).sum();
  loss.backward();
  r.grad_x = x.grad();
  if (delta.defined()) r.grad_delta = delta.grad();
  r.grad_gamma = norm->weight.grad().clone();
  r.grad_beta = norm->bias.grad().clone();
  return r;
}
}  // namespace

TEST_CASE("fused LayerNorm kernels match ATen's LayerNorm, values and gradients", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  for (int64_t width : {36, 100, 192, 384, 768, 1024, 1028}) {
    for (int delta_kind = 0; delta_kind < 3; ++delta_kind) {  // none, float32, bfloat16
      for (bool bf16 : {false, true}) {
        DYNAMIC_SECTION("width " << width << " delta " << delta_kind << " bf16 " << bf16) {
          torch::manual_seed(width + delta_kind);
          auto norm = torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-6));
          norm->to(device);
          {
            torch::NoGradGuard no_grad;  // non-trivial affine parameters
            norm->weight.normal_(1.0, 0.3);
            norm->bias.normal_(0.0, 0.3);
          }
          const auto f32 = torch::TensorOptions().device(device);
          auto x = torch::randn({3, 333, width}, f32) * 2 + 0.5;
          torch::Tensor delta;
          if (delta_kind == 1) delta = torch::randn({3, 333, width}, f32);
          if (delta_kind == 2) delta = torch::randn({3, 333, width}, f32).to(torch::kBFloat16);
          const auto grad_out = torch::randn({3, 333, width}, f32);
          const auto grad_sum = torch::randn({3, 333, width}, f32);
          CHECK([&] {
            const ops::FastKernels fast(true);
            return ops::layer_norm_kernels_apply(x, params(norm));
          }() == (width <= 1024));

          const auto ref = run_norm(false, x, delta, norm, bf16, grad_out, grad_sum);
          const auto got = run_norm(true, x, delta, norm, bf16, grad_out, grad_sum);
          // The kernels write bf16 for the next matmul; ATen's fallback keeps LayerNorm's float32.
          CHECK(got.out_dtype == (bf16 && width <= 1024 ? torch::kBFloat16 : torch::kFloat));
          if (delta.defined()) CHECK(torch::equal(got.sum, ref.sum));  // the same float32 add
          // Mean and variance summed in another order: float32 agrees to ~1e-6; a bfloat16 output
          // rounds the same float32 value, so it may differ by one bf16 step where that value sits
          // on a rounding boundary.
          if (bf16) {
            CHECK(test::allclose_as_float(got.out, ref.out, 8e-3, 8e-3));
            CHECK(got.out.eq(ref.out).to(torch::kFloat).mean().item<double>() > 0.99);
          } else {
            CHECK(test::allclose_as_float(got.out, ref.out, 1e-5, 1e-5));
          }
          CHECK(test::allclose_as_float(got.grad_x, ref.grad_x, 1e-4, 1e-4));
          if (delta.defined()) {
            REQUIRE(got.grad_delta.scalar_type() == delta.scalar_type());
            CHECK(test::allclose_as_float(got.grad_delta, ref.grad_delta,
                                          delta_kind == 2 ? 8e-3 : 1e-4, 1e-4));
          }
          CHECK(test::allclose_as_float(got.grad_gamma, ref.grad_gamma, 1e-4, 1e-3));
          CHECK(test::allclose_as_float(got.grad_beta, ref.grad_beta, 1e-4, 1e-3));
          if (delta.defined()) {
            // Keeping x and delta and adding them again in the backward gives the same bits.
            const auto kept = run_norm(true, x, delta, norm, bf16, grad_out, grad_sum, true);
            CHECK(torch::equal(kept.sum, got.sum));
            CHECK(torch::equal(kept.out, got.out));
            CHECK(torch::equal(kept.grad_x, got.grad_x));
            CHECK(torch::equal(kept.grad_delta, got.grad_delta));
            CHECK(torch::equal(kept.grad_gamma, got.grad_gamma));
            CHECK(torch::equal(kept.grad_beta, got.grad_beta));
          }
        }
      }
    }
  }
}

namespace {
struct HandoffResult {
  torch::Tensor grad_x, grad_weight, grad_bias, grad_gamma;
  bool handed_over = false;
};

// How delta, the linear layer's output, is used besides the norm.
enum class DeltaUse {
  kNormOnly,     // the norm's bf16 gradient of delta is the layer's whole gradient
  kSecondUse,    // delta also enters the loss directly: the layer gets an accumulated gradient
  kOtherStream,  // the norm (and the loss) run on another stream than the layer
};

// x -> fast linear (no activation) -> delta; (s, LN(s + delta)) -> loss.
HandoffResult run_handoff(bool fused, const torch::Tensor& stream0, const torch::Tensor& x0,
                          torch::nn::Linear& layer, torch::nn::LayerNorm& norm,
                          const torch::Tensor& grad_out, DeltaUse use) {
  auto x = x0.detach().clone().requires_grad_();
  auto stream = stream0.detach().clone().requires_grad_();
  layer->zero_grad();
  norm->zero_grad();
  HandoffResult r;
  torch::Tensor loss;
  c10::intrusive_ptr<ops::BiasGradSlot> slot;
  cuda::Graph side;  // only its side stream: warm_up runs work there, ordered both ways
  {
    compat::CudaAutocast autocast(true);
    const ops::FastKernels kernels(fused);
    const auto delta = ops::linear(x, layer->weight, layer->bias);
    slot = ops::bias_grad_slot(delta);
    CHECK(static_cast<bool>(slot) == fused);
    const auto norm_and_loss = [&] {
      torch::Tensor sum, out;
      if (fused) {
        std::tie(sum, out) = ops::add_layer_norm(stream, delta, params(norm), {true, true});
      } else {
        sum = stream + delta;
        out = norm->forward(sum);
      }
      // The next linear reads the normalised output in bf16 (the kernel writes it so).
      loss = (out.to(torch::kBFloat16).to(torch::kFloat) * grad_out).sum() + sum.sum();
      if (use == DeltaUse::kSecondUse) loss = loss + (delta.to(torch::kFloat) * grad_out).sum();
    };
    if (use == DeltaUse::kOtherStream)
      side.warm_up(stream.device(), norm_and_loss);
    else
      norm_and_loss();
  }
  loss.backward();
  r.grad_x = x.grad();
  r.grad_weight = layer->weight.grad().clone();
  r.grad_bias = layer->bias.grad().clone();
  r.grad_gamma = norm->weight.grad().clone();
  r.handed_over = slot && slot->handed_over;
  return r;
}
}  // namespace

TEST_CASE(
    "a residual branch's norm hands its gradient's sums to the linear layer as the bias "
    "gradient, only when that is the layer's whole gradient, on the same stream",
    "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  const int64_t width = 96;
  for (DeltaUse use : {DeltaUse::kNormOnly, DeltaUse::kSecondUse, DeltaUse::kOtherStream}) {
    DYNAMIC_SECTION("delta use " << static_cast<int>(use)) {
      torch::manual_seed(7);
      torch::nn::Linear layer(64, width);
      torch::nn::LayerNorm norm(torch::nn::LayerNormOptions({width}).eps(1e-6));
      layer->to(device);
      norm->to(device);
      const auto f32 = torch::TensorOptions().device(device);
      const auto x = torch::randn({3, 197, 64}, f32);
      const auto stream = torch::randn({3, 197, width}, f32);
      const auto grad_out = torch::randn({3, 197, width}, f32);
      const auto ref = run_handoff(false, stream, x, layer, norm, grad_out, use);
      const auto got = run_handoff(true, stream, x, layer, norm, grad_out, use);
      cuda::synchronize(device);
      CHECK(got.handed_over == (use == DeltaUse::kNormOnly));
      // The same bf16 gradient summed in float32 in another order, rounded to bf16.
      CHECK(test::allclose_as_float(got.grad_bias, ref.grad_bias, 8e-3, 1e-2));
      // The reference's weight gradient is rounded to bf16 (autocast's), the fast one is not.
      CHECK(test::close_to_scale(got.grad_weight, ref.grad_weight, 1e-2));
      CHECK(test::close_to_scale(got.grad_x, ref.grad_x, 1e-2));
      CHECK(test::allclose_as_float(got.grad_gamma, ref.grad_gamma, 1e-3, 1e-3));
    }
  }
}

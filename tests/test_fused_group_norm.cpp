// The channels-last GroupNorm (+ ReLU) kernels (ops/group_norm.h): against ATen's
// group_norm under the same autocast policy (values and gradients), and BiT / the hybrid with the
// kernels against the plain path.
#include "config/model_presets.h"
#include "core/compat.h"
#include "core/cuda_util.h"
#include "models/factory.h"
#include "ops/fast_kernels.h"
#include "ops/group_norm.h"
#include "models/layers.h"
#include "test_helpers.h"

using namespace vitlab;

namespace {
// The ops with the fast-kernels switch on or off (ops/fast_kernels.h).
torch::Tensor fused_group_norm_act(const torch::Tensor& x, int64_t groups,
                                   const torch::Tensor& weight, const torch::Tensor& bias,
                                   double eps, bool relu, bool feeds_conv, bool kernels) {
  const ops::FastKernels fast(kernels);
  return ops::group_norm_act(x, groups, weight, bias, eps, relu, feeds_conv);
}
std::pair<torch::Tensor, torch::Tensor> fused_add_group_norm_act(
    const torch::Tensor& x, const torch::Tensor& delta, int64_t groups, const torch::Tensor& weight,
    const torch::Tensor& bias, double eps, bool relu, bool feeds_conv, bool kernels) {
  const ops::FastKernels fast(kernels);
  return ops::add_group_norm_act(x, delta, groups, weight, bias, eps, relu, feeds_conv);
}
bool group_norm_kernels_apply(const torch::Tensor& x, int64_t groups, const torch::Tensor& weight,
                              const torch::Tensor& bias) {
  const ops::FastKernels fast(true);
  return ops::group_norm_kernels_apply(x, groups, weight, bias);
}
}  // namespace

namespace {
// The fraction of elements of `a` farther from the reference `b` than rtol * |b| + atol * max|b|.
double fraction_far(const torch::Tensor& a, const torch::Tensor& b, double rtol, double atol) {
  const auto fa = a.to(torch::kDouble), fb = b.to(torch::kDouble);
  const double scale = fb.abs().max().item<double>();
  return ((fa - fb).abs() > atol * scale + rtol * fb.abs()).to(torch::kFloat).mean().item<double>();
}

struct GroupNormCase {
  int64_t n, c, h, w, groups;
};

struct GroupNormResult {
  torch::Tensor out, grad_x, grad_gamma, grad_beta;
};

// [relu](GN(x)) forward and backward from fresh leaves, with the kernels (under autocast when
// asked; the output cast to bf16 when it feeds a convolution, as the convolution would), or the
// float64 reference: ATen's group_norm on the same values in double precision. (ATen's float32
// backward is no reference: it sums x * grad and then subtracts mean * sum(grad), which cancels
// catastrophically for a large mean; the kernels sum (x - mean) * grad.)
GroupNormResult run_group_norm(bool reference, const torch::Tensor& x0, const torch::Tensor& gamma0,
                               const torch::Tensor& beta0, int64_t groups, bool relu,
                               bool feeds_conv, bool autocast, const torch::Tensor& grad_out) {
  const auto dtype = reference ? torch::kDouble : x0.scalar_type();
  const auto param_dtype = reference ? torch::kDouble : torch::kFloat;
  auto x = x0.detach().to(dtype).clone(at::MemoryFormat::ChannelsLast).requires_grad_();
  auto gamma = gamma0.detach().to(param_dtype).clone().requires_grad_();
  auto beta = beta0.detach().to(param_dtype).clone().requires_grad_();
  GroupNormResult r;
  if (reference) {
    r.out = fused_group_norm_act(x, groups, gamma, beta, 1e-5, relu, feeds_conv, false);
  } else {
    compat::CudaAutocast guard(autocast);
    r.out = fused_group_norm_act(x, groups, gamma, beta, 1e-5, relu, feeds_conv, true);
    if (autocast && feeds_conv) r.out = r.out.to(torch::kBFloat16);
  }
  // A bf16 output receives its gradient in bf16 (autograd casts it to the output's dtype): the
  // reference sees the same rounded gradient.
  const bool bf16_out = autocast && feeds_conv;
  const auto g = bf16_out ? grad_out.to(torch::kBFloat16) : grad_out;
  (r.out.to(torch::kDouble) * g.to(torch::kDouble)).sum().backward();
  r.grad_x = x.grad();
  r.grad_gamma = gamma.grad();
  r.grad_beta = beta.grad();
  return r;
}
}  // namespace

TEST_CASE("GroupNorm kernels match a float64 group_norm, values and gradients", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const torch::Device device(torch::kCUDA, 0);
  const auto f32 = torch::TensorOptions().device(device);
  // BiT's shapes (32 groups of 2 to 64 channels, 7x7 to 56x56 maps), groups that straddle a
  // thread's eight channels (24 = 8 groups of 3, 192 = 32 groups of 6), 4096 channels, a batch of
  // one, one group of 100k values.
  const std::vector<GroupNormCase> cases = {
      {3, 64, 56, 56, 32}, {4, 256, 14, 14, 32}, {5, 2048, 7, 7, 32}, {2, 192, 9, 11, 32},
      {3, 24, 33, 31, 8},  {1, 4096, 3, 3, 32},  {2, 128, 28, 28, 1}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto k = cases[i];
    for (int mode = 0; mode < 4; ++mode) {
      // 0: float32, no autocast; 1: bf16 autocast, bf16 input feeding a conv; 2: the same with a
      // float32 output (feeds an add); 3: bf16 autocast, a float32 input with a mean of 300 and a
      // spread of 0.05 (the shifted sums keep the variance).
      const bool autocast = mode > 0, bf16_input = mode == 1 || mode == 2;
      // No ReLU in mode 3: float32 resolves x to 3e-5, 6e-4 of the spread, so the mask flips
      // wherever |y| < 6e-4 against the float64 reference (any float32 implementation would).
      const bool feeds_conv = mode != 2, relu = mode != 3 && (i + mode) % 2 == 0;
      DYNAMIC_SECTION("case " << i << " mode " << mode) {
        torch::manual_seed(static_cast<uint64_t>(10 * i + mode));
        auto x = torch::randn({k.n, k.c, k.h, k.w}, f32) * 2 + 0.5;
        if (mode == 3) x = torch::randn({k.n, k.c, k.h, k.w}, f32) * 0.05 + 300;
        if (bf16_input) x = x.to(torch::kBFloat16);
        const auto gamma = torch::randn({k.c}, f32) * 0.3 + 1;
        const auto beta = torch::randn({k.c}, f32) * 0.3;
        const auto grad_out = torch::randn({k.n, k.c, k.h, k.w}, f32);
        REQUIRE(group_norm_kernels_apply(x.contiguous(at::MemoryFormat::ChannelsLast), k.groups,
                                         gamma, beta));

        const auto ref =
            run_group_norm(true, x, gamma, beta, k.groups, relu, feeds_conv, autocast, grad_out);
        const auto got =
            run_group_norm(false, x, gamma, beta, k.groups, relu, feeds_conv, autocast, grad_out);
        CHECK(got.out.scalar_type() ==
              (autocast ? (feeds_conv ? torch::kBFloat16 : torch::kFloat) : torch::kFloat));
        CHECK(got.out.is_contiguous(at::MemoryFormat::ChannelsLast));
        REQUIRE(got.grad_x.scalar_type() == x.scalar_type());
        // A bf16 output is the float32 value rounded once (one bf16 step: 2^-8 relative); float32
        // carries ~1e-6, but x's own float32 rounding is 1e-7 * 300 / 0.05 = 6e-4 of a spread in
        // mode 3. The ReLU's mask may flip where the value is within rounding of zero: a handful
        // of elements at most.
        const bool bf16_out = got.out.scalar_type() == torch::kBFloat16;
        const double out_tol = bf16_out ? 8e-3 : (mode == 3 ? 2e-3 : 1e-5);
        CHECK(fraction_far(got.out, ref.out, out_tol, out_tol) < 1e-4);
        const double grad_tol = bf16_input ? 1e-2 : (mode == 3 ? 2e-3 : 1e-4);
        CHECK(fraction_far(got.grad_x, ref.grad_x, grad_tol, grad_tol) < 1e-4);
        CHECK(fraction_far(got.grad_gamma, ref.grad_gamma, 2e-3, 2e-3) == 0);
        CHECK(fraction_far(got.grad_beta, ref.grad_beta, 2e-3, 2e-3) == 0);
      }
    }
  }
}

TEST_CASE("residual add + GroupNorm kernels match the add and a float64 group_norm", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
  const std::vector<GroupNormCase> cases = {
      {3, 256, 28, 28, 32}, {4, 2048, 7, 7, 32}, {2, 24, 9, 11, 8}};
  for (size_t i = 0; i < cases.size(); ++i) {
    for (bool bf16 : {false, true}) {
      DYNAMIC_SECTION("case " << i << " bf16 " << bf16) {
        const auto k = cases[i];
        torch::manual_seed(static_cast<uint64_t>(100 + i));
        const std::vector<int64_t> shape{k.n, k.c, k.h, k.w};
        const auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
        auto cl = [&](const torch::Tensor& t) {
          return t.to(dtype).contiguous(at::MemoryFormat::ChannelsLast);
        };
        const auto x0 = cl(torch::randn(shape, f32) * 2 + 0.5), d0 = cl(torch::randn(shape, f32));
        const auto gamma0 = torch::randn({k.c}, f32) * 0.3 + 1, beta0 = torch::randn({k.c}, f32);
        const auto grad_out = torch::randn(shape, f32), grad_sum = torch::randn(shape, f32);
        // The kernels, under autocast when bf16 (the output then feeds a convolution).
        auto x = x0.clone().requires_grad_(), d = d0.clone().requires_grad_();
        auto gamma = gamma0.clone().requires_grad_(), beta = beta0.clone().requires_grad_();
        torch::Tensor sum, out;
        {
          compat::CudaAutocast guard(bf16);
          std::tie(sum, out) =
              fused_add_group_norm_act(x, d, k.groups, gamma, beta, 1e-5, true, true, true);
        }
        REQUIRE(out.scalar_type() == dtype);
        (out.to(torch::kFloat) * grad_out + sum.to(torch::kFloat) * grad_sum).sum().backward();
        // The reference: ATen's add in the input dtype (the same rounding), then float64.
        const auto ref_sum = (x0 + d0).to(torch::kDouble).requires_grad_();
        auto gamma_d = gamma0.to(torch::kDouble).requires_grad_();
        auto beta_d = beta0.to(torch::kDouble).requires_grad_();
        const auto ref_out =
            torch::relu(torch::group_norm(ref_sum, k.groups, gamma_d, beta_d, 1e-5));
        const auto g_out = (bf16 ? grad_out.to(torch::kBFloat16) : grad_out).to(torch::kDouble);
        const auto g_sum = (bf16 ? grad_sum.to(torch::kBFloat16) : grad_sum).to(torch::kDouble);
        (ref_out * g_out + ref_sum * g_sum).sum().backward();

        CHECK(torch::equal(sum, x0 + d0));
        CHECK(sum.is_contiguous(at::MemoryFormat::ChannelsLast));
        const double tol = bf16 ? 1e-2 : 1e-4;
        CHECK(fraction_far(out, ref_out, tol, tol) < 1e-4);
        CHECK(fraction_far(x.grad(), ref_sum.grad(), tol, tol) < 1e-4);
        CHECK(torch::equal(x.grad(), d.grad()));  // both receive the sum's gradient
        CHECK(fraction_far(gamma.grad(), gamma_d.grad(), 2e-3, 2e-3) == 0);
        CHECK(fraction_far(beta.grad(), beta_d.grad(), 2e-3, 2e-3) == 0);
      }
    }
  }
}

TEST_CASE("GroupNorm kernels decline what they do not handle", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
  const auto gamma = torch::ones({12}, f32), beta = torch::zeros({12}, f32);
  auto cl = [](const torch::Tensor& t) { return t.contiguous(at::MemoryFormat::ChannelsLast); };
  CHECK_FALSE(group_norm_kernels_apply(cl(torch::randn({2, 12, 5, 5}, f32)), 4, gamma, beta));
  const auto g16 = torch::ones({16}, f32), b16 = torch::zeros({16}, f32);
  CHECK(group_norm_kernels_apply(cl(torch::randn({2, 16, 5, 5}, f32)), 4, g16, b16));
  CHECK_FALSE(group_norm_kernels_apply(torch::randn({2, 16, 5, 5}, f32), 4, g16, b16));  // NCHW
  CHECK_FALSE(
      group_norm_kernels_apply(cl(torch::randn({2, 16, 5, 5}, f32)).to(torch::kHalf), 4, g16, b16));
  CHECK_FALSE(group_norm_kernels_apply(cl(torch::randn({2, 16, 5, 5})), 4, g16.cpu(), b16.cpu()));
  // What they decline, ATen computes: the result is the plain function.
  const auto x = torch::randn({2, 12, 5, 5}, f32);
  CHECK(torch::allclose(fused_group_norm_act(x, 4, gamma, beta, 1e-5, true, true, true),
                        torch::relu(torch::group_norm(x, 4, gamma, beta, 1e-5))));
}

namespace {
struct NormConvRun {
  std::vector<torch::Tensor> values;  // the outputs, then every leaf's gradient
  int64_t kept_bytes = 0;             // allocated by the forward pass, its graph alive
};

// add_group_norm_act_conv (`fused`), or add_group_norm_act and ops::conv2d separately, with the
// kernels under bf16 autocast, from fresh leaves; backward with the given output gradients.
NormConvRun run_norm_conv(bool fused, const std::vector<torch::Tensor>& leaves0,
                          const std::vector<std::pair<int64_t, int64_t>>& convs,
                          const std::vector<torch::Tensor>& grads) {
  std::vector<torch::Tensor> leaves;  // x, delta (maybe undefined), gamma, beta, conv weights
  for (const auto& t : leaves0)
    leaves.push_back(t.defined() ? t.detach().clone(at::MemoryFormat::Preserve).requires_grad_()
                                 : torch::Tensor());
  const auto &x = leaves[0], &delta = leaves[1];
  std::vector<ops::Conv2dSpec> specs;
  for (size_t i = 0; i < convs.size(); ++i) {
    ops::Conv2dSpec c;
    c.weight = leaves[4 + i];
    c.stride = convs[i].first;
    c.padding = convs[i].second;
    specs.push_back(c);
  }
  const auto device = x.device();
  cuda::synchronize(device);
  const int64_t before = cuda::allocated_memory_bytes(device);
  std::vector<torch::Tensor> outputs;
  {
    const ops::FastKernels kernels(true);
    compat::CudaAutocast autocast(true);
    if (fused) {
      auto [sum, ys] = ops::add_group_norm_act_conv(x, delta, 32, leaves[2], leaves[3], 1e-5, true,
                                                     specs);
      outputs = ys;
      outputs.insert(outputs.begin(), sum);
    } else {
      auto [sum, out] = ops::add_group_norm_act(x, delta, 32, leaves[2], leaves[3], 1e-5, true,
                                                /*feeds_conv=*/true);
      outputs.push_back(sum);
      for (const auto& c : specs) outputs.push_back(ops::conv2d(out, c));
    }
  }
  cuda::synchronize(device);
  NormConvRun r;
  r.kept_bytes = cuda::allocated_memory_bytes(device) - before;
  torch::autograd::backward({outputs.begin() + 1, outputs.end()}, grads);
  for (const auto& o : outputs) r.values.push_back(o.detach());
  for (const auto& l : leaves)
    if (l.defined()) r.values.push_back(l.grad());
  return r;
}
}  // namespace

TEST_CASE("a norm feeding convolutions recomputes its output: the same bits and less memory",
          "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const auto dev = torch::TensorOptions().device(torch::kCUDA, 0);
  const bool deterministic = at::globalContext().deterministicCuDNN();
  at::globalContext().setDeterministicCuDNN(true);  // the two runs' convolutions pick alike
  struct Case {
    int64_t n, c, hw, out0, k0, out1, k1;
    bool delta;
  };
  // BiT's first block of a stage (conv1 1x1 and the 1x1/2 projection), a later block (conv1
  // alone, the residual add inside the norm), and 3x3 kernels with padding.
  for (const Case& k : {Case{64, 256, 28, 64, 1, 512, 1, false}, Case{64, 256, 28, 64, 1, 0, 0, true},
                        Case{8, 64, 13, 16, 3, 32, 3, true}}) {
    DYNAMIC_SECTION("channels " << k.c << " size " << k.hw << " two convs " << (k.out1 > 0)) {
      torch::manual_seed(3);
      auto cl = [](const torch::Tensor& t) { return t.contiguous(at::MemoryFormat::ChannelsLast); };
      const auto x = cl(torch::randn({k.n, k.c, k.hw, k.hw}, dev)).to(torch::kBFloat16);
      const auto delta = k.delta ? cl(torch::randn_like(x, x.options())) : torch::Tensor();
      std::vector<torch::Tensor> leaves{x, delta, 1 + 0.2 * torch::randn({k.c}, dev),
                                        0.2 * torch::randn({k.c}, dev)};
      std::vector<std::pair<int64_t, int64_t>> convs;
      std::vector<torch::Tensor> grads;
      for (auto [out, kernel, stride] :
           {std::array<int64_t, 3>{k.out0, k.k0, 1}, std::array<int64_t, 3>{k.out1, k.k1, 2}}) {
        if (out == 0) continue;
        leaves.push_back(cl(torch::randn({out, k.c, kernel, kernel}, dev) * 0.05));
        convs.emplace_back(stride, (kernel - 1) / 2);
        const int64_t size = (k.hw + 2 * ((kernel - 1) / 2) - kernel) / stride + 1;
        grads.push_back(cl(torch::randn({k.n, out, size, size}, dev)).to(torch::kBFloat16));
      }
      const auto separate = run_norm_conv(false, leaves, convs, grads);
      const auto fused = run_norm_conv(true, leaves, convs, grads);
      REQUIRE(fused.values.size() == separate.values.size());
      for (size_t i = 0; i < fused.values.size(); ++i) {
        INFO("value " << i);
        CHECK(torch::equal(fused.values[i], separate.values[i]));
      }
      // The separate convolutions keep the norm's bf16 output; the fused op does not. The caching
      // allocator's blocks can differ from the request by a MiB or so (1 MiB less on an H200,
      // 2026-11-30), so the output is large and the bounds are a few MiB wide.
      const int64_t out_bytes = x.numel() * 2;
      if (out_bytes >= (int64_t(16) << 20)) {
        const int64_t saved = separate.kept_bytes - fused.kept_bytes;
        CHECK(saved >= out_bytes - (int64_t(2) << 20));
        CHECK(saved <= out_bytes + (int64_t(4) << 20));
      }
    }
  }
  at::globalContext().setDeterministicCuDNN(deterministic);
}

namespace {
ModelConfig small_resnet_config(const std::string& preset) {
  ModelConfig c = find_model_preset(preset).config;
  c.resnet_layers = {1, 1};
  c.image_size = 16;
  if (c.family == ModelFamily::kHybrid) {  // a small transformer: the ResNet is under test
    c.width = 32;
    c.depth = 2;
    c.heads = 2;
    c.mlp_dim = 64;
  }
  c.validate();
  return c;
}

}  // namespace

TEST_CASE("BiT and the hybrid with GroupNorm kernels compute the plain path's function", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  for (const auto& preset : {"bit_r26_28", "bit_r26x1", "hybrid_tiny_28", "hybrid_r50_b16"}) {
    DYNAMIC_SECTION(preset) {
      torch::manual_seed(7);
      auto model = build_model(small_resnet_config(preset));
      model->to(torch::Device(torch::kCUDA, 0));
      {
        torch::NoGradGuard no_grad;  // non-trivial norms and head, so every gradient is non-zero
        for (auto& p : model->named_parameters())
          if (p.key().find("norm") != std::string::npos ||
              p.key().find("head") != std::string::npos)
            p.value().normal_(p.key().find("bias") != std::string::npos ? 0.0 : 1.0, 0.2);
      }
      const auto images =
          torch::randn({8, model->config().in_channels, 16, 16}, torch::Device(torch::kCUDA, 0));
      auto run = [&](bool kernels) {
        const ops::FastKernels fast(kernels);
        model->zero_grad();
        torch::Tensor logits;
        {
          compat::CudaAutocast autocast(true);
          logits = model->forward(images).to(torch::kFloat);
        }
        logits.square().sum().backward();
        std::vector<torch::Tensor> grads;
        for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
        return std::make_pair(logits.detach(), grads);
      };
      const auto plain = run(false), fused = run(true);
      // bf16 activations through a few layers: agreement to bf16 rounding, relative to scale.
      const double scale = plain.first.abs().max().item<double>();
      CHECK(torch::allclose(fused.first, plain.first, 3e-2, 3e-2 * scale));
      const auto names = model->named_parameters().keys();
      for (size_t i = 0; i < plain.second.size(); ++i) {
        INFO(names[i]);
        const double g = plain.second[i].abs().max().item<double>();
        CHECK(torch::allclose(fused.second[i], plain.second[i], 5e-2, 5e-2 * g + 1e-6));
      }
    }
  }
}

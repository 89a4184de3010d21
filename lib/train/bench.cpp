#include "train/bench.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "core/build_info.h"
#include "core/cpu_runtime.h"
#include "core/compat.h"
#include "core/cuda_util.h"
#include "core/profiler.h"
#include "models/factory.h"
#include "train/flops.h"
#include "train/train_setup.h"

namespace vitlab {
namespace {

double default_peak_tflops(const std::string& device_name, bool bf16) {
  // Dense tensor-core bf16 and plain fp32 rates from NVIDIA's datasheets (SXM parts).
  const bool hopper = device_name.find("H100") != std::string::npos ||
                      device_name.find("H200") != std::string::npos;
  if (hopper) return bf16 ? 989.4 : 66.9;
  return 0.0;  // unknown: MFU is not reported
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string utc_date() {
  std::time_t t = std::time(nullptr);
  char buffer[32];
  std::strftime(buffer, sizeof buffer, "%Y-%m-%d", std::gmtime(&t));
  return buffer;
}

// Everything about the options that can be wrong, before anything is built; the device.
DeviceChoice check_bench_options(const BenchOptions& o) {
  o.model.validate("", "model");
  const DeviceChoice dev = parse_device(o.device, "--device");
  if (o.train.precision == Precision::kBf16 && !dev.cuda)
    throw ConfigError("--precision: bf16 needs a CUDA device");
  if (!o.profile_trace.empty() && !profiler_available())
    throw ConfigError(fmt::format("--profile {}: profiling needs LibTorch >= 2.0", o.profile_trace));
  return dev;
}

// One training step or one forward pass on a fixed synthetic batch.
std::function<void()> bench_step(const BenchOptions& o, TrainingSetup& setup, torch::Device device,
                                 torch::Tensor& last) {
  const int64_t B = o.train.batch_size;
  const auto& c = o.model;
  auto images = torch::randn({B, c.in_channels, c.image_size, c.image_size}, torch::TensorOptions().device(device));
  auto labels = torch::randint(0, c.num_classes, {B}, torch::TensorOptions().dtype(torch::kLong).device(device));
  auto targets = torch::one_hot(labels, c.num_classes).to(torch::kFloat);
  if (o.train_mode) {
    setup.model->train();
    TrainStep& step = *setup.step;
    const double lr = o.train.lr;
    return [&step, &last, images, targets, lr] { last = step.run(images, targets, lr).loss; };
  }
  setup.model->eval();
  const bool bf16 = o.train.precision == Precision::kBf16;
  ImageClassifier model = setup.model;
  return [model, &last, images, bf16] {
    torch::NoGradGuard no_grad;
    compat::CudaAutocast autocast(bf16);
    last = model->forward(images);
  };
}

// Images per second of each window of `steps` steps, after `warmup_steps` untimed ones.
std::vector<double> timed_windows(const BenchOptions& o, const std::function<void()>& run_one,
                                  torch::Device device, const torch::Tensor& last) {
  for (int i = 0; i < o.warmup_steps; ++i) run_one();
  cuda::synchronize(device);
  if (!device.is_cuda()) (void)last.sum().item<double>();
  std::vector<double> rates;
  for (int w = 0; w < o.windows; ++w) {
    cuda::synchronize(device);
    const auto start = std::chrono::steady_clock::now();
    for (int i = 0; i < o.steps; ++i) run_one();
    cuda::synchronize(device);
    (void)last.sum().item<double>();  // completes CPU work too
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    rates.push_back(double(o.train.batch_size) * o.steps / seconds);
  }
  return rates;
}

}  // namespace

Json run_benchmark(const BenchOptions& o) {
  const DeviceChoice dev = check_bench_options(o);
  const torch::Device device = dev.use();
  const bool bf16 = o.train.precision == Precision::kBf16;
  const int cpu_threads = configure_cpu_threads(o.train.threads);

  torch::manual_seed(0);
  TrainingSetup setup = set_up_training(build_model(o.model), o.train, device,
                                         TrainObjective(o.train, {}, {}, device));
  // --no-fused-kernels: the fast path's graph and optimiser without the hand-written kernels.
  const ops::FastKernels kernels(o.fused_kernels && setup.step->fast_kernels());
  cuda::reset_peak_memory(device);
  torch::Tensor last;
  const std::function<void()> run_one = bench_step(o, setup, device, last);
  const std::vector<double> rates = timed_windows(o, run_one, device, last);
  const double ips = median(rates);
  Json profile;
  if (!o.profile_trace.empty()) {
    profile = profile_region(o.profile_trace, [&] {
      for (int i = 0; i < o.steps; ++i) run_one();
      cuda::synchronize(device);
    }, 30);
    profile["steps"] = o.steps;
  }
  const auto& c = o.model;
  const double flops = o.train_mode ? train_flops_per_image(c) : forward_flops_per_image(c);
  const double achieved = flops * ips / 1e12;
  const std::string name = cuda::device_name(device);
  const double peak = o.peak_tflops > 0 ? o.peak_tflops : default_peak_tflops(name, bf16);
  return Json{{"model", c.name},
              {"config", c.to_json()},
              {"parameters", count_parameters(*setup.model)},
              {"mode", o.train_mode ? "train" : "infer"},
              {"batch", o.train.batch_size},
              {"image_size", c.image_size},
              {"precision", enum_name(o.train.precision, precision_names())},
              {"optimizer", enum_name(o.train.optimizer, optimizer_kind_names())},
              {"fast_path", o.train.fast_path},
              {"cuda_graph", setup.step->graphed()},
              {"fused_optimizer", setup.optimizer->fused()},
              {"fused_kernels", ops::fast_kernels_enabled()},
              {"device", dev.str()},
              {"device_name", name},
              {"threads", device.is_cuda() ? 0 : cpu_threads},
              {"gomp_spincount", gomp_spincount().empty() ? Json() : Json(gomp_spincount())},
              {"images_per_second", ips},
              {"window_images_per_second", rates},
              {"peak_memory_bytes", cuda::peak_memory_bytes(device)},
              {"flops_per_image", flops},
              {"achieved_tflops", achieved},
              {"peak_tflops", peak},
              {"mfu", peak > 0 ? Json(achieved / peak) : Json()},
              {"torch_version", torch_version()},
              {"git_commit", git_commit()},
              {"date", utc_date()},
              {"profile", profile}};
}

}  // namespace vitlab

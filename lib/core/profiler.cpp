#include "core/profiler.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>

#include "core/compat.h"
#include "core/error.h"

#if VITLAB_TORCH_AT_LEAST(2, 0)
#include <torch/csrc/autograd/profiler_kineto.h>
#endif

namespace vitlab {

bool profiler_available() { return VITLAB_TORCH_AT_LEAST(2, 0); }

Json summarize_trace(const std::string& trace_path, int top) {
  std::ifstream in(trace_path);
  if (!in) throw IoError(fmt::format("{}: the profiler wrote no trace", trace_path));
  const Json trace = Json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (trace.is_discarded() || !trace.contains("traceEvents"))
    throw IoError(fmt::format("{}: not a Chrome trace", trace_path));
  struct Entry {
    int64_t calls = 0;
    double us = 0;
  };
  std::map<std::string, Entry> by_name;
  double device_us = 0;
  for (const auto& e : trace["traceEvents"]) {
    const std::string cat = e.value("cat", "");
    if (cat != "kernel" && cat != "gpu_memcpy" && cat != "gpu_memset") continue;
    const double dur = e.value("dur", 0.0);
    auto& entry = by_name[e.value("name", "?")];
    entry.calls += 1;
    entry.us += dur;
    device_us += dur;
  }
  std::vector<std::pair<std::string, Entry>> sorted(by_name.begin(), by_name.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second.us > b.second.us; });
  Json kernels = Json::array();
  for (size_t i = 0; i < sorted.size() && int(i) < top; ++i)
    kernels.push_back({{"name", sorted[i].first},
                       {"calls", sorted[i].second.calls},
                       {"total_us", sorted[i].second.us},
                       {"share", device_us > 0 ? sorted[i].second.us / device_us : 0.0}});
  return Json{{"trace", trace_path}, {"device_us", device_us}, {"kernels", kernels},
              {"distinct_kernels", by_name.size()}};
}

Json profile_region(const std::string& trace_path, const std::function<void()>& body, int top) {
#if VITLAB_TORCH_AT_LEAST(2, 0)
  namespace prof = torch::autograd::profiler;
  using torch::profiler::impl::ActivityType;
  const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::KINETO);
  const std::set<ActivityType> activities{ActivityType::CPU, ActivityType::CUDA};
  prof::prepareProfiler(config, activities);
  prof::enableProfiler(config, activities);
  body();
  auto result = prof::disableProfiler();
  result->save(trace_path);
  return summarize_trace(trace_path, top);
#else
  (void)body;
  (void)top;
  throw ConfigError(fmt::format("--profile {}: profiling needs LibTorch >= 2.0 (this build has {})",
                                trace_path, TORCH_VERSION));
#endif
}

std::string format_kernel_table(const Json& profile) {
  std::string out = fmt::format("device time {:.1f} ms over {} kernels; trace: {}\n",
                                profile["device_us"].get<double>() / 1000.0,
                                profile["distinct_kernels"].get<size_t>(),
                                profile["trace"].get<std::string>());
  out += fmt::format("{:>7} {:>6} {:>10}  {}\n", "share", "calls", "total ms", "kernel");
  for (const auto& k : profile["kernels"]) {
    std::string name = k["name"].get<std::string>();
    if (name.size() > 110) name = name.substr(0, 107) + "...";
    out += fmt::format("{:>6.1f}% {:>6} {:>10.2f}  {}\n", 100.0 * k["share"].get<double>(),
                       k["calls"].get<int64_t>(), k["total_us"].get<double>() / 1000.0, name);
  }
  return out;
}

}  // namespace vitlab

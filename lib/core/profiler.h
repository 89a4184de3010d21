// Kernel-level profiling through LibTorch's Kineto profiler (LibTorch >= 2.0; the Debian 1.13 build
// has no CUDA to profile). Used by `vitlab bench --profile`.
#pragma once
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace vitlab {

using Json = nlohmann::json;

bool profiler_available();

// Runs `body` under the profiler (CPU ops and CUDA kernels), writes a Chrome trace to `trace_path`
// (open in Perfetto or chrome://tracing) and returns the device time by kernel name read back from
// it: {"kernels": [{"name", "calls", "total_us", "share"}...] (the `top` largest), "device_us"}.
Json profile_region(const std::string& trace_path, const std::function<void()>& body, int top);

// The device time by kernel name in a Chrome trace (its "kernel", "gpu_memcpy" and "gpu_memset"
// events), as profile_region returns it, with "distinct_kernels" and "trace" beside. IoError
// naming the file when it is missing or not a trace.
Json summarize_trace(const std::string& trace_path, int top);

// Prints what profile_region returned as an aligned table.
std::string format_kernel_table(const Json& profile);

}  // namespace vitlab

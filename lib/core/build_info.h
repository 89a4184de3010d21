#pragma once
#include <string>

namespace vitlab {
std::string git_commit();    // short hash of the source tree at configure time, or "unknown"
std::string version();       // vitlab's version
std::string torch_version();  // LibTorch's version, e.g. "1.13.0"
bool cuda_compiled();        // whether this LibTorch has CUDA
}  // namespace vitlab

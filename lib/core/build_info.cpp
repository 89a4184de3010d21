#include "core/build_info.h"

#include <torch/torch.h>

#include "vitlab_git_commit.h"  // generated at build time (CMakeLists.txt)

namespace vitlab {
std::string git_commit() { return VITLAB_GIT_COMMIT; }
std::string version() { return VITLAB_VERSION; }
std::string torch_version() { return TORCH_VERSION; }
bool cuda_compiled() { return torch::cuda::is_available() || at::hasCUDA(); }
}  // namespace vitlab

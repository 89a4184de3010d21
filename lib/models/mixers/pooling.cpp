#include "models/mixers/pooling.h"

#include <fmt/format.h>

#include "models/parts.h"

namespace vitlab {

PoolingMixerImpl::PoolingMixerImpl(int64_t grid, int64_t pool_size)
    : grid(grid), pool_size(pool_size) {}

torch::Tensor PoolingMixerImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), D = x.size(2);
  auto image = x.transpose(1, 2).reshape({B, D, grid, grid});  // (B, D, H, W)
  auto pooled = torch::avg_pool2d(image, pool_size, 1, pool_size / 2, /*ceil_mode=*/false,
                                  /*count_include_pad=*/false);
  return (pooled - image).reshape({B, D, grid * grid}).transpose(1, 2);  // (B, N, D)
}


TokenMixerPart pooling_mixer() {
  return {"pooling", "pooling", "average pooling over the grid minus the input (PoolFormer)",
          // It subtracts its input from a pooled copy: a bf16 input would change the result.
          /*projects_input=*/false, /*mixes_class_token=*/false, /*takes_attention_bias=*/false,
          [](const ModelConfig& c, AttentionBiasModule) -> TokenMixerModule {
            return std::make_shared<PoolingMixerImpl>(c.grid_size(), c.pool_mixer_size);
          },
          [](const ModelConfig&, double) { return 0.0; },  // additions only
          [](const ModelConfig& c, const PartError& bad) {
            if (c.pool_mixer_size % 2 == 0)
              bad("pool_mixer_size",
                  fmt::format("must be odd to keep the grid size, got {}", c.pool_mixer_size));
          }};
}
}  // namespace vitlab

// No position embedding: the tokens carry no position (the paper's "no positional information"
// row of Table 8).
#include "models/parts.h"

namespace vitlab {

PositionEmbeddingPart no_position_embedding() {
  return {"none", "no position information",
          [](const ModelConfig&) -> PositionEmbeddingModule {
            return std::make_shared<PositionEmbeddingImpl>();
          },
          nullptr, nullptr};
}

}  // namespace vitlab

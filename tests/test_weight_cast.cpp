// Bf16CastScope (ops/weight_cast.h): the one-kernel bf16 copies are the same bits as
// Tensor::to(bfloat16), and lookups outside the scope or for other tensors cast as usual.
#include "ops/weight_cast.h"
#include "test_helpers.h"

using namespace vitlab;
using ops::Bf16CastScope;
using ops::bf16_copy;

TEST_CASE("bf16 cast scope: one kernel's copies equal to(bfloat16), lookups fall back", "[cuda]") {
  SKIP_WITHOUT_CUDA();
  const auto f32 = torch::TensorOptions().device(torch::kCUDA, 0);
  torch::manual_seed(5);
  // Sizes around the vector width, a large one, and more tensors than one launch takes (64).
  std::vector<torch::Tensor> tensors;
  for (int64_t n : {1, 3, 4, 5, 7, 8, 768, 1001, 3 * 768 * 768 + 3})
    tensors.push_back(torch::randn({n}, f32) * 100);
  for (int i = 0; i < 70; ++i) tensors.push_back(torch::randn({17, 9}, f32));
  // Values on bf16 rounding ties and specials: round to nearest even, as ATen.
  tensors.push_back(torch::tensor({1.0f + 1.0f / 256, 1.0f + 3.0f / 256, -0.0f, 1e-40f, 3.4e38f,
                                   std::numeric_limits<float>::infinity()},
                                  f32));
  const auto misaligned = torch::randn({1000}, f32).narrow(0, 1, 999);  // 4-byte offset
  const auto not_in_scope = torch::randn({33}, f32);
  tensors.push_back(misaligned);
  {
    Bf16CastScope scope(tensors);
    CHECK(scope.size() == tensors.size());
    for (const auto& t : tensors) {
      const auto copy = bf16_copy(t);
      REQUIRE(copy.scalar_type() == torch::kBFloat16);
      CHECK(copy.sizes() == t.sizes());
      CHECK(torch::equal(copy, t.to(torch::kBFloat16)));
    }
    CHECK(torch::equal(bf16_copy(not_in_scope), not_in_scope.to(torch::kBFloat16)));
    CHECK_THROWS(Bf16CastScope(tensors));  // scopes do not nest
  }
  // After the scope: a plain cast of the current values.
  tensors[0].mul_(2);
  CHECK(torch::equal(bf16_copy(tensors[0]), tensors[0].to(torch::kBFloat16)));
}

TEST_CASE("bf16 cast scope without CUDA tensors makes no copies", "[models]") {
  const auto t = torch::randn({10});
  Bf16CastScope scope({t});
  CHECK(scope.size() == 0);
  CHECK(torch::equal(bf16_copy(t), t.to(torch::kBFloat16)));
}

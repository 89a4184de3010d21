// Position-embedding adaptation: layouts, identity, bilinear (vit_jax: corners aligned) versus
// bicubic (timm), the class-token row, and resizing through the import path.
#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/weights_init.h"
#include "weights/weights_export.h"
#include "weights/weights_import.h"
#include "weights/weights_pos_embed.h"

using namespace vitlab;
using vitlab::test::TempDir;

namespace {
ModelConfig vit(int image_size, Json extra = Json::object()) {
  Json j = {{"name", "vit_tiny_p4_28"}, {"image_size", image_size}, {"patch_size", 4},
            {"width", 32}, {"depth", 1}, {"heads", 4}, {"mlp_dim", 64}};
  j.update(extra);
  return read_model_config(j);
}
std::map<std::string, torch::Tensor> state_map(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : module_state(m)) out[k] = v;
  return out;
}
}  // namespace

TEST_CASE("pos-embed layout: square grid, or square grid plus a class row", "[weights]") {
  auto layout = pos_embed_layout(torch::zeros({1, 17, 8}), "x");
  CHECK(layout.prefix == 1);
  CHECK(layout.grid == 4);
  layout = pos_embed_layout(torch::zeros({1, 16, 8}), "x");
  CHECK(layout.prefix == 0);
  CHECK(layout.grid == 4);
  REQUIRE_THROWS_WITH_TYPE(pos_embed_layout(torch::zeros({1, 15, 8}), "f.npz: x"), IoError,
                           "f.npz: x: position embedding has 15 rows");
  REQUIRE_THROWS_WITH_TYPE(pos_embed_layout(torch::zeros({17, 8}), "x"), IoError, "expected (1, tokens, width)");
}

TEST_CASE("pos-embed resize: identity, shapes, class row, bilinear vs bicubic", "[weights]") {
  torch::manual_seed(0);
  auto pe = torch::randn({1, 17, 8});
  for (auto interp : {PosInterp::kBilinear, PosInterp::kBicubic}) {
    PosEmbedChange change;
    auto same = adapt_pos_embed(pe, 1, 4, 8, interp, "x", &change);
    CHECK(torch::equal(same, pe));
    CHECK_FALSE(change.resized);
    auto bigger = adapt_pos_embed(pe, 1, 6, 8, interp, "x", &change);
    CHECK(bigger.sizes() == torch::IntArrayRef({1, 37, 8}));
    CHECK(change.resized);
    CHECK(change.grid_from == 4);
    CHECK(change.grid_to == 6);
    CHECK(torch::equal(bigger.narrow(1, 0, 1), pe.narrow(1, 0, 1)));  // class row untouched
    auto smaller = adapt_pos_embed(pe, 1, 3, 8, interp, "x");
    CHECK(smaller.sizes() == torch::IntArrayRef({1, 10, 8}));
  }
  auto bilinear = adapt_pos_embed(pe, 1, 6, 8, PosInterp::kBilinear, "x");
  auto bicubic = adapt_pos_embed(pe, 1, 6, 8, PosInterp::kBicubic, "x");
  CHECK((bilinear - bicubic).abs().max().item<float>() > 1e-3);
  // Bilinear keeps the corner patches exactly (align_corners, as scipy.ndimage.zoom order=1).
  auto corners = [](const torch::Tensor& t, int64_t g) {
    return torch::stack({t[0][1], t[0][g], t[0][1 + g * (g - 1)], t[0][g * g]});
  };
  CHECK(torch::allclose(corners(bilinear, 6), corners(pe, 4), 1e-6, 1e-6));
}

TEST_CASE("bilinear resize is scipy.ndimage.zoom(order=1): corners aligned", "[weights]") {
  // 2x2 grid [[0, 1], [2, 3]] (one channel) -> 3x3 [[0, .5, 1], [1, 1.5, 2], [2, 2.5, 3]].
  auto grid = torch::tensor({0.f, 1.f, 2.f, 3.f}).reshape({1, 4, 1});
  auto out = resize_pos_grid(grid, 3, PosInterp::kBilinear).reshape({9});
  auto expected = torch::tensor({0.f, .5f, 1.f, 1.f, 1.5f, 2.f, 2.f, 2.5f, 3.f});
  CHECK(torch::allclose(out, expected, 1e-6, 1e-6));
  // learned_2d tables resize along their first axis only.
  auto table = torch::tensor({0.f, 10.f, 1.f, 11.f}).reshape({2, 2});  // rows (0,10), (1,11)
  auto t3 = resize_pos_1d(table, 3, PosInterp::kBilinear);
  CHECK(torch::allclose(t3, torch::tensor({0.f, 10.f, .5f, 10.5f, 1.f, 11.f}).reshape({3, 2}), 1e-6, 1e-6));
}

TEST_CASE("pos-embed class row: added as zeros, refused when the model has no token", "[weights]") {
  torch::manual_seed(0);
  auto no_class = torch::randn({1, 16, 8});  // big_vision / timm no_embed_class layout
  PosEmbedChange change;
  auto with_class = adapt_pos_embed(no_class, 1, 4, 8, PosInterp::kBicubic, "x", &change);
  CHECK(change.class_row_added);
  CHECK(torch::equal(with_class.narrow(1, 0, 1), torch::zeros({1, 1, 8})));
  CHECK(torch::equal(with_class.narrow(1, 1, 16), no_class));
  REQUIRE_THROWS_WITH_TYPE(adapt_pos_embed(torch::randn({1, 17, 8}), 0, 4, 8, PosInterp::kBicubic, "f: t"),
                           IoError, "f: t: position embedding has a class-token row");
  REQUIRE_THROWS_WITH_TYPE(adapt_pos_embed(torch::randn({1, 17, 6}), 1, 4, 8, PosInterp::kBicubic, "f: t"),
                           IoError, "width 6");
}

TEST_CASE("import resizes the position embedding to the model's grid", "[weights]") {
  TempDir dir;
  torch::manual_seed(1);
  auto source = build_model(vit(16));  // 4x4 grid
  const std::string file = dir.file("w.safetensors");
  export_weights(*source, file, ExportFormat::kSafetensors, ExportNames::kAuto, "");
  const auto pe = state_map(*source).at("pos.pos_embed");
  for (auto interp : {PosInterp::kBilinear, PosInterp::kBicubic}) {
    torch::manual_seed(2);
    auto target = build_model(vit(24));  // 6x6 grid
    WeightsImportOptions options;
    options.pos_interp = interp;
    const auto report = load_weights(*target, file, options);
    CHECK(report.pos_embed.resized);
    CHECK(report.pos_interp == interp);
    CHECK(report.summary().find("4x4 -> 6x6") != std::string::npos);
    CHECK(torch::allclose(state_map(*target).at("pos.pos_embed"),
                          adapt_pos_embed(pe, 1, 6, 32, interp, "x"), 0, 0));
    CHECK(torch::equal(state_map(*target).at("blocks.0.attn.qkv.weight"),
                       state_map(*source).at("blocks.0.attn.qkv.weight")));
  }
  // The default for safetensors is timm's bicubic.
  torch::manual_seed(2);
  auto target = build_model(vit(24));
  CHECK(load_weights(*target, file).pos_interp == PosInterp::kBicubic);
  // learned_2d (vitlab names) resizes its row and column tables.
  torch::manual_seed(1);
  auto l2d = build_model(vit(16, {{"pos_embed", "learned_2d"}}));
  export_weights(*l2d, dir.file("l2d.safetensors"), ExportFormat::kSafetensors, ExportNames::kAuto, "");
  auto l2d_big = build_model(vit(24, {{"pos_embed", "learned_2d"}}));
  CHECK(load_weights(*l2d_big, dir.file("l2d.safetensors")).pos_2d_resized);
  CHECK(state_map(*l2d_big).at("pos.row_embed").size(0) == 6);
}

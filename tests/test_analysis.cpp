// `vitlab analyze`: the numbers behind the figures against hand computations, and the command on
// a checkpoint of every registered ViT variant.
#include <filesystem>

#include "analysis/analyze.h"
#include "analysis/attention_maps.h"
#include "config/run_config.h"
#include "models/module_state.h"
#include "models/parts.h"
#include "test_helpers.h"
#include "train/checkpoint.h"
#include "train/objective.h"

using namespace vitlab;
using vitlab::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("mean attention distance of a hand-built attention matrix", "[analysis]") {
  // A 2x2 grid of 4-pixel patches after one class token; head 0 attends to the query itself,
  // head 1 to every patch equally (and some weight on the class token, which is left out).
  auto a = torch::zeros({1, 2, 5, 5}, torch::kDouble);
  for (int q = 1; q < 5; ++q) {
    a[0][0][q][q] = 1.0;
    a[0][1][q][0] = 0.2;
    for (int k = 1; k < 5; ++k) a[0][1][q][k] = 0.2;
  }
  const auto d = mean_attention_distance(a, 2, 4.0, 1);
  REQUIRE(d.size(0) == 2);
  CHECK(d[0].item<double>() == Approx(0.0));
  // Every query: distances 0, 4, 4 and 4 sqrt(2) to the four patches, equally weighted.
  CHECK(d[1].item<double>() == Approx((0 + 4 + 4 + 4 * std::sqrt(2.0)) / 4));
}

TEST_CASE("rollout of identity attention is the identity, maps read the class token's row", "[analysis]") {
  const auto eye = torch::eye(5, torch::kDouble).view({1, 1, 5, 5}).repeat({2, 3, 1, 1});
  const auto r = attention_rollout({eye, eye, eye});
  CHECK(torch::allclose(r, torch::eye(5, torch::kDouble).unsqueeze(0).expand({2, 5, 5})));
  // Uniform attention: (A + I) / 2 rows, multiplied; the class token's map is flat.
  const auto uniform = torch::full({1, 1, 5, 5}, 0.2, torch::kDouble);
  const auto one = attention_rollout({uniform});
  CHECK(one[0][0][0].item<double>() == Approx(0.6));
  CHECK(one[0][0][1].item<double>() == Approx(0.1));
  const auto maps = rollout_maps(one, 2, 1, true);
  CHECK(torch::allclose(maps, torch::ones({1, 2, 2}, torch::kDouble)));
}

TEST_CASE("principal components recover planted directions, cosine similarity", "[analysis]") {
  torch::manual_seed(0);
  auto basis = std::get<0>(at::linalg_qr(torch::randn({12, 12}, torch::kDouble)));
  const auto u = basis.select(1, 0), v = basis.select(1, 1);
  const auto a = torch::randn({500, 1}, torch::kDouble) * 5, b = torch::randn({500, 1}, torch::kDouble) * 2;
  const auto x = a * u.unsqueeze(0) + b * v.unsqueeze(0) + torch::randn({500, 12}, torch::kDouble) * 0.05;
  const auto [components, share] = principal_components(x, 2);
  CHECK(std::abs(components[0].dot(u).item<double>()) > 0.999);
  CHECK(std::abs(components[1].dot(v).item<double>()) > 0.999);
  CHECK(share[0].item<double>() > share[1].item<double>());
  CHECK(share.sum().item<double>() > 0.99);
  const auto sim = cosine_similarity_matrix(torch::tensor({{1.0, 0.0}, {0.0, 2.0}, {-3.0, 0.0}}));
  CHECK(sim[0][0].item<double>() == Approx(1.0));
  CHECK(sim[0][1].item<double>() == Approx(0.0));
  CHECK(sim[0][2].item<double>() == Approx(-1.0));
}

namespace {
// A checkpoint of a small model trained for nothing, on synthetic data, at `path`.
void save_checkpoint_of(Json model, const std::string& path) {
  Json m = {{"name", "vit_tiny_p4_28"}, {"image_size", 16}, {"patch_size", 4}, {"width", 32},
            {"depth", 2}, {"heads", 2}, {"mlp_dim", 64}, {"num_classes", 10}, {"in_channels", 1}};
  m.update(model);
  const RunConfig run = read_run_config(Json{
      {"device", "cpu"}, {"model", m},
      {"data", {{"dataset", "synthetic"}, {"synthetic_image_size", m["image_size"]}, {"synthetic_train", 64},
                {"synthetic_test", 40}}}});
  test::save_run_checkpoint(run, path, 1);
}

bool is_png(const std::string& path) {
  const std::string bytes = test::read_text(path);
  return bytes.size() > 60 && bytes.substr(1, 3) == "PNG";
}
}  // namespace

TEST_CASE("analyze writes every figure that applies, for every registered ViT variant", "[analysis]") {
  TempDir dir;
  std::vector<Json> variants;
  for (const auto& mixer : token_mixer_parts())
    for (const auto& pos : position_embedding_parts()) {
      Json v = {{"token_mixer", mixer.name}, {"pos_embed", pos.name}};
      if (pos.block_bias && !mixer.takes_attention_bias) continue;  // the parts' own rule
      if (!mixer.mixes_class_token) v.update({{"pool", "gap"}, {"class_token", false}});
      variants.push_back(v);
    }
  variants.push_back({{"pool", "gap"}});
  variants.push_back({{"name", "hybrid_r50_b16"}, {"image_size", 32}, {"patch_size", 1}, {"resnet_layers", {1, 1}}});
  for (const auto& v : variants) {
    DYNAMIC_SECTION(v.dump()) {
      const std::string ck = dir.file("ck.pt"), out = dir.file("out");
      fs::remove_all(out);
      save_checkpoint_of(v, ck);
      AnalyzeOptions o;
      o.checkpoint = ck;
      o.out_dir = out;
      o.images = 8;
      o.overlays = 3;
      o.device = "cpu";
      const Json r = analyze_checkpoint(o);
      CHECK(fs::exists(out + "/analysis.json"));
      CHECK(r["figures"].size() + r["not_applicable"].size() == 4);
      for (auto it = r["figures"].begin(); it != r["figures"].end(); ++it) {
        INFO(it.key());
        CHECK(is_png(out + "/" + it.value()["file"].get<std::string>()));
      }
      const bool attention = v.value("token_mixer", std::string("attention")) == "attention";
      CHECK(r["figures"].contains("rollout") == attention);
      if (attention) {
        CHECK(r["figures"]["attention_distance"]["per_layer_and_head"].size() == 2);
        CHECK(r["figures"]["rollout"]["images"] == 3);
      } else {
        CHECK(r["not_applicable"]["rollout"].get<std::string>().find("no attention matrix") != std::string::npos);
      }
      CHECK(r["figures"].contains("filters") == !v.contains("name"));
    }
  }
}

TEST_CASE("analyze: figures that do not apply, a ResNet and an unwritable folder are errors", "[analysis]") {
  TempDir dir;
  save_checkpoint_of({{"token_mixer", "axial"}, {"pool", "gap"}, {"class_token", false}}, dir.file("axial.pt"));
  AnalyzeOptions o;
  o.checkpoint = dir.file("axial.pt");
  o.out_dir = dir.file("out");
  o.device = "cpu";
  o.figures = {"rollout"};
  REQUIRE_THROWS_WITH_TYPE(analyze_checkpoint(o), UserError,
                           "figure \"rollout\" does not apply to model \"vit_tiny_p4_28\": token mixer "
                           "\"axial\" has no attention matrix over all tokens; what applies: pos_embed, filters");
  o.figures = {"colour"};
  REQUIRE_THROWS_WITH_TYPE(analyze_checkpoint(o), UserError, "--figures: unknown figure \"colour\"");
  save_checkpoint_of({{"name", "bit_r26_28"}, {"image_size", 16}, {"resnet_layers", {1, 1}}}, dir.file("bit.pt"));
  o.checkpoint = dir.file("bit.pt");
  o.figures = {};
  REQUIRE_THROWS_WITH_TYPE(analyze_checkpoint(o), UserError, "nothing to analyze for model \"bit_r26_28\"");
  test::write_text(dir.file("file"), "x");
  o.checkpoint = dir.file("axial.pt");
  o.out_dir = dir.file("file/out");
  REQUIRE_THROWS_AS(analyze_checkpoint(o), IoError);
  CHECK(test::run_vitlab("analyze " + dir.file("axial.pt") + " --out " + dir.file("o2") +
                         " --figures rollout --device cpu").exit_code == 2);
}

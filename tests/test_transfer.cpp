// Transfer (the paper's Sec. 3.2): a pretrained checkpoint fine-tuned with a zero head and without
// its pretraining head, at another resolution with every position embedding resized (the relative
// biases by the rule in weights/weights_pos_embed.h) or kept fresh, and the import report.
#include "config/run_config.h"
#include "models/module_state.h"
#include "test_helpers.h"
#include "train/checkpoint.h"
#include "train/objective.h"
#include "train/weights_init.h"
#include "weights/weights_pos_embed.h"

using namespace vitlab;
using vitlab::test::TempDir;

namespace {
RunConfig run_of(Json model, Json train = Json::object()) {
  Json m = {{"name", "vit_tiny_p4_28"}, {"image_size", 16}, {"patch_size", 4}, {"width", 32},
            {"depth", 2}, {"heads", 2}, {"mlp_dim", 64}, {"in_channels", 1}};
  if (model.is_object()) m.update(model);
  if (!train.is_object()) train = Json::object();
  return read_run_config(Json{{"device", "cpu"}, {"model", m}, {"train", train}});
}

// Saves a seeded model of `run` as a vitlab checkpoint at `path`; returns its state.
std::map<std::string, torch::Tensor> save_model(const RunConfig& run, const std::string& path) {
  const Checkpoint c = test::save_run_checkpoint(run, path, 11);
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : c.model) out[k] = v.detach().clone();
  return out;
}

std::map<std::string, torch::Tensor> state_of(const ImageClassifier& m) {
  std::map<std::string, torch::Tensor> out;
  for (auto& [k, v] : module_state(*m)) out[k] = v.detach().clone();
  return out;
}

bool has(const std::vector<std::string>& names, const std::string& name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}
}  // namespace

TEST_CASE("relative biases resized: a new offset reads the old table at its scaled 2-D offset", "[transfer]") {
  // Old grid 2 (4 patches, offsets -3..3), new grid 4; the table's value is its offset.
  const auto table = (torch::arange(7, torch::kFloat) - 3).unsqueeze(0).repeat({2, 1});  // (2 heads, 7)
  const auto resized = resize_relative_bias(table, 0, 4, "test");
  REQUIRE(resized.sizes() == torch::IntArrayRef({2, 31}));
  auto at = [&](int64_t delta) { return resized[1][delta + 15].item<double>(); };
  CHECK(at(0) == 0.0);
  CHECK(at(1) == 0.5);    // one column at twice the resolution: half an old column
  CHECK(at(2) == 1.0);    // two columns: one old column
  CHECK(at(4) == 1.0);    // one row (4 patches) down: half an old row = 2 * 0.5
  CHECK(at(3) == 0.5);    // split as one row down, one column left: 1.0 - 0.5
  CHECK(at(-4) == -1.0);  // symmetric
  CHECK(at(15) == 3.0);   // past the old table's end: its last offset
  // With a class token (prefix 1): the extreme offset (class token to the last patch) maps onto
  // the old extreme; the same grid returns the table unchanged.
  const auto with_cls = (torch::arange(9, torch::kFloat) - 4).unsqueeze(0);
  const auto r2 = resize_relative_bias(with_cls, 1, 4, "test");
  REQUIRE(r2.size(1) == 33);
  CHECK(r2[0][32].item<double>() == 4.0);
  CHECK(r2[0][0].item<double>() == -4.0);
  CHECK(torch::equal(resize_relative_bias(with_cls, 1, 2, "test"), with_cls));
  REQUIRE_THROWS_WITH_TYPE(resize_relative_bias(torch::zeros({2, 9}), 0, 4, "f.pt: tensor \"x\""), IoError,
                           "f.pt: tensor \"x\": relative position bias is [2, 9]: 5 tokens less 0 class "
                           "token(s) is not a square grid of patches");
}

TEST_CASE("hi-res fine-tuning resizes every kind of position embedding, or keeps a fresh one", "[transfer]") {
  TempDir dir;
  for (const char* pos : {"learned_1d", "learned_2d", "relative"}) {
    DYNAMIC_SECTION(pos) {
      const auto source = save_model(run_of({{"pos_embed", pos}}), dir.file(std::string(pos) + ".pt"));
      const RunConfig hires = run_of({{"pos_embed", pos}, {"image_size", 32}});
      torch::manual_seed(5);
      ImageClassifier model = build_run_model(hires);
      const auto fresh_before = state_of(model);
      const auto report = init_weights_from(*model, dir.file(std::string(pos) + ".pt"), transfer_options(hires));
      CHECK_FALSE(report.resized.empty());
      if (std::string(pos) == "relative") {
        CHECK(has(report.resized, "blocks.0.relative.relative_bias"));
        CHECK(state_of(model).at("blocks.1.relative.relative_bias").size(1) == 2 * 65 - 1);
      }
      CHECK(torch::equal(state_of(model).at("blocks.1.mlp.fc1.weight"), source.at("blocks.1.mlp.fc1.weight")));
      CHECK(report.to_json()["pos_embed_resized"] == true);

      RunConfig fresh = hires;
      fresh.init_pos_embed = InitPosEmbed::kFresh;
      torch::manual_seed(5);
      ImageClassifier model2 = build_run_model(fresh);
      const auto r2 = init_weights_from(*model2, dir.file(std::string(pos) + ".pt"), transfer_options(fresh));
      CHECK(r2.resized.empty());
      CHECK_FALSE(r2.fresh.empty());
      for (const auto& name : r2.fresh)
        if (name.rfind("head.", 0) != 0) CHECK(torch::equal(state_of(model2).at(name), fresh_before.at(name)));
    }
  }
}

TEST_CASE("fine-tuning from a masked-patch checkpoint drops its head and starts the classifier at zero",
          "[transfer][masked_patch]") {
  TempDir dir;
  const auto source = save_model(run_of({}, {{"objective", "masked_patch"}}), dir.file("mpp.pt"));
  REQUIRE(source.count("masked_patch.mask_token"));
  const RunConfig finetune = run_of({});
  ImageClassifier model = build_run_model(finetune);
  const WeightsImportReport report = init_weights_from(*model, dir.file("mpp.pt"), transfer_options(finetune));
  CHECK(has(report.dropped, "masked_patch.mask_token"));
  CHECK(has(report.dropped, "masked_patch.proj.weight"));
  CHECK(has(report.fresh, "head.weight"));
  CHECK(state_of(model).at("head.weight").abs().sum().item<double>() == 0.0);
  CHECK(state_of(model).at("head.bias").abs().sum().item<double>() == 0.0);
  CHECK(torch::equal(state_of(model).at("patch_embed.proj.weight"), source.at("patch_embed.proj.weight")));
  const Json j = report.to_json();
  CHECK(j["loaded"] == report.tensors - 2);
  CHECK(j["new"] == Json{"head.weight", "head.bias"});
  CHECK(report.summary().find("dropped: masked_patch.") != std::string::npos);

  // init_head "keep" loads the file's head.
  RunConfig keep = finetune;
  keep.init_head = InitHead::kKeep;
  ImageClassifier kept = build_run_model(keep);
  init_weights_from(*kept, dir.file("mpp.pt"), transfer_options(keep));
  CHECK(torch::equal(state_of(kept).at("head.weight"), source.at("head.weight")));
}

TEST_CASE("weights that cannot be mapped name every tensor and both shapes", "[transfer]") {
  TempDir dir;
  save_model(run_of({}), dir.file("narrow.pt"));
  const RunConfig wide = run_of({{"width", 48}, {"heads", 3}});
  ImageClassifier model = build_run_model(wide);
  REQUIRE_THROWS_WITH_TYPE(init_weights_from(*model, dir.file("narrow.pt"), transfer_options(wide)), IoError,
                           "\"blocks.0.attn.proj.bias\" is [32], the model's blocks.0.attn.proj.bias is [48]");
}

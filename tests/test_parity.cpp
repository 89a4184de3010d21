// Golden tests against timm: fixtures made by scripts/make_parity_fixtures.py on the GPU machine
// (timm 1.0.x, CPU fp32) — small timm models' weights, a fixed input and timm's logits. Each is
// loaded through the import path (load_weights) and must give timm's logits within a relative
// error of 1e-5. The fixtures also pin vitlab's export names to timm's state_dict keys and the
// position-embedding resampling to timm's resample_abs_pos_embed and scipy's zoom.
#include <iostream>

#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/weights_init.h"
#include "weights/weights_export.h"
#include "weights/weights_import.h"

using namespace vitlab;

namespace {

const std::string kDir = std::string(VITLAB_SOURCE_DIR) + "/tests/fixtures/parity/";

Json manifest() {
  const std::string path = kDir + "manifest.json";
  INFO("fixtures missing: run scripts/make_parity_fixtures.py on the GPU machine (see its header)");
  REQUIRE(std::filesystem::exists(path));
  return read_json_file(path);
}

const Json& fixture(const Json& m, const std::string& name) {
  for (const auto& f : m["fixtures"])
    if (f["name"] == name) return f;
  FAIL("no fixture " << name);
  return m;
}

torch::Tensor get(const SafetensorsFile& f, const std::string& name) {
  const torch::Tensor* t = f.find(name);
  INFO(name);
  REQUIRE(t != nullptr);
  return *t;
}

double rel_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).norm().item<double>() /
         b.to(torch::kDouble).norm().item<double>();
}

ImageClassifier import(const ModelConfig& c, const std::string& weights, WeightsImportReport* report = nullptr) {
  torch::manual_seed(0);
  ImageClassifier model = build_model(c);
  auto r = load_weights(*model, kDir + weights);
  if (report) *report = r;
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("parity with timm: logits of every fixture within 1e-5", "[parity]") {
  const Json m = manifest();
  REQUIRE(m["fixtures"].size() >= 6);
  vitlab::test::TempDir dir;
  for (const auto& f : m["fixtures"]) {
    const std::string name = f["name"];
    DYNAMIC_SECTION(name) {
      const ModelConfig c = read_model_config(f["vitlab_model"], name);
      WeightsImportReport report;
      auto model = import(c, f["weights"], &report);
      CHECK(report.names == "timm");
      CHECK_FALSE(report.head_reinitialized);
      CHECK_FALSE(report.pos_embed.resized);
      const SafetensorsFile io = read_safetensors(kDir + f["io"].get<std::string>());
      const auto input = get(io, "input"), expected = get(io, "logits");
      torch::NoGradGuard no_grad;
      const auto out = model->forward(input);
      const double rel = rel_error(out, expected);
      std::cout << fmt::format("parity {:<34} rel {:.2e}  max|diff| {:.2e}  (timm fp32 vs fp64: {:.2e})\n",
                               name, rel, (out - expected).abs().max().item<double>(),
                               f.value("timm_fp32_vs_fp64_rel", -1.0));
      CHECK(rel <= 1e-5);

      // vitlab's export of this model has exactly timm's state_dict keys and shapes.
      const std::string exported = dir.file(name + ".safetensors");
      export_weights(*model, exported, ExportFormat::kSafetensors, ExportNames::kTimm, "");
      const bool no_embed_class = f["timm_kwargs"].value("no_embed_class", false);
      std::map<std::string, std::vector<int64_t>> ours, timm;
      for (auto& [k, v] : read_safetensors(exported).tensors) ours[k] = v.sizes().vec();
      for (auto& [k, v] : read_safetensors(kDir + f["weights"].get<std::string>()).tensors) timm[k] = v.sizes().vec();
      if (no_embed_class) ours["pos_embed"] = timm["pos_embed"];  // vitlab stores the class row (zero)
      CHECK(ours == timm);
    }
  }
}

TEST_CASE("parity with timm: position-embedding resampling", "[parity]") {
  const Json m = manifest();
  const Json& f = fixture(m, "vit_cls_learned1d");
  const SafetensorsFile weights = read_safetensors(kDir + f["weights"].get<std::string>());
  const SafetensorsFile io = read_safetensors(kDir + f["io"].get<std::string>());
  const auto pe = get(weights, "pos_embed");  // (1, 1 + 4*4, D)
  const int64_t width = pe.size(2);
  for (int64_t grid : {6, 3}) {
    DYNAMIC_SECTION("grid " << grid) {
      // timm.layers.resample_abs_pos_embed (bicubic, antialias=True, as its loader calls it).
      const auto bicubic = adapt_pos_embed(pe, 1, grid, width, PosInterp::kBicubic, "pe");
      const double rb = rel_error(bicubic, get(io, fmt::format("pos_bicubic_{}", grid)));
      // scipy.ndimage.zoom(order=1) on the grid rows, as vit_jax / big_vision resize.
      const auto bilinear = adapt_pos_embed(pe, 1, grid, width, PosInterp::kBilinear, "pe");
      const double rl = rel_error(bilinear, get(io, fmt::format("pos_bilinear_{}", grid)));
      std::cout << fmt::format("parity pos-embed 4x4 -> {0}x{0}: bicubic vs timm {1:.2e}, bilinear vs "
                               "scipy {2:.2e}\n",
                               grid, rb, rl);
      CHECK(rb <= 1e-6);
      CHECK(rl <= 1e-6);
    }
  }
}

TEST_CASE("parity with timm: weights imported at another resolution", "[parity]") {
  // timm's model at 24 px (6x6 grid) with its loader's resized pos_embed vs vitlab's import.
  const Json m = manifest();
  const Json& f = fixture(m, "vit_cls_learned1d");
  Json config = f["vitlab_model"];
  config["image_size"] = 24;
  WeightsImportReport report;
  auto model = import(read_model_config(config), f["weights"], &report);
  CHECK(report.pos_embed.resized);
  CHECK(report.pos_interp == PosInterp::kBicubic);
  const SafetensorsFile io = read_safetensors(kDir + f["io"].get<std::string>());
  torch::NoGradGuard no_grad;
  const double rel = rel_error(model->forward(get(io, "input_24")), get(io, "logits_24"));
  std::cout << fmt::format("parity vit_cls_learned1d imported at 24 px: rel {:.2e}\n", rel);
  CHECK(rel <= 1e-5);
}

// Hidden test (run by name): makes the bundle that scripts/roundtrip_timm.py checks with timm.
//   ./vitlab_tests "[.roundtrip]"      (writes $VITLAB_ROUNDTRIP_DIR, default .parity/roundtrip)
// For each timm-compatible family: `vitlab train` one epoch on synthetic data, `vitlab export`
// to safetensors (+ sidecar), and vitlab's logits for a fixed input.
#include <cstdlib>
#include <filesystem>

#include "config/run_config.h"
#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/checkpoint.h"

using namespace vitlab;

TEST_CASE("round-trip bundle for scripts/roundtrip_timm.py", "[.roundtrip]") {
  const char* env = std::getenv("VITLAB_ROUNDTRIP_DIR");
  const std::filesystem::path out =
      env ? env : std::filesystem::path(VITLAB_SOURCE_DIR) / ".parity" / "roundtrip";
  std::filesystem::create_directories(out);
  vitlab::test::TempDir runs;
  const Json small_vit = {{"name", "vit_tiny_p4_28"}, {"width", 32}, {"depth", 2}, {"heads", 4}, {"mlp_dim", 64}};
  auto with = [](Json base, const Json& extra) {
    base.update(extra);
    return base;
  };
  const std::vector<std::pair<std::string, Json>> models = {
      {"rt_vit_cls_learned1d", small_vit},
      {"rt_vit_gap_sincos", with(small_vit, {{"class_token", false}, {"pool", "gap"}, {"pos_embed", "sincos_2d"}})},
      {"rt_vit_nopos_prenorm_eps1e-5",
       with(small_vit, {{"pos_embed", "none"}, {"pool", "gap"}, {"gap_norm", "before_pool"},
                        {"qkv_bias", false}, {"layer_norm_eps", 1e-5}})},
      {"rt_hybrid_fixed", {{"name", "hybrid_tiny_28"}, {"image_size", 32}, {"resnet_stem", "imagenet"},
                           {"patch_size", 1}, {"width", 32}, {"depth", 2}, {"heads", 4}, {"mlp_dim", 64}}},
      {"rt_hybrid_same", {{"name", "hybrid_r50_b16"}, {"image_size", 32}, {"in_channels", 1},
                          {"num_classes", 10}, {"patch_size", 1}, {"width", 32}, {"depth", 1},
                          {"heads", 4}, {"mlp_dim", 64}, {"resnet_layers", {1, 1}}}},
      {"rt_bit_fixed", {{"name", "bit_r26x1"}, {"image_size", 32}, {"in_channels", 1},
                        {"num_classes", 10}, {"resnet_layers", {1, 1}}}},
  };
  for (const auto& [name, model] : models) {
    const int size = model.value("image_size", 28);
    const Json config = {
        {"description", "round trip to timm: " + name},
        {"device", "cpu"},
        {"model", model},
        {"data", {{"dataset", "synthetic"}, {"synthetic_train", 256}, {"synthetic_test", 64},
                  {"synthetic_image_size", size}, {"synthetic_channels", 1}, {"synthetic_classes", 10}}},
        {"train", {{"epochs", 1}, {"batch_size", 64}, {"lr", 0.001}}}};
    const std::string config_path = runs.file(name + ".json");
    write_json_file_atomic(config_path, config);
    const std::string run_dir = runs.file(name);
    auto trained = vitlab::test::run_vitlab("train " + config_path + " --out " + run_dir + " --quiet");
    INFO(trained.output);
    REQUIRE(trained.exit_code == 0);
    const std::string checkpoint = run_dir + "/checkpoints/last.pt";
    const std::string weights = (out / (name + ".safetensors")).string();
    auto exported = vitlab::test::run_vitlab("export " + checkpoint + " --names timm --out " + weights);
    INFO(exported.output);
    REQUIRE(exported.exit_code == 0);

    // vitlab's logits for a fixed input, from the trained checkpoint.
    const Checkpoint ck = load_checkpoint(checkpoint);
    const RunConfig run = read_run_config(ck.config);
    ImageClassifier m = build_model(run.model);
    load_module_state(*m, ck.model, checkpoint);
    m->eval();
    torch::manual_seed(99);
    auto input = torch::randn({4, run.model.in_channels, run.model.image_size, run.model.image_size});
    torch::NoGradGuard no_grad;
    auto logits = m->forward(input);
    write_safetensors((out / (name + ".io.safetensors")).string(), {{"input", input}, {"logits", logits}});
    std::cout << name << ": exported to " << weights << "\n";
  }
}

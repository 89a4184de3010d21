// `vitlab export` and `vitlab import`: outputs and exit statuses (0 written, 2 bad input).
#include "config/run_config.h"
#include "formats/safetensors.h"
#include "models/factory.h"
#include "test_helpers.h"
#include "train/checkpoint.h"

using namespace vitlab;
using vitlab::test::run_vitlab;
using vitlab::test::TempDir;

namespace {

const Json kVit = {{"name", "vit_tiny_p4_28"}, {"image_size", 16}, {"in_channels", 3}, {"num_classes", 10},
                   {"width", 32}, {"depth", 2}, {"heads", 4}, {"mlp_dim", 64}};

// A checkpoint as `vitlab train` writes it, of the model `model_json`.
std::string make_checkpoint(const TempDir& dir, const std::string& file, const Json& model_json) {
  RunConfig run;
  run.model = read_model_config(model_json);
  torch::manual_seed(5);
  ImageClassifier m = build_model(run.model);
  Checkpoint c;
  c.config = run.to_json();
  c.model = module_state(*m);
  c.epochs_done = 3;
  save_checkpoint(dir.file(file), c);
  return dir.file(file);
}

std::string q(const std::string& s) { return "'" + s + "'"; }

Json json_output(const vitlab::test::CommandResult& r) {
  INFO(r.output);
  return Json::parse(r.output);
}

}  // namespace

TEST_CASE("vitlab export writes safetensors with timm names and a sidecar", "[weights][cli]") {
  TempDir dir;
  const std::string ck = make_checkpoint(dir, "ck.pt", kVit);
  auto r = run_vitlab("export " + q(ck) + " --out " + q(dir.file("w.safetensors")));
  REQUIRE(r.exit_code == 0);
  const Json out = json_output(r);
  CHECK(out["names"] == "timm");
  const SafetensorsFile f = read_safetensors(dir.file("w.safetensors"));
  CHECK(f.find("pos_embed") != nullptr);
  CHECK(f.metadata.at("vitlab_names") == "timm");
  const Json sidecar = read_json_file(dir.file("w.safetensors.json"));
  CHECK(sidecar["timm"]["class"] == "VisionTransformer");
  CHECK(sidecar["timm"]["kwargs"]["embed_dim"] == 32);
  CHECK(sidecar["timm"]["kwargs"]["img_size"] == 16);
  CHECK(sidecar["epochs_done"] == 3);
  CHECK(sidecar["vitlab_model"]["width"] == 32);
  // --config-out and the libtorch format.
  r = run_vitlab("export " + q(ck) + " --format libtorch --out " + q(dir.file("w.pt")) + " --config-out " +
                 q(dir.file("side.json")));
  REQUIRE(r.exit_code == 0);
  CHECK(read_json_file(dir.file("side.json"))["format"] == "libtorch");
}

TEST_CASE("vitlab export exit status 2 for bad input", "[weights][cli]") {
  TempDir dir;
  const std::string ck = make_checkpoint(dir, "ck.pt", kVit);
  Json l2d = kVit;
  l2d["pos_embed"] = "learned_2d";
  const std::string ck2d = make_checkpoint(dir, "l2d.pt", l2d);
  auto r = run_vitlab("export " + q(dir.file("missing.pt")) + " --out " + q(dir.file("x.safetensors")));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("no such checkpoint") != std::string::npos);
  r = run_vitlab("export " + q(ck) + " --format onnx --out " + q(dir.file("x")));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--format") != std::string::npos);
  r = run_vitlab("export " + q(ck));
  CHECK(r.exit_code == 2);
  r = run_vitlab("export " + q(ck2d) + " --names timm --out " + q(dir.file("x.safetensors")));
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("learned_2d") != std::string::npos);
  // Without --names timm the variant timm lacks is written with vitlab's names.
  r = run_vitlab("export " + q(ck2d) + " --out " + q(dir.file("l2d.safetensors")));
  REQUIRE(r.exit_code == 0);
  CHECK(json_output(r)["names"] == "vitlab");
  CHECK(read_safetensors(dir.file("l2d.safetensors")).find("pos.row_embed") != nullptr);
}

TEST_CASE("vitlab import writes a checkpoint that evaluates like the source", "[weights][cli]") {
  TempDir dir;
  const std::string ck = make_checkpoint(dir, "ck.pt", kVit);
  REQUIRE(run_vitlab("export " + q(ck) + " --out " + q(dir.file("w.safetensors"))).exit_code == 0);
  const std::string sets = " --set image_size=16 --set in_channels=3 --set num_classes=10 --set width=32 "
                           "--set depth=2 --set heads=4 --set mlp_dim=64";
  auto r = run_vitlab("import " + q(dir.file("w.safetensors")) + " --model vit_tiny_p4_28" + sets +
                      " --out " + q(dir.file("imported.pt")));
  REQUIRE(r.exit_code == 0);
  const Json out = json_output(r);
  CHECK(out["import"]["names"] == "timm");
  CHECK(out["import"]["head_reinitialized"] == false);
  const Checkpoint a = load_checkpoint(ck), b = load_checkpoint(dir.file("imported.pt"));
  CHECK(b.epochs_done == 0);
  CHECK(b.optimizer.empty());
  CHECK(b.config["model"] == a.config["model"]);
  CHECK(b.config["description"].get<std::string>().find("imported from") != std::string::npos);
  std::map<std::string, torch::Tensor> sa(a.model.begin(), a.model.end());
  for (auto& [k, v] : b.model) CHECK(torch::equal(v, sa.at(k)));
  // The stored config reads back as a run config (what `vitlab eval` does).
  CHECK_NOTHROW(read_run_config(b.config));

  // Another class count: head re-initialised; another grid: pos-embed resized, recorded.
  r = run_vitlab("import " + q(dir.file("w.safetensors")) + " --model vit_tiny_p4_28" + sets +
                 " --set num_classes=4 --set model.image_size=24 --pos-interp bilinear --out " +
                 q(dir.file("ft.pt")));
  REQUIRE(r.exit_code == 0);
  const Json ft = json_output(r)["import"];
  CHECK(ft["head_reinitialized"] == true);
  CHECK(ft["head_classes"] == Json({10, 4}));
  CHECK(ft["pos_interp"] == "bilinear");
  CHECK(ft["pos_embed_grid"] == Json({4, 6}));
  CHECK(load_checkpoint(dir.file("ft.pt")).config["description"].get<std::string>().find("(bilinear)") !=
        std::string::npos);
}

TEST_CASE("vitlab import exit status 2 for bad input", "[weights][cli]") {
  TempDir dir;
  const std::string ck = make_checkpoint(dir, "ck.pt", kVit);
  REQUIRE(run_vitlab("export " + q(ck) + " --out " + q(dir.file("w.safetensors"))).exit_code == 0);
  const std::string w = q(dir.file("w.safetensors"));
  const std::string sets = " --set image_size=16 --set in_channels=3 --set width=32 --set heads=4 --set mlp_dim=64";
  auto expect2 = [](const vitlab::test::CommandResult& r, const std::string& part) {
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(part) != std::string::npos);
  };
  expect2(run_vitlab("import " + w + " --model vit_tiny_p4_28" + sets + " --set depth=3 --out " + q(dir.file("a.pt"))),
          "missing tensor(s): \"blocks.2.");
  expect2(run_vitlab("import " + w + " --model vit_tiny_p4_28" + sets + " --set depth=2 --set width=48 --out " +
                     q(dir.file("a.pt"))),
          "wrong shape");
  expect2(run_vitlab("import " + w + " --model no_such_model --out " + q(dir.file("a.pt"))), "unknown model");
  expect2(run_vitlab("import " + w + " --model vit_tiny_p4_28" + sets + " --set depth=2 --pos-interp cubic --out " +
                     q(dir.file("a.pt"))),
          "--pos-interp");
  expect2(run_vitlab("import " + q(dir.file("nothing.safetensors")) + " --model vit_tiny_p4_28 --out " +
                     q(dir.file("a.pt"))),
          "no such weights file");
  vitlab::test::write_text(dir.file("trunc.safetensors"), std::string("\x10\0\0\0\0\0\0\0{\"a\":", 13));
  expect2(run_vitlab("import " + q(dir.file("trunc.safetensors")) + " --model vit_tiny_p4_28 --out " +
                     q(dir.file("a.pt"))),
          "trunc.safetensors");
  expect2(run_vitlab("import " + w + " --model vit_tiny_p4_28 --out " + q(ck)), "already exists");
  expect2(run_vitlab("import " + w + " --model vit_tiny_p4_28"), "--out");
}

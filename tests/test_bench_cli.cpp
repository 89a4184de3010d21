// `vitlab bench` as a user runs it: the record it writes, inference mode, profiling, bad options.
#include "core/profiler.h"
#include "test_helpers.h"

using namespace vitlab;
using test::run_vitlab;
using test::TempDir;

namespace {
const std::string kTinyModel =
    "--model vit_tiny_p4_28 --set width=32 --set depth=1 --set heads=2 --set mlp_dim=64 --set patch_size=7 "
    "--device cpu --precision fp32 --batch 8 --steps 2 --windows 3 --warmup 1 ";
bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }
}  // namespace

TEST_CASE("vitlab bench writes its record: speed, windows, parameters, FLOPs, threads", "[bench][cli]") {
  TempDir dir;
  auto r = run_vitlab("bench " + kTinyModel + "--threads 1 --json " + dir.file("b.json"), "-u GOMP_SPINCOUNT");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "vit_tiny_p4_28 train fp32 batch 8 on cpu"));
  const Json j = Json::parse(test::read_text(dir.file("b.json")));
  CHECK(j["mode"] == "train");
  CHECK(j["batch"] == 8);
  CHECK(j["threads"] == 1);
  CHECK(j["window_images_per_second"].size() == 3);
  CHECK(j["images_per_second"].get<double>() > 0);
  // D=32, one block, MLP 64, patch 7 on 28x28x1 (16 patches + class token), 10 classes.
  const int64_t embed = 49 * 32 + 32, tokens = 32 + 17 * 32;
  const int64_t block = 2 * (2 * 32) + (32 * 96 + 96) + (32 * 32 + 32) + (32 * 64 + 64) + (64 * 32 + 32);
  CHECK(j["parameters"] == embed + tokens + block + 2 * 32 + (32 * 10 + 10));
  CHECK(j["flops_per_image"].get<double>() > 0);
  CHECK(j["mfu"].is_null());  // no stated peak for a CPU
  CHECK(j["profile"].is_null());
  CHECK(j["fused_kernels"] == false);  // CUDA only
  CHECK(j["gomp_spincount"] == "10000");  // set by vitlab's one re-execution (core/cpu_runtime.h)

  auto infer = run_vitlab("bench " + kTinyModel + "--mode infer --json " + dir.file("i.json"));
  REQUIRE(infer.exit_code == 0);
  CHECK(Json::parse(test::read_text(dir.file("i.json")))["mode"] == "infer");

  // A spin count the user set is kept; VITLAB_CPU_RUNTIME=off leaves the variable alone.
  REQUIRE(run_vitlab("bench " + kTinyModel + "--json " + dir.file("own.json"), "GOMP_SPINCOUNT=500").exit_code == 0);
  CHECK(Json::parse(test::read_text(dir.file("own.json")))["gomp_spincount"] == "500");
  REQUIRE(run_vitlab("bench " + kTinyModel + "--json " + dir.file("off.json"), "-u GOMP_SPINCOUNT VITLAB_CPU_RUNTIME=off").exit_code == 0);
  CHECK(Json::parse(test::read_text(dir.file("off.json")))["gomp_spincount"].is_null());
}

TEST_CASE("vitlab bench --profile: a trace and a kernel table, or a clear error on LibTorch 1.x", "[bench][cli]") {
  TempDir dir;
  auto r = run_vitlab("bench " + kTinyModel + "--profile " + dir.file("trace.json"));
  INFO(r.output);
  if (profiler_available()) {
    REQUIRE(r.exit_code == 0);
    CHECK(contains(r.output, "device time"));
    CHECK(std::filesystem::exists(dir.file("trace.json")));
  } else {
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "--profile " + dir.file("trace.json") + ": profiling needs LibTorch >= 2.0"));
    CHECK_FALSE(std::filesystem::exists(dir.file("trace.json")));
  }
}

TEST_CASE("vitlab bench: bad options exit 2 with the option named", "[bench][cli]") {
  const std::vector<std::pair<std::string, std::string>> cases = {  // arguments, message
      {kTinyModel + "--mode sideways", "--mode: use train or infer"},
      {"--model vit_tiny_p4_28 --device cpu --precision bf16", "--precision: bf16 needs a CUDA device"},
      {"--model vit_z99 --device cpu --precision fp32", "vit_z99"},
      {kTinyModel + "--steps 0", "--steps and --windows must be at least 1"},
      {"--device cpu", "--model is required"}};
  for (const auto& [arguments, message] : cases) {
    auto r = run_vitlab("bench " + arguments);
    INFO(arguments);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, message));
  }
}

TEST_CASE("vitlab bench on CUDA: the fast path's fused kernels, and --no-fused-kernels", "[bench][cli][cuda]") {
  SKIP_WITHOUT_CUDA();
  TempDir dir;
  const std::string gpu_model =
      "--model vit_tiny_p4_28 --set depth=2 --device cuda --batch 32 --steps 2 --windows 2 --warmup 4 ";
  const auto record = [&](const std::string& flags, const std::string& name) {
    REQUIRE(run_vitlab("bench " + gpu_model + flags + "--json " + dir.file(name)).exit_code == 0);
    return Json::parse(test::read_text(dir.file(name)));
  };
  const Json fast = record("", "fast.json");
  CHECK(fast["fused_kernels"] == true);
  CHECK(fast["cuda_graph"] == true);
  const Json no_fused = record("--no-fused-kernels ", "nf.json");
  CHECK(no_fused["fused_kernels"] == false);
  CHECK(no_fused["cuda_graph"] == true);
  CHECK(record("--plain ", "plain.json")["fused_kernels"] == false);
}

TEST_CASE("summarize_trace: device time by kernel from a Chrome trace, largest first", "[bench]") {
  TempDir dir;
  // Two calls of gemm (30 us), one copy (10 us), a CPU op that is not device time.
  const Json trace = {{"traceEvents",
                       {{{"cat", "kernel"}, {"name", "gemm"}, {"dur", 20.0}},
                        {{"cat", "gpu_memcpy"}, {"name", "Memcpy HtoD"}, {"dur", 10.0}},
                        {{"cat", "cpu_op"}, {"name", "aten::mm"}, {"dur", 500.0}},
                        {{"cat", "kernel"}, {"name", "gemm"}, {"dur", 10.0}}}}};
  test::write_text(dir.file("trace.json"), trace.dump());
  const Json s = summarize_trace(dir.file("trace.json"), 1);
  CHECK(s["device_us"].get<double>() == 40.0);
  CHECK(s["distinct_kernels"].get<int>() == 2);
  REQUIRE(s["kernels"].size() == 1);  // top 1
  CHECK(s["kernels"][0]["name"] == "gemm");
  CHECK(s["kernels"][0]["calls"].get<int>() == 2);
  CHECK(s["kernels"][0]["total_us"].get<double>() == 30.0);
  CHECK(s["kernels"][0]["share"].get<double>() == 0.75);
  CHECK_THROWS_MATCHES(summarize_trace(dir.file("none.json"), 5), IoError,
                       test::MessageContains("none.json: the profiler wrote no trace"));
  test::write_text(dir.file("other.json"), "{\"events\": []}");
  CHECK_THROWS_MATCHES(summarize_trace(dir.file("other.json"), 5), IoError,
                       test::MessageContains("other.json: not a Chrome trace"));
}

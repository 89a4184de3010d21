// vitlab import: timm safetensors, vitlab exports or JAX .npz weights -> a vitlab checkpoint of a
// factory model (the same loading path as `init_from`).
#include "apps/cli.h"

#include <filesystem>
#include <iostream>

#include "apps/commands.h"
#include "config/run_config.h"
#include "train/weights_init.h"
#include "weights/weights_import.h"

namespace vitlab::app {

int cmd_import(int argc, char** argv) {
  cxxopts::Options options(
      "vitlab import",
      "Turn a weights file into a vitlab checkpoint (empty optimiser state, epochs_done 0) for\n"
      "`vitlab eval`, `init_from` or further training.\n"
      "  FILE: .safetensors (timm names, or vitlab's from `vitlab export`), .npz (vit_jax /\n"
      "  big_vision names) or a vitlab checkpoint.\n"
      "The position embedding is resized when the token grid differs; the head is\n"
      "re-initialised when only the class count differs; anything else that does not fit is an\n"
      "error naming the tensor. Exit status: 0 written, 2 bad input.");
  options.add_options()("file", "weights file", cxxopts::value<std::string>())(
      "model", "factory model (see `vitlab models`)", cxxopts::value<std::string>())(
      "set", "model override, key=value (repeatable), e.g. num_classes=10 image_size=384",
      cxxopts::value<std::vector<std::string>>())(
      "out", "checkpoint to write", cxxopts::value<std::string>())(
      "pos-interp", "bilinear (vit_jax/big_vision) or bicubic (timm); default bilinear for .npz, "
                    "bicubic otherwise",
      cxxopts::value<std::string>())(
      "seed", "seed for re-initialised parts (the head)", cxxopts::value<int64_t>()->default_value("0"))(
      "force", "overwrite --out if it exists")("h,help", "show this help");
  options.parse_positional({"file"});
  options.positional_help("FILE");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("file")) throw UserError("missing FILE (see --help)");
  if (!args.count("model")) throw UserError("missing --model NAME (see `vitlab models`)");
  if (!args.count("out")) throw UserError("missing --out CHECKPOINT (see --help)");
  const std::string file = args["file"].as<std::string>();
  const std::string out = args["out"].as<std::string>();
  if (std::filesystem::exists(out) && !args.count("force"))
    throw UserError(fmt::format("--out {}: already exists; pass --force to overwrite", out));

  // --set keys are model fields; a leading "model." is accepted too.
  Json model = {{"name", args["model"].as<std::string>()}};
  if (args.count("set"))
    for (std::string assignment : args["set"].as<std::vector<std::string>>()) {
      if (assignment.rfind("model.", 0) == 0) assignment = assignment.substr(6);
      apply_override(model, assignment, "--set");
    }
  const ModelConfig config = read_model_config(model, "--set", "model");

  WeightsImportOptions import_options;
  if (args.count("pos-interp"))
    import_options.pos_interp =
        parse_option_enum("pos-interp", args["pos-interp"].as<std::string>(), pos_interp_names());
  WeightsImportReport report;
  const Checkpoint checkpoint =
      import_checkpoint(config, file, import_options, args["seed"].as<int64_t>(), &report);
  save_checkpoint(out, checkpoint);
  std::cout << Json{{"out", out}, {"model", config.name}, {"import", report.to_json()}}.dump(2) << "\n";
  return 0;
}

}  // namespace vitlab::app

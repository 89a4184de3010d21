// vitlab export: a checkpoint's model weights as safetensors (timm's names where timm has the
// variant) or as LibTorch's module archive, plus a sidecar JSON with the config and timm args.
#include "apps/cli.h"

#include <iostream>

#include "apps/commands.h"
#include "train/weights_init.h"
#include "weights/weights_export.h"

namespace vitlab::app {

int cmd_export(int argc, char** argv) {
  cxxopts::Options options(
      "vitlab export",
      "Write a checkpoint's weights for use outside vitlab.\n"
      "  safetensors: timm's parameter names wherever timm has the variant (ViT with class token\n"
      "    or GAP, learned_1d / none / sincos_2d position embedding, the hybrid, BiT ResNetV2);\n"
      "    vitlab's names for the others (learned_2d, relative, axial, pooling mixer, pre-logits,\n"
      "    the small ResNet stem).\n"
      "  libtorch: the archive torch::save(module) writes, with vitlab's module names.\n"
      "Also writes FILE.json (or --config-out): the model config and the timm constructor args.\n"
      "Exit status: 0 written, 2 bad input.");
  options.add_options()("checkpoint", "vitlab checkpoint (.pt)", cxxopts::value<std::string>())(
      "format", "safetensors or libtorch", cxxopts::value<std::string>()->default_value("safetensors"))(
      "out", "output file", cxxopts::value<std::string>())(
      "names", "auto (timm where possible), timm (fail if impossible) or vitlab",
      cxxopts::value<std::string>()->default_value("auto"))(
      "config-out", "sidecar JSON (default: FILE.json)", cxxopts::value<std::string>())(
      "h,help", "show this help");
  options.parse_positional({"checkpoint"});
  options.positional_help("CHECKPOINT.pt");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("checkpoint")) throw UserError("missing CHECKPOINT.pt (see --help)");
  if (!args.count("out")) throw UserError("missing --out FILE (see --help)");
  const auto format =
      parse_option_enum("format", args["format"].as<std::string>(), export_format_names());
  const auto names =
      parse_option_enum("names", args["names"].as<std::string>(), export_names_names());
  const std::string path = args["checkpoint"].as<std::string>();
  const std::string out = args["out"].as<std::string>();
  const std::string sidecar = args.count("config-out") ? args["config-out"].as<std::string>() : out + ".json";

  const CheckpointModel loaded = load_model_from_checkpoint(path);
  const Json extra = {{"source_checkpoint", path}, {"epochs_done", loaded.checkpoint.epochs_done}};
  const ExportResult result = export_weights(*loaded.model, out, format, names, sidecar, extra);
  std::cout << Json{{"out", out},
                    {"format", enum_name(format, export_format_names())},
                    {"names", result.names},
                    {"tensors", result.tensors},
                    {"sidecar", sidecar},
                    {"timm_model", result.sidecar["timm"].is_null() ? Json(nullptr)
                                                                     : result.sidecar["timm"]["model"]}}
                   .dump(2)
            << "\n";
  return 0;
}

}  // namespace vitlab::app

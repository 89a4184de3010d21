// vitlab analyze: the paper's analysis figures for a checkpoint (analysis/analyze.h).
#include "apps/cli.h"

#include <iostream>

#include "analysis/analyze.h"
#include "apps/commands.h"
#include "core/error.h"

namespace vitlab::app {

int cmd_analyze(int argc, char** argv) {
  cxxopts::Options options("vitlab analyze", "The paper's analysis figures of a checkpoint (Fig. 6, 7, 11).");
  options.add_options()("checkpoint", "checkpoint file (.pt)", cxxopts::value<std::string>())(
      "out", "output folder for analysis.json and the PNG figures", cxxopts::value<std::string>())(
      "images", "test images for the attention figures", cxxopts::value<int64_t>()->default_value("32"))(
      "overlays", "rollout maps drawn", cxxopts::value<int64_t>()->default_value("8"))(
      "split", "test or val", cxxopts::value<std::string>()->default_value("test"))(
      "figures", "comma-separated: attention_distance, rollout, pos_embed, filters (default: all that apply)",
      cxxopts::value<std::string>()->default_value(""))(
      "device", "cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))(
      "h,help", "show this help");
  options.parse_positional({"checkpoint"});
  options.positional_help("CHECKPOINT.pt --out DIR");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("checkpoint")) throw UserError("missing CHECKPOINT.pt (see --help)");
  if (!args.count("out")) throw UserError("--out DIR is required (where analysis.json and the figures go)");
  AnalyzeOptions o;
  o.checkpoint = args["checkpoint"].as<std::string>();
  o.out_dir = args["out"].as<std::string>();
  o.images = args["images"].as<int64_t>();
  o.overlays = args["overlays"].as<int64_t>();
  o.split = args["split"].as<std::string>();
  o.device = args["device"].as<std::string>();
  const std::string list = args["figures"].as<std::string>();
  for (size_t start = 0; start < list.size();) {
    const size_t comma = std::min(list.find(',', start), list.size());
    if (comma > start) o.figures.push_back(list.substr(start, comma - start));
    start = comma + 1;
  }
  const Json out = analyze_checkpoint(o);
  for (auto it = out["figures"].begin(); it != out["figures"].end(); ++it)
    std::cout << it.key() << ": " << o.out_dir << "/" << it.value()["file"].get<std::string>() << "\n";
  for (auto it = out["not_applicable"].begin(); it != out["not_applicable"].end(); ++it)
    std::cout << it.key() << ": not applicable (" << it.value().get<std::string>() << ")\n";
  std::cout << "analysis: " << o.out_dir << "/analysis.json\n";
  return 0;
}

}  // namespace vitlab::app

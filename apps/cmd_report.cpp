// vitlab report: a sweep's self-contained HTML report (report/report.h).
#include "apps/cli.h"

#include <cstdio>
#include <iostream>

#include "apps/commands.h"
#include "core/error.h"
#include "report/report.h"

namespace vitlab::app {

int cmd_report(int argc, char** argv) {
  cxxopts::Options options(
      "vitlab report",
      "Write DIR/report.html: one self-contained page (no network, no script) with the summary "
      "table, test accuracy of every variant against the baseline, accuracy against training-set "
      "size when the sweep varies it, training curves, the analysis figures of each variant's best "
      "run (made now with `vitlab analyze` where missing, kept in DIR/analysis/) and the runs that "
      "failed or diverged. `vitlab sweep` writes it at the end of every sweep.");
  options.add_options()("dir", "sweep folder", cxxopts::value<std::string>())(
      "out", "write the page here instead of DIR/report.html", cxxopts::value<std::string>())(
      "no-analysis", "do not run the analysis; use what DIR/analysis/ already holds")(
      "images", "test images for the attention figures", cxxopts::value<int64_t>()->default_value("32"))(
      "device", "device for the analysis: cpu, cuda or cuda:N", cxxopts::value<std::string>()->default_value("auto"))(
      "h,help", "show this help");
  options.parse_positional({"dir"});
  options.positional_help("DIR");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("dir")) throw UserError("missing the sweep folder DIR (see --help)");
  ReportOptions o;
  o.sweep_dir = args["dir"].as<std::string>();
  if (args.count("out")) o.out_file = args["out"].as<std::string>();
  o.analysis.make = args.count("no-analysis") == 0;
  o.analysis.images = args["images"].as<int64_t>();
  o.analysis.device = args["device"].as<std::string>();
  if (o.analysis.images < 1) throw UserError("--images: must be at least 1");
  std::cout.flush();
  std::printf("report: %s\n", write_sweep_report(o, stdout).c_str());
  return 0;
}

}  // namespace vitlab::app

// vitlab data: tools for image folders too large to keep decoded (the streaming pipeline).
//   vitlab data synth OUT      write an ImageNet-shaped folder of synthetic JPEGs
//   vitlab data bench FOLDER   decode + augment throughput of the streaming pipeline, no model
#include <fmt/format.h>

#include <cstring>
#include <iostream>

#include "apps/cli.h"
#include "apps/commands.h"
#include "config/data_config.h"
#include "config/json_reader.h"
#include "config/rand_augment_config.h"
#include "core/atomic_file.h"
#include "core/build_info.h"
#include "core/error.h"
#include "data/image_decode.h"
#include "data/stream_bench.h"
#include "data/synthetic_folder.h"

namespace vitlab::app {
namespace {

cxxopts::ParseResult parse_or_help(cxxopts::Options& options, int argc, char** argv, bool* help) {
  auto args = options.parse(argc, argv);
  *help = args.count("help") > 0;
  if (*help) std::cout << options.help() << "\n";
  return args;
}

int data_synth(int argc, char** argv) {
  cxxopts::Options options("vitlab data synth",
                           "Write OUT/train/class_NNN/*.jpg and OUT/val/class_NNN/*.jpg: synthetic "
                           "JPEGs of ImageNet's shape (about 500x375, +-20%) for measuring the "
                           "streaming pipeline. OUT must not exist or be empty.");
  SyntheticFolderOptions o;
  options.add_options()("out", "output folder", cxxopts::value<std::string>())(
      "images", "images in all", cxxopts::value<int64_t>()->default_value("20000"))(
      "classes", "classes", cxxopts::value<int>()->default_value("100"))(
      "val-fraction", "share of each class in val/",
      cxxopts::value<double>()->default_value("0.1"))("quality", "JPEG quality",
                                                      cxxopts::value<int>()->default_value("90"))(
      "seed", "seed", cxxopts::value<uint64_t>()->default_value("0"))(
      "threads", "encoding threads (0: all cores)", cxxopts::value<int>()->default_value("0"))(
      "h,help", "show this help");
  options.parse_positional({"out"});
  options.positional_help("OUT");
  bool help = false;
  auto args = parse_or_help(options, argc, argv, &help);
  if (help) return 0;
  if (!args.count("out")) throw UserError("missing the output folder OUT (see --help)");
  o.images = args["images"].as<int64_t>();
  o.classes = args["classes"].as<int>();
  o.val_fraction = args["val-fraction"].as<double>();
  o.quality = args["quality"].as<int>();
  o.seed = args["seed"].as<uint64_t>();
  o.threads = args["threads"].as<int>();
  if (o.quality < 1 || o.quality > 100) throw UserError("--quality must be in 1..100");
  if (o.val_fraction < 0 || o.val_fraction >= 1)
    throw UserError("--val-fraction must be in [0, 1)");
  const std::string out = args["out"].as<std::string>();
  const auto s = write_synthetic_folder(out, o, [](int64_t n) { std::cerr << n << " images\n"; });
  std::cout << fmt::format("{}: {} training and {} validation JPEGs in {} classes, {:.1f} MB\n",
                           out, s.train, s.val, o.classes, double(s.bytes) / 1e6);
  return 0;
}

int data_bench(int argc, char** argv) {
  cxxopts::Options options(
      "vitlab data bench",
      "Decode and augment BATCHES batches of FOLDER/SPLIT as streamed training "
      "would (RandomResizedCrop + flip, or --eval's resize + centre crop), on the "
      "CPU, without a model: the img/s a GPU could be fed with.");
  options.add_options()("folder", "image folder", cxxopts::value<std::string>())(
      "split", "train, val or test", cxxopts::value<std::string>()->default_value("train"))(
      "image-size", "output side", cxxopts::value<int64_t>()->default_value("224"))(
      "batch", "batch size", cxxopts::value<int64_t>()->default_value("256"))(
      "batches", "batches timed", cxxopts::value<int64_t>()->default_value("20"))(
      "threads", "decoding threads (0: all cores)", cxxopts::value<int>()->default_value("0"))(
      "decoder", "cpu, or nvjpeg (GPU builds: batches decoded on cuda:0)",
      cxxopts::value<std::string>()->default_value("cpu"))(
      "eval", "the eval crop instead of RandomResizedCrop + flip")(
      "rand-augment", "also timm's RandAugment, e.g. rand-m9-mstd0.5",
      cxxopts::value<std::string>())("json", "also write the result to FILE",
                                     cxxopts::value<std::string>())("h,help", "show this help");
  options.parse_positional({"folder"});
  options.positional_help("FOLDER");
  bool help = false;
  auto args = parse_or_help(options, argc, argv, &help);
  if (help) return 0;
  if (!args.count("folder")) throw UserError("missing the image folder FOLDER (see --help)");
  StreamBenchOptions o;
  o.split = args["split"].as<std::string>();
  o.stream.image_size = args["image-size"].as<int64_t>();
  o.stream.random_crop = !args.count("eval");
  o.stream.threads = args["threads"].as<int>();
  if (args.count("rand-augment")) {
    o.stream.rand_augment = true;
    o.stream.rand_augment_config =
        parse_rand_augment(args["rand-augment"].as<std::string>(), "", "--rand-augment");
  }
  o.stream.nvjpeg = parse_option_enum("decoder", args["decoder"].as<std::string>(),
                                      decoder_names()) == Decoder::kNvjpeg;
  if (o.stream.nvjpeg) {
    if (o.stream.rand_augment) throw UserError("--decoder nvjpeg does not run --rand-augment");
    o.device = "cuda:0";
  }
  o.batch_size = args["batch"].as<int64_t>();
  o.batches = args["batches"].as<int64_t>();
  if (o.stream.image_size < 8 || o.batch_size < 1 || o.batches < 1 || o.stream.threads < 0)
    throw UserError("--image-size must be >= 8, --batch and --batches >= 1, --threads >= 0");
  const std::string folder = args["folder"].as<std::string>();
  const auto r = bench_stream(folder, o, [](const std::string& m) { std::cerr << m << "\n"; });
  const Json record = {
      {"folder", folder},
      {"split", o.split},
      {"files", r.files},
      {"list_seconds", r.list_seconds},
      {"image_size", o.stream.image_size},
      {"crop", o.stream.random_crop ? "random_resized_crop+flip" : "eval"},
      {"rand_augment", args.count("rand-augment") ? args["rand-augment"].as<std::string>() : ""},
      {"batch", o.batch_size},
      {"images", r.images},
      {"seconds", r.seconds},
      {"first_batch_seconds", r.first_batch_seconds},
      {"images_per_second", r.images_per_second},
      {"threads", r.threads},
      {"mean_queued_batches", r.mean_queued},
      {"bad_images", r.bad_images},
      {"peak_rss_mb", r.peak_rss_mb},
      {"jpeg_decoder", r.jpeg_decoder},
      {"git_commit", git_commit()}};
  std::cout << fmt::format(
      "{}/{}: {} files listed in {:.2f} s; {} images decoded and augmented in {:.2f} s: "
      "{:.0f} img/s on {} threads ({}), the first batch after {:.2f} s, peak RSS {} MB, {} bad "
      "images\n",
      folder, o.split, r.files, r.list_seconds, r.images, r.seconds, r.images_per_second, r.threads,
      record["jpeg_decoder"].get<std::string>(), r.first_batch_seconds, r.peak_rss_mb,
      r.bad_images);
  if (args.count("json")) write_file_atomic(args["json"].as<std::string>(), record.dump(2) + "\n");
  return 0;
}

}  // namespace

int cmd_data(int argc, char** argv) {
  const char* usage =
      "usage: vitlab data synth OUT [options] | vitlab data bench FOLDER [options] (--help for "
      "each)";
  if (argc < 2) throw UserError(usage);
  if (!std::strcmp(argv[1], "synth")) return data_synth(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "bench")) return data_bench(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    std::cout << usage << "\n";
    return 0;
  }
  throw UserError(fmt::format("unknown action \"{}\"; {}", argv[1], usage));
}

}  // namespace vitlab::app

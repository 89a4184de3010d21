#include "analysis/analyze.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "analysis/attention_maps.h"
#include "analysis/png.h"
#include "core/atomic_file.h"
#include "data/batcher.h"
#include "data/load_data.h"
#include "data/stream_loader.h"
#include "data/streamed_folder.h"
#include "models/module_state.h"
#include "models/vit.h"
#include "ops/attention.h"
#include "train/weights_init.h"

namespace vitlab {
namespace fs = std::filesystem;

const std::vector<std::string>& analysis_figure_names() {
  static const std::vector<std::string> names = {"attention_distance", "rollout", "pos_embed", "filters"};
  return names;
}

namespace {

// Why a figure does not apply to `c`, or "" when it does.
std::string not_applicable(const std::string& figure, const ModelConfig& c) {
  if (c.family == ModelFamily::kResNet) return "the BiT ResNet has no patch tokens, attention or position embedding";
  const bool attention = c.token_mixer == "attention";
  if ((figure == "attention_distance" || figure == "rollout") && !attention)
    return fmt::format("token mixer \"{}\" has no attention matrix over all tokens", c.token_mixer);
  if (figure == "pos_embed" && c.pos_embed == "none") return "pos_embed \"none\" has no position embedding";
  if (figure == "filters" && c.family == ModelFamily::kHybrid)
    return "the hybrid's patch projection reads ResNet feature maps, not image pixels";
  return "";
}

std::vector<std::string> figures_to_draw(const AnalyzeOptions& o, const ModelConfig& c, Json& skipped) {
  const auto& all = analysis_figure_names();
  for (const auto& f : o.figures)
    if (std::find(all.begin(), all.end(), f) == all.end())
      fail<UserError>("--figures: unknown figure \"{}\"; the figures are attention_distance, rollout, "
                      "pos_embed and filters", f);
  std::vector<std::string> draw, apply;
  for (const auto& f : all) {
    const std::string why = not_applicable(f, c);
    if (why.empty()) apply.push_back(f);
    else skipped[f] = why;
  }
  if (o.figures.empty()) return apply;
  for (const auto& f : o.figures) {
    if (!skipped.contains(f)) continue;
    std::string ok;
    for (const auto& a : apply) ok += (ok.empty() ? "" : ", ") + a;
    fail<UserError>("{}: figure \"{}\" does not apply to model \"{}\": {}; what applies: {}", o.checkpoint, f,
                    c.name, skipped[f].get<std::string>(), ok.empty() ? "nothing" : ok);
  }
  return o.figures;
}

Json tensor_json(const torch::Tensor& t) {
  const auto d = t.to(torch::kDouble).contiguous().cpu();
  if (d.dim() == 1) return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
  Json rows = Json::array();
  for (int64_t i = 0; i < d.size(0); ++i) rows.push_back(tensor_json(d[i]));
  return rows;
}

// Distance against depth: one dot per head, a column per layer, on a white canvas with axes.
torch::Tensor distance_plot(const torch::Tensor& distance, double max_distance) {
  const int64_t layers = distance.size(0), heads = distance.size(1), w = 60 + 40 * layers, h = 320;
  auto canvas = torch::full({h, w, 3}, 255, torch::kByte);
  canvas.slice(0, h - 30, h - 29).slice(1, 40, w - 10).fill_(0);  // x axis
  canvas.slice(0, 10, h - 29).slice(1, 40, 41).fill_(0);          // y axis
  const auto colours = viridis(torch::linspace(0, 1, heads));
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t k = 0; k < heads; ++k) {
      const double v = distance[l][k].item<double>() / std::max(max_distance, 1e-9);
      const int64_t x = 60 + 40 * l, y = (h - 30) - int64_t(v * (h - 45));
      canvas.slice(0, std::max<int64_t>(y - 3, 0), y + 3).slice(1, x - 3, x + 3).copy_(colours[k].view({1, 1, 3}));
    }
  return canvas;
}

Json attention_figures(ViTImpl& vit, const torch::Tensor& images, const torch::Tensor& shown,
                       const std::vector<std::string>& figures, const std::string& dir) {
  const ModelConfig& c = vit.config();
  std::vector<torch::Tensor> layers;
  {
    torch::NoGradGuard no_grad;
    ops::AttentionRecorder recorder;
    vit.forward(images);
    layers = std::move(recorder.weights());
  }
  for (auto& a : layers) a = a.to(torch::kCPU, torch::kFloat);  // the statistics run on the host
  Json out = Json::object();
  const int64_t grid = c.grid_size(), prefix = c.num_prefix_tokens();
  const double pixels = double(c.image_size) / double(grid);
  if (std::count(figures.begin(), figures.end(), "attention_distance")) {
    std::vector<torch::Tensor> per_layer;
    for (const auto& a : layers) per_layer.push_back(mean_attention_distance(a, grid, pixels, prefix));
    const auto distance = torch::stack(per_layer);  // (L, H)
    write_png((fs::path(dir) / "attention_distance.png").string(),
              distance_plot(distance, double(c.image_size) * 0.75));
    out["attention_distance"] = {{"file", "attention_distance.png"}, {"unit", "pixels"},
                                 {"per_layer_and_head", tensor_json(distance)},
                                 {"x", "layer (1 = first)"}, {"y", "mean attention distance"}};
  }
  if (std::count(figures.begin(), figures.end(), "rollout")) {
    const auto maps = rollout_maps(attention_rollout(layers), grid, prefix, c.pool == "cls");
    std::vector<torch::Tensor> tiles;
    const int64_t n = std::min<int64_t>(shown.size(0), maps.size(0));
    for (int64_t i = 0; i < n; ++i) {
      const auto image = to_rgb(shown[i]).to(torch::kFloat);  // (H, W, 3)
      const auto up = torch::upsample_bilinear2d(maps[i].view({1, 1, grid, grid}).to(torch::kFloat),
                                                 {image.size(0), image.size(1)}, false)[0][0];
      const auto blend = (image * 0.45 + viridis(up).to(torch::kFloat) * 0.55).round().to(torch::kByte);
      tiles.push_back(enlarge(torch::cat({to_rgb(shown[i]), blend}, 1), 4));
    }
    write_png((fs::path(dir) / "rollout.png").string(), tile_images(tiles, 4, 6));
    out["rollout"] = {{"file", "rollout.png"}, {"images", n},
                      {"map", c.pool == "cls" && prefix > 0 ? "class token row" : "mean over patch queries"},
                      {"maps", tensor_json(maps.slice(0, 0, n).flatten(1))}};
  }
  return out;
}

std::map<std::string, torch::Tensor> state_of(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, t] : module_state(m)) out[name] = t.detach().to(torch::kCPU, torch::kFloat);
  return out;
}

// The relative bias of every block as a function of token offset: a row per head, a band per block.
Json relative_bias_figure(const std::map<std::string, torch::Tensor>& state, int64_t depth, const std::string& dir) {
  std::vector<torch::Tensor> tables;
  for (int64_t i = 0; i < depth; ++i) tables.push_back(state.at(fmt::format("blocks.{}.relative.relative_bias", i)));
  const auto all = torch::stack(tables);  // (L, H, 2T-1)
  const auto scaled = (all - all.min()) / (all.max() - all.min()).clamp_min(1e-12);
  std::vector<torch::Tensor> bands;
  for (int64_t i = 0; i < depth; ++i) bands.push_back(enlarge(viridis(scaled[i]), 4));
  write_png((fs::path(dir) / "pos_embed.png").string(), tile_images(bands, 1, 4));
  return {{"file", "pos_embed.png"}, {"kind", "relative"}, {"x", "token offset, -(T-1) ... T-1"},
          {"rows", "heads, one band per block"}, {"bias_per_block", tensor_json(all)}};
}

// Fig. 7 centre: one small map per patch, its embedding's cosine similarity with every patch's.
Json position_embedding_figure(const ModelConfig& c, const std::map<std::string, torch::Tensor>& state,
                               const std::string& dir) {
  if (c.pos_embed == "relative") return relative_bias_figure(state, c.depth, dir);
  const int64_t grid = c.grid_size(), n = grid * grid;
  torch::Tensor table;  // (N, D)
  if (c.pos_embed == "learned_2d") {
    const auto idx = torch::arange(n, torch::kLong);
    table = torch::cat({state.at("pos.row_embed").index_select(0, idx.div(grid, "floor")),
                        state.at("pos.col_embed").index_select(0, idx.remainder(grid))}, 1);
  } else {
    const auto t = (state.count("pos.pos_embed") ? state.at("pos.pos_embed") : state.at("pos.fixed"))[0];
    table = t.slice(0, t.size(0) - n);  // the patch rows (a class-token row first, if any)
  }
  const auto sim = cosine_similarity_matrix(table);  // (N, N)
  std::vector<torch::Tensor> tiles;
  for (int64_t p = 0; p < n; ++p) tiles.push_back(enlarge(viridis((sim[p].view({grid, grid}) + 1) / 2), 4));
  write_png((fs::path(dir) / "pos_embed.png").string(), tile_images(tiles, grid, 1));
  return {{"file", "pos_embed.png"}, {"kind", c.pos_embed}, {"grid", grid},
          {"colour", "cosine similarity, -1 (dark) to 1 (yellow)"}, {"similarity", tensor_json(sim)}};
}

// Fig. 7 left: the top principal components of the patch projection's filters, as images.
Json filter_figure(const std::map<std::string, torch::Tensor>& state, const std::string& dir) {
  const auto w = state.at("patch_embed.proj.weight");  // (D, C, p, p)
  const auto [components, share] = principal_components(w.flatten(1), 28);
  std::vector<torch::Tensor> tiles;
  const int64_t p = w.size(2), factor = std::max<int64_t>(1, 48 / p);
  for (int64_t i = 0; i < components.size(0); ++i)
    tiles.push_back(enlarge(to_rgb(components[i].view({w.size(1), p, p})), factor));
  write_png((fs::path(dir) / "filters.png").string(), tile_images(tiles, 7, 3));
  return {{"file", "filters.png"}, {"components", components.size(0)},
          {"variance_share", tensor_json(share)}};
}

// The first `o.images` images of the split, as the run's evaluation saw them (uint8 on the CPU):
// a streamed folder's files decoded through its evaluation crop.
torch::Tensor first_images(const DataConfig& config, const DataBundle& data, const AnalyzeOptions& o) {
  const bool test = o.split == "test";
  const int64_t size = data.streamed ? (test ? data.streamed->test : data.streamed->val).size()
                                     : (test ? data.test : data.val).size();
  if (size == 0) fail<UserError>("{}: the run has no {} split (data.val_size is 0)", o.checkpoint, o.split);
  const int64_t n = std::min<int64_t>(o.images, size);
  if (!data.streamed) return (test ? data.test : data.val).images.slice(0, 0, n);
  BadImageLog bad([](const std::string& w) {
    std::fprintf(stderr, "vitlab analyze: warning: skipped %s\n", w.c_str());
  });
  StreamOptions decode = stream_options(config, false);
  decode.nvjpeg = false;  // a few images for figures, on the CPU whatever data.decoder says
  BatchStream stream(test ? data.streamed->test : data.streamed->val, listing_plan(0, n), n,
                     /*drop_last=*/false, 0, 0, decode, torch::kCPU, &bad);
  return stream.next().images;
}

}  // namespace

Json analyze_checkpoint(const AnalyzeOptions& o) {
  if (o.split != "test" && o.split != "val")
    fail<UserError>("--split: \"{}\" is not a split; use test or val", o.split);
  if (o.images < 1) fail<UserError>("--images: must be at least 1");
  const CheckpointModel loaded = load_model_from_checkpoint(o.checkpoint);
  const ModelConfig& c = loaded.config.model;
  Json skipped = Json::object();
  const std::vector<std::string> figures = figures_to_draw(o, c, skipped);
  if (figures.empty())
    fail<UserError>("{}: nothing to analyze for model \"{}\": {}", o.checkpoint, c.name,
                    skipped.begin().value().get<std::string>());
  ensure_writable_dir(o.out_dir);
  const DeviceChoice dev = parse_device(o.device, "--device");
  const torch::Device device = dev.use();
  auto& vit = dynamic_cast<ViTImpl&>(*loaded.model);
  vit.to(device);
  vit.eval();
  Json drawn = Json::object();
  int64_t n = 0;
  const auto wants = [&](const char* f) { return std::count(figures.begin(), figures.end(), f) > 0; };
  if (wants("attention_distance") || wants("rollout")) {
    // A streamed run's parts from its run folder's listings (checkpoints/ is in the run folder).
    const std::string run_dir = fs::path(o.checkpoint).parent_path().parent_path().string();
    const DataBundle data = load_data(loaded.config.data, o.checkpoint,
                                      has_cached_listing(run_dir, "train") ? run_dir : "");
    const auto raw = first_images(loaded.config.data, data, o);  // (n, C, H, W) uint8
    n = raw.size(0);
    const auto images = normalize(raw.to(device), data.mean, data.std);
    drawn.update(attention_figures(vit, images, raw.slice(0, 0, std::min(n, o.overlays)).to(torch::kFloat),
                                   figures, o.out_dir));
  }
  if (wants("pos_embed") || wants("filters")) {
    const auto state = state_of(vit);  // host float copies, made once for both figures
    if (wants("pos_embed")) drawn["pos_embed"] = position_embedding_figure(c, state, o.out_dir);
    if (wants("filters")) drawn["filters"] = filter_figure(state, o.out_dir);
  }
  const Json out = {{"checkpoint", o.checkpoint}, {"model", c.name}, {"model_config", c.to_json()},
                    {"split", o.split}, {"images", n}, {"device", dev.str()},
                    {"figures", drawn}, {"not_applicable", skipped}};
  write_json_file_atomic((fs::path(o.out_dir) / "analysis.json").string(), out);
  return out;
}

}  // namespace vitlab

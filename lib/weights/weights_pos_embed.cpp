#include "weights/weights_pos_embed.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "weights/weights_tensors.h"

namespace vitlab {
namespace {

namespace F = torch::nn::functional;

int64_t exact_sqrt(int64_t n) {
  if (n <= 0) return -1;
  auto r = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
  return r * r == n ? r : -1;
}

// (1, C, H, W) float -> (1, C, out_h, out_w) with the chosen reference's semantics.
torch::Tensor interpolate(const torch::Tensor& x, int64_t out_h, int64_t out_w, PosInterp interp) {
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{out_h, out_w});
  if (interp == PosInterp::kBilinear) {
    // scipy.ndimage.zoom(order=1) (grid_mode=False): corner centres stay fixed.
    options.mode(torch::kBilinear).align_corners(true);
  } else {
    // timm resample_abs_pos_embed (its checkpoint loader's default): bicubic, half-pixel
    // centres, antialias=True, which in PyTorch is the PIL-style kernel (a = -0.5) also when
    // enlarging, not the plain bicubic kernel (a = -0.75).
    options.mode(torch::kBicubic).align_corners(false).antialias(true);
  }
  return F::interpolate(x, options);
}

}  // namespace

const EnumNames<PosInterp>& pos_interp_names() {
  static const EnumNames<PosInterp> n = {{PosInterp::kBilinear, "bilinear"},
                                         {PosInterp::kBicubic, "bicubic"}};
  return n;
}

PosEmbedLayout pos_embed_layout(const torch::Tensor& pos_embed, const std::string& where) {
  if (pos_embed.dim() != 3 || pos_embed.size(0) != 1)
    fail<IoError>("{}: position embedding has shape {}; expected (1, tokens, width)", where,
                  c10::str(pos_embed.sizes()));
  const int64_t rows = pos_embed.size(1);
  // g^2 and g^2 + 1 are never both squares (except g = 0), so the layout is unambiguous.
  if (int64_t g = exact_sqrt(rows); g > 0) return {0, g};
  if (int64_t g = exact_sqrt(rows - 1); g > 0) return {1, g};
  fail<IoError>("{}: position embedding has {} rows, which is neither a square grid nor a square "
                "grid plus one class-token row",
                where, rows);
}

torch::Tensor resize_pos_grid(const torch::Tensor& patch_rows, int64_t out_grid, PosInterp interp) {
  const int64_t n = patch_rows.size(1), width = patch_rows.size(2);
  const int64_t g = exact_sqrt(n);
  TORCH_CHECK(g > 0 && patch_rows.size(0) == 1, "resize_pos_grid: not a (1, g*g, D) tensor");
  if (g == out_grid) return patch_rows;
  const auto type = patch_rows.scalar_type();
  auto image = patch_rows.to(torch::kFloat).reshape({1, g, g, width}).permute({0, 3, 1, 2});
  auto out = interpolate(image, out_grid, out_grid, interp);  // (1, D, out, out)
  return out.permute({0, 2, 3, 1}).reshape({1, out_grid * out_grid, width}).to(type).contiguous();
}

torch::Tensor resize_pos_1d(const torch::Tensor& table, int64_t out, PosInterp interp) {
  TORCH_CHECK(table.dim() == 2, "resize_pos_1d: not a (n, D) table");
  const int64_t n = table.size(0), width = table.size(1);
  if (n == out) return table;
  // Treated as an n x 1 image so both modes act along n only (width 1 stays 1).
  auto image = table.to(torch::kFloat).t().reshape({1, width, n, 1});
  auto resized = interpolate(image, out, 1, interp);  // (1, D, out, 1)
  return resized.reshape({width, out}).t().to(table.scalar_type()).contiguous();
}

torch::Tensor resize_relative_bias(const torch::Tensor& table, int64_t prefix, int64_t grid_to,
                                   const std::string& where) {
  if (table.dim() != 2 || table.size(1) % 2 == 0)
    fail<IoError>("{}: relative position bias is {}, not (heads, 2T - 1)", where, shape_str(table));
  const int64_t tokens_from = (table.size(1) + 1) / 2;
  const int64_t patches_from = tokens_from - prefix;
  const int64_t grid_from = exact_sqrt(patches_from);
  if (grid_from < 0)
    fail<IoError>("{}: relative position bias is {}: {} tokens less {} class token(s) is not a "
                  "square grid of patches", where, shape_str(table), tokens_from, prefix);
  const int64_t n_to = grid_to * grid_to, tokens_to = n_to + prefix;
  if (grid_to == grid_from) return table;
  // Every new offset's position on the old table (fractional), by the rule in the header.
  const double scale = double(grid_from) / double(grid_to);
  std::vector<double> position(static_cast<size_t>(2 * tokens_to - 1));
  for (int64_t delta = -(tokens_to - 1); delta <= tokens_to - 1; ++delta) {
    const int64_t a = std::abs(delta);
    double old_offset = 0;
    if (a >= n_to) {
      old_offset = double(tokens_from - 1);  // only the class token to the last patch
    } else {
      int64_t rows = a / grid_to, cols = a % grid_to;
      if (2 * cols > grid_to) ++rows, cols -= grid_to;  // the split most pairs share
      old_offset = (rows * scale) * double(grid_from) + cols * scale;
    }
    const double signed_offset = delta < 0 ? -old_offset : old_offset;
    position[static_cast<size_t>(delta + tokens_to - 1)] =
        std::clamp(signed_offset + double(tokens_from - 1), 0.0, double(2 * tokens_from - 2));
  }
  auto pos = torch::tensor(position, torch::kDouble);
  auto low = pos.floor().to(torch::kLong).clamp_max(2 * tokens_from - 2);
  auto high = (low + 1).clamp_max(2 * tokens_from - 2);
  auto w = (pos - low.to(torch::kDouble)).to(torch::kFloat).unsqueeze(0);  // (1, 2T'-1)
  auto t = table.to(torch::kFloat);
  auto out = t.index_select(1, low) * (1 - w) + t.index_select(1, high) * w;  // (heads, 2T'-1)
  return out.to(table.scalar_type()).contiguous();
}

torch::Tensor adapt_pos_embed(const torch::Tensor& stored, int64_t model_prefix, int64_t model_grid,
                              int64_t width, PosInterp interp, const std::string& where,
                              PosEmbedChange* change) {
  const PosEmbedLayout layout = pos_embed_layout(stored, where);
  if (stored.size(2) != width)
    fail<IoError>("{}: position embedding has width {}, the model's is {}", where, stored.size(2),
                  width);
  if (layout.prefix > model_prefix)
    fail<IoError>("{}: position embedding has a class-token row but the model has no class token "
                  "(set class_token=true, or pool=gap with class_token=true)",
                  where);
  auto prefix_rows = stored.narrow(1, 0, layout.prefix);
  auto patches = stored.narrow(1, layout.prefix, layout.grid * layout.grid);
  PosEmbedChange local;
  local.grid_from = layout.grid;
  local.grid_to = model_grid;
  if (layout.grid != model_grid) {
    patches = resize_pos_grid(patches, model_grid, interp);
    local.resized = true;
  }
  if (layout.prefix < model_prefix) {
    prefix_rows = torch::zeros({1, model_prefix, width}, stored.options());
    local.class_row_added = true;
  }
  if (change) *change = local;
  return torch::cat({prefix_rows, patches}, 1).contiguous();
}

}  // namespace vitlab

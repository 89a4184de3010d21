// Adapting a stored position embedding to a model whose token grid or class-token layout
// differs (fine-tuning at another resolution, weights from another code base).
//
// Two interpolations, because the reference code bases disagree:
//  - bilinear: vit_jax and big_vision (`scipy.ndimage.zoom(order=1)`, which maps corner pixel
//    centres onto corner pixel centres, i.e. align_corners=True, no antialiasing);
//  - bicubic: timm's resample_abs_pos_embed as its checkpoint loader calls it (bicubic,
//    align_corners=False, antialias=True: PyTorch's PIL-style kernel). DeiT and MAE use the plain
//    bicubic kernel, which differs slightly; timm's is the one matched here.
#pragma once
#include <torch/torch.h>

#include <string>

#include "config/json_reader.h"

namespace vitlab {

enum class PosInterp { kBilinear, kBicubic };
const EnumNames<PosInterp>& pos_interp_names();

// How a stored (1, rows, D) embedding is laid out: `prefix` class-token rows (0 or 1) then a
// grid x grid block of patch rows. rows = g^2 (no class row: big_vision, timm no_embed_class or
// no class token) or g^2 + 1 (vit_jax / timm default). IoError at `where` for anything else.
struct PosEmbedLayout {
  int64_t prefix = 0;
  int64_t grid = 0;
};
PosEmbedLayout pos_embed_layout(const torch::Tensor& pos_embed, const std::string& where);

// Resamples (1, g*g, D) patch rows (rows of the grid vary slowest) to (1, out*out, D).
torch::Tensor resize_pos_grid(const torch::Tensor& patch_rows, int64_t out_grid, PosInterp interp);

// Resamples a (n, D) table along n (learned_2d's row or column half) to (out, D).
torch::Tensor resize_pos_1d(const torch::Tensor& table, int64_t out, PosInterp interp);

// The relative position embedding's per-head bias table (heads, 2T-1) over 1-D token offsets
// (T = prefix + grid^2 tokens in raster order), resampled from a grid_from x grid_from token grid
// to grid_to x grid_to: (heads, 2 T_to - 1).
//
// The rule: a raster offset on the new grid is split into (rows, columns), taking the split that
// most patch pairs with that offset share (the column offset of smaller magnitude); both are
// scaled by grid_from / grid_to, which is where the two patches' centres lie on the old grid (the
// same image area); the scaled pair is turned back into a raster offset on the old grid,
// rows * grid_from + columns, and the table is read there by linear interpolation between its
// integer offsets. A same-row neighbour at twice the resolution reads the bias half-way between
// offsets 0 and 1; a neighbour one row down reads the bias of half a row. The extreme offsets
// (the class token to the last patch) map onto the old extremes. IoError at `where` when the
// table's length is not 2(prefix + g^2) - 1 for a whole g.
torch::Tensor resize_relative_bias(const torch::Tensor& table, int64_t prefix, int64_t grid_to,
                                   const std::string& where);

// What adapt_pos_embed did, for the import report.
struct PosEmbedChange {
  bool resized = false;
  int64_t grid_from = 0, grid_to = 0;
  bool class_row_added = false;  // the file had no class-token row; a zero row was prepended
};

// Turns a stored embedding into the model's layout: (1, model_prefix + model_grid^2, D).
// The class-token row is kept as is; a missing one becomes zeros, which is exactly what adding
// the embedding before prepending the class token computes (timm no_embed_class, big_vision).
// A class row the model has no token for is an error.
torch::Tensor adapt_pos_embed(const torch::Tensor& stored, int64_t model_prefix, int64_t model_grid,
                              int64_t width, PosInterp interp, const std::string& where,
                              PosEmbedChange* change = nullptr);

}  // namespace vitlab

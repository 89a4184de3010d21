// Images for the analysis figures: PNG files through stb_image_write (written atomically), a
// perceptual colour map and tiling of small images into one.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace vitlab {

// (H, W, 3) uint8 on the CPU -> PNG at `path`. IoError naming the path when it cannot be written.
void write_png(const std::string& path, const torch::Tensor& rgb);

// Values in [0, 1] (any shape) -> (..., 3) uint8 through viridis (matplotlib's default map,
// 9 control points, linear between them); values outside are clamped.
torch::Tensor viridis(const torch::Tensor& values);

// (h, w, 3) uint8 -> (h f, w f, 3): each pixel a f x f block.
torch::Tensor enlarge(const torch::Tensor& rgb, int64_t factor);

// Tiles of one size (h, w, 3) uint8, row by row in `columns` columns, `gap` white pixels between
// and around them.
torch::Tensor tile_images(const std::vector<torch::Tensor>& tiles, int64_t columns, int64_t gap = 2);

// A (C, H, W) float image to (H, W, 3) uint8, scaled so its minimum is 0 and maximum 255 (grey
// for C = 1; the first three channels otherwise).
torch::Tensor to_rgb(const torch::Tensor& image);

}  // namespace vitlab

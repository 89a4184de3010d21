// What the attention weights of a ViT say (the paper's Sec. 4.5, Fig. 6, 7 and 11, Appendix D.7-D.8).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace vitlab {

// Mean attention distance of every head (Fig. 7 right, Fig. 11): for each query patch, the pixel
// distance between patch centres to every key patch weighted by the attention, averaged over
// queries and images. `attention` is (B, heads, T, T) with `prefix` class-token rows and columns
// first, which are left out (the patch-to-patch weights renormalised to sum to 1 per query);
// patches lie on a grid x grid raster, `patch_pixels` apart. Returns (heads) float64.
torch::Tensor mean_attention_distance(const torch::Tensor& attention, int64_t grid, double patch_pixels,
                                      int64_t prefix);

// Attention rollout (Abnar & Zuidema 2020; the paper's Appendix D.8): per layer the mean over heads
// plus the identity for the residual, rows renormalised, multiplied across layers (the last on
// the left). `layers`: (B, heads, T, T) each. Returns (B, T, T) float64.
torch::Tensor attention_rollout(const std::vector<torch::Tensor>& layers);

// The map a rollout gives each image: the class token's row over the patches (prefix > 0 and the
// model pools the class token), else the mean over the patch queries. (B, T, T) -> (B, grid, grid),
// each map scaled to a maximum of 1.
torch::Tensor rollout_maps(const torch::Tensor& rollout, int64_t grid, int64_t prefix, bool class_token_pooled);

// Cosine similarity of every position embedding with every other: (N, D) -> (N, N).
torch::Tensor cosine_similarity_matrix(const torch::Tensor& table);

// The top `k` principal components of the rows of `x` (n, d), centred: (k, d) unit vectors, and
// the share of the variance each explains (k). Components are sign-fixed (largest entry positive).
std::pair<torch::Tensor, torch::Tensor> principal_components(const torch::Tensor& x, int64_t k);

}  // namespace vitlab

// `vitlab analyze`: the paper's analysis figures for a trained ViT (Sec. 4.5, Fig. 6, 7, 11;
// Appendix D.7-D.8), as numbers in DIR/analysis.json and PNG images beside it:
//   attention_distance  mean attention distance per head against depth (Fig. 7 right, Fig. 11)
//   rollout             attention rollout maps over test images (Fig. 6, Appendix D.8)
//   pos_embed           cosine similarity of the position embeddings (Fig. 7 centre), or the
//                       relative bias as a function of offset
//   filters             the top principal components of the patch-embedding filters (Fig. 7 left)
// A figure that does not apply to the model (no attention matrix for axial or pooling mixers, no
// table for pos_embed none, no image filters for the hybrid) is listed with the reason.
#pragma once
#include <string>
#include <vector>

#include "config/json_reader.h"

namespace vitlab {

struct AnalyzeOptions {
  std::string checkpoint;
  std::string out_dir;
  std::string split = "test";  // test | val
  int64_t images = 32;         // images averaged for the attention distance (the first of the split)
  int64_t overlays = 8;        // rollout maps drawn
  std::string device = "auto";
  std::vector<std::string> figures;  // empty: every figure that applies
};

const std::vector<std::string>& analysis_figure_names();

// Writes DIR/analysis.json and the figures' PNG files; returns the JSON. UserError (exit 2) for a
// bad checkpoint, an unwritable folder, an unknown figure, or a figure asked for that does not
// apply (naming the figures that do).
Json analyze_checkpoint(const AnalyzeOptions& options);

}  // namespace vitlab

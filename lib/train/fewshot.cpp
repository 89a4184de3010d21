#include "train/fewshot.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>

#include "core/compat.h"
#include "core/error.h"
#include "data/random.h"
#include "data/subset.h"
#include "train/evaluate.h"

namespace vitlab {
namespace {

// One draw: the K images per class of every K (nested: the K=1 image is among the K=5), and the
// held-out training images that choose the regulariser. Indices into the training set.
struct Draw {
  std::vector<torch::Tensor> shots;  // per K, (K * classes) int64
  torch::Tensor held_out;            // (H) int64
};

std::vector<Draw> draw_shots(const torch::Tensor& labels, int classes, const FewShotOptions& o) {
  check_fewshot(labels, classes, o);
  const int64_t k_max = *std::max_element(o.shots.begin(), o.shots.end());
  std::vector<Draw> draws;
  for (int s = 0; s < o.seeds; ++s) {
    Draw d;
    // Each class is shuffled by the same generator whatever the quota, so the first K of a class
    // are the same images for every K: the shots are nested.
    const uint64_t seed = mix_seed(0x5eedf00d, static_cast<uint64_t>(s));
    IndexSplit widest;
    for (const int64_t k : o.shots) {
      const IndexSplit split = stratified_split(labels, classes, std::vector<int64_t>(classes, k), seed);
      d.shots.push_back(split.chosen);
      if (k == k_max) widest = split;
    }
    const int64_t rest = widest.rest.size(0);
    if (rest == 0)
      fail<ConfigError>("{}: {} images per class leave no training images to choose the "
                        "regulariser on", o.source, k_max);
    const torch::Tensor rest_labels = labels.index_select(0, widest.rest);
    const auto quotas = proportional_quotas(class_counts(rest_labels, classes), std::min(o.held_out, rest));
    const IndexSplit held = stratified_split(rest_labels, classes, quotas, mix_seed(seed, 1));
    d.held_out = widest.rest.index_select(0, held.chosen);
    draws.push_back(d);
  }
  return draws;
}

// Least squares onto {-1, 1} one-vs-all targets with an unregularised bias (features and targets
// centred on the shots), for every regulariser of the grid at once from one eigendecomposition:
// primal (X^T X + l I)^-1 X^T Y, or the same in the dual X^T (X X^T + l I)^-1 Y when fewer shots
// than features. The grid is relative to the mean eigenvalue, so it does not depend on the
// features' scale: 2^-20 ... 2^10 times it.
struct LinearFits {
  torch::Tensor x_mean, y_mean;  // (1, F), (1, C)
  std::vector<torch::Tensor> weights;  // per regulariser, (F, C)
  std::vector<double> l2;
};

LinearFits fit_grid(const torch::Tensor& x, const torch::Tensor& y, int classes) {
  LinearFits f;
  auto targets = torch::one_hot(y, classes).to(torch::kDouble) * 2 - 1;  // (n, C) in {-1, 1}
  f.x_mean = x.mean(0, true);
  f.y_mean = targets.mean(0, true);
  const auto xc = x - f.x_mean, yc = targets - f.y_mean;
  const bool dual = xc.size(0) < xc.size(1);
  const auto gram = dual ? xc.matmul(xc.t()) : xc.t().matmul(xc);
  auto [eigenvalues, vectors] = at::linalg_eigh(gram, "L");
  eigenvalues = eigenvalues.clamp_min(0);
  const double scale = std::max(eigenvalues.mean().item<double>(), 1e-12);
  const auto projected = vectors.t().matmul(dual ? yc : xc.t().matmul(yc));  // (m, C)
  for (int e = -20; e <= 10; ++e) {
    const double l2 = std::ldexp(scale, e);
    auto inner = vectors.matmul(projected / (eigenvalues + l2).unsqueeze(1));  // (m, C)
    f.weights.push_back(dual ? xc.t().matmul(inner) : inner);
    f.l2.push_back(l2);
  }
  return f;
}

double accuracy(const LinearFits& f, size_t i, const torch::Tensor& x, const torch::Tensor& y) {
  auto scores = (x - f.x_mean).matmul(f.weights[i]) + f.y_mean;
  return scores.argmax(1).eq(y).to(torch::kDouble).mean().item<double>();
}

// Fits on the shots, picks the regulariser with the best held-out accuracy (the larger on a tie),
// and scores it on the test set.
std::pair<double, double> fit_and_score(const torch::Tensor& x, const torch::Tensor& y,
                                        const torch::Tensor& x_held, const torch::Tensor& y_held,
                                        const torch::Tensor& x_test, const torch::Tensor& y_test,
                                        int classes) {
  const LinearFits f = fit_grid(x, y, classes);
  size_t best = 0;
  double best_held = -1;
  for (size_t i = 0; i < f.weights.size(); ++i) {
    const double a = accuracy(f, i, x_held, y_held);
    if (a >= best_held) best_held = a, best = i;
  }
  return {accuracy(f, best, x_test, y_test), f.l2[best]};
}

FewShotResult score_draws(const std::vector<Draw>& draws, const torch::Tensor& features_of_train,
                          const torch::Tensor& train_labels, const torch::Tensor& test_features,
                          const torch::Tensor& test_labels, int classes, const FewShotOptions& o) {
  FewShotResult r;
  r.feature_dim = test_features.size(1);
  r.test_images = test_features.size(0);
  const auto x_test = test_features.to(torch::kDouble), y_test = test_labels.to(torch::kLong);
  auto rows = [&](const torch::Tensor& idx) { return features_of_train.index_select(0, idx).to(torch::kDouble); };
  for (size_t k = 0; k < o.shots.size(); ++k) {
    FewShotRow row;
    row.shots = o.shots[k];
    for (const Draw& d : draws) {
      const auto [acc, l2] = fit_and_score(rows(d.shots[k]), train_labels.index_select(0, d.shots[k]),
                                           rows(d.held_out), train_labels.index_select(0, d.held_out),
                                           x_test, y_test, classes);
      row.accuracies.push_back(acc);
      row.l2.push_back(l2);
    }
    const double n = double(row.accuracies.size());
    row.mean = std::accumulate(row.accuracies.begin(), row.accuracies.end(), 0.0) / n;
    double ss = 0;
    for (double a : row.accuracies) ss += (a - row.mean) * (a - row.mean);
    row.std = n > 1 ? std::sqrt(ss / (n - 1)) : 0.0;
    r.rows.push_back(row);
  }
  return r;
}

// The frozen features (n, F) float and labels (n) int64 of rows `rows` of a set, on the CPU, in
// their order; the model is in eval mode without gradients.
using FeaturesOf = std::function<std::pair<torch::Tensor, torch::Tensor>(const torch::Tensor& rows)>;

FeaturesOf features_of(ImageClassifierImpl& model, const DeviceDataset& data,
                       const Normalizer& normalize, const FewShotOptions& o) {
  return [&model, &data, &normalize, &o](const torch::Tensor& rows) {
    std::vector<torch::Tensor> parts;
    const auto idx = rows.to(data.device());
    const int64_t batch = forward_batch_size(data.device(), o.batch_size);
    for (int64_t start = 0; start < idx.size(0); start += batch) {
      const Batch b = data.gather(idx.slice(0, start, std::min(start + batch, idx.size(0))));
      compat::CudaAutocast autocast(o.bf16);
      parts.push_back(model.features(normalize(b.images)).to(torch::kFloat).cpu());
    }
    return std::make_pair(torch::cat(parts, 0), data.labels().index_select(0, idx).cpu());
  };
}

// The same for a streamed folder's files, decoded with `options` (the evaluation crop). A file
// that fails to decode is replaced by the stream's next one, whose label comes with it.
FeaturesOf streamed_features_of(ImageClassifierImpl& model, const FileListing& files,
                                const StreamOptions& options, torch::Device device,
                                const Normalizer& normalize, const FewShotOptions& o,
                                BadImageLog* bad) {
  return [&, device, bad](const torch::Tensor& rows) {
    const auto r = rows.to(torch::kCPU, torch::kLong).contiguous();
    const std::vector<int64_t> order(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
    BatchStream stream(files, whole_plan(order), forward_batch_size(device, o.batch_size),
                       /*drop_last=*/false, 0, 0, options, device, bad);
    std::vector<torch::Tensor> parts, labels;
    for (int64_t i = 0; i < stream.size(); ++i) {
      const Batch b = stream.next();
      compat::CudaAutocast autocast(o.bf16);
      parts.push_back(model.features(normalize(b.images)).to(torch::kFloat).cpu());
      labels.push_back(b.labels.to(torch::kCPU, torch::kLong));
    }
    return std::make_pair(torch::cat(parts, 0), torch::cat(labels, 0));
  };
}

// Draws the shots from `train_labels`, computes the features of the drawn training images only
// (in a table as long as the training set) and of the whole test set, and scores the draws.
FewShotResult evaluate_draws(ImageClassifierImpl& model, const torch::Tensor& train_labels,
                             int classes, int64_t test_size, const FeaturesOf& train,
                             const FeaturesOf& test, const FewShotOptions& options) {
  const auto labels = train_labels.to(torch::kCPU, torch::kLong);
  const std::vector<Draw> draws = draw_shots(labels, classes, options);
  std::vector<torch::Tensor> needed;
  const size_t widest =
      std::max_element(options.shots.begin(), options.shots.end()) - options.shots.begin();
  for (const Draw& d : draws) {
    needed.push_back(d.shots[widest]);
    needed.push_back(d.held_out);
  }
  const auto rows = std::get<0>(torch::_unique(torch::cat(needed), /*sorted=*/true));
  const bool was_training = model.is_training();
  model.eval();
  torch::NoGradGuard no_grad;
  const auto [drawn, drawn_labels] = train(rows);  // (R, F), (R)
  auto table = torch::zeros({labels.size(0), drawn.size(1)}, drawn.options());
  table.index_copy_(0, rows, drawn);
  auto row_labels = labels.clone();
  row_labels.index_copy_(0, rows, drawn_labels);
  const auto [test_features, test_labels] = test(torch::arange(test_size, torch::kLong));
  model.train(was_training);
  return score_draws(draws, table, row_labels, test_features, test_labels, classes, options);
}

}  // namespace

void check_fewshot(const torch::Tensor& labels, int num_classes, const FewShotOptions& o) {
  if (o.shots.empty()) fail<ConfigError>("{}: no K given", o.source);
  const std::vector<int64_t> counts = class_counts(labels, num_classes);
  const auto smallest = std::min_element(counts.begin(), counts.end());
  for (const int64_t k : o.shots) {
    if (k < 1) fail<ConfigError>("{}: K = {} is not a number of images per class", o.source, k);
    if (k > *smallest)
      fail<ConfigError>("{}: {} images per class, but class {} has only {} training images", o.source,
                        k, smallest - counts.begin(), *smallest);
  }
}

Json FewShotResult::to_json() const {
  Json shots = Json::object();
  for (const auto& row : rows)
    shots[std::to_string(row.shots)] = {{"mean", row.mean}, {"std", row.std},
                                        {"accuracies", row.accuracies}, {"l2", row.l2}};
  return Json{{"method", "closed-form L2-regularised least squares on frozen features, {-1, 1} "
                         "one-vs-all targets, regulariser chosen on held-out training images"},
              {"feature_dim", feature_dim}, {"test_images", test_images}, {"shots", shots}};
}

std::string FewShotResult::summary() const {
  std::string s;
  for (const auto& row : rows)
    s += fmt::format("{}{}-shot {:.2f}±{:.2f}%", s.empty() ? "" : ", ", row.shots, 100 * row.mean, 100 * row.std);
  return s;
}

FewShotResult fewshot_from_features(const torch::Tensor& train_features, const torch::Tensor& train_labels,
                                    const torch::Tensor& test_features, const torch::Tensor& test_labels,
                                    int num_classes, const FewShotOptions& options) {
  const auto labels = train_labels.to(torch::kCPU, torch::kLong);
  const std::vector<Draw> draws = draw_shots(labels, num_classes, options);
  return score_draws(draws, train_features.cpu(), labels, test_features.cpu(), test_labels.cpu(),
                     num_classes, options);
}

FewShotResult fewshot_evaluate(ImageClassifierImpl& model, const DeviceDataset& train,
                               const DeviceDataset& test, const Normalizer& normalize,
                               const FewShotOptions& options) {
  return evaluate_draws(model, train.labels(), train.num_classes(), test.size(),
                        features_of(model, train, normalize, options),
                        features_of(model, test, normalize, options), options);
}

FewShotResult fewshot_evaluate_streamed(ImageClassifierImpl& model, const FileListing& train,
                                        const FileListing& test, const StreamOptions& options,
                                        torch::Device device, const Normalizer& normalize,
                                        const FewShotOptions& few, BadImageLog* bad) {
  const auto labels = torch::tensor(std::vector<int64_t>(train.labels.begin(), train.labels.end()),
                                    torch::kLong);
  return evaluate_draws(
      model, labels, static_cast<int>(train.class_names.size()), test.size(),
      streamed_features_of(model, train, options, device, normalize, few, bad),
      streamed_features_of(model, test, options, device, normalize, few, bad), few);
}

}  // namespace vitlab

// What data-parallel ranks add to a training run (train_run.h): joining the group, rank 0's work
// shared with the others, their state from rank 0, split evaluation and the weights check.
#include <cmath>

#include "train/train_run.h"

namespace vitlab::training {

namespace {

// Sums of every parameter and buffer: equal on every rank while their weights are (the ranks
// compute identical updates in identical order).
double weights_checksum(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  double sum = 0;
  for (const auto& p : model.parameters()) sum += p.sum(torch::kDouble).item<double>();
  for (const auto& b : model.buffers()) sum += b.to(torch::kDouble).sum().item<double>();
  return sum;
}

}  // namespace

// torchrun's convention: the ranks of a node use its GPUs 0..N-1 in LOCAL_RANK order. The config
// is the same on every rank, so it names no GPU of its own.
void TrainRun::use_local_gpu() {
  const std::string text = opt_.device.empty() ? cfg_.device : opt_.device;
  if (text.find(':') != std::string::npos)
    throw UserError(fmt::format("{} is \"{}\": under torchrun each rank trains on cuda:LOCAL_RANK; set "
                                "\"cuda\" (or \"auto\") and choose GPUs with CUDA_VISIBLE_DEVICES",
                                opt_.device.empty() ? "device" : "--device", text));
  const int64_t gpus = int64_t(torch::cuda::device_count());
  if (opt_.dist.local_rank >= gpus)
    throw UserError(fmt::format("LOCAL_RANK {} has no GPU: this node has {} (start at most {} processes "
                                "per node: torchrun --nproc_per_node {})",
                                opt_.dist.local_rank, gpus, gpus, gpus));
  dev_.index = opt_.dist.local_rank;
}

// Data-parallel: every rank trains an equal share of each global batch, from the same config.
void TrainRun::join_group() {
  const int world = opt_.dist.world_size;
  if (cfg_.train.batch_size % world != 0)
    config_error(source_, "train.batch_size",
                 fmt::format("{} is not divisible by WORLD_SIZE {}: each rank trains an equal share of "
                             "the global batch", cfg_.train.batch_size, world));
  dp_ = std::make_unique<DataParallel>(opt_.dist, device_, opt_.dist_timeout);
  main_ = dp_->is_main();
  dp_->check_same_on_all_ranks("the resolved config", resolved_.dump());
  dp_->check_same_on_all_ranks("the start (a new run or --resume)", opt_.resume ? "resume" : "new");
}

// Work only rank 0 does (files): its error, if any, stops every rank with the same message and
// kind (bad input: exit 2; anything else fails the run) instead of leaving the others waiting in
// their next collective.
void TrainRun::on_main(const std::string& what, const std::function<void()>& work) {
  if (!dp_) return work();
  std::string error;  // "user:" or "run:" and the message
  if (main_) {
    try {
      work();
    } catch (const UserError& e) {
      error = std::string("user:") + e.what();
    } catch (const std::exception& e) {
      error = std::string("run:") + e.what();
    }
  }
  error = dp_->share_error_from_main(what, error);
  if (error.empty()) return;
  if (main_) dp_->wait_for_readers(what);  // before this process (and maybe the store) goes
  const bool user = error.rfind("user:", 0) == 0;
  const std::string message = (main_ ? "" : "rank 0: ") + error.substr(error.find(':') + 1);
  if (user) throw UserError(message);
  throw std::runtime_error(message);
}

// Rank 0's weights, optimiser state and position in the run on every rank (only rank 0 read
// init_from or the checkpoint), then gradient averaging from the next step on.
void TrainRun::share_state_from_main() {
  state_.world_size = dp_->world_size();
  std::vector<torch::Tensor> tensors = training_.model->parameters();
  for (const auto& b : training_.model->buffers()) tensors.push_back(b);
  auto optimizer_state = training_.optimizer->state();
  for (const auto& named : optimizer_state) tensors.push_back(named.second);
  dp_->broadcast_from_main(tensors);
  if (!main_) training_.optimizer->load_state(optimizer_state);
  Json rng_sizes = Json::array();  // a run stopped inside an epoch: its generators' states
  for (const auto& [name, t] : state_.rng) rng_sizes.push_back({name, t.numel()});
  const Json position = Json::parse(dp_->share_from_main(
      "position", Json{{"epochs_done", state_.epochs_done}, {"steps_done", state_.steps_done},
                       {"train_seconds", state_.train_seconds}, {"epoch_position", state_.epoch_position},
                       {"rng", rng_sizes}}.dump()));
  state_.epochs_done = position["epochs_done"].get<int64_t>();
  state_.steps_done = position["steps_done"].get<int64_t>();
  state_.train_seconds = position["train_seconds"].get<double>();
  state_.epoch_position = position["epoch_position"];
  if (!main_)
    for (const auto& entry : position["rng"])
      state_.rng.emplace_back(entry[0].get<std::string>(), torch::zeros({entry[1].get<int64_t>()}, torch::kByte));
  std::vector<torch::Tensor> rng;
  for (auto& [name, t] : state_.rng) rng.push_back(t = t.to(torch::kInt));  // a dtype every backend carries
  dp_->broadcast_from_main(rng);
  for (auto& [name, t] : state_.rng) t = t.to(torch::kByte);
  std::vector<torch::Tensor> params;
  for (const auto& p : training_.optimizer->params()) params.push_back(p.param);
  grad_sync_ = dp_->gradient_sync(params);
  training_.step->set_gradient_sync(grad_sync_.get());
}

// Data-parallel evaluation: each rank scores a contiguous share of a supervised evaluation set
// and the sums are reduced. The masked-patch evaluation draws its corruption per batch, so every
// rank scores the whole set there (the same numbers everywhere).
Dataset TrainRun::rank_share(const Dataset& data) const {
  if (!dp_ || !objective_->supervised()) return data;
  const int64_t n = data.size(), w = dp_->world_size(), r = dp_->rank();
  return select_rows(data, torch::arange(n * r / w, n * (r + 1) / w, torch::kLong), data.name);
}

EvalResult TrainRun::reduced(EvalResult r) {
  if (!dp_ || !objective_->supervised()) return r;
  auto sums = torch::tensor({r.loss * double(r.count), std::round(r.accuracy * double(r.count)), double(r.count)},
                            torch::kDouble);
  dp_->all_reduce_sum({sums});
  r.count = int64_t(sums[2].item<double>());
  if (r.count == 0) return r;
  r.loss = sums[0].item<double>() / double(r.count);
  r.accuracy = sums[1].item<double>() / double(r.count);
  return r;
}

// After every epoch: identical updates keep the ranks' weights identical; anything else is a bug
// or a nondeterministic kernel, and training on would average gradients of different models.
void TrainRun::check_ranks_agree(int64_t epoch) {
  if (dp_ && !dp_->same_on_all_ranks(weights_checksum(*training_.model)))
    throw std::runtime_error(fmt::format("after epoch {} the ranks' weights differ", epoch + 1));
}

}  // namespace vitlab::training

// Stopping a run inside an epoch and continuing it exactly (train_run.h: EpochProgress). A stop
// (core/interrupt.h) is honoured between steps: the epoch's position, sums and random streams go
// into checkpoints/last.pt, and a resumed run restores them instead of starting the epoch over,
// so that its weights equal an uninterrupted run's.
#include <csignal>
#include <sstream>

#include "core/interrupt.h"
#include "train/train_run.h"

namespace vitlab::training {

namespace {

at::Generator default_generator(torch::Device device) {
  return at::globalContext().defaultGenerator(device);  // a handle: shares the generator
}

torch::Tensor generator_state(torch::Device device) {
  at::Generator gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();  // uint8 (L)
}

void set_generator_state(torch::Device device, const torch::Tensor& state, const std::string& what) {
  if (!state.defined() || state.scalar_type() != torch::kByte)
    throw std::runtime_error(fmt::format("the checkpoint's {} generator state is missing or not bytes", what));
  at::Generator gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state.contiguous());
}

torch::Tensor named(const NamedTensors& tensors, const std::string& name) {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  return {};
}

}  // namespace

// A fresh epoch seeds its streams from the run's seed; the epoch a stopped run was inside
// takes them, and its sums, from the checkpoint.
EpochProgress TrainRun::begin_epoch(int64_t epoch) {
  EpochProgress p;
  p.epoch = epoch;
  const auto on_device = [&](torch::ScalarType type) { return torch::zeros({}, torch::TensorOptions().dtype(type).device(device_)); };
  p.loss_sum = on_device(torch::kFloat);
  p.correct = on_device(torch::kLong);
  p.scored = on_device(torch::kLong);
  const int64_t rank = dp_ ? dp_->rank() : 0;
  const Json at = state_.epoch_position;
  if (at.is_null() || at.at("epoch").get<int64_t>() != epoch) {
    // Dropout, stochastic depth, masked patches: a stream per rank (rank 0's is one process's).
    torch::manual_seed(epoch_seed(cfg_.seed, epoch, 1) + uint64_t(rank) * 0x9E3779B97F4A7C15ull);
    p.rng = AugmentRng(epoch_seed(cfg_.seed, epoch, 2));
    return p;
  }
  const Json& mine = at.at("ranks").at(size_t(rank));
  p.next_step = at.at("step").get<int64_t>();
  p.seconds_before = at.at("seconds").get<double>();
  p.loss_sum.fill_(mine.at("loss_sum").get<double>());  // a float's value: exact
  p.correct.fill_(mine.at("correct").get<int64_t>());
  p.scored.fill_(mine.at("scored").get<int64_t>());
  std::istringstream(at.at("augment_rng").get<std::string>()) >> p.rng.engine();
  set_generator_state(torch::kCPU, named(state_.rng, fmt::format("rank{}.cpu", rank)), "CPU");
  const torch::Tensor cuda_state = named(state_.rng, fmt::format("rank{}.cuda", rank));
  if (device_.is_cuda() && cuda_state.defined()) {
    set_generator_state(device_, cuda_state, "CUDA");
  } else if (device_.is_cuda()) {
    // Stopped on the CPU, resumed on a GPU: another device draws other numbers anyway.
    at::Generator gen = default_generator(device_);
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_current_seed(epoch_seed(cfg_.seed, epoch, 1) + uint64_t(rank) * 0x9E3779B97F4A7C15ull);
    progress_->message("resumed on a GPU inside an epoch stopped on the CPU: its random draws continue from a new seed");
  }
  state_.epoch_position = Json();
  state_.rng.clear();
  return p;
}

// Whether to stop before the next step. Data-parallel ranks decide together (a stop asked of any
// rank stops all of them at the same step): torchrun passes a signal to every rank, but they
// need not see it at the same step. On GPUs they ask each other every 50 steps only: each
// question is a collective read back by the host, which would otherwise stall the device queue
// every step (the stop then comes up to 50 steps later; a signal in the last steps of the last
// epoch lets the run complete).
bool TrainRun::stop_asked(int64_t step) {
  stop_signal_ = stop_signal();
  if (!dp_) return stop_signal_ != 0;
  if (dev_.cuda && step % 50 != 0) return false;
  // How many ranks were asked, and how many of them by Ctrl-C: the run reports SIGINT if any was.
  auto asked = torch::tensor({stop_signal_ != 0 ? 1.0 : 0.0, stop_signal_ == SIGINT ? 1.0 : 0.0}, torch::kDouble);
  dp_->all_reduce_sum({asked});
  if (asked[0].item<double>() > 0) stop_signal_ = asked[1].item<double>() > 0 ? SIGINT : SIGTERM;
  return stop_signal_ != 0;
}

// The epoch's position, each rank's sums and generator states (rank 0 gathers them: every rank
// fills its own row of zeros and the rows are summed), and the augmentation stream.
Json TrainRun::gather_epoch_position(const EpochProgress& p, double seconds) {
  const int64_t world = dp_ ? dp_->world_size() : 1, rank = dp_ ? dp_->rank() : 0;
  const torch::Tensor cpu_state = generator_state(torch::kCPU);
  const torch::Tensor cuda_state = device_.is_cuda() ? generator_state(device_) : torch::zeros({0}, torch::kByte);
  auto sums = torch::zeros({world, 3}, torch::kDouble);
  sums[rank] = torch::tensor({double(p.loss_sum.item<float>()), double(p.correct.item<int64_t>()),
                              double(p.scored.item<int64_t>())}, torch::kDouble);
  auto cpu_states = torch::zeros({world, cpu_state.numel()}, torch::kInt);
  auto cuda_states = torch::zeros({world, cuda_state.numel()}, torch::kInt);
  cpu_states[rank] = cpu_state.to(torch::kInt);
  if (cuda_state.numel() > 0) cuda_states[rank] = cuda_state.to(torch::kInt);
  if (dp_ && cuda_state.numel() > 0) dp_->all_reduce_sum({sums, cpu_states, cuda_states});
  else if (dp_) dp_->all_reduce_sum({sums, cpu_states});

  std::ostringstream augment;
  augment << p.rng.engine();
  Json ranks = Json::array();
  state_.rng.clear();
  for (int64_t r = 0; r < world; ++r) {
    ranks.push_back({{"loss_sum", sums[r][0].item<double>()},
                     {"correct", int64_t(sums[r][1].item<double>())},
                     {"scored", int64_t(sums[r][2].item<double>())}});
    state_.rng.emplace_back(fmt::format("rank{}.cpu", r), cpu_states[r].to(torch::kByte));
    if (cuda_state.numel() > 0) state_.rng.emplace_back(fmt::format("rank{}.cuda", r), cuda_states[r].to(torch::kByte));
  }
  return {{"epoch", p.epoch}, {"step", p.next_step}, {"seconds", p.seconds_before + seconds},
          {"augment_rng", augment.str()}, {"ranks", ranks}};
}

// Writes the state before step p.next_step as checkpoints/last.pt (a pending best.pt first),
// then ends the run as interrupted.
void TrainRun::stop_inside_epoch(const EpochProgress& p, double seconds) {
  state_.epoch_position = gather_epoch_position(p, seconds);
  on_main("interrupt", [&] {
    capture_state();
    write_checkpoints(/*best_is_current=*/false);
  });
  const int sig = stop_signal_ ? stop_signal_ : SIGTERM;
  throw Interrupted(sig, fmt::format("stopped by {} before step {} of epoch {}; `vitlab train --resume {}` "
                                     "continues from there", sig == SIGINT ? "SIGINT" : "SIGTERM",
                                     p.next_step + 1, p.epoch + 1, files_.dir.string()));
}

}  // namespace vitlab::training

#include "train/rank_monitor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "train/process_group.h"

namespace vitlab {

#ifdef VITLAB_HAVE_C10D

struct RankMonitor::Impl {
  DistEnv env;
  std::chrono::milliseconds timeout;
  LostFn on_lost;
  c10::intrusive_ptr<c10d::Store> store;
};

std::chrono::milliseconds RankMonitor::period_for(std::chrono::milliseconds timeout) {
  return std::clamp(timeout / 5, std::chrono::milliseconds(50), std::chrono::milliseconds(5000));
}

RankMonitor::RankMonitor(const DistEnv& env, std::chrono::milliseconds timeout, LostFn on_lost)
    : impl_(std::make_unique<Impl>()) {
  impl_->env = env;
  impl_->timeout = timeout;
  impl_->on_lost = on_lost ? std::move(on_lost) : [](const std::string& message) {
    std::cerr << message << std::endl;
    std::fflush(nullptr);
    std::_Exit(1);  // the main thread may be blocked in a CUDA wait that never returns
  };
  // Each store call waits at most one period; the verdict comes from how long beats are missing.
  impl_->store =
      connect_store(env, /*serve=*/false, std::max(timeout, std::chrono::milliseconds(30000)));
  impl_->store->setTimeout(period_for(timeout));
  thread_ = std::thread([this] { run(); });
}

RankMonitor::~RankMonitor() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void RankMonitor::run() {
  using Clock = std::chrono::steady_clock;
  const DistEnv& env = impl_->env;
  const auto period = period_for(impl_->timeout);
  std::vector<int64_t> beats(size_t(env.world_size), -1);
  std::vector<Clock::time_point> heard(size_t(env.world_size), Clock::now());
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, period, [this] { return stop_; })) {
    const auto now = Clock::now();
    try {
      impl_->store->add(fmt::format("alive/{}", env.rank), 1);
      for (int r = 0; r < env.world_size; ++r) {
        if (r == env.rank) continue;
        const int64_t beat = impl_->store->add(fmt::format("alive/{}", r), 0);
        if (beat != beats[size_t(r)]) {
          beats[size_t(r)] = beat;
          heard[size_t(r)] = now;
        }
      }
    } catch (const std::exception&) {
      // The store is unreachable: nobody is heard from this round.
    }
    for (int r = 0; r < env.world_size; ++r) {
      const double silent = std::chrono::duration<double>(now - heard[size_t(r)]).count();
      if (r == env.rank || silent * 1000.0 < double(impl_->timeout.count())) continue;
      impl_->on_lost(fmt::format(
          "vitlab train: error: rank {}: rank {} has not been heard from for {:.0f} s (it stopped, "
          "or "
          "the store at {}:{} that rank 0 serves is gone); stopping too. The last checkpoint is "
          "intact: rerun every rank with --resume",
          env.rank, r, silent, env.master_addr, env.master_port));
      return;
    }
  }
}

#else

struct RankMonitor::Impl {};
std::chrono::milliseconds RankMonitor::period_for(std::chrono::milliseconds timeout) {
  return timeout;
}
RankMonitor::RankMonitor(const DistEnv&, std::chrono::milliseconds, LostFn) {}
RankMonitor::~RankMonitor() = default;
void RankMonitor::run() {}

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab

#include "train/rank_monitor.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "core/error.h"
#include "train/process_group.h"

namespace vitlab {

#ifdef VITLAB_HAVE_C10D

struct RankMonitor::Impl {
  using Clock = std::chrono::steady_clock;
  DistEnv env;
  std::chrono::milliseconds timeout;
  LostFn on_lost;
  c10::intrusive_ptr<c10d::Store> store;
  std::vector<int64_t> beats;            // each rank's counter when last read
  std::vector<Clock::time_point> heard;  // when it last moved
  std::vector<bool> done;                // ranks that said they are done
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
  const auto world = size_t(env.world_size);
  impl_->beats.assign(world, 0);
  impl_->heard.assign(world, Impl::Clock::now());
  impl_->done.assign(world, false);
  try {
    impl_->store =
        connect_store(env, /*serve=*/false, std::max(timeout, std::chrono::milliseconds(30000)));
  } catch (const std::exception& e) {
    throw UserError(
        fmt::format("rank {}: the rank monitor could not reach the rendezvous store at {}:{}: {}",
                    env.rank, env.master_addr, env.master_port, e.what()));
  }
  // Waits for keys end after one period; the verdict comes from how long beats are missing.
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

void RankMonitor::mark_done() {
  try {
    impl_->store->set(fmt::format("done/{}", impl_->env.rank), std::vector<uint8_t>{1});
  } catch (const std::exception&) {
    // The store is gone with rank 0: nobody is left to wait for this rank.
  }
}

void RankMonitor::run() {
  const auto period = period_for(impl_->timeout);
  while (!beat_and_judge()) {
    std::unique_lock<std::mutex> lock(mutex_);
    if (wake_.wait_for(lock, period, [this] { return stop_; })) return;
  }
}

bool RankMonitor::beat_and_judge() {
  Impl& m = *impl_;
  const DistEnv& env = m.env;
  const auto now = Impl::Clock::now();
  bool reachable = true;
  try {
    m.store->add(fmt::format("alive/{}", env.rank), 1);
    for (int r = 0; r < env.world_size; ++r) {
      // Reading with add(0) creates a missing counter at 0: only a beat (>= 1) is news.
      const int64_t beat = r == env.rank ? 0 : m.store->add(fmt::format("alive/{}", r), 0);
      if (beat > m.beats[size_t(r)]) {
        m.beats[size_t(r)] = beat;
        m.heard[size_t(r)] = now;
      }
    }
  } catch (const std::exception&) {
    reachable = false;  // the store is unreachable: nobody is heard from this round
  }
  for (int r = 0; r < env.world_size; ++r) {
    const double silent = std::chrono::duration<double>(now - m.heard[size_t(r)]).count();
    if (r == env.rank || m.done[size_t(r)] || silent * 1000.0 < double(m.timeout.count())) continue;
    try {
      if (reachable && m.store->check({fmt::format("done/{}", r)})) {
        m.done[size_t(r)] = true;
        continue;
      }
    } catch (const std::exception&) {
    }
    m.on_lost(
        fmt::format("vitlab train: error: rank {}: rank {} has not been heard from for {:.0f} s "
                    "(it stopped, or the store at {}:{} is gone with the rank that served it); "
                    "stopping too. The last checkpoint is intact: rerun every rank with --resume",
                    env.rank, r, silent, env.master_addr, env.master_port));
    return true;
  }
  return false;
}

#else

struct RankMonitor::Impl {};
std::chrono::milliseconds RankMonitor::period_for(std::chrono::milliseconds timeout) {
  return timeout;
}
RankMonitor::RankMonitor(const DistEnv&, std::chrono::milliseconds, LostFn) {}
RankMonitor::~RankMonitor() = default;
void RankMonitor::mark_done() {}
void RankMonitor::run() {}
bool RankMonitor::beat_and_judge() {
  return true;
}

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab

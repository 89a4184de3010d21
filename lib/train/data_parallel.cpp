#include "train/data_parallel.h"

#include "train/gradient_sync.h"
#include "train/process_group.h"
#include "train/rank_monitor.h"

#include <cstdlib>
#include <map>
#include <set>
#include <utility>

#include <fmt/ranges.h>

#include "core/error.h"

namespace vitlab {

namespace {

int env_int(const std::function<const char*(const char*)>& get, const char* name, int low, int high) {
  const char* text = get(name);
  if (!text) throw UserError(fmt::format("{} is not set (torchrun sets RANK, LOCAL_RANK, WORLD_SIZE, "
                                         "MASTER_ADDR and MASTER_PORT for every process)", name));
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value < low || value > high)
    throw UserError(fmt::format("{}={:?} is not a whole number in {}..{}", name, text, low, high));
  return int(value);
}

}  // namespace

DistEnv read_dist_env(const std::function<const char*(const char*)>& get) {
  DistEnv env;
  if (!get("WORLD_SIZE")) {
    if (get("RANK"))
      throw UserError("RANK is set but WORLD_SIZE is not: start data-parallel runs with torchrun "
                      "(torchrun --no-python --nproc_per_node N vitlab train ...) or unset RANK");
    return env;
  }
  env.world_size = env_int(get, "WORLD_SIZE", 1, 1 << 20);
  if (env.world_size == 1) return env;
  env.rank = env_int(get, "RANK", 0, env.world_size - 1);
  env.local_rank = get("LOCAL_RANK") ? env_int(get, "LOCAL_RANK", 0, env.world_size - 1) : env.rank;
  if (get("LOCAL_WORLD_SIZE"))
    env.local_world_size = env_int(get, "LOCAL_WORLD_SIZE", env.local_rank + 1, env.world_size);
  const char* addr = get("MASTER_ADDR");
  if (!addr || !*addr) throw UserError("MASTER_ADDR is not set: the host name or address of rank 0");
  env.master_addr = addr;
  env.master_port = env_int(get, "MASTER_PORT", 1, 65535);
  const char* agent = get("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent && std::string(agent) == "True";
  const char* restart = get("TORCHELASTIC_RESTART_COUNT");
  env.store_prefix = fmt::format("vitlab/{}/", restart ? restart : "0");
  if (const char* sync = get("VITLAB_GRADIENT_SYNC"); sync && *sync) {
    env.gradient_sync = sync;
    const std::set<std::string> engines = {"buckets", "reducer", "buckets-eager", "reducer-eager"};
    if (!engines.count(env.gradient_sync))
      throw UserError(fmt::format("VITLAB_GRADIENT_SYNC={:?} is not one of buckets (the default), "
                                  "reducer, buckets-eager or reducer-eager", sync));
    if (env.reducer_sync() && !reducer_available()) throw UserError(kNoReducer);
  }
  return env;
}

DistEnv read_dist_env() { return read_dist_env([](const char* name) { return std::getenv(name); }); }

#ifdef VITLAB_HAVE_C10D

namespace {

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string text_of(const std::vector<uint8_t>& b) { return {b.begin(), b.end()}; }

}  // namespace

struct DataParallel::Impl {
  int rank = 0;
  c10::intrusive_ptr<c10d::Store> store;
  ProcessGroup pg;
  std::unique_ptr<RankMonitor> monitor;  // GPUs: NCCL waits for a lost rank forever
  std::chrono::milliseconds timeout;

  // A value another rank sets; the store's timeout bounds the wait.
  std::string get(const std::string& key) {
    try {
      return text_of(store->get(key));
    } catch (const std::exception& e) {
      throw UserError(fmt::format("rank {}: no \"{}\" from the other ranks within {} s (one stopped, or "
                                  "they were started with another WORLD_SIZE): {}",
                                  rank, key, double(timeout.count()) / 1000.0, e.what()));
    }
  }

  // Gloo takes one tensor per collective: tensors of one dtype travel as one flat buffer, on the
  // group's device (NCCL: the rank's GPU, whatever device the tensors are on).
  void flat_collective(const std::vector<torch::Tensor>& tensors,
                       const std::function<void(torch::Tensor&)>& collective) {
    std::map<torch::ScalarType, std::vector<torch::Tensor>> by_dtype;
    for (const auto& t : tensors) by_dtype[t.scalar_type()].push_back(t);
    for (auto& [dtype, group_tensors] : by_dtype) {
      std::vector<torch::Tensor> flat_parts;
      for (const auto& t : group_tensors) flat_parts.push_back(t.reshape(-1).to(pg.device));
      torch::Tensor flat = torch::cat(flat_parts);
      collective(flat);
      int64_t offset = 0;
      for (auto& t : group_tensors) {
        const int64_t n = t.numel();
        torch::NoGradGuard no_grad;
        t.copy_(flat.narrow(0, offset, n).view_as(t));  // back to the tensor's device
        offset += n;
      }
    }
  }
};

DataParallel::DataParallel(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout)
    : env_(env), impl_(std::make_unique<Impl>()) {
  impl_->timeout = timeout;
  impl_->rank = env.rank;
  const double seconds = double(timeout.count()) / 1000.0;
  const bool serve = env.rank == 0 && !env.agent_store;
  try {
    impl_->store = connect_store(env, serve, timeout);
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {}: could not {} the rendezvous store at {}:{} within {} s "
                                "(MASTER_ADDR, MASTER_PORT): {}",
                                env.rank, serve ? "serve" : "reach", env.master_addr, env.master_port,
                                seconds, e.what()));
  }
  try {
    impl_->pg = make_process_group(impl_->store, env, device, timeout);
  } catch (const UserError&) {
    throw;
  } catch (const std::exception& e) {
    throw UserError(fmt::format("rank {}: the {} processes of WORLD_SIZE did not all join within {} s: {}",
                                env.rank, env.world_size, seconds, e.what()));
  }
  if (device.is_cuda()) impl_->monitor = std::make_unique<RankMonitor>(env, timeout);
}

DataParallel::~DataParallel() {
  if (impl_ && impl_->pg.shut_down) finish(false);
}

void DataParallel::finish(bool ended_well) {
  if (impl_->monitor) impl_->monitor->mark_done();
  // The monitor keeps watching while NCCL shuts down: if that waits on a rank that died, the
  // monitor still ends this process.
  if (auto shut_down = std::exchange(impl_->pg.shut_down, nullptr)) {
    try {
      shut_down(ended_well);
    } catch (const std::exception&) {
      // Leaving anyway; NCCL's own destructor cleans up what is left.
    }
  }
  impl_->monitor.reset();
}

void DataParallel::check_same_on_all_ranks(const std::string& what, const std::string& text) {
  const std::string key = "same/" + what + "/";
  impl_->store->set(key + std::to_string(rank()), bytes_of(text));
  std::string verdict;
  if (is_main()) {
    std::vector<int> differ;
    for (int r = 1; r < world_size(); ++r)
      if (impl_->get(key + std::to_string(r)) != text) differ.push_back(r);
    if (!differ.empty())
      verdict = fmt::format("{} differs between rank 0 and rank(s) {}", what, fmt::join(differ, ", "));
  }
  verdict = share_from_main(key + "verdict", verdict);
  if (verdict.empty()) return;
  wait_for_readers(key + "verdict");  // rank 0 only
  throw UserError(verdict + "; start every rank with the same config and --set options");
}

std::string DataParallel::share_from_main(const std::string& key, const std::string& value) {
  if (is_main()) {
    impl_->store->set("share/" + key, bytes_of(value));
    return value;
  }
  std::string shared = impl_->get("share/" + key);
  impl_->store->set(fmt::format("read/{}/{}", key, rank()), bytes_of("1"));
  return shared;
}

std::string DataParallel::share_error_from_main(const std::string& key, const std::string& error) {
  auto flag = torch::tensor({is_main() && !error.empty() ? 1 : 0}, torch::kInt);
  all_reduce_sum({flag});
  if (flag.item<int>() == 0) return "";
  return share_from_main(key, error);
}

void DataParallel::wait_for_readers(const std::string& key) {
  if (!is_main()) return;
  std::vector<std::string> keys;
  for (int r = 1; r < world_size(); ++r) keys.push_back(fmt::format("read/{}/{}", key, r));
  try {
    impl_->store->wait(keys, std::min(impl_->timeout, std::chrono::milliseconds(10000)));
  } catch (const std::exception&) {
    // A rank that is gone reads nothing; rank 0 stops anyway.
  }
}

void DataParallel::broadcast_from_main(const std::vector<torch::Tensor>& tensors) {
  impl_->flat_collective(tensors, [&](torch::Tensor& flat) {
    std::vector<torch::Tensor> one{flat};
    c10d::BroadcastOptions options;
    options.rootRank = 0;
    wait_for_collective(impl_->pg.group->broadcast(one, options));
  });
}

void DataParallel::all_reduce_sum(const std::vector<torch::Tensor>& tensors) {
  impl_->flat_collective(tensors, [&](torch::Tensor& flat) {
    std::vector<torch::Tensor> one{flat};
    wait_for_collective(impl_->pg.group->allreduce(one));
  });
}

bool DataParallel::same_on_all_ranks(double value) {
  // max(v) and max(-v) = -min(v) in one all-reduce.
  std::vector<torch::Tensor> one{torch::tensor({value, -value}, torch::kDouble).to(impl_->pg.device)};
  c10d::AllreduceOptions options;
  options.reduceOp = c10d::ReduceOp::MAX;
  wait_for_collective(impl_->pg.group->allreduce(one, options));
  const torch::Tensor both = one[0].cpu();
  return both[0].item<double>() == -both[1].item<double>();
}

std::unique_ptr<GradientSync> DataParallel::gradient_sync(const std::vector<torch::Tensor>& params,
                                                          int64_t bucket_bytes) {
  if (env_.reducer_sync())
    return make_reducer_sync(impl_->pg, impl_->store, env_, params, bucket_bytes, env_.captured_sync());
  return make_bucket_sync(impl_->pg, world_size(), params, bucket_bytes, env_.captured_sync());
}

#else  // no c10d

struct DataParallel::Impl {};

DataParallel::DataParallel(const DistEnv& env, torch::Device, std::chrono::milliseconds) : env_(env) {
  throw UserError("this vitlab was built against a LibTorch without c10d (torch/csrc/distributed), so it "
                  "cannot train data-parallel");
}
DataParallel::~DataParallel() = default;
void DataParallel::check_same_on_all_ranks(const std::string&, const std::string&) {}
std::string DataParallel::share_from_main(const std::string&, const std::string& value) { return value; }
void DataParallel::wait_for_readers(const std::string&) {}
std::string DataParallel::share_error_from_main(const std::string&, const std::string& error) { return error; }
void DataParallel::finish(bool) {}
void DataParallel::broadcast_from_main(const std::vector<torch::Tensor>&) {}
void DataParallel::all_reduce_sum(const std::vector<torch::Tensor>&) {}
bool DataParallel::same_on_all_ranks(double) { return true; }
std::unique_ptr<GradientSync> DataParallel::gradient_sync(const std::vector<torch::Tensor>&, int64_t) {
  return nullptr;
}

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab

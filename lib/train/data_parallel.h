// Data-parallel training on PyTorch's own distributed engine (c10d), started by torchrun:
//
//   torchrun --no-python --nproc_per_node N build/vitlab train CONFIG.json
//
// Each process (rank) trains a copy of the model on its share of every global batch; gradients
// are averaged across ranks in buckets that are reduced while the backward pass still runs, so
// every rank takes the same optimiser step and the weights stay identical. The global batch size
// and learning rate in the config mean what they mean in one process: the mean gradient over the
// global batch is the same sum, only split (PyTorch's DistributedDataParallel does the same).
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace vitlab {

// torchrun's rendezvous variables. A process started without WORLD_SIZE (or with 1) is alone.
struct DistEnv {
  int rank = 0;
  int local_rank = 0;
  int world_size = 1;
  // Ranks on this machine (LOCAL_WORLD_SIZE, which torchrun sets; 1 without it): they share its
  // cores, so work that takes every core (streamed decoding) takes this share of them.
  int local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
  // torchrun's agent hosts the store itself (TORCHELASTIC_USE_AGENT_STORE=True): every rank is
  // a client. Otherwise rank 0 serves it.
  bool agent_store = false;
  std::string store_prefix;  // per restart of torchrun's workers, so old keys do not leak in
  // The engine that averages gradients (VITLAB_GRADIENT_SYNC, for measuring one against the
  // other; README "Scaling" has the figures): "buckets" (the default: vitlab's buckets, filled
  // from gradient hooks) or "reducer" (c10d::Reducer, PyTorch DistributedDataParallel's engine).
  // On GPUs the step with its all-reduces is captured as a CUDA graph; "-eager" (buckets-eager,
  // reducer-eager) keeps it eager.
  std::string gradient_sync = "buckets";
  bool reducer_sync() const { return gradient_sync.rfind("reducer", 0) == 0; }
  bool captured_sync() const { return gradient_sync.find("-eager") == std::string::npos; }

  bool distributed() const { return world_size > 1; }
};

// Reads RANK, LOCAL_RANK, LOCAL_WORLD_SIZE, WORLD_SIZE, MASTER_ADDR, MASTER_PORT and VITLAB_GRADIENT_SYNC. UserError
// naming the variable when one is missing, not a number, not a known name, or inconsistent (RANK
// outside 0..WORLD_SIZE-1, say).
DistEnv read_dist_env();
// The same from a lookup function (tests).
DistEnv read_dist_env(const std::function<const char*(const char*)>& getenv_fn);

// The backends this build can train data-parallel with (`vitlab --version`): "gloo, nccl",
// "gloo", "nccl" or "none".
std::string data_parallel_backends();

// Averages gradients across ranks during the backward pass: parameters are packed, last layers
// first (the order their gradients appear in), into buckets of about `bucket_bytes`; as the
// backward pass produces a parameter's gradient it is copied into its bucket, and a full bucket
// starts its all-reduce at once, while the rest of the backward pass runs. After
// finish_backward() the parameters hold the mean gradients. gradient_sync.h has the engines.
class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual void begin_backward() = 0;   // before loss.backward()
  virtual void finish_backward() = 0;  // after it, before clipping and the update
  // Whether the backward pass with its collectives may be captured in a CUDA graph (NCCL).
  virtual bool capturable() const { return false; }
};

class DataParallel {
 public:
  // Joins the process group: connects to (rank 0: serves) the store at MASTER_ADDR:MASTER_PORT
  // and creates the group for `device`: Gloo on the CPU, NCCL on this rank's GPU (process_group.h).
  // Every blocking call fails after `timeout` instead of hanging: an unreachable master, a rank
  // that died (on GPUs the rank monitor, rank_monitor.h, sees that). UserError for what the user
  // can fix.
  DataParallel(const DistEnv& env, torch::Device device, std::chrono::milliseconds timeout);
  // Without finish(): leaves as after a failure (NCCL's communicators aborted, not drained).
  ~DataParallel();

  // After this rank's last collective. `ended_well` (a completed, interrupted or diverged run:
  // every rank left the training loop together): NCCL shuts down cleanly; otherwise (a failure,
  // perhaps inside a collective the others never joined) it aborts, which cannot wait forever.
  // Either way the other ranks stop watching for this one.
  void finish(bool ended_well);

  int rank() const { return env_.rank; }
  int world_size() const { return env_.world_size; }
  int local_world_size() const { return env_.local_world_size; }
  bool is_main() const { return env_.rank == 0; }

  // Every rank's `text` must equal rank 0's (the resolved config): UserError on every rank
  // otherwise, naming `what` and the ranks that differ.
  void check_same_on_all_ranks(const std::string& what, const std::string& text);
  // Rank 0's `value` on every rank (small strings: the resumed position in the run).
  std::string share_from_main(const std::string& key, const std::string& value);
  // Rank 0's error message (empty: none) on every rank. The no-error case costs one small
  // all-reduce, not a store round trip (which waits on TCP acknowledgements, ~0.2 s here).
  std::string share_error_from_main(const std::string& key, const std::string& error);
  // Rank 0 waits (briefly) until every rank has read `key`: before it exits on an error it
  // shared, since the store it serves goes with it.
  void wait_for_readers(const std::string& key);
  // Overwrites every rank's tensors with rank 0's (parameters, buffers, optimiser state).
  void broadcast_from_main(const std::vector<torch::Tensor>& tensors);
  // In-place sums over ranks (metrics, evaluation counts). Tensors on the group's device.
  void all_reduce_sum(const std::vector<torch::Tensor>& tensors);
  // Whether every rank holds the same `value` (a checksum of the weights).
  bool same_on_all_ranks(double value);
  // Gradient averaging for `params` (the optimiser's, in model order).
  std::unique_ptr<GradientSync> gradient_sync(const std::vector<torch::Tensor>& params,
                                              int64_t bucket_bytes = 25 << 20);

  struct Impl;

 private:
  DistEnv env_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vitlab

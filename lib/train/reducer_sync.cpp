#include "train/gradient_sync.h"

#include <algorithm>

#ifdef VITLAB_HAVE_REDUCER
#include <torch/csrc/distributed/c10d/reducer.hpp>
#endif

#include "core/error.h"

namespace vitlab {

bool reducer_available() {
#ifdef VITLAB_HAVE_REDUCER
  return true;
#else
  return false;
#endif
}

#ifdef VITLAB_HAVE_REDUCER

namespace {

// DDP's first bucket is small (torch.distributed's _DEFAULT_FIRST_BUCKET_BYTES, 1 MiB), so that
// the first all-reduce starts early in the backward pass.
constexpr size_t kFirstBucketBytes = 1 << 20;

// The group the Reducer talks to. In LibTorch 2.x that is the ProcessGroup front end, which
// dispatches each collective to the backend registered for the tensors' device; vitlab holds the
// backend itself, so a front end is put around it. In 1.13 the Gloo and NCCL groups are
// c10d::ProcessGroups themselves.
c10::intrusive_ptr<c10d::ProcessGroup> front_end(const ProcessGroup& pg,
                                                const c10::intrusive_ptr<c10d::Store>& store,
                                                const DistEnv& env) {
#if VITLAB_TORCH_AT_LEAST(2, 0)
  const auto type = pg.device.is_cuda() ? c10d::ProcessGroup::BackendType::NCCL
                                        : c10d::ProcessGroup::BackendType::GLOO;
  auto group = c10::make_intrusive<c10d::ProcessGroup>(store, env.rank, env.world_size);
  group->setBackend(pg.device.type(), type, pg.group);
  group->setDefaultBackend(type);
  return group;
#else
  (void)store;
  (void)env;
  return pg.group;
#endif
}

// Driven as PyTorch's DistributedDataParallel drives its Reducer: buckets planned by
// compute_bucket_assignment_by_size over the parameters and reversed (the backward pass produces
// the last layers' gradients first); before each backward pass rebuild_buckets() (after the first
// step, once: the buckets are re-planned in the order the gradients arrived, agreed across ranks)
// and prepare_for_backward(). The Reducer's hooks on the parameters' gradient accumulators fill
// the buckets, scaled by 1/WORLD_SIZE; each bucket's all-reduce starts when it is full, and a
// callback queued on the autograd engine waits for them at the end of backward() and writes the
// mean gradients back.
class ReducerSync : public GradientSync {
 public:
  ReducerSync(c10::intrusive_ptr<c10d::ProcessGroup> group, const std::vector<torch::Tensor>& params,
              int64_t bucket_bytes, bool capture)
      : group_(std::move(group)), params_(params), bucket_bytes_(bucket_bytes), capture_(capture) {}

  // The Reducer holds the parameters' gradient accumulators, and autograd runs each on the CUDA
  // stream current when it was made: it is made at the first step, on the stream the train step
  // runs (and is later captured) on, not on the default stream, which a capture may not wait on.
  bool capturable() const override { return capture_ && !params_.empty() && params_.front().is_cuda(); }

  void begin_backward() override {
    if (!reducer_) {
      reducer_ = make_reducer();
    } else {
      reducer_->rebuild_buckets();
    }
    reducer_->prepare_for_backward({});
  }

  void finish_backward() override {}  // the Reducer's callback did it inside backward()

 private:
  std::unique_ptr<c10d::Reducer> make_reducer() const {
    const std::vector<bool> dense(params_.size(), false);
    auto [buckets, limits] = c10d::compute_bucket_assignment_by_size(
        params_, {kFirstBucketBytes, size_t(bucket_bytes_)}, dense);
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(limits.begin(), limits.end());
    const bool find_unused = false, gradient_as_bucket_view = false;
#if VITLAB_TORCH_AT_LEAST(2, 0)
    (void)limits;
    return std::make_unique<c10d::Reducer>(
        params_, std::move(buckets), group_, dense, bucket_bytes_, find_unused, gradient_as_bucket_view,
        std::unordered_map<size_t, std::string>{}, int64_t(kFirstBucketBytes),
        /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
        /*bucket_bytes_cap_list=*/std::vector<int64_t>{});
#else
    return std::make_unique<c10d::Reducer>(params_, std::move(buckets), std::move(limits), group_, dense,
                                           bucket_bytes_, find_unused, gradient_as_bucket_view,
                                           std::unordered_map<size_t, std::string>{}, int64_t(kFirstBucketBytes));
#endif
  }

  c10::intrusive_ptr<c10d::ProcessGroup> group_;
  std::vector<torch::Tensor> params_;
  int64_t bucket_bytes_;
  bool capture_;
  std::unique_ptr<c10d::Reducer> reducer_;
};

}  // namespace

std::unique_ptr<GradientSync> make_reducer_sync(const ProcessGroup& pg,
                                                const c10::intrusive_ptr<c10d::Store>& store,
                                                const DistEnv& env,
                                                const std::vector<torch::Tensor>& params,
                                                int64_t bucket_bytes, bool capture) {
  return std::make_unique<ReducerSync>(front_end(pg, store, env), params, bucket_bytes, capture);
}

#elif defined(VITLAB_HAVE_C10D)

std::unique_ptr<GradientSync> make_reducer_sync(const ProcessGroup&, const c10::intrusive_ptr<c10d::Store>&,
                                                const DistEnv&, const std::vector<torch::Tensor>&, int64_t,
                                                bool) {
  throw UserError(kNoReducer);
}

#endif  // VITLAB_HAVE_REDUCER

}  // namespace vitlab

#include "train/gradient_sync.h"

#include <algorithm>

namespace vitlab {

#ifdef VITLAB_HAVE_C10D

namespace {

// DataParallel::gradient_sync's buckets (data_parallel.h describes the scheme). Buckets start
// their all-reduce in bucket order only, so that every rank issues its collectives in one order
// (Gloo and NCCL match them by sequence), whatever order the gradients arrive in. On GPUs the
// hooks run once, while the step is captured as a CUDA graph; the graph replays the copies and
// NCCL's all-reduce kernels (on NCCL's stream, joined back before the update).
class BucketSync : public GradientSync {
 public:
  BucketSync(c10::intrusive_ptr<compat::DistBackend> group, int world_size, bool capture,
             const std::vector<torch::Tensor>& params, int64_t bucket_bytes)
      : group_(std::move(group)), world_size_(world_size), capture_(capture), params_(params),
        slot_(params.size()), got_(params.size(), false) {
    // Last parameters first: the backward pass produces their gradients first.
    for (size_t k = params.size(); k-- > 0;) {
      const auto& p = params[k];
      if (buckets_.empty() || buckets_.back().dtype != p.scalar_type() ||
          buckets_.back().numel * p.element_size() >= bucket_bytes)
        buckets_.push_back({p.scalar_type(), 0, {}, {}, 0, false, false, {}});
      Bucket& b = buckets_.back();
      slot_[k] = {buckets_.size() - 1, b.numel};
      b.params.push_back(k);
      b.numel += p.numel();
    }
    for (auto& b : buckets_) b.flat = torch::zeros({b.numel}, params[0].options().dtype(b.dtype));
    for (size_t k = 0; k < params.size(); ++k)
      hooks_.push_back(params_[k].register_hook([this, k](const torch::Tensor& grad) { on_grad(k, grad); }));
  }

  bool capturable() const override { return capture_ && !params_.empty() && params_.front().is_cuda(); }

  ~BucketSync() override {
    for (size_t k = 0; k < params_.size(); ++k) params_[k].remove_hook(unsigned(hooks_[k]));
  }

  void begin_backward() override {
    active_ = true;
    next_ = 0;
    std::fill(got_.begin(), got_.end(), false);
    for (auto& b : buckets_) {
      b.pending = b.params.size();
      b.ready = b.launched = false;
    }
  }

  void finish_backward() override {
    active_ = false;
    // Parameters without a gradient this step (unused by the objective) add zeros; every rank
    // runs the same graph, so they are the same parameters everywhere.
    for (auto& b : buckets_)
      if (!b.ready) {
        for (size_t k : b.params)
          if (!got_[k]) b.flat.narrow(0, slot_[k].offset, params_[k].numel()).zero_();
        b.ready = true;
      }
    launch_ready();
    torch::NoGradGuard no_grad;
    for (auto& b : buckets_) {
      wait_for_collective(b.work);
      b.flat.div_(world_size_);
      for (size_t k : b.params)
        if (got_[k] && params_[k].grad().defined())
          params_[k].mutable_grad().copy_(b.flat.narrow(0, slot_[k].offset, params_[k].numel()).view_as(params_[k]));
    }
  }

 private:
  struct Bucket {
    torch::ScalarType dtype;
    int64_t numel;
    std::vector<size_t> params;
    torch::Tensor flat;  // (numel) the bucket's gradients, reduced in place
    size_t pending;
    bool ready, launched;
    c10::intrusive_ptr<c10d::Work> work;
  };
  struct Slot {
    size_t bucket = 0;
    int64_t offset = 0;
  };

  void on_grad(size_t k, const torch::Tensor& grad) {
    if (!active_ || !grad.defined()) return;
    Bucket& b = buckets_[slot_[k].bucket];
    {
      torch::NoGradGuard no_grad;
      b.flat.narrow(0, slot_[k].offset, grad.numel()).copy_(grad.reshape(-1));
    }
    got_[k] = true;
    if (--b.pending == 0) {
      b.ready = true;
      launch_ready();
    }
  }

  void launch_ready() {
    while (next_ < buckets_.size() && buckets_[next_].ready) {
      Bucket& b = buckets_[next_++];
      std::vector<torch::Tensor> one{b.flat};
      b.work = group_->allreduce(one);
      b.launched = true;
    }
  }

  c10::intrusive_ptr<compat::DistBackend> group_;
  int world_size_;
  bool capture_;
  std::vector<torch::Tensor> params_;
  std::vector<Slot> slot_;
  std::vector<bool> got_;
  std::vector<Bucket> buckets_;
  std::vector<int64_t> hooks_;
  size_t next_ = 0;
  bool active_ = false;
};

}  // namespace

std::unique_ptr<GradientSync> make_bucket_sync(const ProcessGroup& pg, int world_size,
                                               const std::vector<torch::Tensor>& params,
                                               int64_t bucket_bytes, bool capture) {
  return std::make_unique<BucketSync>(pg.group, world_size, capture, params, bucket_bytes);
}

#endif  // VITLAB_HAVE_C10D

}  // namespace vitlab

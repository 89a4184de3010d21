#include "core/cpu_block_cache.h"

#include <c10/core/CPUAllocator.h>

#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "core/compat.h"

namespace vitlab {

#if !VITLAB_TORCH_AT_LEAST(2, 0)

namespace {

// Blocks are handed out with their own address as the DataPtr's context (as the default
// allocator does), so that ATen's raw_allocate/raw_deallocate work too; `live_` finds a block's
// size and memory from its address.
class CpuBlockCache final : public c10::Allocator {
 public:
  CpuBlockCache(c10::Allocator* fallback, int64_t min_bytes, int64_t max_bytes)
      : fallback_(fallback), min_bytes_(size_t(min_bytes)), max_bytes_(size_t(max_bytes)) {}

  c10::DataPtr allocate(size_t n) const override {
    if (n < min_bytes_) return fallback_->allocate(n);
    c10::DataPtr memory;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(n);
      if (it != free_.end() && !it->second.empty()) {
        memory = std::move(it->second.back());
        it->second.pop_back();
        cached_ -= n;
        ++stats_.hits;
      } else {
        ++stats_.misses;
      }
    }
    if (!memory) memory = fallback_->allocate(n);
    void* data = memory.get();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      live_.emplace(data, Block{std::move(memory), n});
    }
    return {data, data, &CpuBlockCache::give_back, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &CpuBlockCache::give_back; }

  CpuBlockCacheStats stats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    CpuBlockCacheStats s = stats_;
    s.cached_bytes = int64_t(cached_);
    s.installed = true;
    return s;
  }

  static CpuBlockCache* instance;

 private:
  struct Block {
    c10::DataPtr memory;  // from the fallback allocator, which frees it
    size_t size;
  };

  // The deleter of every block handed out: back into the cache, or freed when the cache is
  // full. A small block (raw_deallocate of one the fallback allocated) goes to the fallback.
  static void give_back(void* data) {
    CpuBlockCache& self = *instance;
    c10::DataPtr memory;  // freed on leaving, outside the lock, unless it was cached
    {
      std::lock_guard<std::mutex> lock(self.mutex_);
      auto it = self.live_.find(data);
      if (it != self.live_.end()) {
        Block block = std::move(it->second);
        self.live_.erase(it);
        if (self.cached_ + block.size <= self.max_bytes_) {
          self.free_[block.size].push_back(std::move(block.memory));
          self.cached_ += block.size;
        } else {
          memory = std::move(block.memory);
        }
        return;
      }
    }
    self.fallback_->raw_deleter()(data);
  }

  c10::Allocator* fallback_;
  size_t min_bytes_, max_bytes_;
  mutable std::mutex mutex_;
  mutable std::map<size_t, std::vector<c10::DataPtr>> free_;  // by size
  mutable std::unordered_map<void*, Block> live_;             // handed out, by address
  mutable size_t cached_ = 0;
  mutable CpuBlockCacheStats stats_;
};

CpuBlockCache* CpuBlockCache::instance = nullptr;

}  // namespace

bool install_cpu_block_cache(int64_t min_bytes, int64_t max_bytes) {
  static std::once_flag once;
  std::call_once(once, [&] {
    // Never destroyed: tensors freed while the process exits still give their blocks back.
    CpuBlockCache::instance = new CpuBlockCache(c10::GetDefaultCPUAllocator(), min_bytes, max_bytes);
    c10::SetCPUAllocator(CpuBlockCache::instance, /*priority=*/1);
  });
  return true;
}

CpuBlockCacheStats cpu_block_cache_stats() {
  return CpuBlockCache::instance ? CpuBlockCache::instance->stats() : CpuBlockCacheStats{};
}

#else

bool install_cpu_block_cache(int64_t, int64_t) { return false; }
CpuBlockCacheStats cpu_block_cache_stats() { return {}; }

#endif

}  // namespace vitlab

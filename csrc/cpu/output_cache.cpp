#include "output_cache.h"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace fastot::cpu {
namespace {

constexpr size_t kMinCached = size_t(1) << 20;  // smaller outputs: plain at::empty
constexpr size_t kHugePage = size_t(2) << 20;

class OutputCache {
 public:
  OutputCache() {
    const char* env = std::getenv("FASTOT_CPU_CACHE_MB");
    limit_ = (env ? std::strtoull(env, nullptr, 10) : 1024ull) << 20;
  }

  void* take(size_t capacity) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(capacity);
      if (it != free_.end()) {
        void* ptr = it->second;
        free_.erase(it);
        cached_ -= capacity;
        return ptr;
      }
    }
    void* ptr = std::aligned_alloc(kHugePage, capacity);
    TORCH_CHECK(ptr != nullptr, "fastot: out of memory allocating ", capacity, " bytes");
#ifdef MADV_HUGEPAGE
    madvise(ptr, capacity, MADV_HUGEPAGE);  // a hint: failure only costs page faults
#endif
    return ptr;
  }

  void give_back(void* ptr, size_t capacity) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_ + capacity <= limit_) {
        free_.emplace(capacity, ptr);
        cached_ += capacity;
        return;
      }
    }
    std::free(ptr);
  }

  bool enabled() const { return limit_ > 0; }

 private:
  std::mutex mutex_;
  std::multimap<size_t, void*> free_;
  size_t cached_ = 0;
  size_t limit_;
};

// Leaked on purpose: tensors may outlive static destruction at interpreter exit.
OutputCache& cache() {
  static auto* instance = new OutputCache();
  return *instance;
}

}  // namespace

at::Tensor empty_output(at::IntArrayRef sizes, const at::TensorOptions& options) {
  const int64_t numel = c10::multiply_integers(sizes);
  const size_t nbytes = size_t(numel) * c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
  if (nbytes < kMinCached || !cache().enabled() || options.device().type() != c10::DeviceType::CPU)
    return at::empty(sizes, options);
  const size_t capacity = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
  void* ptr = cache().take(capacity);
  return at::from_blob(
      ptr, sizes, [capacity](void* p) { cache().give_back(p, capacity); }, options);
}

}  // namespace fastot::cpu

// CSR sparse-dense products for mmjax.graph.propagate, exposed via the XLA FFI.
//
// Three handlers, all over a CSR matrix A [N, N] with a fixed pattern
// (indptr, cols) and runtime float32 values:
//   mmjax_spmm:      Y[r] = sum_k w[k] X[cols[k]] for rows r of one row block;
//                    with a non-empty `perm`, the value of slot k is
//                    w[perm[k]] (the transposed CSR reads the forward values
//                    through its permutation, so A^T G needs no value copy).
//   mmjax_edge_dot:  out[e] = <G[row(e)], X[cols[e]]> for one edge block; the
//                    gradient of A X with respect to the edge values.
//   mmjax_spmm_t_dw: both gradients in one sweep over A^T (one device), so G
//                    is read once when the edge values need a gradient too.
// Row and edge blocks let a caller split the work across devices: a block
// starts at a runtime offset (a device's axis index times the block size) and
// parts past the end of the matrix are written as zeros.
//
// Work inside a call is split into chunks of about equal cost (non-zeros plus
// rows, so power-law rows do not leave one thread with most of the work) and
// run on a thread pool created once per process; the calling thread works too,
// so concurrent calls (several virtual devices) always make progress.

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

#define MMJAX_EXPORT __attribute__((visibility("default")))

namespace {

// ---------------------------------------------------------------------------
// Thread pool.

struct Job {
  std::function<void(int64_t)> fn;
  int64_t n = 0;
  std::atomic<int64_t> next{0};
  std::atomic<int64_t> done{0};
  std::mutex mu;
  std::condition_variable cv;

  // Runs chunks until none is left; returns once this thread has no more work.
  void Work() {
    for (;;) {
      int64_t i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= n) return;
      fn(i);
      if (done.fetch_add(1, std::memory_order_acq_rel) + 1 == n) {
        std::lock_guard<std::mutex> lock(mu);
        cv.notify_all();
      }
    }
  }
};

class Pool {
 public:
  explicit Pool(int num_threads) : num_threads_(std::max(1, num_threads)) {
    for (int i = 1; i < num_threads_; ++i) {
      workers_.emplace_back([this] { Loop(); });
    }
  }

  ~Pool() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  int num_threads() const { return num_threads_; }

  // Calls fn(0..n-1) across the pool and the calling thread; blocks until all
  // calls returned.
  void ParallelFor(int64_t n, std::function<void(int64_t)> fn) {
    if (n <= 0) return;
    if (n == 1 || workers_.empty()) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    auto job = std::make_shared<Job>();
    job->fn = std::move(fn);
    job->n = n;
    {
      std::lock_guard<std::mutex> lock(mu_);
      queue_.push_back(job);
      ++generation_;
    }
    cv_.notify_all();
    job->Work();
    {
      std::unique_lock<std::mutex> lock(job->mu);
      job->cv.wait(lock, [&] {
        return job->done.load(std::memory_order_acquire) == job->n;
      });
    }
    Remove(job);
  }

 private:
  void Remove(const std::shared_ptr<Job>& job) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = std::find(queue_.begin(), queue_.end(), job);
    if (it != queue_.end()) queue_.erase(it);
  }

  void Loop() {
    for (;;) {
      std::shared_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return stop_ || !queue_.empty(); });
        if (stop_) return;
        // Skip jobs whose chunks are all taken; their callers remove them.
        for (auto& j : queue_) {
          if (j->next.load(std::memory_order_relaxed) < j->n) {
            job = j;
            break;
          }
        }
        if (!job) {
          // Every queued job is fully claimed: sleep until a new one arrives.
          const uint64_t gen = generation_;
          cv_.wait(lock, [&] { return stop_ || generation_ != gen; });
          continue;
        }
      }
      job->Work();
    }
  }

  const int num_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> queue_;
  uint64_t generation_ = 0;  // jobs pushed so far
  bool stop_ = false;
};

int DefaultThreads() {
  const char* env = std::getenv("MMJAX_KERNEL_THREADS");
  if (env != nullptr && std::atoi(env) > 0) return std::atoi(env);
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

std::mutex g_pool_mu;
std::shared_ptr<Pool> g_pool;

// A call keeps its pool alive even if the thread count changes meanwhile.
std::shared_ptr<Pool> GetPool() {
  std::lock_guard<std::mutex> lock(g_pool_mu);
  if (!g_pool) g_pool = std::make_shared<Pool>(DefaultThreads());
  return g_pool;
}

// ---------------------------------------------------------------------------
// Row kernels. A column block of DB floats stays in registers while the row's
// edges stream past; DB = 64 is 8 AVX2 or 4 AVX-512 accumulators.

#ifndef MMJAX_PREFETCH_DISTANCE
#define MMJAX_PREFETCH_DISTANCE 8
#endif
#ifndef MMJAX_PREFETCH_LOCALITY
#define MMJAX_PREFETCH_LOCALITY 1
#endif
// Edges ahead whose X rows are prefetched, and the cache level hint.
constexpr int kPrefetch = MMJAX_PREFETCH_DISTANCE;
constexpr int kLocality = MMJAX_PREFETCH_LOCALITY;

template <int DB, bool kPerm>
inline void RowBlock(const int32_t* cols, const float* w, const int32_t* perm,
                     int64_t kb, int64_t ke, const float* x, int64_t d,
                     int64_t c0, float* y) {
  float acc[DB];
  for (int j = 0; j < DB; ++j) acc[j] = 0.f;
  for (int64_t k = kb; k < ke; ++k) {
    if (k + kPrefetch < ke) {
      const char* p = reinterpret_cast<const char*>(
          x + static_cast<int64_t>(cols[k + kPrefetch]) * d + c0);
      for (int b = 0; b < DB * 4; b += 64) {
        __builtin_prefetch(p + b, 0, kLocality);
      }
      // The transposed CSR reads its values at random: fetch them early too.
      if (kPerm) __builtin_prefetch(w + perm[k + kPrefetch], 0, kLocality);
    }
    const float wk = kPerm ? w[perm[k]] : w[k];
    const float* xr = x + static_cast<int64_t>(cols[k]) * d + c0;
    for (int j = 0; j < DB; ++j) acc[j] += wk * xr[j];
  }
  std::memcpy(y + c0, acc, sizeof(acc));
}

template <bool kPerm>
inline void RowTail(const int32_t* cols, const float* w, const int32_t* perm,
                    int64_t kb, int64_t ke, const float* x, int64_t d,
                    int64_t c0, float* y) {
  for (int64_t j = c0; j < d; ++j) y[j] = 0.f;
  for (int64_t k = kb; k < ke; ++k) {
    const float wk = kPerm ? w[perm[k]] : w[k];
    const float* xr = x + static_cast<int64_t>(cols[k]) * d;
    for (int64_t j = c0; j < d; ++j) y[j] += wk * xr[j];
  }
}

template <bool kPerm>
void SpmmRows(const int32_t* indptr, const int32_t* cols, const float* w,
              const int32_t* perm, const float* x, int64_t d, int64_t r0,
              int64_t r1, float* y /* row r0 */) {
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t kb = indptr[r], ke = indptr[r + 1];
    float* yr = y + (r - r0) * d;
    int64_t c0 = 0;
    for (; c0 + 64 <= d; c0 += 64)
      RowBlock<64, kPerm>(cols, w, perm, kb, ke, x, d, c0, yr);
    if (c0 + 32 <= d) {
      RowBlock<32, kPerm>(cols, w, perm, kb, ke, x, d, c0, yr);
      c0 += 32;
    }
    if (c0 + 16 <= d) {
      RowBlock<16, kPerm>(cols, w, perm, kb, ke, x, d, c0, yr);
      c0 += 16;
    }
    if (c0 + 8 <= d) {
      RowBlock<8, kPerm>(cols, w, perm, kb, ke, x, d, c0, yr);
      c0 += 8;
    }
    if (c0 < d) RowTail<kPerm>(cols, w, perm, kb, ke, x, d, c0, yr);
  }
}

// Dot products of one receiver row's G block with each edge's X block.
template <int DB>
inline void DotBlock(const int32_t* cols, int64_t kb, int64_t ke,
                     const float* gr, const float* x, int64_t d, int64_t c0,
                     float* out /* edge kb */) {
  float g[DB];
  for (int j = 0; j < DB; ++j) g[j] = gr[c0 + j];
  for (int64_t k = kb; k < ke; ++k) {
    if (k + kPrefetch < ke) {
      const char* p = reinterpret_cast<const char*>(
          x + static_cast<int64_t>(cols[k + kPrefetch]) * d + c0);
      for (int b = 0; b < DB * 4; b += 64) {
        __builtin_prefetch(p + b, 0, kLocality);
      }
    }
    const float* xr = x + static_cast<int64_t>(cols[k]) * d + c0;
    // Eight partial sums so the reduction vectorises without reassociating
    // beyond what a fixed tree order gives (results do not depend on threads).
    float part[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int j = 0; j < DB; j += 8)
      for (int t = 0; t < 8; ++t) part[t] += g[j + t] * xr[j + t];
    out[k - kb] += ((part[0] + part[4]) + (part[1] + part[5])) +
                   ((part[2] + part[6]) + (part[3] + part[7]));
  }
}

void EdgeDotRange(const int32_t* indptr, int64_t n, const int32_t* cols,
                  const float* g, const float* x, int64_t d, int64_t e0,
                  int64_t e1, float* out /* edge e0 */) {
  std::fill(out, out + (e1 - e0), 0.f);
  // First row whose edge range reaches past e0.
  int64_t r = std::upper_bound(indptr, indptr + n + 1, e0) - indptr - 1;
  for (; r < n && indptr[r] < e1; ++r) {
    const int64_t kb = std::max<int64_t>(indptr[r], e0);
    const int64_t ke = std::min<int64_t>(indptr[r + 1], e1);
    if (kb >= ke) continue;
    const float* gr = g + r * d;
    float* o = out + (kb - e0);
    int64_t c0 = 0;
    for (; c0 + 64 <= d; c0 += 64) DotBlock<64>(cols, kb, ke, gr, x, d, c0, o);
    if (c0 + 32 <= d) {
      DotBlock<32>(cols, kb, ke, gr, x, d, c0, o);
      c0 += 32;
    }
    if (c0 + 16 <= d) {
      DotBlock<16>(cols, kb, ke, gr, x, d, c0, o);
      c0 += 16;
    }
    if (c0 + 8 <= d) {
      DotBlock<8>(cols, kb, ke, gr, x, d, c0, o);
      c0 += 8;
    }
    if (c0 < d) {
      for (int64_t k = kb; k < ke; ++k) {
        const float* xr = x + static_cast<int64_t>(cols[k]) * d;
        float s = 0.f;
        for (int64_t j = c0; j < d; ++j) s += gr[j] * xr[j];
        o[k - kb] += s;
      }
    }
  }
}

// The backward pass in one sweep over A^T: for row s of A^T (sender s of A),
// dx[s] = sum_k w[perm[k]] g[t_cols[k]] and, reading the same g row,
// dw[perm[k]] = <g[t_cols[k]], x[s]>. Each edge has one slot, so the scattered
// dw writes never collide.
template <int DB>
inline void FusedBlock(const int32_t* tcols, const int32_t* perm,
                       const float* w, int64_t kb, int64_t ke, const float* g,
                       const float* xs, int64_t d, int64_t c0, bool first,
                       float* dx, float* dw) {
  float acc[DB];
  float xv[DB];
  for (int j = 0; j < DB; ++j) {
    acc[j] = 0.f;
    xv[j] = xs[c0 + j];
  }
  for (int64_t k = kb; k < ke; ++k) {
    if (k + kPrefetch < ke) {
      const char* p = reinterpret_cast<const char*>(
          g + static_cast<int64_t>(tcols[k + kPrefetch]) * d + c0);
      for (int b = 0; b < DB * 4; b += 64) {
        __builtin_prefetch(p + b, 0, kLocality);
      }
      __builtin_prefetch(w + perm[k + kPrefetch], 0, kLocality);
      __builtin_prefetch(dw + perm[k + kPrefetch], 1, kLocality);
    }
    const int32_t e = perm[k];
    const float we = w[e];
    const float* gr = g + static_cast<int64_t>(tcols[k]) * d + c0;
    float part[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    for (int j = 0; j < DB; j += 8) {
      for (int t = 0; t < 8; ++t) {
        acc[j + t] += we * gr[j + t];
        part[t] += gr[j + t] * xv[j + t];
      }
    }
    const float dot = ((part[0] + part[4]) + (part[1] + part[5])) +
                      ((part[2] + part[6]) + (part[3] + part[7]));
    dw[e] = first ? dot : dw[e] + dot;
  }
  std::memcpy(dx + c0, acc, sizeof(acc));
}

void FusedRows(const int32_t* tindptr, const int32_t* tcols,
               const int32_t* perm, const float* w, const float* g,
               const float* x, int64_t d, int64_t r0, int64_t r1, float* dx,
               float* dw) {
  for (int64_t s = r0; s < r1; ++s) {
    const int64_t kb = tindptr[s], ke = tindptr[s + 1];
    const float* xs = x + s * d;
    float* dxs = dx + s * d;
    int64_t c0 = 0;
    for (; c0 + 64 <= d; c0 += 64) {
      FusedBlock<64>(tcols, perm, w, kb, ke, g, xs, d, c0, c0 == 0, dxs, dw);
    }
    if (c0 + 32 <= d) {
      FusedBlock<32>(tcols, perm, w, kb, ke, g, xs, d, c0, c0 == 0, dxs, dw);
      c0 += 32;
    }
    if (c0 + 16 <= d) {
      FusedBlock<16>(tcols, perm, w, kb, ke, g, xs, d, c0, c0 == 0, dxs, dw);
      c0 += 16;
    }
    if (c0 + 8 <= d) {
      FusedBlock<8>(tcols, perm, w, kb, ke, g, xs, d, c0, c0 == 0, dxs, dw);
      c0 += 8;
    }
    if (c0 < d) {
      const bool first = c0 == 0;
      for (int64_t j = c0; j < d; ++j) dxs[j] = 0.f;
      for (int64_t k = kb; k < ke; ++k) {
        const int32_t e = perm[k];
        const float* gr = g + static_cast<int64_t>(tcols[k]) * d;
        float dot = 0.f;
        for (int64_t j = c0; j < d; ++j) {
          dxs[j] += w[e] * gr[j];
          dot += gr[j] * xs[j];
        }
        dw[e] = first ? dot : dw[e] + dot;
      }
    }
  }
}

// Cost of rows [0, r) in the row range's units: non-zeros plus one per row.
inline int64_t RowCost(const int32_t* indptr, int64_t r) {
  return static_cast<int64_t>(indptr[r]) + r;
}

// Splits rows [r0, r1) into `parts` ranges of about equal RowCost.
std::vector<int64_t> BalancedRows(const int32_t* indptr, int64_t r0,
                                  int64_t r1, int64_t parts) {
  std::vector<int64_t> bounds(parts + 1);
  const int64_t c0 = RowCost(indptr, r0), c1 = RowCost(indptr, r1);
  bounds[0] = r0;
  for (int64_t p = 1; p < parts; ++p) {
    const int64_t target = c0 + (c1 - c0) * p / parts;
    int64_t lo = bounds[p - 1], hi = r1;  // first r with cost >= target
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (RowCost(indptr, mid) < target) lo = mid + 1; else hi = mid;
    }
    bounds[p] = lo;
  }
  bounds[parts] = r1;
  return bounds;
}

int64_t NumChunks(int64_t work, int threads) {
  // A few chunks per thread absorb uneven progress; tiny problems stay whole.
  int64_t chunks = static_cast<int64_t>(threads) * 4;
  return std::max<int64_t>(1, std::min<int64_t>(chunks, work / 4096 + 1));
}

ffi::Error SpmmImpl(ffi::Buffer<ffi::S32> indptr, ffi::Buffer<ffi::S32> cols,
                    ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::S32> perm,
                    ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::S32> row0,
                    ffi::ResultBuffer<ffi::F32> y) {
  auto xd = x.dimensions();
  auto yd = y->dimensions();
  if (xd.size() != 2 || yd.size() != 2 || xd[1] != yd[1]) {
    return ffi::Error::InvalidArgument("mmjax_spmm: x [N, D], y [R, D]");
  }
  const int64_t n = indptr.element_count() - 1;
  const int64_t d = xd[1];
  const int64_t rows = yd[0];
  if (xd[0] != n) {
    return ffi::Error::InvalidArgument("mmjax_spmm: x rows != N");
  }
  const bool has_perm = perm.element_count() > 0;
  if (has_perm && perm.element_count() != cols.element_count()) {
    return ffi::Error::InvalidArgument("mmjax_spmm: perm must match cols");
  }
  const int64_t r0 =
      std::min<int64_t>(std::max<int64_t>(row0.typed_data()[0], 0), n);
  const int64_t r1 = std::min<int64_t>(r0 + rows, n);
  float* out = y->typed_data();
  // Rows of the block past the matrix (padding for equal device blocks).
  if (r1 - r0 < rows) {
    std::fill(out + (r1 - r0) * d, out + rows * d, 0.f);
  }
  if (r1 <= r0) return ffi::Error::Success();
  const int32_t* ip = indptr.typed_data();
  const int32_t* cp = cols.typed_data();
  const float* wp = w.typed_data();
  const int32_t* pp = perm.typed_data();
  const float* xp = x.typed_data();
  std::shared_ptr<Pool> pool = GetPool();
  const int64_t work =
      (RowCost(ip, r1) - RowCost(ip, r0)) * std::max<int64_t>(d / 16, 1);
  const int64_t chunks = NumChunks(work, pool->num_threads());
  std::vector<int64_t> bounds = BalancedRows(ip, r0, r1, chunks);
  pool->ParallelFor(chunks, [&](int64_t c) {
    const int64_t a = bounds[c], b = bounds[c + 1];
    if (a >= b) return;
    if (has_perm) {
      SpmmRows<true>(ip, cp, wp, pp, xp, d, a, b, out + (a - r0) * d);
    } else {
      SpmmRows<false>(ip, cp, wp, pp, xp, d, a, b, out + (a - r0) * d);
    }
  });
  return ffi::Error::Success();
}

ffi::Error EdgeDotImpl(ffi::Buffer<ffi::S32> indptr, ffi::Buffer<ffi::S32> cols,
                       ffi::Buffer<ffi::F32> g, ffi::Buffer<ffi::F32> x,
                       ffi::Buffer<ffi::S32> edge0,
                       ffi::ResultBuffer<ffi::F32> out) {
  auto xd = x.dimensions();
  auto gd = g.dimensions();
  const int64_t n = indptr.element_count() - 1;
  if (xd.size() != 2 || gd.size() != 2 || xd[0] != n || gd[0] != n ||
      xd[1] != gd[1]) {
    return ffi::Error::InvalidArgument("mmjax_edge_dot: g, x [N, D]");
  }
  const int64_t d = xd[1];
  const int64_t num_edges = cols.element_count();
  const int64_t block = out->element_count();
  const int64_t e0 = std::min<int64_t>(
      std::max<int64_t>(edge0.typed_data()[0], 0), num_edges);
  const int64_t e1 = std::min<int64_t>(e0 + block, num_edges);
  float* o = out->typed_data();
  if (e1 - e0 < block) std::fill(o + (e1 - e0), o + block, 0.f);
  if (e1 <= e0) return ffi::Error::Success();
  const int32_t* ip = indptr.typed_data();
  const int32_t* cp = cols.typed_data();
  const float* gp = g.typed_data();
  const float* xp = x.typed_data();
  std::shared_ptr<Pool> pool = GetPool();
  const int64_t chunks = NumChunks((e1 - e0) * std::max<int64_t>(d / 16, 1),
                                   pool->num_threads());
  pool->ParallelFor(chunks, [&](int64_t c) {
    const int64_t a = e0 + (e1 - e0) * c / chunks;
    const int64_t b = e0 + (e1 - e0) * (c + 1) / chunks;
    if (a < b) EdgeDotRange(ip, n, cp, gp, xp, d, a, b, o + (a - e0));
  });
  return ffi::Error::Success();
}


ffi::Error SpmmTDwImpl(ffi::Buffer<ffi::S32> tindptr,
                       ffi::Buffer<ffi::S32> tcols, ffi::Buffer<ffi::S32> perm,
                       ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> g,
                       ffi::Buffer<ffi::F32> x, ffi::ResultBuffer<ffi::F32> dx,
                       ffi::ResultBuffer<ffi::F32> dw) {
  auto xd = x.dimensions();
  auto gd = g.dimensions();
  const int64_t n = tindptr.element_count() - 1;
  const int64_t num_edges = tcols.element_count();
  if (xd.size() != 2 || gd.size() != 2 || xd[0] != n || gd[0] != n ||
      xd[1] != gd[1] || perm.element_count() != num_edges ||
      dw->element_count() != num_edges) {
    return ffi::Error::InvalidArgument(
        "mmjax_spmm_t_dw: g, x [N, D]; perm, dw [E]");
  }
  const int64_t d = xd[1];
  if (n == 0) return ffi::Error::Success();
  const int32_t* ip = tindptr.typed_data();
  std::shared_ptr<Pool> pool = GetPool();
  const int64_t chunks = NumChunks(
      RowCost(ip, n) * std::max<int64_t>(d / 16, 1), pool->num_threads());
  std::vector<int64_t> bounds = BalancedRows(ip, 0, n, chunks);
  pool->ParallelFor(chunks, [&](int64_t c) {
    if (bounds[c] < bounds[c + 1]) {
      FusedRows(ip, tcols.typed_data(), perm.typed_data(), w.typed_data(),
                g.typed_data(), x.typed_data(), d, bounds[c], bounds[c + 1],
                dx->typed_data(), dw->typed_data());
    }
  });
  return ffi::Error::Success();
}

}  // namespace

// Declared first so that the symbols stay visible under -fvisibility=hidden.
extern "C" MMJAX_EXPORT XLA_FFI_Error* MmjaxSpmm(XLA_FFI_CallFrame* frame);
extern "C" MMJAX_EXPORT XLA_FFI_Error* MmjaxEdgeDot(XLA_FFI_CallFrame* frame);
extern "C" MMJAX_EXPORT XLA_FFI_Error* MmjaxSpmmTDw(XLA_FFI_CallFrame* frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(MmjaxSpmm, SpmmImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // indptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // cols
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::S32>>()  // perm
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::S32>>()  // row0
                                  .Ret<ffi::Buffer<ffi::F32>>());  // y

XLA_FFI_DEFINE_HANDLER_SYMBOL(MmjaxEdgeDot, EdgeDotImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // indptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // cols
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::S32>>()  // edge0
                                  .Ret<ffi::Buffer<ffi::F32>>());  // out

XLA_FFI_DEFINE_HANDLER_SYMBOL(MmjaxSpmmTDw, SpmmTDwImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_indptr
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_cols
                                  .Arg<ffi::Buffer<ffi::S32>>()  // t_perm
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::F32>>()  // g
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Ret<ffi::Buffer<ffi::F32>>()  // dx
                                  .Ret<ffi::Buffer<ffi::F32>>());  // dw

// The pool, for the library's other kernels (topk.cc): one set of threads
// for every handler, at the one setting below. Not exported.
namespace mmjax_kernel {

int PoolThreads() { return GetPool()->num_threads(); }

void ParallelFor(int64_t n, std::function<void(int64_t)> fn) {
  GetPool()->ParallelFor(n, std::move(fn));
}

}  // namespace mmjax_kernel

extern "C" {

// Threads used by later calls (the pool is rebuilt; call between steps).
MMJAX_EXPORT void mmjax_set_num_threads(int n) {
  auto pool = std::make_shared<Pool>(n > 0 ? n : DefaultThreads());
  std::lock_guard<std::mutex> lock(g_pool_mu);
  g_pool.swap(pool);
}

MMJAX_EXPORT int mmjax_num_threads() { return GetPool()->num_threads(); }

}  // extern "C"

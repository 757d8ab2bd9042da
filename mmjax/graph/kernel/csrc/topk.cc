// Top K per row with seeded ties, for full-ranking evaluation, via the XLA FFI.
//
// mmjax_top_k: for float32 scores [R, N], the K best items of each row as
// values float32 [R, K] and indices int32 [R, K], ordered by
//   (score descending, then position ascending),
// where item i's position in row r is (rank[i] - shift[r]) mod N: its index
// in the row's cyclically shifted random item order (`perm`, its inverse
// `rank`, and `shift` come from mmjax/eval/ranking.py). That is the order in
// which `_top_k_exact` there hands the permuted scores to `lax.top_k`, which
// prefers lower indices among equal values, so the two agree bitwise.
//
// Scores compare as `lax.top_k` compares them on XLA:CPU: by their bits in
// IEEE total order (-NaN < -inf < ... < 0.0 < ... < inf < NaN, NaNs by
// payload), not by float comparison, so NaN lands where the exact path puts
// it; the values returned are the input's bits. One exception, the
// evaluation's rule that equal scores tie: -0.0 is read (and returned) as
// 0.0, as ranking.py's `where(scores == 0, 0.0, scores)` makes it before
// `lax.top_k`. Doing it here spares the evaluation that pass, whose fresh
// [U_b, I] buffer cost more (page faults) than the selection itself.
//
// Per row, in two passes (SelectRow): the best key of every block of 16
// scores gives a lower bound on the row's k-th best key, so only the few
// blocks that reach it are read again; their qualifying items are packed
// into uint64s (smaller for a better item) in a buffer that is cut back to
// the best k with nth_element whenever it fills, which raises the bound.
// O(N + C) per row for C candidates (about k to 2k for scores in no
// particular order); the buffers are per thread and reused across calls.
// At [1024, 7050], K = 50 on one core of a loaded 2-core EPYC: about 8 ms,
// against 24 ms for a plain `lax.top_k` and 70 ms for the permuted exact
// path.
//
// Rows are split into chunks run on spmm.cc's thread pool (one pool for the
// library, sized by MMJAX_KERNEL_THREADS or `set_num_threads`).

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

#define MMJAX_EXPORT __attribute__((visibility("default")))

// Defined in spmm.cc (same library): its thread pool, which runs the calling
// thread too, so concurrent calls from several virtual devices progress.
namespace mmjax_kernel {
int PoolThreads();
void ParallelFor(int64_t n, std::function<void(int64_t)> fn);
}  // namespace mmjax_kernel

namespace {

// ---------------------------------------------------------------------------
// Selection.

// The float's bits as an int32 that orders like IEEE total order, which is
// how XLA:CPU's TopK compares (negative floats have their magnitude bits
// flipped), except that -0.0 (key -1) gets 0.0's key 0.
inline int32_t OrderKey(float v) {
  int32_t b;
  std::memcpy(&b, &v, sizeof(b));
  const int32_t key = b ^ ((b >> 31) & 0x7FFFFFFF);
  return key + (key == -1);
}

// One uint64 per item, smaller for a better item: the score key inverted in
// the high half, the position in the low half (positions are distinct, so
// so are the packed keys).
inline uint64_t Pack(int32_t key, uint32_t pos) {
  const uint32_t hi = ~(static_cast<uint32_t>(key) ^ 0x80000000u);
  return (static_cast<uint64_t>(hi) << 32) | pos;
}

inline int32_t KeyOf(uint64_t packed) {
  return static_cast<int32_t>(~static_cast<uint32_t>(packed >> 32) ^
                              0x80000000u);
}

constexpr int64_t kBlock = 16;

inline int64_t NumBlocks(int64_t n) { return (n + kBlock - 1) / kBlock; }

// Candidates kept per row before they are cut back to the best k.
inline int64_t BufferSize(int64_t k) { return std::max<int64_t>(4 * k, 256); }

// Per-thread scratch, reused across rows and calls: candidates and the
// row's block maxima.
struct Scratch {
  std::vector<uint64_t> cand;
  std::vector<int32_t> block_max;
  std::vector<int32_t> order;

  void Reserve(int64_t n, int64_t k) {
    if (static_cast<int64_t>(cand.size()) < BufferSize(k)) {
      cand.resize(BufferSize(k));
    }
    if (static_cast<int64_t>(block_max.size()) < NumBlocks(n)) {
      block_max.resize(NumBlocks(n));
      order.resize(NumBlocks(n));
    }
  }
};

// The k best items of one row (1 <= k <= n), written in order to out_v and
// out_i.
//
// Two passes. The first takes the best key of every block of 16 scores
// (vectorised): the k-th best of those block maxima, t, is a lower bound on
// the row's k-th best key (k blocks reach t, so k items do), so only blocks
// whose maximum reaches t can hold a top item, about k of them for scores
// in no particular order. The second pass visits those blocks and keeps the
// items reaching the current threshold in a buffer, cut back to the best k
// (nth_element) whenever it fills; the threshold is then the k-th best
// candidate. Ties at the threshold are settled by position, so a row of
// equal scores keeps only the items that beat the k-th best position seen.
void SelectRow(const float* row, int64_t n, int64_t k, const int32_t* perm,
               const int32_t* rank, int64_t shift, Scratch& scratch,
               float* out_v, int32_t* out_i) {
  const int64_t nb = NumBlocks(n);
  int32_t* bmax = scratch.block_max.data();
  for (int64_t b = 0; b + 1 < nb; ++b) {
    const float* x = row + b * kBlock;
    int32_t best = OrderKey(x[0]);
    for (int64_t j = 1; j < kBlock; ++j) best = std::max(best, OrderKey(x[j]));
    bmax[b] = best;
  }
  {
    int32_t best = OrderKey(row[(nb - 1) * kBlock]);
    for (int64_t i = (nb - 1) * kBlock + 1; i < n; ++i) {
      best = std::max(best, OrderKey(row[i]));
    }
    bmax[nb - 1] = best;
  }
  int32_t thr_key = std::numeric_limits<int32_t>::min();
  if (k <= nb) {
    int32_t* order = scratch.order.data();
    std::copy(bmax, bmax + nb, order);
    std::nth_element(order, order + (k - 1), order + nb,
                     std::greater<int32_t>());
    thr_key = order[k - 1];
  }
  uint64_t* buf = scratch.cand.data();
  const int64_t cap = BufferSize(k);
  int64_t size = 0;
  // The k-th best candidate once the buffer was first cut; until then every
  // item reaching thr_key qualifies.
  uint64_t thr = ~uint64_t{0};
  for (int64_t b = 0; b < nb; ++b) {
    if (bmax[b] < thr_key) continue;
    const int64_t end = std::min(n, (b + 1) * kBlock);
    for (int64_t i = b * kBlock; i < end; ++i) {
      const int32_t key = OrderKey(row[i]);
      if (key < thr_key) continue;
      int64_t pos = static_cast<int64_t>(rank[i]) - shift;
      if (pos < 0) pos += n;
      const uint64_t packed = Pack(key, static_cast<uint32_t>(pos));
      if (packed >= thr) continue;
      buf[size++] = packed;
      if (size == cap) {
        std::nth_element(buf, buf + (k - 1), buf + cap);
        thr = buf[k - 1];
        thr_key = KeyOf(thr);
        size = k;
      }
    }
  }
  // size >= k: at least k items reach the first threshold, and a cut keeps k.
  if (size > k) std::nth_element(buf, buf + (k - 1), buf + size);
  std::sort(buf, buf + k);
  for (int64_t j = 0; j < k; ++j) {
    const int64_t pos = static_cast<int64_t>(buf[j] & 0xFFFFFFFFu);
    int64_t at = pos + shift;
    if (at >= n) at -= n;
    const int32_t item = perm[at];
    const float v = row[item];
    out_i[j] = item;
    out_v[j] = v == 0.0f ? 0.0f : v;  // -0.0 as 0.0
  }
}

ffi::Error TopKImpl(ffi::Buffer<ffi::F32> scores, ffi::Buffer<ffi::S32> perm,
                    ffi::Buffer<ffi::S32> rank, ffi::Buffer<ffi::S32> shift,
                    ffi::ResultBuffer<ffi::F32> values,
                    ffi::ResultBuffer<ffi::S32> indices) {
  auto sd = scores.dimensions();
  auto vd = values->dimensions();
  auto id = indices->dimensions();
  if (sd.size() != 2 || vd.size() != 2 || id.size() != 2 || vd[0] != sd[0] ||
      id[0] != sd[0] || vd[1] != id[1]) {
    return ffi::Error::InvalidArgument(
        "mmjax_top_k: scores [R, N], values and indices [R, K]");
  }
  const int64_t r = sd[0], n = sd[1], k = vd[1];
  if (k > n) {
    return ffi::Error::InvalidArgument("mmjax_top_k: K > N");
  }
  if (perm.element_count() != n || rank.element_count() != n ||
      shift.element_count() != r) {
    return ffi::Error::InvalidArgument(
        "mmjax_top_k: perm and rank [N], shift [R]");
  }
  if (r == 0 || k == 0) return ffi::Error::Success();
  const float* sp = scores.typed_data();
  const int32_t* pp = perm.typed_data();
  const int32_t* rp = rank.typed_data();
  const int32_t* shp = shift.typed_data();
  float* vp = values->typed_data();
  int32_t* ip = indices->typed_data();
  // A few chunks per thread absorb uneven rows; small calls stay whole.
  const int64_t chunks = std::max<int64_t>(
      1, std::min<int64_t>({static_cast<int64_t>(mmjax_kernel::PoolThreads()) * 4,
                            r, r * n / 65536 + 1}));
  mmjax_kernel::ParallelFor(chunks, [&](int64_t c) {
    // Reused across calls on this thread: no allocation once it is large
    // enough for the largest N and K seen.
    thread_local Scratch scratch;
    scratch.Reserve(n, k);
    const int64_t a = r * c / chunks, b = r * (c + 1) / chunks;
    for (int64_t row = a; row < b; ++row) {
      // The shift mod N, as the exact path's `%` (floor) takes it.
      int64_t s = static_cast<int64_t>(shp[row]) % n;
      if (s < 0) s += n;
      SelectRow(sp + row * n, n, k, pp, rp, s, scratch, vp + row * k,
                ip + row * k);
    }
  });
  return ffi::Error::Success();
}

}  // namespace

extern "C" MMJAX_EXPORT XLA_FFI_Error* MmjaxTopK(XLA_FFI_CallFrame* frame);

XLA_FFI_DEFINE_HANDLER_SYMBOL(MmjaxTopK, TopKImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // scores
                                  .Arg<ffi::Buffer<ffi::S32>>()  // perm
                                  .Arg<ffi::Buffer<ffi::S32>>()  // rank
                                  .Arg<ffi::Buffer<ffi::S32>>()  // shift
                                  .Ret<ffi::Buffer<ffi::F32>>()  // values
                                  .Ret<ffi::Buffer<ffi::S32>>());  // indices

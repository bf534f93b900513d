// sais.hpp — suffix array construction by induced sorting (SA-IS).
//
// Algorithm: Nong, Zhang & Chan, "Two Efficient Algorithms for Linear Time
// Suffix Array Construction" (2009). The text is compared with a virtual
// sentinel at its end that is smaller than every symbol.
//
//   suffix_array(T, n, K, SA)   T: symbols in [0, K); SA: n entries (signed Idx)
//
// Time O(n) per level (levels shrink by at least half), so O(n) overall;
// on bytes, level 0 names its LMS substrings by hashing (expected O(n); the
// exact sort of distinct substrings longer than 7 bytes that share their
// first 8 is a comparison sort, O(n log n) only on contrived input).
// Space: the SA itself (n * sizeof(Idx)), one type bit per symbol per level,
// and bucket arrays of K entries at level 0 (K <= 2^32 is the caller's job to
// keep small: remap sparse alphabets first). Recursive levels keep their
// reduced string and buckets inside the SA's free space whenever it fits, as
// does the byte level's hash table (else it falls back to induction).
//
// Engineering: the induce loops prefetch the text ahead of the scan (the scan
// reads SA sequentially but T at random), and L/S-type information is carried
// in the sign of SA entries, so the hot loops touch no type bitmap.
// With large alphabets the bucket pointers are prefetched too. Types are
// classified 64 positions at a time (SSE2 compares, a parallel prefix for
// runs of equal symbols). Stage 3 moves the sorted LMS suffixes to their
// buckets as blocks (they come grouped by first symbol): no text reads.
// Construction is single-threaded; three attempts at a second thread were
// measured on the 2-core development VM (100 MB of English bytes) and not
// kept. (1) A helper that precomputed the scans' text reads a few blocks
// ahead gained nothing: it could not run ahead of a scan that prefetches.
// (2) A two-thread induced sort (git branch `psais`, 493f2c1: the helper, at
// idle priority, works ahead of each scan in 2048-entry chunks, does its
// text reads and bucket stores, and the main thread takes over any chunk
// not ready within 3 us, so it never waits on a descheduled helper; exact
// for every timing under TSan and differential tests) ran at the speed of
// one thread: quiet medians 22.5 vs 22.4 and 19.6 vs 20.3 MB/s (1 vs 2
// threads, 10 alternating pairs each; the final inductions 2-11% faster),
// and equal with the other core busy. The scans store into SA just ahead of
// where they read, so a split scan turns own-L2 hits into cross-core line
// transfers (a thread that merely read SA lines ahead of a scan doubled its
// cost per entry here); the helper's share alone cost ~9-10 ns per entry
// against 5.9 ns for a whole sequential step. (3) Sorting the two halves of
// the text concurrently and merging them (git branch `halves`, 9190faa:
// SA-IS of each half on its own core, the first half's tail suffixes fixed
// by whole-text comparisons, then every second-half suffix ranked among the
// first half's by backward steps over the first half's BWT with a byte rank
// directory, 16 chains in flight per thread; exact on 20,000 differential
// inputs) was slower than one thread: 7.1 / 6.2 / 6.2 s against 5.7 / 6.0 /
// 4.8 s on 100 MB. The halves sort at 1.9x, but the merge's 50 M steps touch
// ~5 random cache lines each (~2.4 s on two threads) where this VM serves a
// random line per 14-24 ns per thread. The build pipeline uses the second
// core instead (shards built concurrently, checksums overlapped with
// construction).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <vector>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace infinigram {
namespace sais_detail {

/// One bit per position: 1 = S-type suffix.
class TypeBits {
public:
    explicit TypeBits(size_t n) : w_((n + 64) / 64, 0) {}
    void set(size_t i) { w_[i >> 6] |= uint64_t(1) << (i & 63); }
    void set_word(size_t k, uint64_t w) { w_[k] = w; }
    uint64_t word(size_t k) const { return w_[k]; }
    size_t words() const { return w_.size(); }
    bool s(size_t i) const { return (w_[i >> 6] >> (i & 63)) & 1; }
    /// i > 0 and i is S-type and i-1 is L-type.
    bool lms(size_t i) const { return i > 0 && s(i) && !s(i - 1); }
    /// Calls f(i) for every LMS position i, from the last to the first.
    template <class F>
    void for_each_lms_desc(F&& f) const {
        for (size_t k = w_.size(); k-- > 0;) {
            const uint64_t carry = k == 0 ? 1 : (w_[k - 1] >> 63);
            uint64_t b = w_[k] & ~((w_[k] << 1) | carry);
            while (b) {
                const int hi = 63 - __builtin_clzll(b);
                f(k * 64 + static_cast<size_t>(hi));
                b &= ~(uint64_t(1) << hi);
            }
        }
    }

    /// Writes every LMS position, ascending, to out[0, ...); returns the end.
    /// (A loop here rather than for_each_lms_desc with a lambda that
    /// advances a captured Idx counter: stores through an Idx* may alias
    /// that counter, so it would go through memory on every position.)
    template <class Idx>
    Idx* lms_positions(Idx* out) const {
        uint64_t below = 1;  // position 0 is never LMS
        for (size_t k = 0; k < w_.size(); ++k) {
            const uint64_t x = w_[k];
            uint64_t b = x & ~((x << 1) | below);
            below = x >> 63;
            const Idx base = static_cast<Idx>(k * 64);
            while (b) {
                *out++ = base + static_cast<Idx>(__builtin_ctzll(b));
                b &= b - 1;
            }
        }
        return out;
    }

private:
    std::vector<uint64_t> w_;
};

/// Called at stage boundaries with the finished fraction of the work in [0, 1].
using Tick = std::function<void(double)>;

/// Prefetch distance, in SA entries, of the induce scans' text reads (the
/// bucket pointers, with large alphabets, at half of it).
constexpr long kPrefetch = 128;

template <class Idx>
struct Buckets {
    Idx* cnt;   // K counts
    Idx* ptr;   // K working pointers
    Idx K;
    std::vector<Idx> own;

    Buckets(Idx K_, Idx* spare, size_t spare_len) : K(K_) {
        if (spare != nullptr && spare_len >= 2 * static_cast<size_t>(K)) {
            cnt = spare;
            ptr = spare + K;
        } else {
            own.assign(2 * static_cast<size_t>(K), 0);
            cnt = own.data();
            ptr = own.data() + K;
        }
    }
    void starts() {
        Idx s = 0;
        for (Idx c = 0; c < K; ++c) { ptr[c] = s; s += cnt[c]; }
    }
    void ends() {
        Idx s = 0;
        for (Idx c = 0; c < K; ++c) { s += cnt[c]; ptr[c] = s; }
    }
};

/// Induced sort: from the LMS entries placed at the ends of their buckets,
/// first all L-type suffixes (left-to-right scan), then all S-type suffixes
/// (right-to-left scan). Entry signs: during the L scan a non-negative entry j
/// asks to induce j-1 (which is L-type); a negative one (~j) means j-1 is
/// S-type and is left for the S scan, which flips it back (unless flip_s is
/// false: then the S-type LMS entries stay negative, which stage 1 uses).
/// The scans branch on the sign (measured faster here than branch-free code
/// with dummy writes, at a prefetch distance of 128 entries).
template <class Char, class Idx>
void induce(const Char* T, Idx* SA, Idx n, Buckets<Idx>& B, bool flip_s = true) {
    Idx* const ptr = B.ptr;
    const bool big = B.K > 4096;  // bucket pointers no longer fit in L1: prefetch them too
    constexpr Idx D = static_cast<Idx>(kPrefetch), H = D / 2;
    // ---- L-type suffixes, left to right.
    B.starts();
    const Idx last = n - 1;
    SA[ptr[T[last]]++] = (last > 0 && T[last - 1] < T[last]) ? ~last : last;
    for (Idx i = 0; i < n; ++i) {
        if (i + D < n) {
            const Idx f = SA[i + D];
            __builtin_prefetch(T + (f > 0 ? f - 1 : 0));
            if (big) {
                const Idx h = SA[i + H];
                if (h > 0) __builtin_prefetch(ptr + T[h - 1]);
            }
        }
        const Idx j = SA[i];
        SA[i] = ~j;
        if (j > 0) {
            const Idx p = j - 1;
            const Char c = T[p];
            SA[ptr[c]++] = (p > 0 && T[p - 1] < c) ? ~p : p;
        }
    }
    // ---- S-type suffixes, right to left.
    B.ends();
    for (Idx i = n - 1; i >= 0; --i) {
        if (i >= D) {
            const Idx f = SA[i - D];
            __builtin_prefetch(T + (f > 0 ? f - 1 : 0));
            if (big) {
                const Idx h = SA[i - H];
                if (h > 0) __builtin_prefetch(ptr + T[h - 1]);
            }
        }
        const Idx j = SA[i];
        if (j > 0) {
            const Idx p = j - 1;
            const Char c = T[p];
            SA[--ptr[c]] = (p == 0 || T[p - 1] > c) ? ~p : p;
        } else if (flip_s) {
            SA[i] = ~j;
        }
    }
}

/// Classifies every position (S = 1) into `t`; returns the number of LMS positions.
template <class Char, class Idx>
Idx classify(const Char* T, Idx n, TypeBits& t) {
    Idx m = 0;
    bool s_next = false;  // position n-1 is L-type (the sentinel is smaller)
    uint64_t word = 0;
    for (Idx i = n - 2; i >= 0; --i) {  // branch-free: T[i] == T[i+1] is a coin flip on real text
        const bool s = (T[i] < T[i + 1]) | ((T[i] == T[i + 1]) & s_next);
        m += static_cast<Idx>(s_next & !s);  // i+1 is LMS
        word |= uint64_t(s) << (i & 63);
        if ((i & 63) == 0) { t.set_word(static_cast<size_t>(i) >> 6, word); word = 0; }
        s_next = s;
    }
    return m;
}

#if defined(__SSE2__)
/// lt / eq masks of T[i] vs T[i+1] for the 64 positions from b (b[64] readable).
inline void compare_masks(const uint8_t* b, uint64_t& lt, uint64_t& eq) {
    lt = eq = 0;
    for (int c = 0; c < 4; ++c) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * c));
        const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16 * c + 1));
        const uint64_t e = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(x, y)));
        const uint64_t le = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(x, y), x)));
        eq |= e << (16 * c);
        lt |= (le & ~e) << (16 * c);
    }
}
/// The same for 4-byte symbols (compared unsigned: sign bits flipped).
template <class W>
inline void compare_masks4(const W* b, uint64_t& lt, uint64_t& eq) {
    lt = eq = 0;
    const __m128i flip = _mm_set1_epi32(static_cast<int>(0x80000000u));
    for (int c = 0; c < 16; ++c) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 4 * c));
        const __m128i y = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 4 * c + 1));
        const uint64_t e = static_cast<uint32_t>(_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(x, y))));
        const uint64_t l = static_cast<uint32_t>(_mm_movemask_ps(
            _mm_castsi128_ps(_mm_cmplt_epi32(_mm_xor_si128(x, flip), _mm_xor_si128(y, flip)))));
        eq |= e << (4 * c);
        lt |= l << (4 * c);
    }
}

/// classify() for 1- and 4-byte symbols, 64 positions at a time: SSE2
/// compares give the masks lt (T[i] < T[i+1]) and eq (T[i] == T[i+1]);
/// s[i] = lt[i] | (eq[i] & s[i+1]) then resolves within the word as a
/// parallel prefix (log steps).
template <class Char, class Idx>
Idx classify_simd(const Char* T, Idx n, TypeBits& t) {
    static_assert(sizeof(Char) == 1 || sizeof(Char) == 4, "1- or 4-byte symbols");
    const size_t full = (static_cast<size_t>(n) - 1) / 64;  // words [0, full): every i + 1 <= n - 1
    bool s_next = false;  // position n-1 is L-type
    uint64_t word = 0;
    for (Idx i = n - 2; i >= static_cast<Idx>(64 * full); --i) {
        const bool s = (T[i] < T[i + 1]) | ((T[i] == T[i + 1]) & s_next);
        word |= uint64_t(s) << (static_cast<size_t>(i) & 63);
        s_next = s;
    }
    t.set_word(full, word);
    uint64_t s_in = s_next;  // type of position 64 * (k + 1)
    for (size_t k = full; k-- > 0;) {
        uint64_t lt, eq;
        if constexpr (sizeof(Char) == 1) compare_masks(reinterpret_cast<const uint8_t*>(T + 64 * k), lt, eq);
        else compare_masks4(T + 64 * k, lt, eq);
        uint64_t g = lt | (eq & (s_in << 63)), p = eq;
        g |= p & (g >> 1);  p &= p >> 1;
        g |= p & (g >> 2);  p &= p >> 2;
        g |= p & (g >> 4);  p &= p >> 4;
        g |= p & (g >> 8);  p &= p >> 8;
        g |= p & (g >> 16); p &= p >> 16;
        g |= p & (g >> 32);
        t.set_word(k, g);
        s_in = g & 1;
    }
    Idx m = 0;
    uint64_t below = 1;  // position 0 is never LMS
    for (size_t k = 0; k < t.words(); ++k) {
        const uint64_t w = t.word(k);
        m += static_cast<Idx>(__builtin_popcountll(w & ~((w << 1) | below)));
        below = w >> 63;
    }
    return m;
}
#endif

/// T[a, a + len) == T[b, b + len) (both inside T). Substrings of at most 32
/// bytes (nearly all LMS substrings, also of 4-byte names) compare as four
/// masked words: no loop whose exit the branch predictor has to guess.
template <class Char, class Idx>
inline bool equal_substrings(const Char* T, Idx n, Idx a, Idx b, Idx len) {
    const size_t bytes = static_cast<size_t>(len) * sizeof(Char);
    const size_t limit = static_cast<size_t>(n) * sizeof(Char);
    if (bytes <= 32 && static_cast<size_t>(std::max(a, b)) * sizeof(Char) + 32 <= limit) {
        const unsigned char* x = reinterpret_cast<const unsigned char*>(T + a);
        const unsigned char* y = reinterpret_cast<const unsigned char*>(T + b);
        uint64_t diff = 0;
        for (size_t w = 0; w < 4; ++w) {  // unrolled; bytes past len are masked out (little-endian)
            uint64_t u, v;
            std::memcpy(&u, x + 8 * w, 8);
            std::memcpy(&v, y + 8 * w, 8);
            const size_t k = bytes > 8 * w ? std::min<size_t>(bytes - 8 * w, 8) : 0;
            const uint64_t mask = k == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * k)) - 1;
            diff |= (u ^ v) & mask;
        }
        return diff == 0;
    }
    return std::equal(T + a, T + a + len, T + b);
}

/// cnt[c] = occurrences of c in T[0, n) (cnt zeroed by the caller). Small
/// alphabets count into four interleaved histograms: runs of one symbol
/// would otherwise chain every increment through the same counter.
template <class Char, class Idx>
void count_symbols(const Char* T, Idx n, Idx K, Idx* cnt) {
    if (K > 4096) {
        for (Idx i = 0; i < n; ++i) ++cnt[T[i]];
        return;
    }
    std::vector<Idx> h(4 * static_cast<size_t>(K), 0);
    Idx i = 0;
    for (; i + 4 <= n; i += 4) {
        ++h[T[i]];
        ++h[static_cast<size_t>(K) + T[i + 1]];
        ++h[2 * static_cast<size_t>(K) + T[i + 2]];
        ++h[3 * static_cast<size_t>(K) + T[i + 3]];
    }
    for (; i < n; ++i) ++h[T[i]];
    for (Idx c = 0; c < K; ++c) cnt[c] = h[c] + h[K + c] + h[2 * K + c] + h[3 * K + c];
}

/// Stage 1 by induction: sorts the LMS substrings with the partial induced
/// sort, names them (0-based, in sorted order) and stores the reduced string
/// (the names in text order) in SA[n-m, n). Returns the number of names.
/// Leaves B.cnt intact.
template <class Char, class Idx>
Idx name_by_induction(const Char* T, Idx* SA, Idx n, Idx m, const TypeBits& t, Buckets<Idx>& B) {
    std::fill(SA, SA + n, Idx(0));
    B.ends();
    t.for_each_lms_desc([&](size_t i) { SA[--B.ptr[T[i]]] = static_cast<Idx>(i); });
    induce(T, SA, n, B, /*flip_s=*/false);

    // Compact the sorted LMS positions into SA[0, m). After the S scan without
    // flips, B.ptr[c] is the first slot of bucket c's S-type region, and the
    // LMS suffixes are exactly its negative entries (~p; ~0 is position 0).
    {
        Idx k = 0, end = 0;
        for (Idx c = 0; c < B.K; ++c) {
            const Idx begin = B.ptr[c];
            end += B.cnt[c];
            for (Idx i = begin; i < end; ++i) {  // branch-free: k <= i, so SA[k] is already read
                const Idx v = SA[i];
                SA[k] = ~v;
                k += static_cast<Idx>(v < -1);
            }
        }
    }
    // Lengths of LMS substrings (up to and including the next LMS symbol),
    // stored at SA[m + p/2]; the last one runs into the sentinel.
    std::fill(SA + m, SA + n, Idx(0));
    {
        Idx* const len = SA + m;
        uint64_t below = 1;  // position 0 is never LMS
        Idx prev = -1;       // a local loop: see TypeBits::lms_positions
        for (size_t k = 0; k < t.words(); ++k) {
            const uint64_t x = t.word(k);
            uint64_t b = x & ~((x << 1) | below);
            below = x >> 63;
            while (b) {
                const Idx i = static_cast<Idx>(k * 64 + static_cast<size_t>(__builtin_ctzll(b)));
                if (prev >= 0) len[prev >> 1] = i - prev + 1;
                prev = i;
                b &= b - 1;
            }
        }
        if (prev >= 0) len[prev >> 1] = n - prev + 1;
    }
    // Name the LMS substrings in sorted order (names are 1-based here).
    Idx names = 0;
    {
        Idx prev = -1, prev_len = 0;
        for (Idx r = 0; r < m; ++r) {
            if (r + 64 < m) {
                const Idx f = SA[r + 64];
                __builtin_prefetch(SA + m + (f >> 1));
                __builtin_prefetch(T + f);
                __builtin_prefetch(reinterpret_cast<const char*>(T + f) + 31);
            }
            Idx p = SA[r];
            Idx len = SA[m + (p >> 1)];
            bool same = false;
            if (prev >= 0 && len == prev_len && p + len <= n && prev + len <= n)
                same = equal_substrings(T, n, p, prev, len);
            if (!same) { ++names; prev = p; prev_len = len; }
            SA[m + (p >> 1)] = names;
        }
    }
    // Gather the names, in text order, into SA[n-m, n): the reduced string.
    {
        Idx j = n - 1;  // j >= i: slots past i are consumed, so the unconditional write is harmless
        for (Idx i = n - 1; i >= m; --i) {
            const Idx v = SA[i];
            SA[j] = v - 1;
            j -= static_cast<Idx>(v != 0);
        }
    }
    return names;
}

/// Stage 1 for byte text without induction. The LMS substring at an LMS
/// position p is T[p, q] with q the next LMS position (or, for the last one,
/// T[p, n) followed by the sentinel). Any naming works for SA-IS if equal
/// substrings get equal names and the order of distinct names is the order
/// of the suffixes they start. That order is plain lexicographic order of the
/// substrings, each followed by an end mark larger than every symbol:
/// if T[p, q] is a proper prefix of T[p', ...], position q is S-type in the
/// first and (the substrings agree up to it, and q-1 is L-type) L-type in
/// the second, and an S-type suffix is larger than an L-type one starting
/// with the same symbol. Moreover the symbol that follows at that point in
/// the longer substring is <= T[q] < 255 (q being L-type there), so padding
/// a substring of at most 7 bytes with 0xFF bytes gives a 64-bit big-endian
/// key whose integer order is exactly that order (and equal keys are equal
/// substrings). Longer substrings (and the last one) are hashed over their
/// whole content and compared exactly when their 8-byte prefixes tie.
///
/// The distinct substrings are collected in an open-addressing hash table in
/// the free part of SA (SA[0, n-m)), the substrings' ids, in text order, in
/// SA[n-m, n); then the distinct ones (few: ~3% of the LMS substrings on
/// English text) are sorted, and the ids are replaced by their ranks.
/// Returns false (SA's content then undefined) if the table does not fit.
template <class Idx>
struct NameSlot {
    uint64_t key;  // short: padded big-endian content; long: content hash (sort key after compaction)
    Idx pos;       // representative position; ~pos for a long substring (or the last one)
    Idx id1;       // 1 + id; 0 = empty slot
};

inline uint64_t load_be64(const uint8_t* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return x;
#else
    return __builtin_bswap64(x);
#endif
}

inline uint64_t load_le64(const uint8_t* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    return x;
}

inline uint64_t mix64(uint64_t x) {
    x ^= x >> 31;
    x *= 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    return x;
}

template <class Idx>
bool name_by_hashing(const uint8_t* T, Idx* SA, Idx n, Idx m, const TypeBits& t, Idx& names) {
    using Slot = NameSlot<Idx>;
    if (m < 1) return false;
    Idx* const s1 = SA + (n - m);
    // The table area: SA[0, n-m), aligned for Slot.
    uintptr_t lo = reinterpret_cast<uintptr_t>(SA);
    const uintptr_t hi = reinterpret_cast<uintptr_t>(s1);
    lo = (lo + 63) & ~uintptr_t(63);
    if (hi <= lo) return false;
    const size_t max_slots = (hi - lo) / sizeof(Slot);
    Slot* const tab = reinterpret_cast<Slot*>(lo);
    size_t cap = 16;
    if (cap > max_slots) return false;
    std::memset(static_cast<void*>(tab), 0, cap * sizeof(Slot));

    // s1[k] = the k-th LMS position, in text order.
    t.lms_positions(s1);

    auto short_key = [&](Idx i, Idx a) -> uint64_t {  // a <= 7 bytes, i + a <= n
        uint64_t w;
        if (static_cast<size_t>(i) + 8 <= static_cast<size_t>(n)) {
            w = load_be64(T + i);
        } else {
            w = 0;
            for (Idx k = 0; k < a; ++k) w |= uint64_t(T[i + k]) << (56 - 8 * k);
        }
        return w | (~uint64_t(0) >> (8 * a));
    };
    auto long_hash = [&](Idx i, Idx a) -> uint64_t {  // a >= 8 bytes, i + a <= n
        uint64_t h = mix64(static_cast<uint64_t>(a) + 0x51ED27A3ULL);
        Idx k = 0;
        for (; k + 8 <= a; k += 8) h = mix64(h ^ load_le64(T + i + k));
        if (k < a) h = mix64(h ^ load_le64(T + i + a - 8) ^ 0xA5A5ULL);
        return h | 1;
    };
    int lg = __builtin_ctzll(cap);  // log2(cap)
    auto slot_of = [&](uint64_t key) -> size_t { return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> (64 - lg)); };

    Idx D = 0;        // ids handed out
    size_t used = 0;  // occupied slots
    // Linear probing: the id of the entry for `key` that `same` accepts, or a
    // new id stored with `pos` (>= 0: a short exact key; ~i: a hashed one).
    auto probe = [&](uint64_t key, Idx pos, auto&& same) -> Idx {
        const size_t mask = cap - 1;
        for (size_t h = slot_of(key);; h = (h + 1) & mask) {
            Slot& s = tab[h];
            if (s.id1 == 0) {
                s.key = key; s.pos = pos; s.id1 = D + 1;
                ++used;
                return D++;
            }
            if (s.key == key && same(s)) return s.id1 - 1;
        }
    };
    Idx last_id = -1, last_pos = -1;
    constexpr Idx kAhead = 40;
    for (Idx k = 0; k < m; ++k) {
        if (k + kAhead + 1 < m) {
            const Idx i = s1[k + kAhead];
            const Idx a = s1[k + kAhead + 1] - i + 1;
            if (a <= 7) __builtin_prefetch(tab + slot_of(short_key(i, a)));
        }
        const Idx i = s1[k];
        if (k + 1 == m) {  // the last one (runs into the sentinel): unique
            last_id = D++;
            last_pos = i;
            s1[k] = last_id;
            break;
        }
        const Idx a = s1[k + 1] - i + 1;
        const Idx id = a <= 7 ? probe(short_key(i, a), i, [](const Slot& s) { return s.pos >= 0; })
                              : probe(long_hash(i, a), ~i, [&](const Slot& s) {
                                    if (s.pos >= 0) return false;
                                    const Idx q = ~s.pos;
                                    return q + a <= n && t.s(static_cast<size_t>(q + a - 1)) &&
                                           std::memcmp(T + i, T + q, static_cast<size_t>(a)) == 0;
                                });
        s1[k] = id;
        // Mostly distinct substrings (e.g. random bytes): the table would
        // thrash and end up too big; induction does better. (100 MB of
        // English text: 9% distinct at this point; random bytes: >99%.)
        if (k == (Idx(1) << 17) && 2 * used > (size_t(1) << 17)) return false;
        if (2 * used > cap) {  // grow: copy the table past the new one, rehash back
            if (3 * cap > max_slots) return false;
            Slot* const old = tab + 2 * cap;
            std::memcpy(static_cast<void*>(old), static_cast<const void*>(tab), cap * sizeof(Slot));
            std::memset(static_cast<void*>(tab), 0, 2 * cap * sizeof(Slot));
            const size_t old_cap = cap;
            cap *= 2;
            ++lg;
            const size_t mask = cap - 1;
            for (size_t x = 0; x < old_cap; ++x) {
                if (old[x].id1 == 0) continue;
                size_t h = slot_of(old[x].key);
                while (tab[h].id1 != 0) h = (h + 1) & mask;
                tab[h] = old[x];
            }
        }
    }
    asm volatile("" ::: "memory");

    // Compact the distinct substrings to tab[0, D); sort keys for the long ones.
    Slot* const rec = tab;
    {
        size_t r = 0;
        for (size_t x = 0; x < cap; ++x) {
            if (tab[x].id1 == 0) continue;
            Slot s = tab[x];
            if (s.pos < 0) s.key = load_be64(T + ~s.pos);  // long: >= 8 bytes
            rec[r++] = s;
        }
    }
    // The last LMS substring.
    {
        const Idx lp = last_pos;
        uint64_t key = 0;
        const Idx c = n - lp;
        if (c >= 8) key = load_be64(T + lp);
        else for (Idx k = 0; k < c; ++k) key |= uint64_t(T[lp + k]) << (56 - 8 * k);
        rec[used] = Slot{key, ~lp, last_id + 1};
    }
    // Exact order of the LMS substrings at p != q (see above).
    auto exact_less = [&](Idx p, Idx q) -> bool {
        for (Idx k = 0;; ++k) {
            auto sym = [&](Idx s) -> int64_t {
                if (k >= 2 && (s + k - 1 >= n || t.lms(static_cast<size_t>(s + k - 1)))) return INT64_MAX;
                if (s + k == n) return -1;
                return T[s + k];
            };
            const int64_t x = sym(p), y = sym(q);
            if (x != y) return x < y;
            if (x == INT64_MAX) return false;
        }
    };
    // By key (LSD radix, byte digits, if SA has room for a copy), then runs of
    // equal keys (all long or last) exactly.
    if (2 * static_cast<size_t>(D) <= max_slots) {
        Slot* a = rec;
        Slot* b = rec + D;
        std::vector<Idx> hist(8 * 256, 0);
        for (Idx r = 0; r < D; ++r)
            for (int d = 0; d < 8; ++d) ++hist[256 * d + ((rec[r].key >> (8 * d)) & 255)];
        for (int d = 0; d < 8; ++d) {
            Idx* h = hist.data() + 256 * d;
            if (h[(a[0].key >> (8 * d)) & 255] == D) continue;  // one digit value: nothing to do
            Idx sum = 0;
            for (int c = 0; c < 256; ++c) { const Idx x = h[c]; h[c] = sum; sum += x; }
            for (Idx r = 0; r < D; ++r) b[h[(a[r].key >> (8 * d)) & 255]++] = a[r];
            std::swap(a, b);
        }
        if (a != rec) std::copy(a, a + D, rec);
    } else {
        std::sort(rec, rec + D, [](const Slot& x, const Slot& y) { return x.key < y.key; });
    }
    for (Idx r = 0; r < D;) {
        Idx e = r + 1;
        while (e < D && rec[e].key == rec[r].key) ++e;
        if (e - r > 1)
            std::sort(rec + r, rec + e, [&](const Slot& x, const Slot& y) {
                return exact_less(x.pos >= 0 ? x.pos : ~x.pos, y.pos >= 0 ? y.pos : ~y.pos);
            });
        r = e;
    }
    asm volatile("" ::: "memory");
    Idx* const name_of = reinterpret_cast<Idx*>(rec + D);
    for (Idx r = 0; r < D; ++r) name_of[rec[r].id1 - 1] = r;
    for (Idx k = 0; k < m; ++k) s1[k] = name_of[s1[k]];
    asm volatile("" ::: "memory");
    names = D;
    return true;
}

/// One level of SA-IS over T[0, n) with symbols in [0, K).
/// `spare` (spare_len entries, disjoint from SA and T) may hold the buckets.
template <class Char, class Idx>
void sais_level(const Char* T, Idx* SA, Idx n, Idx K, Idx* spare, size_t spare_len,
                const Tick& tick, double w0, double w1) {
    if (n <= 0) return;
    if (n == 1) { SA[0] = 0; return; }

    TypeBits t(static_cast<size_t>(n));
    Idx m;
#if defined(__SSE2__)
    if constexpr (sizeof(Char) == 1 || sizeof(Char) == 4)
        m = classify_simd(T, n, t);
    else
#endif
        m = classify(T, n, t);
    Buckets<Idx> B(K, spare, spare_len);
    std::fill(B.cnt, B.cnt + K, Idx(0));
    count_symbols(T, n, K, B.cnt);

    // ---- Stage 1: name the LMS substrings; the reduced string in SA[n-m, n).
    Idx names = 0;
    bool named = false;
    if constexpr (sizeof(Char) == 1)
        named = name_by_hashing<Idx>(reinterpret_cast<const uint8_t*>(T), SA, n, m, t, names);
    if (!named) names = name_by_induction(T, SA, n, m, t, B);
    if (tick) tick(w0 + (w1 - w0) * 0.35);
    Idx* s1 = SA + (n - m);
    const double wmid = w0 + (w1 - w0) * 0.5;
    if (tick) tick(wmid);

    // ---- Stage 2: sort the LMS suffixes (recursively if names repeat).
    if (names < m) {
        sais_level<Idx, Idx>(s1, SA, m, names, SA + m, static_cast<size_t>(n - 2 * m), tick,
                             wmid, wmid + (w1 - wmid) * 0.4);
    } else {
        for (Idx i = 0; i < m; ++i) SA[s1[i]] = i;
    }

    // ---- Stage 3: place the sorted LMS suffixes and induce the rest.
    t.lms_positions(s1);
    for (Idx i = 0; i < m; ++i) {  // ranks -> positions (random reads of s1: prefetched)
        if (i + 96 < m) __builtin_prefetch(s1 + SA[i + 96]);
        SA[i] = s1[SA[i]];
    }
    // Move them to the ends of their buckets. Sorted, they come grouped by
    // first symbol, so with the LMS count per symbol (B.ptr, from a
    // sequential pass) each group moves as a block: no random text reads.
    // Everything else is cleared: SA[m, n) at once, and the source slots
    // that no group lands on.
    // (With more symbols than LMS positions, as deep in the recursion, one
    // text read per LMS suffix is cheaper than the pass over the symbols.)
    if (K > m / 2) {
        std::fill(SA + m, SA + n, Idx(0));
        B.ends();
        for (Idx i = m - 1; i >= 0; --i) {
            if (i >= 32) __builtin_prefetch(T + SA[i - 32]);
            const Idx p = SA[i];
            SA[i] = 0;
            SA[--B.ptr[T[p]]] = p;
        }
        induce(T, SA, n, B);
        if (tick) tick(w1);
        return;
    }
    std::fill(B.ptr, B.ptr + K, Idx(0));
    t.for_each_lms_desc([&](size_t i) { ++B.ptr[T[i]]; });
    std::fill(SA + m, SA + n, Idx(0));
    {
        Idx src = m, end = n;  // SA[0, src): groups not yet moved; bucket c ends at end
        for (Idx c = K - 1; c >= 0 && src > 0; --c) {
            const Idx l = B.ptr[c];
            if (l != 0) {
                // destination [end - l, end) >= source [src - l, src)
                // (end >= src: bucket sizes >= their LMS counts)
                if (end != src) {
                    if (l <= 4) {
                        for (Idx x = l; x-- > 0;) SA[end - l + x] = SA[src - l + x];
                    } else {
                        std::memmove(SA + (end - l), SA + (src - l), static_cast<size_t>(l) * sizeof(Idx));
                    }
                    std::fill(SA + (src - l), SA + std::min(src, end - l), Idx(0));
                }
                src -= l;
            }
            end -= B.cnt[c];
        }
    }
    induce(T, SA, n, B);
    if (tick) tick(w1);
}

}  // namespace sais_detail

/// Builds the suffix array of T[0, n) (symbols in [0, K)) into SA[0, n).
/// Idx must be a signed integer type able to hold n and K; memory beyond SA is
/// one type bit per symbol per level plus 2K bucket entries at level 0.
/// `tick(fraction)` reports progress at stage boundaries.
template <class Char, class Idx>
void suffix_array(const Char* T, Idx n, Idx K, Idx* SA, const std::function<void(double)>& tick = nullptr) {
    static_assert(std::is_signed<Idx>::value, "Idx must be signed");
    if (n < 0) throw std::invalid_argument("negative length");
    sais_detail::sais_level<Char, Idx>(T, SA, n, K, nullptr, 0, tick, 0.0, 1.0);
}

}  // namespace infinigram

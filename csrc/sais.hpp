// sais.hpp — suffix array construction by induced sorting (SA-IS).
//
// Algorithm: Nong, Zhang & Chan, "Two Efficient Algorithms for Linear Time
// Suffix Array Construction" (2009). The text is compared with a virtual
// sentinel at its end that is smaller than every symbol.
//
//   suffix_array(T, n, K, SA)   T: symbols in [0, K); SA: n entries (signed Idx)
//
// Time O(n) per level (levels shrink by at least half), so O(n) overall.
// Space: the SA itself (n * sizeof(Idx)), one type bit per symbol per level,
// and bucket arrays of K entries at level 0 (K <= 2^32 is the caller's job to
// keep small: remap sparse alphabets first). Recursive levels keep their
// reduced string and buckets inside the SA's free space whenever it fits.
//
// Engineering: the induce loops prefetch the text ahead of the scan (the scan
// reads SA sequentially but T at random), and L/S-type information is carried
// in the sign of SA entries, so the hot loops touch no type bitmap.
// The scans are branch-free (an entry with nothing to induce writes to a
// dummy), and with large alphabets the bucket pointers are prefetched too.
// Construction is single-threaded. A helper thread that precomputed the
// scans' text reads a few blocks ahead (never blocking the scan, at idle
// priority) was measured here and gained nothing: it could not run ahead of a
// scan that prefetches. The build pipeline uses the second core instead
// (shards built concurrently, checksums overlapped with construction).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <type_traits>
#include <vector>

namespace infinigram {
namespace sais_detail {

/// One bit per position: 1 = S-type suffix.
class TypeBits {
public:
    explicit TypeBits(size_t n) : w_((n + 64) / 64, 0) {}
    void set(size_t i) { w_[i >> 6] |= uint64_t(1) << (i & 63); }
    void set_word(size_t k, uint64_t w) { w_[k] = w; }
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

private:
    std::vector<uint64_t> w_;
};

/// Called at stage boundaries with the finished fraction of the work in [0, 1].
using Tick = std::function<void(double)>;

/// Prefetch distance, in SA entries, of the induce scans.
constexpr long kPrefetch = 24;

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

/// The bucket symbol and the sign-coded entry that SA entry j induces: in the
/// L scan suffix j-1 (negated if j-2 is S-type, i.e. left for the S scan), in
/// the S scan suffix j-1 (negated if j-2 is L-type or j-1 == 0). j <= 0
/// induces nothing (callers ignore c0 and v then).
template <bool kL, class Char, class Idx>
inline void induced(const Char* T, Idx j, Char& c0, Idx& v) {
    const Idx p = j > 0 ? j - 1 : 0;
    c0 = T[p];
    const Char cp = T[p > 0 ? p - 1 : 0];
    if (kL) v = (p > 0 && cp < c0) ? ~p : p;
    else v = (p == 0 || cp > c0) ? ~p : p;
}

/// Induced sort: from the LMS entries placed at the ends of their buckets,
/// first all L-type suffixes (left-to-right scan), then all S-type suffixes
/// (right-to-left scan). Entry signs: during the L scan a non-negative entry j
/// asks to induce j-1 (which is L-type); a negative one (~j) means j-1 is
/// S-type and is left for the S scan, which flips it back (unless flip_s is
/// false: then the S-type LMS entries stay negative, which stage 1 uses).
/// Every scan is branch-free per entry: an entry that induces nothing writes
/// to a dummy.
template <class Char, class Idx>
void induce(const Char* T, Idx* SA, Idx n, Buckets<Idx>& B, bool flip_s = true) {
    Idx dummy = 0;
    Idx* const ptr = B.ptr;
    const bool big = B.K > 4096;  // bucket pointers no longer fit in L1: prefetch them too
    // ---- L-type suffixes, left to right.
    B.starts();
    const Idx last = n - 1;
    SA[ptr[T[last]]++] = (last > 0 && T[last - 1] < T[last]) ? ~last : last;
    for (Idx i = 0; i < n; ++i) {
        if (i + 2 * kPrefetch < n) {
            const Idx f = SA[i + 2 * kPrefetch];
            __builtin_prefetch(T + (f > 0 ? f - 1 : 0));
            if (big) {
                const Idx h = SA[i + kPrefetch];
                __builtin_prefetch(ptr + T[h > 0 ? h - 1 : 0]);
            }
        }
        const Idx j = SA[i];
        SA[i] = ~j;
        Char c0;
        Idx v;
        induced<true>(T, j, c0, v);
        const bool ok = j > 0;
        const Idx at = ptr[c0];
        ptr[c0] = at + static_cast<Idx>(ok);
        *(ok ? SA + at : &dummy) = v;
    }
    // ---- S-type suffixes, right to left.
    B.ends();
    for (Idx i = n - 1; i >= 0; --i) {
        if (i >= 2 * kPrefetch) {
            const Idx f = SA[i - 2 * kPrefetch];
            __builtin_prefetch(T + (f > 0 ? f - 1 : 0));
            if (big) {
                const Idx h = SA[i - kPrefetch];
                __builtin_prefetch(ptr + T[h > 0 ? h - 1 : 0]);
            }
        }
        const Idx j = SA[i];
        const bool ok = j > 0;
        if (flip_s) SA[i] = ok ? j : ~j;
        Char c0;
        Idx v;
        induced<false>(T, j, c0, v);
        const Idx at = ptr[c0] - static_cast<Idx>(ok);
        ptr[c0] = at;
        *(ok ? SA + at : &dummy) = v;
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

/// T[a, a + len) == T[b, b + len) (both inside T). Substrings of at most 8
/// bytes (most LMS substrings) compare as one masked word: no loop whose
/// exit the branch predictor has to guess.
template <class Char, class Idx>
inline bool equal_substrings(const Char* T, Idx n, Idx a, Idx b, Idx len) {
    const size_t bytes = static_cast<size_t>(len) * sizeof(Char);
    const size_t limit = static_cast<size_t>(n) * sizeof(Char);
    if (bytes <= 8 && static_cast<size_t>(std::max(a, b)) * sizeof(Char) + 8 <= limit) {
        uint64_t x, y;
        std::memcpy(&x, T + a, 8);
        std::memcpy(&y, T + b, 8);
        const uint64_t mask = bytes == 8 ? ~uint64_t(0) : (uint64_t(1) << (8 * bytes)) - 1;  // little-endian
        return ((x ^ y) & mask) == 0;
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

/// One level of SA-IS over T[0, n) with symbols in [0, K).
/// `spare` (spare_len entries, disjoint from SA and T) may hold the buckets.
template <class Char, class Idx>
void sais_level(const Char* T, Idx* SA, Idx n, Idx K, Idx* spare, size_t spare_len,
                const Tick& tick, double w0, double w1) {
    if (n <= 0) return;
    if (n == 1) { SA[0] = 0; return; }

    TypeBits t(static_cast<size_t>(n));
    const Idx m = classify(T, n, t);
    Buckets<Idx> B(K, spare, spare_len);
    std::fill(B.cnt, B.cnt + K, Idx(0));
    count_symbols(T, n, K, B.cnt);

    // ---- Stage 1: sort the LMS substrings.
    std::fill(SA, SA + n, Idx(0));
    B.ends();
    t.for_each_lms_desc([&](size_t i) { SA[--B.ptr[T[i]]] = static_cast<Idx>(i); });
    induce(T, SA, n, B, /*flip_s=*/false);
    if (tick) tick(w0 + (w1 - w0) * 0.35);

    // Compact the sorted LMS positions into SA[0, m). After the S scan without
    // flips, B.ptr[c] is the first slot of bucket c's S-type region, and the
    // LMS suffixes are exactly its negative entries (~p; ~0 is position 0).
    {
        Idx k = 0, end = 0;
        for (Idx c = 0; c < K; ++c) {
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
        Idx next = n;
        t.for_each_lms_desc([&](size_t ii) {
            const Idx i = static_cast<Idx>(ii);
            SA[m + (i >> 1)] = next - i + 1;
            next = i;
        });
    }
    // Name the LMS substrings in sorted order (names are 1-based here).
    Idx names = 0;
    {
        Idx prev = -1, prev_len = 0;
        for (Idx r = 0; r < m; ++r) {
            if (r + 32 < m) {
                const Idx f = SA[r + 32];
                __builtin_prefetch(SA + m + (f >> 1));
                __builtin_prefetch(T + f);
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
    {
        Idx j = m - 1;
        t.for_each_lms_desc([&](size_t i) { s1[j--] = static_cast<Idx>(i); });
    }
    for (Idx i = 0; i < m; ++i) {  // ranks -> positions (random reads of s1: prefetched)
        if (i + 32 < m) __builtin_prefetch(s1 + SA[i + 32]);
        SA[i] = s1[SA[i]];
    }
    std::fill(SA + m, SA + n, Idx(0));
    B.ends();
    for (Idx i = m - 1; i >= 0; --i) {
        if (i >= 32) __builtin_prefetch(T + SA[i - 32]);
        Idx p = SA[i];
        SA[i] = 0;
        SA[--B.ptr[T[p]]] = p;
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

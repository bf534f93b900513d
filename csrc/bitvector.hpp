// bitvector.hpp — bit vectors with rank/select, plain and compressed.
//
//   BitVector     plain bits + a u16 rank per 256-bit block, relative to a
//                 u64 per 2^16 bits (6.35%). rank1 O(1) (the bits' cache
//                 line, the u16, <= 3 whole-word popcounts), select1/select0
//                 by a binary search over the block ranks, then in-word.
//   RRRVector     compressed (Raman–Raman–Rao): 31-bit blocks stored as a
//                 class (popcount) plus the block's offset among the
//                 C(31, class) blocks of that class (ceil(log2 C(31, k))
//                 bits; none for k = 0 or 31), split-coded so that one
//                 division and two table lookups decode a block (no loop
//                 over bit positions). Classes are Huffman-coded (length
//                 <= 11, canonical) with a neighbour block's class as context
//                 (all zeros / mixed / all ones). 24 blocks form a superblock;
//                 a directory gives, per superblock, the ones before it and
//                 its bit positions in the offset and class streams (u16s
//                 relative to a u64 triple per 64 superblocks). rank1/access
//                 decode the class codes from the nearer end of the
//                 superblock up to the block, then its offset. The class walk
//                 is branch-free for most blocks: a few lookups in a table
//                 indexed by (context, classes still to pass, next 8 code
//                 bits) that passes at most that many classes, then a loop
//                 for what is left (rare). Batched ranks (rank_access_batch:
//                 one vector, its walks in lock step across the positions;
//                 rank_pair_multi: pairs on several vectors) stage the cache
//                 misses of all their positions.
//   PackedInts    fixed-width unsigned integers, w bits each (random access:
//                 one or two words).
//   EliasFano     a sorted set of m integers in [0, u): 2 + log2(u/m) bits per
//                 element; rank1 (how many < x), contains(x, &rank), select.
//
// Persistence: every structure appends its arrays to a `Blob` (8-byte aligned
// sections) and is re-opened zero-copy from a memory-mapped pointer with a
// `BlobReader`. Popcount is the instruction with -mpopcnt / -march=native,
// inline SWAR otherwise on x86-64.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace infinigram {

/// Ones of a 64-bit word: the instruction where the build targets it (or not
/// x86), else inline SWAR (a portable x86-64 build would call libgcc).
inline int popcnt64(uint64_t x) {
#if defined(__POPCNT__) || !defined(__x86_64__)
    return __builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return static_cast<int>((x * 0x0101010101010101ULL) >> 56);
#endif
}

/// Position (0..63) of the k-th (0-based) set bit of x; x must have > k ones.
inline int select_in_word(uint64_t x, int k) {
    // Byte-wise narrowing, then bit by bit inside the byte.
    int pos = 0;
    for (;;) {
        int c = popcnt64(x & 0xFF);
        if (k < c) break;
        k -= c;
        x >>= 8;
        pos += 8;
    }
    for (;;) {
        if (x & 1) {
            if (k == 0) return pos;
            --k;
        }
        x >>= 1;
        ++pos;
    }
}

// ---------------------------------------------------------------- persistence

/// A growing byte buffer of 8-byte aligned sections: [u64 byte length][data][pad].
class Blob {
public:
    template <class T>
    void put(const T* p, size_t n) {
        const uint64_t bytes = n * sizeof(T);
        put_raw(&bytes, 8);
        put_raw(p, bytes);
        while (buf_.size() % 8) buf_.push_back(0);
    }
    template <class T>
    void put(const std::vector<T>& v) { put(v.data(), v.size()); }
    void put_u64(uint64_t x) { put(&x, 1); }
    const std::vector<uint8_t>& bytes() const { return buf_; }
    void write_file(const std::string& path) const;

private:
    void put_raw(const void* p, size_t n) {
        const uint8_t* b = static_cast<const uint8_t*>(p);
        buf_.insert(buf_.end(), b, b + n);
    }
    std::vector<uint8_t> buf_;
};

/// Walks the sections of a Blob image (e.g. a memory-mapped file).
class BlobReader {
public:
    BlobReader(const uint8_t* p, size_t size, std::string what) : p_(p), end_(p + size), what_(std::move(what)) {}
    template <class T>
    const T* get(size_t& n) {
        if (end_ - p_ < 8) bad();
        uint64_t bytes;
        std::memcpy(&bytes, p_, 8);
        p_ += 8;
        if (bytes % sizeof(T) != 0 || static_cast<uint64_t>(end_ - p_) < bytes) bad();
        const T* out = reinterpret_cast<const T*>(p_);
        n = bytes / sizeof(T);
        p_ += (bytes + 7) / 8 * 8;
        if (p_ > end_) p_ = end_;
        return out;
    }
    uint64_t get_u64() {
        size_t n;
        const uint64_t* v = get<uint64_t>(n);
        if (n != 1) bad();
        return *v;
    }
    [[noreturn]] void bad() const { throw std::invalid_argument(what_ + ": truncated or corrupt FM-index file"); }

private:
    const uint8_t* p_;
    const uint8_t* end_;
    std::string what_;
};

/// A read-only array that either owns its data (after a build) or views a mapping.
template <class T>
class Array {
public:
    Array() = default;
    explicit Array(std::vector<T>&& v) : own_(std::move(v)) { p_ = own_.data(); n_ = own_.size(); }
    Array(const T* p, size_t n) : p_(p), n_(n) {}
    Array(Array&& o) noexcept { *this = std::move(o); }
    Array& operator=(Array&& o) noexcept {
        own_ = std::move(o.own_);
        n_ = o.n_;
        p_ = own_.empty() ? o.p_ : own_.data();
        return *this;
    }
    const T& operator[](size_t i) const { return p_[i]; }
    const T* data() const { return p_; }
    size_t size() const { return n_; }
    void save(Blob& b) const { b.put(p_, n_); }
    static Array load(BlobReader& r) {
        size_t n;
        const T* p = r.get<T>(n);
        return Array(p, n);
    }

private:
    std::vector<T> own_;
    const T* p_ = nullptr;
    size_t n_ = 0;
};

// ---------------------------------------------------------------- plain

/// The default `early` callback of rank_pair_multi: nothing.
struct NoEarly {
    void operator()(size_t, uint64_t, uint64_t, uint64_t, uint64_t) const {}
};

/// Plain bit vector with rank (u64 per 512 bits) and binary-search select.
class BitVector {
public:
    BitVector() = default;
    /// Copies n bits of a plain word array (the interface RRRVector has too).
    BitVector(const uint64_t* words, uint64_t n, int /*threads*/ = 1)
        : BitVector(std::vector<uint64_t>(words, words + (n + 63) / 64), n) {}
    /// Takes ceil(n / 64) words (bits past n must be zero).
    BitVector(std::vector<uint64_t>&& words, uint64_t n) : n_(n) {
        if (n % 64) words[n / 64] &= (uint64_t(1) << (n % 64)) - 1;
        words.resize((n + 63) / 64 + 1, 0);  // one spare word: branch-free reads at n
        const uint64_t nb = n / 256 + 2;      // 256-bit blocks (+ the end)
        std::vector<uint64_t> big(nb / 256 + 1, 0);
        std::vector<uint16_t> small(nb, 0);
        uint64_t acc = 0;
        for (uint64_t b = 0; b < nb; ++b) {
            if (b % 256 == 0) big[b / 256] = acc;
            small[b] = static_cast<uint16_t>(acc - big[b / 256]);
            for (uint64_t w = b * 4; w < std::min<uint64_t>(b * 4 + 4, words.size()); ++w) acc += popcnt64(words[w]);
        }
        ones_ = big[(nb - 1) / 256] + small[nb - 1];
        bits_ = Array<uint64_t>(std::move(words));
        big_ = Array<uint64_t>(std::move(big));
        small_ = Array<uint16_t>(std::move(small));
    }

    uint64_t size() const { return n_; }
    uint64_t ones() const { return ones_; }
    const uint64_t* words() const { return bits_.data(); }
    bool operator[](uint64_t i) const { return (bits_[i >> 6] >> (i & 63)) & 1; }

    /// Ones in [0, i), i <= size(): two table reads, <= 3 whole words and a partial one.
    uint64_t rank1(uint64_t i) const {
        const uint64_t b = i >> 8;
        uint64_t r = block_rank(b);
        const uint64_t w0 = b << 2, w = i >> 6;
        for (uint64_t k = w0; k < w; ++k) r += popcnt64(bits_[k]);
        const int sh = i & 63;
        if (sh) r += popcnt64(bits_[w] << (64 - sh));
        return r;
    }
    uint64_t rank0(uint64_t i) const { return i - rank1(i); }
    void rank_pair(uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const { *ri = rank1(i); *rj = rank1(j); }
    /// rank_pair of g pairs on their own vectors (same interface as RRRVector).
    /// `early(a, ri, ri, rj, rj)` is called with the exact ranks (RRRVector
    /// calls it early, with bounds).
    template <class Early = NoEarly>
    static void rank_pair_multi(const BitVector* const* v, const uint64_t* i, const uint64_t* j, size_t g,
                                uint64_t* ri, uint64_t* rj, Early&& early = Early{}) {
        for (size_t a = 0; a < g; ++a) { v[a]->prefetch(i[a]); v[a]->prefetch(j[a]); }
        for (size_t a = 0; a < g; ++a) v[a]->rank_pair(i[a], j[a], &ri[a], &rj[a]);
        for (size_t a = 0; a < g; ++a) early(a, ri[a], ri[a], rj[a], rj[a]);
    }
    /// rank1(i) and bit i together (same interface as RRRVector).
    uint64_t rank_access(uint64_t i, int* bit) const {
        if (bit) *bit = (*this)[i];
        return rank1(i);
    }
    void prefetch(uint64_t i) const { __builtin_prefetch(bits_.data() + (i >> 6)); }
    void prefetch_rank(uint64_t i) const { __builtin_prefetch(small_.data() + (i >> 8)); }
    static constexpr size_t kMaxBatch = 32;
    void rank_access_batch(const uint64_t* idx, size_t g, uint64_t* rank, int* bit) const {
        for (size_t a = 0; a < g; ++a) rank[a] = rank_access(idx[a], &bit[a]);
    }

    /// Position of the k-th (0-based) one; k < ones(). Binary search over the blocks, then in-word.
    uint64_t select1(uint64_t k) const {
        uint64_t lo = 0, hi = small_.size() - 1;  // last block with block_rank(b) <= k
        while (hi - lo > 1) {
            uint64_t mid = (lo + hi) / 2;
            if (block_rank(mid) <= k) lo = mid; else hi = mid;
        }
        k -= block_rank(lo);
        for (uint64_t w = lo * 4;; ++w) {
            int c = popcnt64(bits_[w]);
            if (k < static_cast<uint64_t>(c)) return w * 64 + select_in_word(bits_[w], static_cast<int>(k));
            k -= c;
        }
    }
    /// Position of the k-th (0-based) zero; k < size() - ones().
    uint64_t select0(uint64_t k) const {
        uint64_t lo = 0, hi = small_.size() - 1;
        while (hi - lo > 1) {
            uint64_t mid = (lo + hi) / 2;
            if (mid * 256 - block_rank(mid) <= k) lo = mid; else hi = mid;
        }
        k -= lo * 256 - block_rank(lo);
        for (uint64_t w = lo * 4;; ++w) {
            int c = 64 - popcnt64(bits_[w]);
            if (k < static_cast<uint64_t>(c)) return w * 64 + select_in_word(~bits_[w], static_cast<int>(k));
            k -= c;
        }
    }

    size_t bytes() const { return (bits_.size() + big_.size()) * 8 + small_.size() * 2 + 16; }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(ones_);
        bits_.save(b);
        big_.save(b);
        small_.save(b);
    }
    static BitVector load(BlobReader& r) {
        BitVector v;
        v.n_ = r.get_u64();
        v.ones_ = r.get_u64();
        v.bits_ = Array<uint64_t>::load(r);
        v.big_ = Array<uint64_t>::load(r);
        v.small_ = Array<uint16_t>::load(r);
        const uint64_t nb = v.n_ / 256 + 2;
        if (v.bits_.size() != (v.n_ + 63) / 64 + 1 || v.small_.size() != nb || v.big_.size() != nb / 256 + 1) r.bad();
        return v;
    }

private:
    /// Ones before 256-bit block b.
    uint64_t block_rank(uint64_t b) const { return big_[b >> 8] + small_[b]; }
    uint64_t n_ = 0, ones_ = 0;
    Array<uint64_t> bits_;
    Array<uint64_t> big_;    // ones before each 2^16-bit superblock
    Array<uint16_t> small_;  // ones before each 256-bit block, from its superblock's start
};

// ---------------------------------------------------------------- RRR

namespace rrr_detail {

constexpr int kB = 31;             // bits per block: a high half of 15 bits over a low half of 16
constexpr int kSB = 24;            // blocks per superblock
constexpr uint64_t kSBBits = uint64_t(kB) * kSB;  // 744

/// Offsets of a class-k block (format v3): the block's halves, hi (bits
/// 16..30, kh ones) and lo (bits 0..15, kl = k - kh ones), are each numbered
/// among the 16-bit patterns of their class in increasing order (ih < C(15, kh),
/// il < C(16, kl)), and
///   off = base[k][kh] + ih * C(16, kl) + il,
///   base[k][j] = sum over j' < j of C(15, j') * C(16, k - j'),
/// a bijection onto [0, C(31, k)) (Vandermonde), so the offset takes
/// ceil(log2 C(31, k)) bits, as any numbering would. Decoding needs no loop
/// over bit positions: kh = #{1 <= j <= 15 : base[k][j] <= off}, one
/// division, two lookups in the pattern table.
struct Tables {
    uint64_t C[64][64];       // C[p][j] = binomial(p, j), p, j <= 63
    uint8_t len[64];          // bits of the offset of a block of class k
    uint32_t base[kB + 1][17];
    uint32_t start16[18];     // first index of class k in pat16
    uint16_t pat16[1 << 16];  // 16-bit patterns by class, increasing within a class (15-bit ones first)
    uint16_t idx16[1 << 16];  // a pattern's index within its class
    Tables() {
        for (int p = 0; p < 64; ++p)
            for (int j = 0; j < 64; ++j)
                C[p][j] = j == 0 ? 1 : (p == 0 ? 0 : C[p - 1][j - 1] + C[p - 1][j]);
        for (int k = 0; k < 64; ++k) {
            uint64_t c = k <= kB ? C[kB][k] : 0;  // number of blocks of class k
            int b = 0;
            while (b < 64 && (c - 1) >> b) ++b;  // ceil(log2 c)
            len[k] = static_cast<uint8_t>(c <= 1 ? 0 : b);
        }
        for (int k = 0; k <= kB; ++k) {
            uint64_t acc = 0;
            for (int j = 0; j <= 16; ++j) {
                base[k][j] = static_cast<uint32_t>(acc);
                if (j <= 15 && k - j >= 0 && k - j <= 16) acc += C[15][j] * C[16][k - j];
            }
        }
        uint32_t at[17];
        start16[0] = 0;
        for (int k = 0; k <= 16; ++k) start16[k + 1] = start16[k] + static_cast<uint32_t>(C[16][k]);
        for (int k = 0; k <= 16; ++k) at[k] = start16[k];
        for (uint32_t v = 0; v < (1u << 16); ++v) {
            const int k = __builtin_popcount(v);
            idx16[v] = static_cast<uint16_t>(at[k] - start16[k]);
            pat16[at[k]++] = static_cast<uint16_t>(v);
        }
    }
};
inline const Tables kTables;  // built once at load time (~0.3 MB)
inline const Tables& tables() { return kTables; }

/// Ones of a 32-bit word (SWAR: portable builds have no popcnt instruction).
inline int popcount32(uint32_t v) {
    v = v - ((v >> 1) & 0x55555555u);
    v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
    return static_cast<int>((((v + (v >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24);
}

/// Offset of the 31-bit block x (class popcount(x)).
inline uint64_t encode(uint64_t x) {
    const Tables& t = tables();
    const uint32_t lo = static_cast<uint32_t>(x & 0xFFFF), hi = static_cast<uint32_t>(x >> 16);
    const int kl = popcount32(lo), kh = popcount32(hi);
    return uint64_t(t.base[kl + kh][kh]) + uint64_t(t.idx16[hi]) * t.C[16][kl] + t.idx16[lo];
}

/// The 31-bit block of class k with offset off.
inline uint32_t decode(int k, uint64_t off) {
    const Tables& t = tables();
    const uint32_t o = static_cast<uint32_t>(off);
    const uint32_t* b = t.base[k];
    int kh = 0;
    for (int j = 1; j <= 15; ++j) kh += static_cast<int>(b[j] <= o);
    const int kl = k - kh;
    const uint32_t rem = o - b[kh], d = static_cast<uint32_t>(t.C[16][kl]);
    const uint32_t ih = rem / d, il = rem - ih * d;
    return uint32_t(t.pat16[t.start16[kl] + il]) | (uint32_t(t.pat16[t.start16[kh] + ih]) << 16);
}

/// Ones of the block (class k, offset off) at positions < x; *bit = bit x (if bit != nullptr).
inline int rank_in_block(int k, uint64_t off, int x, int* bit) {
    const uint32_t w = decode(k, off);
    if (bit) *bit = static_cast<int>((w >> x) & 1);
    return popcount32(w & ((uint32_t(1) << x) - 1));
}

/// rank_in_block of g independent blocks (classes k, offsets off, positions
/// x): straight-line decodings whose latencies overlap. O(g).
inline void rank_in_block_multi(const int* k, const uint64_t* off, const int* x, size_t g, uint64_t* rank, int* bit) {
    for (size_t a = 0; a < g; ++a) rank[a] = static_cast<uint64_t>(rank_in_block(k[a], off[a], x[a], &bit[a]));
}

inline uint64_t read_bits(const uint64_t* w, uint64_t pos, int len) {
    if (len == 0) return 0;
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    uint64_t v = w[i] >> s;
    if (s + len > 64) v |= w[i + 1] << (64 - s);
    return len == 64 ? v : v & ((uint64_t(1) << len) - 1);
}

/// read_bits for len < 64 when w has a word past bit pos + len: no branch
/// on whether the field straddles two words.
inline uint64_t read_bits_padded(const uint64_t* w, uint64_t pos, int len) {
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    const uint64_t v = (w[i] >> s) | ((w[i + 1] << 1) << (63 - s));
    return v & ((uint64_t(1) << len) - 1);
}

/// ORs the len low bits of v (len <= 64, v < 2^len) into w at bit pos (single-threaded writers).
inline void or_bits(uint64_t* w, uint64_t pos, uint64_t v, int len) {
    if (len == 0) return;
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    w[i] |= v << s;
    if (s + len > 64) w[i + 1] |= v >> (64 - s);
}
/// or_bits for writers sharing words.
inline void or_bits_atomic(uint64_t* w, uint64_t pos, uint64_t v, int len) {
    if (len == 0) return;
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    __atomic_fetch_or(&w[i], v << s, __ATOMIC_RELAXED);
    if (s + len > 64) __atomic_fetch_or(&w[i + 1], v >> (64 - s), __ATOMIC_RELAXED);
}

/// The kB bits of a plain word array starting at bit pos (zeros past the end).
inline uint64_t get_block(const uint64_t* w, uint64_t nwords, uint64_t pos) {
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    if (i >= nwords) return 0;
    uint64_t v = w[i] >> s;
    if (s + kB > 64 && i + 1 < nwords) v |= w[i + 1] << (64 - s);
    return v & ((uint64_t(1) << kB) - 1);
}

}  // namespace rrr_detail

/// RRR-compressed bit vector: 31-bit blocks (split-coded offsets); classes Huffman-coded by context;
/// two-level directory (absolute u64s per 64 superblocks, u16 offsets per
/// superblock); a block is reached from the nearer end of its superblock.
class RRRVector {
public:
    static constexpr int kCtx = 3;       // class context: a neighbour block's class (0: all zeros, 2: all ones, 1: mixed)
    static constexpr int kMaxCode = 11;  // class codes are at most this long (decode tables of 2^kMaxCode)
    static constexpr int kHB = 64;       // superblocks per hyperblock
    static constexpr int kHalf = rrr_detail::kSB / 2;  // blocks [0, kHalf) of a full superblock are read forwards, the rest backwards
    static constexpr uint32_t kMask = (1u << kMaxCode) - 1;
    static constexpr int kSkipW = 8;   // class-code bits per skip-table lookup
    static constexpr int kSkipT = 4;   // skip-table lookups before the general loop
    static constexpr uint32_t kSkipMask = (1u << kSkipW) - 1;
    static int ctx_of(int k) { return k == 0 ? 0 : (k == rrr_detail::kB ? 2 : 1); }

    RRRVector() = default;

    /// Compresses n bits of `words` (plain, LSB first) on `threads` threads.
    RRRVector(const uint64_t* words, uint64_t n, int threads = 1) : n_(n) {
        using namespace rrr_detail;
        const Tables& t = tables();
        const uint64_t nwords = (n + 63) / 64;
        nblocks_ = (n + kB - 1) / kB;
        const uint64_t nsb = nblocks_ / kSB + 1;  // + 1: a final entry (rank/pointers at the end)
        const uint64_t nhb = (nsb + kHB - 1) / kHB;
        threads = std::max(1, std::min<int>(threads, static_cast<int>(nsb / 64 + 1)));
        auto par = [&](auto&& body) {
            std::vector<std::thread> pool;
            for (int th = 1; th < threads; ++th) pool.emplace_back(body, th);
            body(0);
            for (auto& x : pool) x.join();
        };
        std::vector<uint8_t> cls(nblocks_);
        // context of block j of superblock sb: forward part, the previous block's class; backward part, the next one's
        auto ctx_at = [&](uint64_t sb, int j) -> int {
            const uint64_t blk = sb * kSB + j;
            if (!full(sb) || j < kHalf) return j == 0 ? 1 : ctx_of(cls[blk - 1]);
            return j == kSB - 1 ? 1 : ctx_of(cls[blk + 1]);
        };
        // pass 1: classes; pass 2: per-context class histograms
        par([&](int th) {
            for (uint64_t b = nblocks_ * th / threads; b < nblocks_ * (th + 1) / threads; ++b)
                cls[b] = static_cast<uint8_t>(popcnt64(get_block(words, nwords, b * kB)));
        });
        std::vector<std::vector<uint64_t>> hist(threads, std::vector<uint64_t>(kCtx * 64, 0));
        par([&](int th) {
            auto& h = hist[th];
            for (uint64_t sb = nsb * th / threads; sb < nsb * (th + 1) / threads; ++sb)
                for (int j = 0; j < kSB && sb * kSB + j < nblocks_; ++j) ++h[ctx_at(sb, j) * 64 + cls[sb * kSB + j]];
        });
        std::vector<uint64_t> freq(kCtx * 64, 0);
        for (auto& h : hist)
            for (size_t x = 0; x < freq.size(); ++x) freq[x] += h[x];
        std::vector<uint8_t> lens(kCtx * 64, 0);
        for (int c = 0; c < kCtx; ++c) code_lengths(freq.data() + 64 * c, lens.data() + 64 * c);
        clen_ = Array<uint8_t>(std::move(lens));
        make_codes();
        // pass 3: per-superblock ones, offset bits, class-code bits
        std::vector<uint64_t> sb_ones(nsb, 0), sb_obits(nsb, 0), sb_cbits(nsb, 0);
        par([&](int th) {
            for (uint64_t sb = nsb * th / threads; sb < nsb * (th + 1) / threads; ++sb) {
                uint64_t ones = 0, ob = 0, cb = 0;
                for (int j = 0; j < kSB && sb * kSB + j < nblocks_; ++j) {
                    const int k = cls[sb * kSB + j];
                    ones += k;
                    ob += t.len[k];
                    cb += clen_[ctx_at(sb, j) * 64 + k];
                }
                sb_ones[sb] = ones;
                sb_obits[sb] = ob;
                sb_cbits[sb] = cb;
            }
        });
        std::vector<uint64_t> hyper(nhb * 3, 0);
        std::vector<uint16_t> dir(nsb * 3, 0);
        std::vector<uint64_t> sb_opos(nsb), sb_cpos(nsb);
        uint64_t po = 0, pb = 0, pc = 0;
        for (uint64_t sb = 0; sb < nsb; ++sb) {
            const uint64_t h = sb / kHB;
            if (sb % kHB == 0) { hyper[3 * h] = po; hyper[3 * h + 1] = pb; hyper[3 * h + 2] = pc; }
            dir[3 * sb] = static_cast<uint16_t>(po - hyper[3 * h]);
            dir[3 * sb + 1] = static_cast<uint16_t>(pb - hyper[3 * h + 1]);
            dir[3 * sb + 2] = static_cast<uint16_t>(pc - hyper[3 * h + 2]);
            sb_opos[sb] = pb;
            sb_cpos[sb] = pc;
            po += sb_ones[sb];
            pb += sb_obits[sb];
            pc += sb_cbits[sb];
        }
        ones_ = po;
        std::vector<uint64_t> offs(pb / 64 + 2, 0), cstream(pc / 64 + 2, 0);
        // pass 4: offsets (block order) and class codes (forward part from the start of the
        // superblock's region, backward part from its end down, MSB-first)
        par([&](int th) {
            for (uint64_t sb = nsb * th / threads; sb < nsb * (th + 1) / threads; ++sb) {
                uint64_t pos = sb_opos[sb], cpos = sb_cpos[sb], cend = sb_cpos[sb] + sb_cbits[sb];
                const int fwd = full(sb) ? kHalf : kSB;
                for (int j = 0; j < kSB; ++j) {
                    const uint64_t blk = sb * kSB + j;
                    if (blk >= nblocks_) break;
                    const int k = cls[blk];
                    const int len = t.len[k];
                    if (len) or_bits_atomic(offs.data(), pos, encode(get_block(words, nwords, blk * kB)), len);
                    pos += len;
                    if (j < fwd) {
                        const int cl = clen_[ctx_at(sb, j) * 64 + k];
                        or_bits_atomic(cstream.data(), cpos, codef_[ctx_at(sb, j) * 64 + k], cl);
                        cpos += cl;
                    }
                }
                if (fwd == kSB) continue;
                for (int j = kSB - 1; j >= kHalf; --j) {
                    const int k = cls[sb * kSB + j], cx = ctx_at(sb, j);
                    const int cl = clen_[cx * 64 + k];
                    cend -= cl;
                    or_bits_atomic(cstream.data(), cend, codeb_[cx * 64 + k], cl);
                }
            }
        });
        hyper_ = Array<uint64_t>(std::move(hyper));
        dir_ = Array<uint16_t>(std::move(dir));
        cls_ = Array<uint64_t>(std::move(cstream));
        offs_ = Array<uint64_t>(std::move(offs));
    }

    uint64_t size() const { return n_; }
    uint64_t ones() const { return ones_; }

    /// Ones in [0, i), i <= size().
    uint64_t rank1(uint64_t i) const { return rank_access(i, nullptr); }
    uint64_t rank0(uint64_t i) const { return i - rank1(i); }
    bool operator[](uint64_t i) const {
        int b;
        rank_access(i, &b);
        return b;
    }
    /// rank1(i), and bit i in *bit (i < size() for the bit).
    uint64_t rank_access(uint64_t i, int* bit) const {
        using namespace rrr_detail;
        if (i >= n_) { if (bit) *bit = 0; return ones_; }
        const uint64_t sb = i / kSBBits;
        const uint64_t in = i - sb * kSBBits;
        const int j = static_cast<int>(in / kB);
        const Block b = block(sb, j);
        const uint64_t off = read_bits_padded(offs_.data(), b.pos, tables().len[b.k]);
        return b.r + rank_in_block(b.k, off, static_cast<int>(in - uint64_t(j) * kB), bit);
    }
    /// Prefetches the directory entries of the superblock holding bit i
    /// (and the next one's, which backward walks read).
    void prefetch(uint64_t i) const {
        const uint64_t sb = std::min(i, n_) / rrr_detail::kSBBits;
        __builtin_prefetch(dir_.data() + 3 * sb);
        __builtin_prefetch(dir_.data() + 3 * sb + 3);
        __builtin_prefetch(hyper_.data() + 3 * (sb / kHB));
    }

    /// rank_access for g positions at once (g <= kMaxBatch), in stages across
    /// the positions (directory, class codes, offsets) with prefetches, so
    /// the g independent chains of cache misses overlap.
    static constexpr size_t kMaxBatch = 32;
    void rank_access_batch(const uint64_t* idx, size_t g, uint64_t* rank, int* bit) const {
        using namespace rrr_detail;
        Block b[kMaxBatch];
        uint64_t sbs[kMaxBatch];
        int js[kMaxBatch], x[kMaxBatch];
        for (size_t a = 0; a < g; ++a) {  // superblock, block in it, bit in the block (past the end: the last bit)
            const uint64_t i = std::min(idx[a], n_), sb = i / kSBBits, in = i - sb * kSBBits;
            const int j = static_cast<int>(in / kB);
            sbs[a] = sb;
            js[a] = j;
            x[a] = static_cast<int>(in) - j * kB;
            prefetch(i);
        }
        uint8_t order[kMaxBatch];  // positions walking forwards first, then backwards: fewer mispredicted branches
        size_t nf = 0, nb = 0;
        Cursor cur[kMaxBatch];  // each walk's start: its superblock's entry (forwards) or the next one's (backwards)
        int cnt[kMaxBatch];     // and the blocks it passes
        for (size_t a = 0; a < g; ++a) {  // prefetch the class codes from the nearer end
            const bool back = js[a] >= kHalf && full(sbs[a]);
            cur[a] = cursor(back ? sbs[a] + 1 : sbs[a]);
            cnt[a] = back ? kSB - 1 - js[a] : js[a];
            __builtin_prefetch(reinterpret_cast<const uint8_t*>(cls_.data()) + ((cur[a].cpos - back) >> 3));
            const bool live = idx[a] < n_;
            order[back ? kMaxBatch - 1 - nb : nf] = static_cast<uint8_t>(a);
            nf += live & !back;
            nb += live & back;
        }
        const uint8_t* len = tables().len;
        blocks_lanes(cur, cnt, order, nf, nb, b);
        int k[kMaxBatch];
        uint64_t off[kMaxBatch], in[kMaxBatch];
        for (size_t a = 0; a < g; ++a) {  // past the end: a class-0 block (rank 0 in it, bit 0)
            const bool ok = idx[a] < n_;
            k[a] = ok ? b[a].k : 0;
            off[a] = ok ? read_bits_padded(offs_.data(), b[a].pos, len[b[a].k]) : 0;
        }
        rank_in_block_multi(k, off, x, g, in, bit);
        for (size_t a = 0; a < g; ++a) rank[a] = idx[a] < n_ ? b[a].r + in[a] : ones_;
    }

    /// rank1(i) and rank1(j), i <= j: one directory walk when both fall in one half-superblock.
    void rank_pair(uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const {
        Block a, b;
        blocks_pair(i, j, &a, &b);
        *ri = finish(a, i, nullptr);
        *rj = finish(b, j, nullptr);
    }

    /// rank_pair for g pairs, each on its own vector (v[a] may differ; i[a] <= j[a]
    /// <= v[a]->size(); g <= kMaxBatch): ri[a] = v[a]->rank1(i[a]), rj[a] = v[a]->rank1(j[a]).
    /// Staged across the pairs (directory, class codes, offsets), each stage
    /// prefetching what the next reads, so the g chains of misses overlap.
    /// O(g * kSB / 2) time.
    /// `early(a, lo_i, hi_i, lo_j, hi_j)` is called as soon as the directory
    /// is read, with bounds lo <= rank1 <= hi of both ranks (hi - lo <= one
    /// superblock): a caller descending a wavelet tree prefetches the next
    /// level's directory there, so that its miss overlaps this level's
    /// class-code and offset misses.
    template <class Early = NoEarly>
    static void rank_pair_multi(const RRRVector* const* v, const uint64_t* i, const uint64_t* j, size_t g,
                                uint64_t* ri, uint64_t* rj, Early&& early = Early{}) {
        for (size_t a = 0; a < g; ++a) { v[a]->prefetch(i[a]); v[a]->prefetch(j[a]); }
        for (size_t a = 0; a < g; ++a) {
            uint64_t li, hi, lj, hj;
            v[a]->prefetch_cls(i[a], &li, &hi);
            v[a]->prefetch_cls(j[a], &lj, &hj);
            early(a, li, hi, lj, hj);
        }
        Block bi[kMaxBatch], bj[kMaxBatch];
        for (size_t a = 0; a < g; ++a) {
            v[a]->blocks_pair(i[a], j[a], &bi[a], &bj[a]);
            __builtin_prefetch(v[a]->offs_.data() + (bi[a].pos >> 6));
            __builtin_prefetch(v[a]->offs_.data() + (bj[a].pos >> 6));
        }
        int k[2 * kMaxBatch], x[2 * kMaxBatch], bit[2 * kMaxBatch];
        uint64_t off[2 * kMaxBatch], in[2 * kMaxBatch];
        size_t nd = 0;
        for (size_t a = 0; a < g; ++a) {  // distinct in-block decodings (i and j often share a block)
            v[a]->decode_args(bi[a], i[a], &k[nd], &off[nd], &x[nd]);
            ++nd;
            if (j[a] != i[a]) { v[a]->decode_args(bj[a], j[a], &k[nd], &off[nd], &x[nd]); ++nd; }
        }
        rrr_detail::rank_in_block_multi(k, off, x, nd, in, bit);
        for (size_t a = 0, d = 0; a < g; ++a) {
            ri[a] = i[a] >= v[a]->n_ ? v[a]->ones_ : bi[a].r + in[d];
            ++d;
            if (j[a] != i[a]) { rj[a] = j[a] >= v[a]->n_ ? v[a]->ones_ : bj[a].r + in[d]; ++d; }
            else rj[a] = ri[a];
        }
    }

    /// Position of the k-th (0-based) one / zero (binary search on rank).
    uint64_t select1(uint64_t k) const { return select_impl(k, true); }
    uint64_t select0(uint64_t k) const { return select_impl(k, false); }

    size_t bytes() const {
        return (hyper_.size() + cls_.size() + offs_.size()) * 8 + dir_.size() * 2 + clen_.size() + 16;
    }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(ones_);
        clen_.save(b);
        hyper_.save(b);
        dir_.save(b);
        cls_.save(b);
        offs_.save(b);
    }
    static RRRVector load(BlobReader& r) {
        RRRVector v;
        v.n_ = r.get_u64();
        v.ones_ = r.get_u64();
        v.clen_ = Array<uint8_t>::load(r);
        v.hyper_ = Array<uint64_t>::load(r);
        v.dir_ = Array<uint16_t>::load(r);
        v.cls_ = Array<uint64_t>::load(r);
        v.offs_ = Array<uint64_t>::load(r);
        v.nblocks_ = (v.n_ + rrr_detail::kB - 1) / rrr_detail::kB;
        const uint64_t nsb = v.nblocks_ / rrr_detail::kSB + 1;
        if (v.clen_.size() != kCtx * 64 || v.dir_.size() != nsb * 3 || v.hyper_.size() != (nsb + kHB - 1) / kHB * 3 ||
            v.cls_.size() == 0 || v.offs_.size() == 0)
            r.bad();
        for (size_t x = 0; x < v.clen_.size(); ++x)
            if (v.clen_[x] == 0 || v.clen_[x] > kMaxCode) r.bad();
        const Cursor last = v.cursor(nsb - 1);  // the last superblock: both streams keep a spare word past their end
        if (last.r > v.ones_ || last.pos / 64 + 2 > v.offs_.size() || last.cpos / 64 + 2 > v.cls_.size()) r.bad();
        v.make_codes();
        return v;
    }

private:
    struct Block { uint64_t r, pos; int k; };  // ones before the block, bit position of its offset, its class
    bool full(uint64_t sb) const { return (sb + 1) * rrr_detail::kSB <= nblocks_; }

    /// >= 57 bits of the stream starting at bit p (LSB first).
    static uint64_t peek(const uint64_t* w, uint64_t p) {
        uint64_t x;
        std::memcpy(&x, reinterpret_cast<const uint8_t*>(w) + (p >> 3), 8);
        return x >> (p & 7);
    }
    /// The 57 bits ending at bit e, bit e - 1 at bit 56 (zeros below bit 0 of the stream).
    static uint64_t peek_back(const uint64_t* w, uint64_t e) {
        if (e >= 57) return peek(w, e - 57) & ((uint64_t(1) << 57) - 1);
        return (peek(w, 0) & ((uint64_t(1) << e) - 1)) << (57 - e);
    }

    /// Forward decoding state in a superblock: ones so far, offset-stream and class-stream bit positions.
    struct Cursor {
        uint64_t r, pos, cpos;
        int ctx;
        int next_class(const RRRVector& v) {
            const uint32_t e = v.dec_[ctx * (1 << kMaxCode) + (peek(v.cls_.data(), cpos) & kMask)];
            cpos += e & 15;
            ctx = static_cast<int>(e >> 28);
            return static_cast<int>((e >> 8) & 1023);
        }
        /// Passes `cnt` blocks (adds their ones and offset bits): kSkipT
        /// branch-free skip-table rounds, then several classes per lookup.
        void skip(const RRRVector& v, int cnt) {
            const uint32_t* multi = v.multif_.data();
            const uint64_t* cw = v.cls_.data();
            uint64_t cp = cpos, buf = peek(cw, cp), rr = r, pp = pos;
            int have = 57, cx = ctx;
            for (int t = 0; t < kSkipT; ++t) v.skip_round_fwd(buf, have, cp, rr, pp, cx, cnt);
            while (cnt > 0) {
                if (have < kMaxCode) { buf = peek(cw, cp); have = 57; }
                uint32_t e = multi[cx * (1 << kMaxCode) + (buf & kMask)];
                int ns = (e >> 4) & 15;
                if (ns > cnt) { e = v.dec_[cx * (1 << kMaxCode) + (buf & kMask)]; ns = 1; }
                const int l = e & 15;
                buf >>= l;
                have -= l;
                cp += l;
                rr += (e >> 8) & 1023;
                pp += (e >> 18) & 1023;
                cx = static_cast<int>(e >> 28);
                cnt -= ns;
            }
            r = rr; pos = pp; cpos = cp; ctx = cx;
        }
    };
    /// Backward decoding state from the end of a superblock: ones and stream positions at the current block's end.
    struct BackCursor {
        uint64_t r, pos, cend;
        int ctx;
        int prev_class(const RRRVector& v) {
            const uint64_t w = peek_back(v.cls_.data(), cend);
            const uint32_t e = v.decb_[ctx * (1 << kMaxCode) + ((w >> (57 - kMaxCode)) & kMask)];
            cend -= e & 15;
            ctx = static_cast<int>(e >> 28);
            return static_cast<int>((e >> 8) & 1023);
        }
        /// Passes `cnt` blocks backwards (subtracts their ones and offset bits), as Cursor::skip.
        void skip(const RRRVector& v, int cnt) {
            const uint32_t* multi = v.multib_.data();
            const uint64_t* cw = v.cls_.data();
            uint64_t ce = cend, buf = peek_back(cw, ce), rr = r, pp = pos;
            int have = 57, cx = ctx;
            for (int t = 0; t < kSkipT; ++t) v.skip_round_back(buf, have, ce, rr, pp, cx, cnt);
            while (cnt > 0) {
                if (have < kMaxCode) { buf = peek_back(cw, ce); have = 57; }
                const uint32_t idx = static_cast<uint32_t>(buf >> (have - kMaxCode)) & kMask;
                uint32_t e = multi[cx * (1 << kMaxCode) + idx];
                int ns = (e >> 4) & 15;
                if (ns > cnt) { e = v.decb_[cx * (1 << kMaxCode) + idx]; ns = 1; }
                const int l = e & 15;
                have -= l;
                ce -= l;
                rr -= (e >> 8) & 1023;
                pp -= (e >> 18) & 1023;
                cx = static_cast<int>(e >> 28);
                cnt -= ns;
            }
            r = rr; pos = pp; cend = ce; ctx = cx;
        }
    };
    /// One skip-table round of a forward walk: passes min(cnt, the classes
    /// whose codes fit in the next kSkipW bits of buf) blocks; no branch.
    /// State as in Cursor, buf holding the stream from bit cp (have bits).
    void skip_round_fwd(uint64_t& buf, int& have, uint64_t& cp, uint64_t& r, uint64_t& pos, int& cx, int& cnt) const {
        const uint32_t lim = static_cast<uint32_t>(cnt < 15 ? cnt : 15);
        const uint32_t e = skipf_[((static_cast<uint32_t>(cx) * 16 + lim) << kSkipW) | static_cast<uint32_t>(buf & kSkipMask)];
        const int l = e & 15;
        buf >>= l;
        have -= l;
        cp += l;
        r += (e >> 8) & 1023;
        pos += (e >> 18) & 1023;
        cx = static_cast<int>(e >> 28);
        cnt -= static_cast<int>((e >> 4) & 15);
    }
    /// The same backwards: buf holds the have bits below bit ce, the nearest at bit have - 1.
    void skip_round_back(uint64_t buf, int& have, uint64_t& ce, uint64_t& r, uint64_t& pos, int& cx, int& cnt) const {
        const uint32_t lim = static_cast<uint32_t>(cnt < 15 ? cnt : 15);
        const uint32_t x = static_cast<uint32_t>(buf >> (have - kSkipW)) & kSkipMask;
        const uint32_t e = skipb_[((static_cast<uint32_t>(cx) * 16 + lim) << kSkipW) | x];
        const int l = e & 15;
        have -= l;
        ce -= l;
        r -= (e >> 8) & 1023;
        pos -= (e >> 18) & 1023;
        cx = static_cast<int>(e >> 28);
        cnt -= static_cast<int>((e >> 4) & 15);
    }
    /// The blocks of nf forward walks order[0, nf) and nb backward ones
    /// order[kMaxBatch - nb, kMaxBatch), into b[a]: walk a starts at cur[a]
    /// (a superblock's entry; backwards, the entry of the superblock after)
    /// and passes cnt[a] blocks. The skip rounds run in lock step across the
    /// walks (independent loads, no loop exits to mispredict); a walk with
    /// blocks left finishes in Cursor::skip (rare). Prefetches each block's offset.
    void blocks_lanes(const Cursor* cur, const int* ncnt, const uint8_t* order, size_t nf, size_t nb, Block* b) const {
        constexpr size_t M = kMaxBatch;
        const uint64_t* cw = cls_.data();
        const uint8_t* len = rrr_detail::tables().len;
        uint64_t buf[M], cp[M], rr[M], pp[M];
        int cx[M], cnt[M], have[M];
        for (size_t q = 0; q < nf; ++q) {
            const Cursor& c = cur[order[q]];
            rr[q] = c.r; pp[q] = c.pos; cp[q] = c.cpos; cx[q] = c.ctx; cnt[q] = ncnt[order[q]];
            buf[q] = peek(cw, c.cpos);
            have[q] = 57;
        }
        for (int t = 0; t < kSkipT; ++t)
            for (size_t q = 0; q < nf; ++q) skip_round_fwd(buf[q], have[q], cp[q], rr[q], pp[q], cx[q], cnt[q]);
        for (size_t q = 0; q < nf; ++q) {
            Cursor c{rr[q], pp[q], cp[q], cx[q]};
            if (__builtin_expect(cnt[q] > 0, 0)) c.skip(*this, cnt[q]);
            const size_t a = order[q];
            b[a] = Block{c.r, c.pos, c.next_class(*this)};
            __builtin_prefetch(offs_.data() + (b[a].pos >> 6));
        }
        for (size_t q = 0; q < nb; ++q) {
            const Cursor& c = cur[order[M - 1 - q]];
            rr[q] = c.r; pp[q] = c.pos; cp[q] = c.cpos; cx[q] = c.ctx; cnt[q] = ncnt[order[M - 1 - q]];
            buf[q] = peek_back(cw, c.cpos);
            have[q] = 57;
        }
        for (int t = 0; t < kSkipT; ++t)
            for (size_t q = 0; q < nb; ++q) skip_round_back(buf[q], have[q], cp[q], rr[q], pp[q], cx[q], cnt[q]);
        for (size_t q = 0; q < nb; ++q) {
            BackCursor c{rr[q], pp[q], cp[q], cx[q]};
            if (__builtin_expect(cnt[q] > 0, 0)) c.skip(*this, cnt[q]);
            const int k = c.prev_class(*this);
            const size_t a = order[M - 1 - q];
            b[a] = Block{c.r - k, c.pos - len[k], k};
            __builtin_prefetch(offs_.data() + (b[a].pos >> 6));
        }
    }
    Cursor cursor(uint64_t sb) const {
        const uint64_t* h = hyper_.data() + 3 * (sb / kHB);
        const uint16_t* d = dir_.data() + 3 * sb;
        return Cursor{h[0] + d[0], h[1] + d[1], h[2] + d[2], 1};
    }
    BackCursor back_cursor(uint64_t sb_end) const {
        Cursor c = cursor(sb_end);
        return BackCursor{c.r, c.pos, c.cpos, 1};
    }
    /// Block j of superblock sb, decoded from the nearer end.
    Block block(uint64_t sb, int j) const {
        return j < kHalf || !full(sb) ? block_fwd(sb, j) : block_back(sb, j);
    }
    Block block_fwd(uint64_t sb, int j) const {
        Cursor c = cursor(sb);
        c.skip(*this, j);
        Block b{c.r, c.pos, 0};
        b.k = c.next_class(*this);
        return b;
    }
    Block block_back(uint64_t sb, int j) const {
        BackCursor c = back_cursor(sb + 1);
        c.skip(*this, rrr_detail::kSB - 1 - j);
        const int k = c.prev_class(*this);
        return Block{c.r - k, c.pos - rrr_detail::tables().len[k], k};
    }

    /// Prefetches the class codes that block() reads first for bit i (the
    /// directory should be cached); *lo, *hi: bounds of rank1(i), the ones
    /// before its superblock and before the next.
    void prefetch_cls(uint64_t i, uint64_t* lo, uint64_t* hi) const {
        using namespace rrr_detail;
        const uint64_t x = std::min(i, n_), sb = x / kSBBits;
        const int j = static_cast<int>((x % kSBBits) / kB);
        const bool back = j >= kHalf && full(sb);
        const Cursor c0 = cursor(sb);
        const Cursor c1 = full(sb) ? cursor(sb + 1) : c0;  // a full superblock has a successor entry
        const uint64_t cp = back ? c1.cpos - 1 : c0.cpos;
        __builtin_prefetch(reinterpret_cast<const uint8_t*>(cls_.data()) + (cp >> 3));
        *lo = i >= n_ ? ones_ : c0.r;
        *hi = i >= n_ || !full(sb) ? ones_ : c1.r;
    }
    /// The block holding bit i (i < n); for i >= n a block that finish() ignores.
    Block block_of(uint64_t i) const {
        using namespace rrr_detail;
        if (i >= n_) return Block{ones_, 0, 0};
        return block(i / kSBBits, static_cast<int>((i % kSBBits) / kB));
    }
    /// The blocks of bits i <= j; one class-code walk when both lie in the same
    /// half of one superblock (the common case for close bounds).
    void blocks_pair(uint64_t i, uint64_t j, Block* pa, Block* pb) const {
        using namespace rrr_detail;
        const uint64_t sb = i / kSBBits;
        if (j >= n_ || j / kSBBits != sb) { *pa = block_of(i); *pb = block_of(j); return; }
        const int bi = static_cast<int>((i - sb * kSBBits) / kB), bj = static_cast<int>((j - sb * kSBBits) / kB);
        const bool fwd_i = bi < kHalf || !full(sb), fwd_j = bj < kHalf || !full(sb);
        if (fwd_i != fwd_j) { *pa = block_of(i); *pb = block_of(j); return; }
        const uint8_t* len = tables().len;
        Block a, b;
        if (fwd_i) {
            Cursor c = cursor(sb);
            c.skip(*this, bi);
            a.r = c.r; a.pos = c.pos; a.k = c.next_class(*this);
            if (bj == bi) b = a;
            else {
                c.r += a.k; c.pos += len[a.k];
                c.skip(*this, bj - bi - 1);
                b.r = c.r; b.pos = c.pos; b.k = c.next_class(*this);
            }
        } else {
            BackCursor c = back_cursor(sb + 1);
            c.skip(*this, kSB - 1 - bj);
            b.k = c.prev_class(*this);
            b.r = c.r - b.k; b.pos = c.pos - len[b.k];
            if (bi == bj) a = b;
            else {
                c.r = b.r; c.pos = b.pos;
                c.skip(*this, bj - bi - 1);
                a.k = c.prev_class(*this);
                a.r = c.r - a.k; a.pos = c.pos - len[a.k];
            }
        }
        *pa = a;
        *pb = b;
    }
    /// The arguments of rank_in_block for bit i in block b (i >= n: a class-0 block).
    void decode_args(const Block& b, uint64_t i, int* k, uint64_t* off, int* x) const {
        using namespace rrr_detail;
        const bool ok = i < n_;
        *k = ok ? b.k : 0;
        *x = ok ? static_cast<int>((i % kSBBits) % kB) : 0;
        *off = ok ? read_bits_padded(offs_.data(), b.pos, tables().len[b.k]) : 0;
    }
    /// rank1(i) (and bit i) from the block holding i (block_of(i)).
    uint64_t finish(const Block& b, uint64_t i, int* bit) const {
        using namespace rrr_detail;
        if (i >= n_) { if (bit) *bit = 0; return ones_; }
        const int x = static_cast<int>((i % kSBBits) % kB);
        const uint64_t off = read_bits_padded(offs_.data(), b.pos, tables().len[b.k]);
        return b.r + rank_in_block(b.k, off, x, bit);
    }

    /// Length-limited (kMaxCode) Huffman code lengths of 64 classes; every class gets a code.
    static void code_lengths(const uint64_t* f, uint8_t* len) {
        std::vector<uint64_t> w(f, f + 64);
        for (auto& x : w) x += 1;
        for (;;) {
            std::vector<uint64_t> wt(w.begin(), w.end());
            std::vector<int> parent(128, -1);
            std::vector<bool> alive(128, false);
            wt.resize(128, 0);
            for (int s = 0; s < 64; ++s) alive[s] = true;
            int next = 64;
            for (int step = 0; step < 63; ++step) {  // merge the two lightest (64 symbols: quadratic is fine)
                int a = -1, b = -1;
                for (int s = 0; s < next; ++s) {
                    if (!alive[s]) continue;
                    if (a < 0 || wt[s] < wt[a]) { b = a; a = s; }
                    else if (b < 0 || wt[s] < wt[b]) b = s;
                }
                alive[a] = alive[b] = false;
                wt[next] = wt[a] + wt[b];
                parent[a] = parent[b] = next;
                alive[next] = true;
                ++next;
            }
            int mx = 0;
            for (int s = 0; s < 64; ++s) {
                int d = 0;
                for (int u = s; parent[u] >= 0; u = parent[u]) ++d;
                len[s] = static_cast<uint8_t>(d);
                mx = std::max(mx, d);
            }
            if (mx <= kMaxCode) return;
            for (auto& x : w) x = (x >> 1) + 1;
        }
    }
    /// Canonical codes and the decode tables. Forward: codes stored bit-reversed
    /// (read LSB first); backward: as is, read from the end down (MSB first).
    void make_codes() {
        codef_.assign(kCtx * 64, 0);
        codeb_.assign(kCtx * 64, 0);
        dec_.assign(size_t(kCtx) << kMaxCode, 0);
        decb_.assign(size_t(kCtx) << kMaxCode, 0);
        for (int c = 0; c < kCtx; ++c) {
            const uint8_t* L = clen_.data() + 64 * c;
            uint64_t code = 0;
            for (int l = 1; l <= kMaxCode; ++l) {
                for (int s = 0; s < 64; ++s) {
                    if (L[s] != l) continue;
                    uint64_t rev = 0;
                    for (int b = 0; b < l; ++b) rev |= ((code >> b) & 1) << (l - 1 - b);
                    codef_[64 * c + s] = rev;
                    codeb_[64 * c + s] = code;
                    const uint32_t e = uint32_t(l) | (1u << 4) | (uint32_t(s) << 8) |
                                       (uint32_t(rrr_detail::tables().len[s]) << 18) | (uint32_t(ctx_of(s)) << 28);
                    for (uint64_t x = rev; x < (uint64_t(1) << kMaxCode); x += uint64_t(1) << l)
                        dec_[(size_t(c) << kMaxCode) + x] = e;
                    for (uint64_t x = code << (kMaxCode - l); x < (code + 1) << (kMaxCode - l); ++x)
                        decb_[(size_t(c) << kMaxCode) + x] = e;
                    ++code;
                }
                code <<= 1;
            }
        }
        // multi-class entries: bits used (4), classes (4), their ones (10), offset bits (10), final context (2)
        multif_.assign(size_t(kCtx) << kMaxCode, 0);
        multib_.assign(size_t(kCtx) << kMaxCode, 0);
        const uint8_t* olen = rrr_detail::tables().len;
        for (int dir = 0; dir < 2; ++dir)
            for (int c = 0; c < kCtx; ++c)
                for (uint32_t x = 0; x < (1u << kMaxCode); ++x) {
                    int used = 0, ns = 0, cx = c;
                    uint32_t ones = 0, ob = 0;
                    while (ns < 15) {
                        const uint32_t w = dir == 0 ? (x >> used) & kMask : (x << used) & kMask;
                        const uint32_t d = (dir == 0 ? dec_ : decb_)[(size_t(cx) << kMaxCode) + w];
                        const int l = d & 15, k = (d >> 8) & 1023;
                        if (used + l > kMaxCode) break;
                        used += l;
                        ++ns;
                        ones += k;
                        ob += olen[k];
                        cx = ctx_of(k);
                    }
                    (dir == 0 ? multif_ : multib_)[(size_t(c) << kMaxCode) + x] =
                        uint32_t(used) | (uint32_t(ns) << 4) | (ones << 8) | (ob << 18) | (uint32_t(cx) << 28);
                }
        // skip-table entries, same layout: at most `lim` (< 16) classes whose
        // codes fit in the kSkipW bits x (none for lim = 0: the context stays)
        skipf_.assign(size_t(kCtx) * 16 << kSkipW, 0);
        skipb_.assign(size_t(kCtx) * 16 << kSkipW, 0);
        for (int dir = 0; dir < 2; ++dir)
            for (int c = 0; c < kCtx; ++c)
                for (int lim = 0; lim < 16; ++lim)
                    for (uint32_t x = 0; x < (1u << kSkipW); ++x) {
                        int used = 0, ns = 0, cx = c;
                        uint32_t ones = 0, ob = 0;
                        while (ns < lim) {  // x aligned as the kMaxCode-bit windows of dec_ / decb_
                            const uint32_t w = dir == 0 ? (x >> used) & kMask : ((x << (kMaxCode - kSkipW)) << used) & kMask;
                            const uint32_t d = (dir == 0 ? dec_ : decb_)[(size_t(cx) << kMaxCode) + w];
                            const int l = d & 15, k = (d >> 8) & 1023;
                            if (used + l > kSkipW) break;
                            used += l;
                            ++ns;
                            ones += k;
                            ob += olen[k];
                            cx = ctx_of(k);
                        }
                        (dir == 0 ? skipf_ : skipb_)[((size_t(c) * 16 + lim) << kSkipW) + x] =
                            uint32_t(used) | (uint32_t(ns) << 4) | (ones << 8) | (ob << 18) | (uint32_t(cx) << 28);
                    }
    }
    uint64_t select_impl(uint64_t k, bool one) const {
        uint64_t lo = 0, hi = n_;  // smallest i with rank(i + 1) > k
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            uint64_t r = one ? rank1(mid + 1) : (mid + 1) - rank1(mid + 1);
            if (r > k) hi = mid; else lo = mid + 1;
        }
        return lo;
    }

    uint64_t n_ = 0, ones_ = 0, nblocks_ = 0;
    Array<uint8_t> clen_;          // class code length per (context, class)
    Array<uint64_t> hyper_;        // per 64 superblocks: ones before, offset-stream bit, class-stream bit
    Array<uint16_t> dir_;          // per superblock: the same three, relative to its hyperblock
    Array<uint64_t> cls_, offs_;   // class codes; block offsets
    std::vector<uint64_t> codef_, codeb_;   // per (context, class): forward (bit-reversed) and backward codes
    std::vector<uint32_t> dec_, decb_;      // per context, 2^kMaxCode entries: one class, in the layout of multif_
    std::vector<uint32_t> multif_, multib_; // per context, 2^kMaxCode entries: all classes whose codes fit
    std::vector<uint32_t> skipf_, skipb_;   // per (context, limit < 16), 2^kSkipW entries: at most limit classes
};

// ---------------------------------------------------------------- packed

/// Fixed-width packed unsigned integers.
class PackedInts {
public:
    PackedInts() = default;
    PackedInts(const std::vector<uint64_t>& v, int width) : n_(v.size()), w_(width) {
        std::vector<uint64_t> words((n_ * w_ + 63) / 64 + 1, 0);
        for (uint64_t i = 0; i < n_; ++i) {
            if (w_ < 64 && (v[i] >> w_)) throw std::invalid_argument("PackedInts: value too wide");
            rrr_detail::or_bits(words.data(), i * w_, v[i], w_);
        }
        words_ = Array<uint64_t>(std::move(words));
    }
    uint64_t operator[](uint64_t i) const {  // the spare word past the end makes narrow reads branch-free
        return w_ < 64 ? rrr_detail::read_bits_padded(words_.data(), i * w_, w_) : rrr_detail::read_bits(words_.data(), i * w_, w_);
    }
    int width() const { return w_; }
    uint64_t size() const { return n_; }
    size_t bytes() const { return words_.size() * 8 + 16; }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(static_cast<uint64_t>(w_));
        words_.save(b);
    }
    static PackedInts load(BlobReader& r) {
        PackedInts p;
        p.n_ = r.get_u64();
        p.w_ = static_cast<int>(r.get_u64());
        p.words_ = Array<uint64_t>::load(r);
        if (p.w_ < 0 || p.w_ > 64 || p.words_.size() != (p.n_ * p.w_ + 63) / 64 + 1) r.bad();
        return p;
    }

private:
    uint64_t n_ = 0;
    int w_ = 0;
    Array<uint64_t> words_;
};

inline int bits_for(uint64_t x) {  // bits to store values in [0, x]
    int b = 1;
    while (b < 64 && (x >> b)) ++b;
    return b;
}

// ---------------------------------------------------------------- Elias–Fano

/// Sorted distinct integers in [0, u): low l bits packed, high parts unary in a BitVector.
class EliasFano {
public:
    EliasFano() = default;
    EliasFano(const std::vector<uint64_t>& vals, uint64_t u) : m_(vals.size()), u_(u) {
        l_ = 0;
        if (m_ > 0)
            while (l_ < 62 && (u_ / m_) >> (l_ + 1)) ++l_;
        std::vector<uint64_t> low((m_ * l_ + 63) / 64 + 1, 0);
        const uint64_t hbits = m_ + (u_ >> l_) + 1;
        std::vector<uint64_t> high((hbits + 63) / 64, 0);
        for (uint64_t i = 0; i < m_; ++i) {
            const uint64_t v = vals[i];
            if (i && v <= vals[i - 1]) throw std::invalid_argument("EliasFano: values must be strictly increasing");
            if (v >= u_) throw std::invalid_argument("EliasFano: value out of range");
            if (l_) {
                const uint64_t lv = v & ((uint64_t(1) << l_) - 1), p = i * l_;
                low[p >> 6] |= lv << (p & 63);
                if ((p & 63) + l_ > 64) low[(p >> 6) + 1] |= lv >> (64 - (p & 63));
            }
            const uint64_t hp = (v >> l_) + i;
            high[hp >> 6] |= uint64_t(1) << (hp & 63);
        }
        std::vector<uint64_t> hint;  // position of every 256th zero of high
        for (uint64_t p = 0, z = 0; p < hbits; ++p)
            if (!((high[p >> 6] >> (p & 63)) & 1)) {
                if (z % kHint == 0) hint.push_back(p);
                ++z;
            }
        low_ = Array<uint64_t>(std::move(low));
        high_ = BitVector(std::move(high), hbits);
        hint_ = Array<uint64_t>(std::move(hint));
    }

    uint64_t size() const { return m_; }
    uint64_t universe() const { return u_; }
    /// The i-th value.
    uint64_t select(uint64_t i) const { return ((high_.select1(i) - i) << l_) | low(i); }
    /// Number of values < x.
    uint64_t rank1(uint64_t x) const {
        if (x >= u_) return m_;
        const uint64_t h = x >> l_, lx = x & ((uint64_t(1) << l_) - 1);
        // values with high part < h: ones before the h-th zero
        uint64_t p = h == 0 ? 0 : select0_high(h - 1) + 1;  // first bit of bucket h
        uint64_t i = p - h;                                  // values before bucket h
        while (p < high_.size() && high_[p]) {
            if (low(i) >= lx) break;
            ++i;
            ++p;
        }
        return i;
    }
    /// True if x is a value; then *rank = its index.
    bool contains(uint64_t x, uint64_t* rank) const {
        const uint64_t r = rank1(x);
        if (r < m_ && select(r) == x) { *rank = r; return true; }
        return false;
    }
    size_t bytes() const { return low_.size() * 8 + high_.bytes() + hint_.size() * 8 + 24; }
    void save(Blob& b) const {
        b.put_u64(m_);
        b.put_u64(u_);
        b.put_u64(l_);
        low_.save(b);
        high_.save(b);
        hint_.save(b);
    }
    static EliasFano load(BlobReader& r) {
        EliasFano e;
        e.m_ = r.get_u64();
        e.u_ = r.get_u64();
        e.l_ = static_cast<int>(r.get_u64());
        e.low_ = Array<uint64_t>::load(r);
        e.high_ = BitVector::load(r);
        e.hint_ = Array<uint64_t>::load(r);
        return e;
    }

private:
    static constexpr uint64_t kHint = 256;
    /// Position of the z-th (0-based) zero of the high part: from the hint, scan words.
    uint64_t select0_high(uint64_t z) const {
        uint64_t p = hint_[z / kHint];
        uint64_t k = z % kHint;
        if (k == 0) return p;
        const uint64_t* w = high_.words();
        uint64_t wi = p >> 6;
        uint64_t x = ~w[wi] & (~uint64_t(0) << (p & 63));  // zeros at >= p
        for (;;) {
            const uint64_t c = static_cast<uint64_t>(popcnt64(x));
            if (k < c) return wi * 64 + select_in_word(x, static_cast<int>(k));
            k -= c;
            x = ~w[++wi];
        }
    }
    uint64_t low(uint64_t i) const { return rrr_detail::read_bits(low_.data(), i * l_, l_); }
    uint64_t m_ = 0, u_ = 0;
    int l_ = 0;
    Array<uint64_t> low_;
    BitVector high_;
    Array<uint64_t> hint_;
};

inline void Blob::write_file(const std::string& path) const {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot create " + path);
    bool ok = buf_.empty() || std::fwrite(buf_.data(), 1, buf_.size(), f) == buf_.size();
    ok = ok && std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    std::fclose(f);
    if (!ok) throw std::runtime_error("write failed for " + path);
}

}  // namespace infinigram

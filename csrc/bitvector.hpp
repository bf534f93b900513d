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
//                 over bit positions). 24 blocks form a superblock, one
//                 20-byte record: the 24 classes in 5 bits each and the ones
//                 and offset bits before it (u16s relative to u64s per 64
//                 superblocks). rank1/access read the record (one cache line
//                 mostly), zero the classes from their block on and sum the
//                 ones and offset lengths of the rest with 12 independent
//                 lookups in a 4 KB table of class pairs — no walk, no
//                 branch — then decode the block's offset. Batched ranks
//                 (rank_access_batch: one vector; rank_pair_multi: pairs on
//                 several vectors) stage the cache misses of all their
//                 positions.
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

/// Plain bit vector with rank (a u16 per 256 bits under a u64 per 2^16) and binary-search select.
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

/// Per pair of 5-bit classes (a 10-bit index, the first class in the low
/// bits): their ones (low 16 bits) and offset bits (high 16). 4 KB.
struct PairTable {
    uint32_t e[1024];
    PairTable() {
        for (uint32_t p = 0; p < 1024; ++p) {
            const uint32_t a = p & 31, b = p >> 5;
            e[p] = (a + b) | (uint32_t(kTables.len[a] + kTables.len[b]) << 16);
        }
    }
};
inline const PairTable kPairs;  // after kTables (inline variables initialise in definition order)

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

/// RRR-compressed bit vector: 31-bit blocks, each a 5-bit class (its
/// popcount) and its offset among the blocks of that class (split-coded,
/// rrr_detail::encode). 24 blocks form a superblock, stored as one 20-byte
/// record: the classes of blocks 0..11 and 12..23 as two 60-bit fields and
/// the ones before the superblock and its offsets' position, u16s relative to
/// u64s per 64 superblocks. A rank reads that record (one cache line mostly),
/// masks the classes of the blocks after its own to class 0 and sums the
/// ones and offset lengths of the others with 12 independent lookups in a
/// 4 KB table of class pairs (no walk, no branch), then decodes its block.
class RRRVector {
public:
    static constexpr int kHB = 64;        // superblocks per hyperblock
    static constexpr int kRec = 20;       // bytes per superblock record

    RRRVector() = default;

    /// Compresses n bits of `words` (plain, LSB first) on `threads` threads. O(n).
    RRRVector(const uint64_t* words, uint64_t n, int threads = 1) : n_(n) {
        using namespace rrr_detail;
        const Tables& t = tables();
        const uint64_t nwords = (n + 63) / 64;
        nblocks_ = (n + kB - 1) / kB;
        nsb_ = (nblocks_ + kSB - 1) / kSB;
        const uint64_t nhb = nsb_ / kHB + 1;
        threads = std::max(1, std::min<int>(threads, static_cast<int>(nsb_ / 64 + 1)));
        auto par = [&](auto&& body) {
            std::vector<std::thread> pool;
            for (int th = 1; th < threads; ++th) pool.emplace_back(body, th);
            body(0);
            for (auto& x : pool) x.join();
        };
        std::vector<uint8_t> cls(nsb_ * kSB, 0);
        std::vector<uint64_t> sb_ones(nsb_, 0), sb_obits(nsb_, 0);
        par([&](int th) {
            for (uint64_t sb = nsb_ * th / threads; sb < nsb_ * (th + 1) / threads; ++sb) {
                uint64_t ones = 0, ob = 0;
                for (int j = 0; j < kSB && sb * kSB + j < nblocks_; ++j) {
                    const uint64_t b = sb * kSB + j;
                    const int k = popcnt64(get_block(words, nwords, b * kB));
                    cls[b] = static_cast<uint8_t>(k);
                    ones += k;
                    ob += t.len[k];
                }
                sb_ones[sb] = ones;
                sb_obits[sb] = ob;
            }
        });
        std::vector<uint64_t> hyper(2 * nhb, 0), sb_opos(nsb_);
        std::vector<uint8_t> rec(nsb_ * kRec + 8, 0);  // + 8: whole-word reads of the last record
        uint64_t po = 0, pb = 0;
        for (uint64_t sb = 0; sb <= nsb_; ++sb) {
            const uint64_t h = sb / kHB;
            if (sb % kHB == 0) { hyper[2 * h] = po; hyper[2 * h + 1] = pb; }
            if (sb == nsb_) break;
            const uint32_t d = static_cast<uint32_t>(po - hyper[2 * h]) | (static_cast<uint32_t>(pb - hyper[2 * h + 1]) << 16);
            uint64_t w[2] = {0, 0};
            for (int j = 0; j < kSB; ++j) w[j / 12] |= uint64_t(cls[sb * kSB + j]) << (5 * (j % 12));
            std::memcpy(rec.data() + sb * kRec, w, 16);
            std::memcpy(rec.data() + sb * kRec + 16, &d, 4);
            sb_opos[sb] = pb;
            po += sb_ones[sb];
            pb += sb_obits[sb];
        }
        ones_ = po;
        std::vector<uint64_t> offs(pb / 64 + 2, 0);
        par([&](int th) {
            for (uint64_t sb = nsb_ * th / threads; sb < nsb_ * (th + 1) / threads; ++sb) {
                uint64_t pos = sb_opos[sb];
                for (int j = 0; j < kSB && sb * kSB + j < nblocks_; ++j) {
                    const uint64_t blk = sb * kSB + j;
                    const int len = t.len[cls[blk]];
                    if (len) or_bits_atomic(offs.data(), pos, encode(get_block(words, nwords, blk * kB)), len);
                    pos += len;
                }
            }
        });
        hyper_ = Array<uint64_t>(std::move(hyper));
        rec_ = Array<uint8_t>(std::move(rec));
        offs_ = Array<uint64_t>(std::move(offs));
    }

    uint64_t size() const { return n_; }
    uint64_t ones() const { return ones_; }

    /// Ones in [0, i), i <= size(). O(1): one record, 12 table lookups, one block decode.
    uint64_t rank1(uint64_t i) const { return rank_access(i, nullptr); }
    uint64_t rank0(uint64_t i) const { return i - rank1(i); }
    bool operator[](uint64_t i) const {
        int b;
        rank_access(i, &b);
        return b;
    }
    /// rank1(i), and bit i in *bit (i < size() for the bit; past the end: ones(), bit 0).
    uint64_t rank_access(uint64_t i, int* bit) const {
        const Block b = block_of(i);
        return b.r + rrr_detail::rank_in_block(b.k, offset(b), b.x, bit);
    }
    /// Prefetches the record of the superblock holding bit i.
    void prefetch(uint64_t i) const {
        const uint64_t sb = std::min(i, n_ ? n_ - 1 : 0) / rrr_detail::kSBBits;
        const uint8_t* r = rec_.data() + sb * kRec;
        __builtin_prefetch(r);
        __builtin_prefetch(r + kRec - 1);
    }

    /// rank_access for g positions at once (g <= kMaxBatch), in stages across
    /// the positions (records, offsets) with prefetches, so the g independent
    /// chains of cache misses overlap. O(g).
    static constexpr size_t kMaxBatch = 32;
    void rank_access_batch(const uint64_t* idx, size_t g, uint64_t* rank, int* bit) const {
        for (size_t a = 0; a < g; ++a) prefetch(idx[a]);
        Block b[kMaxBatch];
        for (size_t a = 0; a < g; ++a) {
            b[a] = block_of(idx[a]);
            __builtin_prefetch(offs_.data() + (b[a].pos >> 6));
        }
        int k[kMaxBatch], x[kMaxBatch];
        uint64_t off[kMaxBatch], in[kMaxBatch];
        for (size_t a = 0; a < g; ++a) { k[a] = b[a].k; x[a] = b[a].x; off[a] = offset(b[a]); }
        rrr_detail::rank_in_block_multi(k, off, x, g, in, bit);
        for (size_t a = 0; a < g; ++a) rank[a] = b[a].r + in[a];
    }

    /// rank1(i) and rank1(j), i <= j.
    void rank_pair(uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const {
        *ri = rank1(i);
        *rj = i == j ? *ri : rank1(j);
    }

    /// rank_pair for g pairs, each on its own vector (v[a] may differ; i[a] <= j[a]
    /// <= v[a]->size(); g <= kMaxBatch): ri[a] = v[a]->rank1(i[a]), rj[a] = v[a]->rank1(j[a]).
    /// Staged across the pairs (records, offsets), each stage prefetching
    /// what the next reads. O(g). `early(a, lo_i, hi_i, lo_j, hi_j)` is
    /// called as soon as the records are read, with bounds lo <= rank1 <= hi
    /// of both ranks (hi - lo < 31, the block's ones): a caller descending a
    /// wavelet tree prefetches the next level's records there, so that their
    /// misses overlap this level's offset misses.
    template <class Early = NoEarly>
    static void rank_pair_multi(const RRRVector* const* v, const uint64_t* i, const uint64_t* j, size_t g,
                                uint64_t* ri, uint64_t* rj, Early&& early = Early{}) {
        for (size_t a = 0; a < g; ++a) { v[a]->prefetch(i[a]); v[a]->prefetch(j[a]); }
        Block bi[kMaxBatch], bj[kMaxBatch];
        for (size_t a = 0; a < g; ++a) {
            const RRRVector& w = *v[a];
            bi[a] = w.block_of(i[a]);
            bj[a] = j[a] == i[a] ? bi[a] : w.block_of(j[a]);
            __builtin_prefetch(w.offs_.data() + (bi[a].pos >> 6));
            __builtin_prefetch(w.offs_.data() + (bj[a].pos >> 6));
            early(a, bi[a].r, bi[a].r + static_cast<uint64_t>(bi[a].k), bj[a].r, bj[a].r + static_cast<uint64_t>(bj[a].k));
        }
        int k[2 * kMaxBatch], x[2 * kMaxBatch], bit[2 * kMaxBatch];
        uint64_t off[2 * kMaxBatch], in[2 * kMaxBatch];
        size_t nd = 0;
        for (size_t a = 0; a < g; ++a) {  // distinct in-block decodings (i and j often share one)
            k[nd] = bi[a].k; x[nd] = bi[a].x; off[nd] = v[a]->offset(bi[a]); ++nd;
            if (j[a] != i[a]) { k[nd] = bj[a].k; x[nd] = bj[a].x; off[nd] = v[a]->offset(bj[a]); ++nd; }
        }
        rrr_detail::rank_in_block_multi(k, off, x, nd, in, bit);
        for (size_t a = 0, d = 0; a < g; ++a) {
            ri[a] = bi[a].r + in[d++];
            rj[a] = j[a] != i[a] ? bj[a].r + in[d++] : ri[a];
        }
    }

    /// Position of the k-th (0-based) one / zero (binary search on rank).
    uint64_t select1(uint64_t k) const { return select_impl(k, true); }
    uint64_t select0(uint64_t k) const { return select_impl(k, false); }

    size_t bytes() const { return (hyper_.size() + offs_.size()) * 8 + rec_.size() + 16; }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(ones_);
        hyper_.save(b);
        rec_.save(b);
        offs_.save(b);
    }
    static RRRVector load(BlobReader& r) {
        RRRVector v;
        v.n_ = r.get_u64();
        v.ones_ = r.get_u64();
        v.hyper_ = Array<uint64_t>::load(r);
        v.rec_ = Array<uint8_t>::load(r);
        v.offs_ = Array<uint64_t>::load(r);
        v.nblocks_ = (v.n_ + rrr_detail::kB - 1) / rrr_detail::kB;
        v.nsb_ = (v.nblocks_ + rrr_detail::kSB - 1) / rrr_detail::kSB;
        if (v.hyper_.size() != (v.nsb_ / kHB + 1) * 2 || v.rec_.size() != v.nsb_ * kRec + 8 || v.offs_.size() < 2 ||
            v.ones_ > v.n_ || v.hyper_[2 * (v.nsb_ / kHB)] > v.ones_ || v.hyper_[2 * (v.nsb_ / kHB) + 1] / 64 + 2 > v.offs_.size())
            r.bad();
        return v;
    }

private:
    /// A block: ones before it, bit position of its offset, its class, the bit's place in it.
    struct Block { uint64_t r, pos; int k, x; };

    /// Sum of the pair-table entries of the six class pairs of a 60-bit field.
    static uint32_t field_sum(const uint32_t* pt, uint64_t f) {
        return pt[f & 1023] + pt[(f >> 10) & 1023] + pt[(f >> 20) & 1023] + pt[(f >> 30) & 1023] +
               pt[(f >> 40) & 1023] + pt[(f >> 50) & 1023];
    }
    /// The block holding bit i: one record read, no branch (i >= n: a class-0
    /// block after all the ones, whose rank part is 0 and bit 0).
    Block block_of(uint64_t i) const {
        using namespace rrr_detail;
        if (i >= n_) return Block{ones_, 0, 0, 0};
        const uint64_t sb = i / kSBBits, in = i - sb * kSBBits;
        const int j = static_cast<int>(in / kB);
        const uint8_t* rp = rec_.data() + sb * kRec;
        uint64_t w0, w1;
        uint32_t d;
        std::memcpy(&w0, rp, 8);
        std::memcpy(&w1, rp + 8, 8);
        std::memcpy(&d, rp + 16, 4);
        const uint64_t* h = hyper_.data() + 2 * (sb / kHB);
        const int n0 = j < 12 ? j : 12, n1 = j - n0;  // blocks before j in each field
        const uint64_t m0 = w0 & ((uint64_t(1) << (5 * n0)) - 1), m1 = w1 & ((uint64_t(1) << (5 * n1)) - 1);
        const uint32_t* pt = rrr_detail::kPairs.e;
        const uint32_t s = field_sum(pt, m0) + field_sum(pt, m1);
        const int k = static_cast<int>(((j < 12 ? w0 : w1) >> (5 * (j - (j < 12 ? 0 : 12)))) & 31);
        return Block{h[0] + (d & 0xFFFF) + (s & 0xFFFF), h[1] + (d >> 16) + (s >> 16), k,
                     static_cast<int>(in - uint64_t(j) * kB)};
    }
    uint64_t offset(const Block& b) const {
        return rrr_detail::read_bits_padded(offs_.data(), b.pos, rrr_detail::tables().len[b.k]);
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

    uint64_t n_ = 0, ones_ = 0, nblocks_ = 0, nsb_ = 0;
    Array<uint64_t> hyper_;  // per 64 superblocks: ones before, offset-stream bit
    Array<uint8_t> rec_;     // per superblock: 2 x 60-bit class fields, u16 ones / u16 offset bits after the hyperblock
    Array<uint64_t> offs_;   // block offsets
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
        bool found;
        return x >= u_ ? m_ : lower_bound(x, &found);
    }
    /// True if x is a value; then *rank = its index.
    bool contains(uint64_t x, uint64_t* rank) const {
        bool found = false;
        const uint64_t i = x < u_ ? lower_bound(x, &found) : 0;
        if (found) *rank = i;
        return found;
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
    /// Index of the first value >= x (x < u_), walking x's bucket of the high
    /// part; *found: that value is x.
    uint64_t lower_bound(uint64_t x, bool* found) const {
        const uint64_t h = x >> l_, lx = x & ((uint64_t(1) << l_) - 1);
        uint64_t p = h == 0 ? 0 : select0_high(h - 1) + 1;  // first bit of bucket h
        uint64_t i = p - h;                                  // values before bucket h
        for (; p < high_.size() && high_[p]; ++p, ++i) {
            const uint64_t lo = low(i);
            if (lo >= lx) { *found = lo == lx; return i; }
        }
        *found = false;
        return i;
    }
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

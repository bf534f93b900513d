// bitvector.hpp — bit vectors with rank/select, plain and compressed.
//
//   BitVector     plain bits + one u64 absolute rank per 512-bit block (12.5%).
//                 rank1 O(1) (one or two cache lines), select1/select0 by a
//                 binary search over the block ranks, then in-word select.
//   RRRVector     compressed (Raman–Raman–Rao): 63-bit blocks stored as a
//                 6-bit class (popcount) plus the block's index among the
//                 C(63, class) blocks of that class (combinatorial number
//                 system, ceil(log2 C(63, k)) bits; none for k = 0 or 63).
//                 64 blocks form a superblock whose header is one 64-byte
//                 line: rank before it (u64), bit pointer into the offset
//                 stream (u64), its 64 classes (6 bits each). rank1/access
//                 read that line plus one or two words of offsets.
//   EliasFano     a sorted set of m integers in [0, u): 2 + log2(u/m) bits per
//                 element; rank1 (how many < x), contains(x, &rank), select.
//
// Persistence: every structure appends its arrays to a `Blob` (8-byte aligned
// sections) and is re-opened zero-copy from a memory-mapped pointer with a
// `BlobReader`. Popcount is __builtin_popcountll (portable; -mpopcnt or
// -march=native make it one instruction).
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

inline int popcnt64(uint64_t x) { return __builtin_popcountll(x); }

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
        std::vector<uint64_t> ranks(n / 512 + 2, 0);
        uint64_t acc = 0;
        for (uint64_t b = 0; b < ranks.size(); ++b) {
            ranks[b] = acc;
            for (uint64_t w = b * 8; w < std::min<uint64_t>(b * 8 + 8, words.size()); ++w) acc += popcnt64(words[w]);
        }
        ones_ = ranks.back();
        bits_ = Array<uint64_t>(std::move(words));
        ranks_ = Array<uint64_t>(std::move(ranks));
    }

    uint64_t size() const { return n_; }
    uint64_t ones() const { return ones_; }
    const uint64_t* words() const { return bits_.data(); }
    bool operator[](uint64_t i) const { return (bits_[i >> 6] >> (i & 63)) & 1; }

    /// Ones in [0, i), i <= size().
    uint64_t rank1(uint64_t i) const {
        const uint64_t b = i >> 9;
        uint64_t r = ranks_[b];
        const uint64_t w0 = b << 3, w = i >> 6;
        for (uint64_t k = w0; k < w; ++k) r += popcnt64(bits_[k]);
        const int sh = i & 63;
        if (sh) r += popcnt64(bits_[w] << (64 - sh));
        return r;
    }
    uint64_t rank0(uint64_t i) const { return i - rank1(i); }
    void rank_pair(uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const { *ri = rank1(i); *rj = rank1(j); }

    /// rank1(i) and bit i together (same interface as RRRVector).
    uint64_t rank_access(uint64_t i, int* bit) const {
        if (bit) *bit = (*this)[i];
        return rank1(i);
    }
    void prefetch(uint64_t i) const { __builtin_prefetch(bits_.data() + (i >> 6)); }

    /// Position of the k-th (0-based) one; k < ones().
    uint64_t select1(uint64_t k) const {
        uint64_t lo = 0, hi = ranks_.size() - 1;  // last block with ranks_[b] <= k
        while (hi - lo > 1) {
            uint64_t mid = (lo + hi) / 2;
            if (ranks_[mid] <= k) lo = mid; else hi = mid;
        }
        k -= ranks_[lo];
        for (uint64_t w = lo * 8;; ++w) {
            int c = popcnt64(bits_[w]);
            if (k < static_cast<uint64_t>(c)) return w * 64 + select_in_word(bits_[w], static_cast<int>(k));
            k -= c;
        }
    }
    /// Position of the k-th (0-based) zero; k < size() - ones().
    uint64_t select0(uint64_t k) const {
        uint64_t lo = 0, hi = ranks_.size() - 1;
        while (hi - lo > 1) {
            uint64_t mid = (lo + hi) / 2;
            if (mid * 512 - ranks_[mid] <= k) lo = mid; else hi = mid;
        }
        k -= lo * 512 - ranks_[lo];
        for (uint64_t w = lo * 8;; ++w) {
            int c = 64 - popcnt64(bits_[w]);
            if (k < static_cast<uint64_t>(c)) return w * 64 + select_in_word(~bits_[w], static_cast<int>(k));
            k -= c;
        }
    }

    size_t bytes() const { return (bits_.size() + ranks_.size()) * 8 + 16; }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(ones_);
        bits_.save(b);
        ranks_.save(b);
    }
    static BitVector load(BlobReader& r) {
        BitVector v;
        v.n_ = r.get_u64();
        v.ones_ = r.get_u64();
        v.bits_ = Array<uint64_t>::load(r);
        v.ranks_ = Array<uint64_t>::load(r);
        if (v.bits_.size() != (v.n_ + 63) / 64 + 1 || v.ranks_.size() != v.n_ / 512 + 2) r.bad();
        return v;
    }

private:
    uint64_t n_ = 0, ones_ = 0;
    Array<uint64_t> bits_, ranks_;
};

// ---------------------------------------------------------------- RRR

namespace rrr_detail {

constexpr int kB = 63;             // bits per block
constexpr int kSB = 64;            // blocks per superblock
constexpr uint64_t kSBBits = uint64_t(kB) * kSB;  // 4032

struct Tables {
    uint64_t C[64][64];  // C[p][j] = binomial(p, j), p, j <= 63
    uint8_t len[64];     // bits of the offset of a block of class k
    Tables() {
        for (int p = 0; p < 64; ++p)
            for (int j = 0; j < 64; ++j)
                C[p][j] = j == 0 ? 1 : (p == 0 ? 0 : C[p - 1][j - 1] + C[p - 1][j]);
        for (int k = 0; k < 64; ++k) {
            uint64_t c = C[63][k];  // number of blocks of class k
            int b = 0;
            while (b < 64 && (c - 1) >> b) ++b;  // ceil(log2 c)
            len[k] = static_cast<uint8_t>(c <= 1 ? 0 : b);
        }
    }
};
inline const Tables& tables() {
    static const Tables t;
    return t;
}

/// Index of the 63-bit block x among all blocks with popcount(x) ones.
inline uint64_t encode(uint64_t x) {
    const Tables& t = tables();
    uint64_t off = 0;
    int j = 0;
    while (x) {
        int p = __builtin_ctzll(x);
        x &= x - 1;
        off += t.C[p][++j];
    }
    return off;
}

/// The block of class k with index off.
inline uint64_t decode(int k, uint64_t off) {
    const Tables& t = tables();
    uint64_t x = 0;
    for (int p = kB - 1; p >= 0 && k > 0; --p) {
        if (off == 0) { x |= (uint64_t(1) << k) - 1; break; }  // the rest: the k lowest positions
        const uint64_t c = t.C[p][k];
        if (off >= c) { x |= uint64_t(1) << p; off -= c; --k; }
    }
    return x;
}

/// Ones of the block (class k, index off) at positions < x; *bit = bit x (if bit != nullptr).
/// Greedy decoding from the top position down to x, branch-free.
inline int rank_in_block(int k, uint64_t off, int x, int* bit) {
    if (k == 0) { if (bit) *bit = 0; return 0; }
    if (k == kB) { if (bit) *bit = 1; return x; }
    const Tables& t = tables();
    for (int p = kB - 1; p > x; --p) {
        const uint64_t c = t.C[p][k];  // k == 0: C = 1 > off == 0, nothing changes
        const bool ge = off >= c;
        off -= ge ? c : 0;
        k -= ge;
    }
    const int b = off >= t.C[x][k] && k > 0;
    if (bit) *bit = b;
    return k - b;
}

inline uint64_t read_bits(const uint64_t* w, uint64_t pos, int len) {
    if (len == 0) return 0;
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    uint64_t v = w[i] >> s;
    if (s + len > 64) v |= w[i + 1] << (64 - s);
    return len == 64 ? v : v & ((uint64_t(1) << len) - 1);
}

inline void or_bits_atomic(uint64_t* w, uint64_t pos, uint64_t v, int len) {
    if (len == 0) return;
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    __atomic_fetch_or(&w[i], v << s, __ATOMIC_RELAXED);
    if (s + len > 64) __atomic_fetch_or(&w[i + 1], v >> (64 - s), __ATOMIC_RELAXED);
}

/// 63 bits of a plain word array starting at bit pos (zeros past the end).
inline uint64_t get63(const uint64_t* w, uint64_t nwords, uint64_t pos) {
    const uint64_t i = pos >> 6;
    const int s = pos & 63;
    if (i >= nwords) return 0;
    uint64_t v = w[i] >> s;
    if (s > 1 && i + 1 < nwords) v |= w[i + 1] << (64 - s);
    return v & ((uint64_t(1) << kB) - 1);
}

}  // namespace rrr_detail

/// RRR-compressed bit vector (63-bit blocks, superblock headers in 64-byte lines).
class RRRVector {
public:
    RRRVector() = default;

    /// Compresses n bits of `words` (plain, LSB first) on `threads` threads.
    RRRVector(const uint64_t* words, uint64_t n, int threads = 1) : n_(n) {
        using namespace rrr_detail;
        const Tables& t = tables();
        const uint64_t nwords = (n + 63) / 64;
        const uint64_t nblocks = (n + kB - 1) / kB;
        const uint64_t nsb = nblocks / kSB + 1;  // + 1: a final header (rank/pointer at the end)
        std::vector<uint64_t> lines(nsb * 8, 0);
        std::vector<uint64_t> sb_bits(nsb, 0), sb_ones(nsb, 0);
        threads = std::max(1, std::min<int>(threads, static_cast<int>(nsb / 64 + 1)));
        auto par = [&](auto&& body) {
            std::vector<std::thread> pool;
            for (int th = 1; th < threads; ++th) pool.emplace_back(body, th);
            body(0);
            for (auto& x : pool) x.join();
        };
        // pass 1: classes, per-superblock offset bits and ones
        par([&](int th) {
            for (uint64_t sb = nsb * th / threads; sb < nsb * (th + 1) / threads; ++sb) {
                uint64_t bits = 0, ones = 0;
                uint8_t* cls = reinterpret_cast<uint8_t*>(&lines[sb * 8 + 2]);
                for (int j = 0; j < kSB; ++j) {
                    const uint64_t blk = sb * kSB + j;
                    if (blk >= nblocks) break;
                    const int k = popcnt64(get63(words, nwords, blk * kB));
                    // 6-bit field j at bit 6j of the 48-byte class area
                    const uint64_t bp = uint64_t(6) * j;
                    for (int b = 0; b < 6; ++b)
                        if ((k >> b) & 1) cls[(bp + b) / 8] |= static_cast<uint8_t>(1u << ((bp + b) % 8));
                    bits += t.len[k];
                    ones += k;
                }
                sb_bits[sb] = bits;
                sb_ones[sb] = ones;
            }
        });
        uint64_t pb = 0, po = 0;
        for (uint64_t sb = 0; sb < nsb; ++sb) {
            lines[sb * 8] = po;
            lines[sb * 8 + 1] = pb;
            po += sb_ones[sb];
            pb += sb_bits[sb];
        }
        ones_ = po;
        std::vector<uint64_t> offs(pb / 64 + 2, 0);
        // pass 2: offsets
        par([&](int th) {
            for (uint64_t sb = nsb * th / threads; sb < nsb * (th + 1) / threads; ++sb) {
                uint64_t pos = lines[sb * 8 + 1];
                for (int j = 0; j < kSB; ++j) {
                    const uint64_t blk = sb * kSB + j;
                    if (blk >= nblocks) break;
                    const uint64_t x = get63(words, nwords, blk * kB);
                    const int k = popcnt64(x);
                    const int len = t.len[k];
                    if (len) or_bits_atomic(offs.data(), pos, encode(x), len);
                    pos += len;
                }
            }
        });
        lines_ = Array<uint64_t>(std::move(lines));
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
        const uint64_t sb = i / kSBBits;
        const uint64_t in = i - sb * kSBBits;
        const int j = static_cast<int>(in / kB);
        const int x = static_cast<int>(in - uint64_t(j) * kB);
        const uint64_t* line = lines_.data() + sb * 8;
        uint64_t r = line[0], pos = line[1];
        const uint8_t* cls = reinterpret_cast<const uint8_t*>(line + 2);
        const uint8_t* len = tables().len;
        for (int b = 0; b < j; ++b) {
            const int k = class_at(cls, b);
            r += k;
            pos += len[k];
        }
        if (j == kSB) { if (bit) *bit = 0; return r; }  // i at the very end of a full superblock
        const int k = class_at(cls, j);
        const uint64_t off = read_bits(offs_.data(), pos, len[k]);
        return r + rank_in_block(k, off, x, bit);
    }
    void prefetch(uint64_t i) const { __builtin_prefetch(lines_.data() + (i / rrr_detail::kSBBits) * 8); }

    /// rank1(i) and rank1(j), i <= j: one header walk when both fall in one superblock.
    void rank_pair(uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const {
        using namespace rrr_detail;
        const uint64_t sb = i / kSBBits;
        if (j / kSBBits != sb) { *ri = rank1(i); *rj = rank1(j); return; }
        const uint64_t ini = i - sb * kSBBits, inj = j - sb * kSBBits;
        const int bi = static_cast<int>(ini / kB), bj = static_cast<int>(inj / kB);
        const uint64_t* line = lines_.data() + sb * 8;
        uint64_t r = line[0], pos = line[1];
        const uint8_t* cls = reinterpret_cast<const uint8_t*>(line + 2);
        const uint8_t* len = tables().len;
        for (int b = 0; b < bi; ++b) {
            const int k = class_at(cls, b);
            r += k;
            pos += len[k];
        }
        int k = class_at(cls, bi);
        uint64_t off = read_bits(offs_.data(), pos, len[k]);
        *ri = r + rank_in_block(k, off, static_cast<int>(ini - uint64_t(bi) * kB), nullptr);
        for (int b = bi; b < bj; ++b) {
            const int kk = class_at(cls, b);
            r += kk;
            pos += len[kk];
        }
        if (bj != bi) {
            k = class_at(cls, bj);
            off = read_bits(offs_.data(), pos, len[k]);
        }
        *rj = r + rank_in_block(k, off, static_cast<int>(inj - uint64_t(bj) * kB), nullptr);
    }

    /// Position of the k-th (0-based) one / zero (binary search on rank).
    uint64_t select1(uint64_t k) const { return select_impl(k, true); }
    uint64_t select0(uint64_t k) const { return select_impl(k, false); }

    size_t bytes() const { return (lines_.size() + offs_.size()) * 8 + 16; }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(ones_);
        lines_.save(b);
        offs_.save(b);
    }
    static RRRVector load(BlobReader& r) {
        RRRVector v;
        v.n_ = r.get_u64();
        v.ones_ = r.get_u64();
        v.lines_ = Array<uint64_t>::load(r);
        v.offs_ = Array<uint64_t>::load(r);
        const uint64_t nblocks = (v.n_ + rrr_detail::kB - 1) / rrr_detail::kB;
        if (v.lines_.size() != (nblocks / rrr_detail::kSB + 1) * 8) r.bad();
        return v;
    }

private:
    static int class_at(const uint8_t* cls, int j) {
        const int bp = 6 * j;
        const int byte = bp >> 3, s = bp & 7;
        unsigned v = cls[byte];
        if (s > 2) v |= unsigned(cls[byte + 1]) << 8;  // byte + 1 <= 47 within the 48-byte area
        return static_cast<int>((v >> s) & 63);
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

    uint64_t n_ = 0, ones_ = 0;
    Array<uint64_t> lines_, offs_;
};

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

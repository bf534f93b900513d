// sa_index.hpp — exact search over one shard's suffix array.
//
// A shard is three memory-mapped files: tokens (Tok[n]), the suffix array
// (n entries of ptr_width bytes) and document offsets (u64[n_docs + 1], the
// position of each document's separator, then n).
//
//   find(q, m)        -> [lo, hi) SA ranks of suffixes starting with q    O(m log n)
//   count(q, m)       -> hi - lo                                           O(m log n)
//   suffix_at(rank)   -> text position                                     O(1)
//   doc_of(pos)       -> (local doc, offset in its text)                   O(log n_docs)
//
// Suffixes compare as token strings with the end of the shard smaller than any
// token, which is the order SA-IS produced. The separator is the largest token
// value, so a query made of real tokens never matches across documents.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "text.hpp"

namespace infinigram {

struct Range {
    uint64_t lo = 0, hi = 0;
    uint64_t size() const { return hi - lo; }
};

/// Files of one suffix-array shard.
struct ShardSpec {
    std::string tokens, sa, doc_offsets;
    int ptr_width;
};

template <class Tok>
class SAShard {
public:
    using Token = Tok;
    using Spec = ShardSpec;
    explicit SAShard(const ShardSpec& s) : SAShard(s.tokens, s.sa, s.doc_offsets, s.ptr_width) {}
    SAShard(const std::string& tokens_path, const std::string& sa_path, const std::string& doc_offsets_path,
            int ptr_width)
        : tokens_(tokens_path), sa_(sa_path), docs_(doc_offsets_path), w_(ptr_width) {
        if (ptr_width < 1 || ptr_width > 8) throw std::invalid_argument("ptr_width must be in 1..8");
        if (tokens_.size() % sizeof(Tok) != 0)
            throw std::invalid_argument(tokens_path + ": size is not a multiple of the token width");
        n_ = tokens_.size() / sizeof(Tok);
        if (sa_.size() != n_ * static_cast<uint64_t>(w_))
            throw std::invalid_argument(sa_path + ": size " + std::to_string(sa_.size()) + " != " +
                                        std::to_string(n_) + " positions x " + std::to_string(w_) + " bytes");
        if (docs_.size() % 8 != 0 || docs_.size() < 8)
            throw std::invalid_argument(doc_offsets_path + ": not an array of u64 offsets");
        n_docs_ = docs_.size() / 8 - 1;
        T_ = reinterpret_cast<const Tok*>(tokens_.data());
        SA_ = sa_.data();
        D_ = reinterpret_cast<const uint64_t*>(docs_.data());
        if (D_[n_docs_] != n_)
            throw std::invalid_argument(doc_offsets_path + ": last offset != number of positions");
    }

    uint64_t n_positions() const { return n_; }
    uint64_t n_docs() const { return n_docs_; }
    uint64_t n_tokens() const { return n_ - n_docs_; }
    const Tok* tokens() const { return T_; }

    uint64_t suffix_at(uint64_t rank) const { return load_le(SA_ + rank * static_cast<uint64_t>(w_), w_); }

    /// Compares the suffix at `pos` with q[0, m): <0 if the suffix sorts
    /// before q, 0 if q is a prefix of it, >0 if after.
    int compare(uint64_t pos, const Tok* q, size_t m) const {
        const uint64_t avail = n_ - pos;
        const size_t k = avail < m ? static_cast<size_t>(avail) : m;
        const Tok* s = T_ + pos;
        for (size_t i = 0; i < k; ++i) {
            if (s[i] != q[i]) return s[i] < q[i] ? -1 : 1;
        }
        return k < m ? -1 : 0;  // a suffix that ends inside q is smaller
    }

    /// The SA range of suffixes that start with q[0, m). m == 0: the whole SA.
    /// Both bounds are searched in lock step (see find_group), so their cache
    /// misses overlap: about log2(n) dependent misses, not 2 log2(n).
    Range find(const Tok* q, size_t m) const {
        if (m == 0) return Range{0, n_};
        Range r;
        find_group(&q, &m, 1, &r);
        return r;
    }

    /// SA ranges of g queries at once (g <= kMaxGroup): 2g branch-free binary
    /// searches (lower and upper bound per query) advanced in lock step, with
    /// each step's SA entries and text prefetched for all searches before any
    /// is read, so their cache misses overlap instead of queueing.
    /// Same result as find(q, m) per query; empty queries give [0, n).
    static constexpr size_t kMaxGroup = 16;
    void find_group(const Tok* const* qs, const size_t* ms, size_t g, Range* out) const {
        uint64_t base[2 * kMaxGroup], pos[2 * kMaxGroup];
        const size_t s = 2 * g;
        for (size_t k = 0; k < s; ++k) base[k] = 0;
        uint64_t len = n_;
        auto pred = [&](size_t k, uint64_t p) {
            const size_t qi = k >> 1;
            const int c = compare(p, qs[qi], ms[qi]);
            return (k & 1) ? c <= 0 : c < 0;  // odd: upper bound, even: lower bound
        };
        while (len > 1) {
            const uint64_t half = len / 2;
            for (size_t k = 0; k < s; ++k) __builtin_prefetch(SA_ + (base[k] + half) * static_cast<uint64_t>(w_));
            for (size_t k = 0; k < s; ++k) {
                pos[k] = suffix_at(base[k] + half);
                __builtin_prefetch(T_ + pos[k]);
            }
            for (size_t k = 0; k < s; ++k)
                if (pred(k, pos[k])) base[k] += half;
            len -= half;
        }
        for (size_t k = 0; k < s; ++k) base[k] += (n_ > 0 && pred(k, suffix_at(base[k]))) ? 1 : 0;
        for (size_t qi = 0; qi < g; ++qi)
            out[qi] = ms[qi] == 0 ? Range{0, n_} : Range{base[2 * qi], base[2 * qi + 1]};
    }

    /// The ranges of one query in several shards at once (S <= kMaxGroup):
    /// the 2S bound searches advance in lock step like find_group, each over
    /// its own shard, so an index of S shards answers in about the latency of
    /// one. out[s] = shards[s]->find(q, m).
    static void find_multi(const SAShard* const* shards, size_t S, const Tok* q, size_t m, Range* out) {
        uint64_t base[2 * kMaxGroup], len[2 * kMaxGroup], pos[2 * kMaxGroup];
        const size_t k2 = 2 * S;
        for (size_t k = 0; k < k2; ++k) { base[k] = 0; len[k] = shards[k >> 1]->n_; }
        auto pred = [&](size_t k, uint64_t p) {
            const int c = shards[k >> 1]->compare(p, q, m);
            return (k & 1) ? c <= 0 : c < 0;
        };
        for (;;) {
            bool active = false;
            for (size_t k = 0; k < k2; ++k) {
                if (len[k] <= 1) continue;
                active = true;
                const SAShard& sh = *shards[k >> 1];
                __builtin_prefetch(sh.SA_ + (base[k] + len[k] / 2) * static_cast<uint64_t>(sh.w_));
            }
            if (!active) break;
            for (size_t k = 0; k < k2; ++k) {
                if (len[k] <= 1) continue;
                const SAShard& sh = *shards[k >> 1];
                pos[k] = sh.suffix_at(base[k] + len[k] / 2);
                __builtin_prefetch(sh.T_ + pos[k]);
            }
            for (size_t k = 0; k < k2; ++k) {
                if (len[k] <= 1) continue;
                const uint64_t half = len[k] / 2;
                if (pred(k, pos[k])) base[k] += half;
                len[k] -= half;
            }
        }
        for (size_t k = 0; k < k2; ++k) {
            const SAShard& sh = *shards[k >> 1];
            base[k] += (sh.n_ > 0 && pred(k, sh.suffix_at(base[k]))) ? 1 : 0;
        }
        for (size_t s = 0; s < S; ++s) out[s] = m == 0 ? Range{0, shards[s]->n_} : Range{base[2 * s], base[2 * s + 1]};
    }

    /// Counts of g queries at once (see find_group).
    void count_group(const Tok* const* qs, const size_t* ms, size_t g, uint64_t* out) const {
        Range r[kMaxGroup];
        find_group(qs, ms, g, r);
        for (size_t qi = 0; qi < g; ++qi) out[qi] = r[qi].size();
    }

    /// (local document index, offset of pos within that document's text).
    /// pos must not be a separator position.
    std::pair<uint64_t, uint64_t> doc_of(uint64_t pos) const {
        const uint64_t* it = std::upper_bound(D_, D_ + n_docs_ + 1, pos);
        uint64_t d = static_cast<uint64_t>(it - D_) - 1;
        return {d, pos - D_[d] - 1};
    }

    /// Token span [start, end) of local document d's text.
    std::pair<uint64_t, uint64_t> doc_span(uint64_t d) const { return {D_[d] + 1, D_[d + 1]}; }

private:
    MappedFile tokens_, sa_, docs_;
    int w_;
    uint64_t n_ = 0, n_docs_ = 0;
    const Tok* T_ = nullptr;
    const uint8_t* SA_ = nullptr;
    const uint64_t* D_ = nullptr;
};

}  // namespace infinigram

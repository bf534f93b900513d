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
#include <cstring>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

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
        n_docs_ = check_doc_offsets(docs_.data(), docs_.size(), n_, doc_offsets_path);
        T_ = reinterpret_cast<const Tok*>(tokens_.data());
        SA_ = sa_.data();
        D_ = reinterpret_cast<const uint64_t*>(docs_.data());
        last_ = n_ > 0 ? n_ - 1 : 0;
    }

    uint64_t n_positions() const { return n_; }
    uint64_t n_docs() const { return n_docs_; }
    uint64_t n_tokens() const { return n_ - n_docs_; }
    const Tok* tokens() const { return T_; }

    /// SA[rank]; an entry >= n (a damaged sa.bin: verify() names it) reads as n - 1,
    /// so a search never reads outside the text.
    uint64_t suffix_at(uint64_t rank) const {
        const uint64_t p = load_le(SA_ + rank * static_cast<uint64_t>(w_), w_);
        return p < n_ ? p : last_;
    }
    /// out[k] = SA[ranks[k]], k < n (the FM shard's batched form; here a loop).
    void suffix_at_many(const uint64_t* ranks, size_t n, uint64_t* out) const {
        for (size_t k = 0; k < n; ++k) {
            if (k + 8 < n) prefetch_rank(ranks[k + 8]);
            out[k] = suffix_at(ranks[k]);
        }
    }
    /// Prefetches the SA entry of `rank` (no read).
    void prefetch_rank(uint64_t rank) const { __builtin_prefetch(SA_ + rank * static_cast<uint64_t>(w_)); }

    /// Compares the suffix at `pos` with q[0, m): <0 if the suffix sorts
    /// before q, 0 if q is a prefix of it, >0 if after.
    int compare(uint64_t pos, const Tok* q, size_t m) const {
        const uint64_t avail = n_ - pos;
        const size_t k = avail < m ? static_cast<size_t>(avail) : m;
        const Tok* s = T_ + pos;
        constexpr size_t W = 8 / sizeof(Tok);  // tokens per 8-byte word
        size_t i = 0;
        for (; i + W <= k; i += W) {  // a word at a time; the first differing token from the XOR (little-endian)
            uint64_t x, y;
            std::memcpy(&x, s + i, 8);
            std::memcpy(&y, q + i, 8);
            if (x != y) {
                const size_t t = i + static_cast<size_t>(__builtin_ctzll(x ^ y)) / (8 * sizeof(Tok));
                return s[t] < q[t] ? -1 : 1;
            }
        }
        for (; i < k; ++i)
            if (s[i] != q[i]) return s[i] < q[i] ? -1 : 1;
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

    // ------------------------------------------------------------------
    // Lock-step search. Every search is a branch-free binary search over
    // [0, n): len halves the same way whatever the path (half = len / 2,
    // len -= half), so the ranks probed by its first levels form a fixed
    // binary tree. The skeleton stores, for the first kSkelLevels levels,
    // each probed suffix's first 8 bytes as a big-endian key (heap order,
    // 512 KiB): those levels then compare keys in a small, cache-resident
    // array instead of touching the SA and the text at random, and only a
    // tie on the whole key (rare above the answer) reads the suffix itself.
    // Several searches (bounds of many queries, or of one query in several
    // shards) advance level by level together, each level's SA and text
    // probes prefetched for all of them before any is read. Past the
    // skeleton a two-level pipeline prefetches the text of both possible next
    // probes and the SA entries of the four after them (prefetch_ahead), so a
    // level rarely waits for memory: count 3.4 -> 2.4 us on fresh queries
    // over 2 shards of 50M positions.

    static constexpr size_t kMaxGroup = 16;
    static constexpr int kSkelLevels = 16;
    static constexpr size_t kKeyTokens = 8 / sizeof(Tok);

    /// One bound search: `upper` finds the first suffix > q (prefix-equal
    /// counts as not greater), otherwise the first suffix >= q.
    struct Chain {
        const SAShard* sh;
        const Tok* q;
        size_t m;
        bool upper;
        uint64_t qkey = 0, mask = 0;  // q's first min(m, kKeyTokens) tokens, big-endian
        uint64_t base = 0, len = 0, node = 1, pos = 0;
        int level = 0;
        void init() {
            base = 0;
            len = sh->n_;
            node = 1;
            level = 0;
            const size_t k = std::min(m, kKeyTokens);
            qkey = pack(q, k);
            mask = k == 0 ? 0 : (~uint64_t(0) << (64 - 8 * sizeof(Tok) * k));
        }
        bool pred(int c) const { return upper ? c <= 0 : c < 0; }
    };

    /// Advances the chains to their answers (chains[i].base).
    static void search(Chain* ch, size_t nc) {
        for (size_t k = 0; k < nc; ++k) ch[k].sh->skeleton();  // built once per shard
        skeleton_levels(ch, nc);
        bool todo[2 * kMaxGroup];
        for (;;) {
            bool active = false;
            // 1. levels answered by the skeleton; note which chains need a probe
            for (size_t k = 0; k < nc; ++k) {
                Chain& c = ch[k];
                todo[k] = false;
                if (c.len <= 1) continue;
                active = true;
                if (c.level < c.sh->skel_.levels && skeleton_step(c)) continue;
                todo[k] = true;
                __builtin_prefetch(c.sh->SA_ + (c.base + c.len / 2) * static_cast<uint64_t>(c.sh->w_));
            }
            if (!active) break;
            // 2. probes: SA entries (prefetched above), then the text
            for (size_t k = 0; k < nc; ++k)
                if (todo[k]) {
                    ch[k].pos = ch[k].sh->suffix_at(ch[k].base + ch[k].len / 2);
                    __builtin_prefetch(ch[k].sh->T_ + ch[k].pos);
                    prefetch_ahead(ch[k], true);
                }
            for (size_t k = 0; k < nc; ++k)
                if (todo[k]) advance(ch[k], ch[k].pred(ch[k].sh->compare(ch[k].pos, ch[k].q, ch[k].m)));
        }
        for (size_t k = 0; k < nc; ++k) {
            Chain& c = ch[k];
            if (c.sh->n_ > 0 && c.pred(c.sh->compare(c.sh->suffix_at(c.base), c.q, c.m))) ++c.base;
        }
    }

    /// The skeleton levels of all chains in a tight, branch-free loop (the
    /// general loop of search() costs a mispredicted branch per chain and
    /// level): a chain stops here at a key tie it cannot resolve (m > 8
    /// tokens or a short suffix), or when its skeleton ends; search() goes on
    /// from there.
    static void skeleton_levels(Chain* ch, size_t nc) {
        bool live[2 * kMaxGroup];
        size_t nl = 0;
        for (size_t k = 0; k < nc; ++k) {
            live[k] = ch[k].len > 1 && ch[k].level < ch[k].sh->skel_.levels;
            nl += live[k];
        }
        while (nl) {
            for (size_t k = 0; k < nc; ++k) {
                if (!live[k]) continue;
                Chain& c = ch[k];
                if (!skeleton_step(c) || c.len <= 1 || c.level >= c.sh->skel_.levels) { live[k] = false; --nl; }
            }
        }
    }

    /// One skeleton level of c (c.level < the skeleton's levels): compares the
    /// probe's 8-byte key with q's and advances, branch-free; false (c
    /// unchanged) at a tie the key cannot decide (m > 8 tokens, or no key:
    /// a suffix shorter than the key or all-zero tokens), left to a real probe.
    static bool skeleton_step(Chain& c) {
        const Skeleton& sk = c.sh->skel_;
        const uint64_t* key = sk.key.data();
        const size_t nodes = sk.key.size();
        // the levels two and three below this node: one cache line each
        // (heap order: 4v..4v+3 and 8v..8v+7 are aligned)
        if (8 * c.node < nodes) __builtin_prefetch(key + 8 * c.node);
        if (4 * c.node < nodes) __builtin_prefetch(key + 4 * c.node);
        const uint64_t kv = key[c.node], a = kv & c.mask, b = c.qkey;
        if (kv == 0 || (a == b && c.m > kKeyTokens)) return false;
        if (c.level + 1 == sk.levels) prefetch_ahead(c, false);  // the first probes past the skeleton
        advance(c, (a < b) | (c.upper & (a == b)));  // pred(compare(suffix, q))
        return true;
    }

    /// SA ranges of g queries at once (g <= kMaxGroup); empty queries give [0, n).
    void find_group(const Tok* const* qs, const size_t* ms, size_t g, Range* out) const {
        Chain ch[2 * kMaxGroup];
        for (size_t i = 0; i < g; ++i)
            for (int u = 0; u < 2; ++u) {
                ch[2 * i + u] = Chain{this, qs[i], ms[i], u == 1};
                ch[2 * i + u].init();
            }
        search(ch, 2 * g);
        for (size_t i = 0; i < g; ++i) out[i] = ms[i] == 0 ? Range{0, n_} : Range{ch[2 * i].base, ch[2 * i + 1].base};
    }

    /// The ranges of one query in several shards at once (S <= kMaxGroup), so
    /// an index of S shards answers in about the latency of one.
    /// out[s] = shards[s]->find(q, m).
    static void find_multi(const SAShard* const* shards, size_t S, const Tok* q, size_t m, Range* out) {
        Chain ch[2 * kMaxGroup];
        for (size_t s = 0; s < S; ++s)
            for (int u = 0; u < 2; ++u) {
                ch[2 * s + u] = Chain{shards[s], q, m, u == 1};
                ch[2 * s + u].init();
            }
        search(ch, 2 * S);
        for (size_t s = 0; s < S; ++s)
            out[s] = m == 0 ? Range{0, shards[s]->n_} : Range{ch[2 * s].base, ch[2 * s + 1].base};
    }

    /// Counts of g queries at once (see find_group).
    void count_group(const Tok* const* qs, const size_t* ms, size_t g, uint64_t* out) const {
        Range r[kMaxGroup];
        find_group(qs, ms, g, r);
        for (size_t qi = 0; qi < g; ++qi) out[qi] = r[qi].size();
    }

    /// (local document index, offset of pos within that document's text).
    /// pos must not be a separator position.
    std::pair<uint64_t, uint64_t> doc_of(uint64_t pos) const { return doc_of_offsets(D_, n_docs_, pos); }

    /// Token span [start, end) of local document d's text (d < n_docs).
    std::pair<uint64_t, uint64_t> doc_span(uint64_t d) const { return doc_span_offsets(D_, d, n_); }

private:
    struct Skeleton {
        int levels = 0;
        std::vector<uint64_t> key;  // heap order, index 1 = root; 0 = no key (probe the suffix)
    };

    static uint64_t pack(const Tok* t, size_t k) {
        uint64_t v = 0;
        for (size_t i = 0; i < kKeyTokens; ++i)
            v = (v << (8 * sizeof(Tok))) | (i < k ? static_cast<uint64_t>(t[i]) : 0);
        return v;
    }

    /// Two-level prefetch pipeline of a search past the skeleton: the text of
    /// both possible next probes (their SA entries were prefetched one level
    /// earlier, so reading them rarely waits) and the SA entries of the four
    /// possible probes after those. A level then finds its SA entry and text
    /// already in cache instead of waiting for one miss after the other.
    static void prefetch_ahead(const Chain& c, bool text) {
        const uint64_t half = c.len / 2, nl = c.len - half;
        if (nl <= 1) return;
        const SAShard& s = *c.sh;
        const uint64_t w = s.w_;
        const uint64_t l = c.base + nl / 2, r = c.base + half + nl / 2;  // next probe: left / right child
        if (text) {
            __builtin_prefetch(s.T_ + s.suffix_at(l));
            __builtin_prefetch(s.T_ + s.suffix_at(r));
        } else {
            __builtin_prefetch(s.SA_ + l * w);
            __builtin_prefetch(s.SA_ + r * w);
        }
        const uint64_t h2 = nl / 2, nl2 = nl - h2;
        if (nl2 <= 1) return;
        for (uint64_t b : {c.base, c.base + half}) {  // the probes after: grandchildren
            __builtin_prefetch(s.SA_ + (b + nl2 / 2) * w);
            __builtin_prefetch(s.SA_ + (b + h2 + nl2 / 2) * w);
        }
    }

    static void advance(Chain& c, bool right) {
        const uint64_t half = c.len / 2;
        c.base += right ? half : 0;
        c.len -= half;
        c.node = 2 * c.node + (right ? 1 : 0);
        ++c.level;
    }

    /// Builds the skeleton on first use (thread-safe): 2^kSkelLevels probes.
    const Skeleton& skeleton() const {
        std::call_once(skel_once_, [this] {
            Skeleton& sk = skel_;
            uint64_t len = n_;
            std::vector<uint64_t> halves;
            while (len > 1 && static_cast<int>(halves.size()) < kSkelLevels) {
                halves.push_back(len / 2);
                len -= len / 2;
            }
            sk.levels = static_cast<int>(halves.size());
            const size_t nodes = size_t(1) << sk.levels;
            sk.key.assign(nodes, 0);
            std::vector<uint64_t> base(nodes, 0);
            for (int d = 0; d < sk.levels; ++d)
                for (size_t v = size_t(1) << d; v < (size_t(2) << d); ++v) {
                    const uint64_t r = base[v] + halves[static_cast<size_t>(d)];
                    const uint64_t p = suffix_at(r);
                    if (n_ - p >= kKeyTokens) sk.key[v] = pack(T_ + p, kKeyTokens);
                    if (d + 1 < sk.levels) {
                        base[2 * v] = base[v];
                        base[2 * v + 1] = r;
                    }
                }
        });
        return skel_;
    }

    MappedFile tokens_, sa_, docs_;
    int w_;
    uint64_t n_ = 0, n_docs_ = 0, last_ = 0;
    const Tok* T_ = nullptr;
    const uint8_t* SA_ = nullptr;
    const uint64_t* D_ = nullptr;
    mutable std::once_flag skel_once_;
    mutable Skeleton skel_;
};

}  // namespace infinigram

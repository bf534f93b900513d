// wavelet.hpp — Huffman-shaped wavelet tree over integer symbols [0, sigma).
//
// Every internal node of the Huffman tree of the sequence's symbol
// frequencies owns a bit vector (0 = the symbol goes left, 1 = right); all
// node bit vectors are concatenated, in breadth-first order, into one bit
// vector BV (RRRVector for the FM-index, BitVector where speed matters more
// than space). The total length is sum(freq * code length) ~ n * H0, and a
// query for symbol c touches len(code(c)) nodes: frequent symbols are cheap.
//
//   rank(c, i)            occurrences of c in [0, i)
//   rank2(c, i, j)        rank(c, i) and rank(c, j) in one descent
//   access(i) / access_rank(i) -> (s[i], rank(s[i], i))    one descent
//   step_batch(v, i, g, sym)  one level of g independent descents, each at
//                         its own node: one batched rank (BV::rank_access_batch)
//   select(c, k)          position of the k-th (0-based) c
//   distinct(i, j, f)     f(c, rank(c, i), rank(c, j)) for every c in s[i, j),
//                         ascending tree order (not symbol order)
//
// Construction: one counting pass, Huffman code, then each thread fills the
// node bits of its slice of the sequence (disjoint bit ranges per node), and
// the bit vector is built (compressed) in parallel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <thread>
#include <vector>

#include "bitvector.hpp"

namespace infinigram {

template <class BV>
class HuffmanWaveletTree {
public:
    HuffmanWaveletTree() = default;

    template <class Sym>
    HuffmanWaveletTree(const Sym* s, uint64_t n, uint64_t sigma, int threads = 1) : n_(n), sigma_(sigma) {
        threads = std::max(1, std::min<int>(threads, static_cast<int>(n / (1 << 20) + 1)));
        // ---- frequencies
        std::vector<std::vector<uint64_t>> tf(threads, std::vector<uint64_t>(sigma, 0));
        run(threads, [&](int t) {
            auto& f = tf[t];
            for (uint64_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
                if (s[i] >= sigma) throw std::invalid_argument("wavelet tree: symbol out of range");
                ++f[s[i]];
            }
        });
        std::vector<uint64_t> freq(sigma, 0);
        for (auto& f : tf)
            for (uint64_t c = 0; c < sigma; ++c) freq[c] += f[c];
        // ---- Huffman tree (ties broken by id: deterministic)
        struct Item { uint64_t f; int64_t id; bool operator>(const Item& o) const { return f != o.f ? f > o.f : id > o.id; } };
        std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
        for (uint64_t c = 0; c < sigma; ++c)
            if (freq[c]) pq.push(Item{freq[c], -static_cast<int64_t>(c) - 1});
        std::vector<int64_t> lch, rch;  // merge order; child < 0: leaf
        while (pq.size() > 1) {
            Item a = pq.top(); pq.pop();
            Item b = pq.top(); pq.pop();
            lch.push_back(a.id);
            rch.push_back(b.id);
            pq.push(Item{a.f + b.f, static_cast<int64_t>(lch.size() - 1)});
        }
        if (pq.size() == 1 && lch.empty()) single_ = pq.top().id < 0 ? static_cast<int64_t>(-pq.top().id - 1) : -1;
        // ---- BFS renumbering, codes, node lengths
        const size_t ni = lch.size();
        std::vector<int64_t> bfs;  // bfs order of merge ids
        std::vector<int32_t> child(2 * ni);
        std::vector<uint64_t> code(sigma, 0);
        std::vector<uint8_t> clen(sigma, 0);
        std::vector<uint64_t> nlen(ni, 0);
        if (ni) {
            std::vector<int32_t> newid(ni);
            std::vector<uint64_t> ncode(ni, 0);
            std::vector<uint8_t> ndepth(ni, 0);
            bfs.push_back(static_cast<int64_t>(ni - 1));
            newid[ni - 1] = 0;
            for (size_t q = 0; q < bfs.size(); ++q) {
                const int64_t m = bfs[q];
                const int32_t me = newid[m];
                for (int side = 0; side < 2; ++side) {
                    const int64_t c = side ? rch[m] : lch[m];
                    const uint64_t cc = (ncode[m] << 1) | side;
                    const int d = ndepth[m] + 1;
                    if (d > 64) throw std::runtime_error("wavelet tree: Huffman code longer than 64 bits");
                    if (c < 0) {
                        const uint64_t sym = static_cast<uint64_t>(-c - 1);
                        code[sym] = cc;
                        clen[sym] = static_cast<uint8_t>(d);
                        child[2 * me + side] = static_cast<int32_t>(c);
                    } else {
                        newid[c] = static_cast<int32_t>(bfs.size());
                        ncode[c] = cc;
                        ndepth[c] = static_cast<uint8_t>(d);
                        child[2 * me + side] = newid[c];
                        bfs.push_back(c);
                    }
                }
            }
            for (uint64_t c = 0; c < sigma; ++c) {  // node lengths: each symbol passes its path
                if (!clen[c]) continue;
                int32_t v = 0;
                for (int d = 0; d < clen[c]; ++d) {
                    nlen[v] += freq[c];
                    int b = (code[c] >> (clen[c] - 1 - d)) & 1;
                    v = child[2 * v + b];
                }
            }
        }
        std::vector<uint64_t> start(ni + 1, 0);
        for (size_t v = 0; v < ni; ++v) start[v + 1] = start[v] + nlen[v];
        const uint64_t total = start[ni];
        // ---- node bits: thread t writes its slice at per-node cursors
        std::vector<uint64_t> words(total / 64 + 2, 0);
        if (ni) {
            std::vector<std::vector<uint64_t>> cur(threads, std::vector<uint64_t>(ni));
            {
                std::vector<uint64_t> acc(start.begin(), start.end() - 1);
                for (int t = 0; t < threads; ++t) {
                    cur[t] = acc;
                    for (uint64_t c = 0; c < sigma; ++c) {
                        if (!tf[t][c] || !clen[c]) continue;
                        int32_t v = 0;
                        for (int d = 0; d < clen[c]; ++d) {
                            acc[v] += tf[t][c];
                            v = child[2 * v + ((code[c] >> (clen[c] - 1 - d)) & 1)];
                        }
                    }
                }
            }
            uint64_t* W = words.data();
            run(threads, [&](int t) {
                // Runs of equal symbols (frequent in a BWT) append a run of equal bits per node.
                // Words wholly inside this thread's range of a node are written plainly; the
                // partial words at the ends (shared with a neighbour thread) by atomic OR.
                std::vector<uint64_t>& pos = cur[t];
                std::vector<uint64_t> buf(ni, 0);  // the node's current partial word
                const uint64_t i1 = n * (t + 1) / threads;
                for (uint64_t i = n * t / threads; i < i1;) {
                    const uint64_t c = s[i];
                    uint64_t j = i + 1;
                    while (j < i1 && s[j] == c) ++j;
                    const uint64_t R = j - i;
                    i = j;
                    const int L = clen[c];
                    const uint64_t cd = code[c];
                    int32_t v = 0;
                    for (int d = L - 1; d >= 0; --d) {
                        const uint64_t b = (cd >> d) & 1;
                        const uint64_t bm = uint64_t(0) - b;  // all ones for a 1 bit: no branch on the bit
                        const uint64_t p = pos[v];
                        pos[v] += R;
                        const int sh = static_cast<int>(p & 63);
                        if (sh + R < 64) {  // stays inside the current word
                            buf[v] |= (((uint64_t(1) << R) - 1) << sh) & bm;
                        } else {
                            buf[v] |= (~uint64_t(0) << sh) & bm;
                            if (buf[v]) __atomic_fetch_or(&W[p >> 6], buf[v], __ATOMIC_RELAXED);
                            buf[v] = 0;
                            uint64_t rem = R - static_cast<uint64_t>(64 - sh), w = (p >> 6) + 1;
                            for (; rem >= 64; rem -= 64, ++w)
                                if (b) W[w] = ~uint64_t(0);
                            if (b && rem) buf[v] = (uint64_t(1) << rem) - 1;
                        }
                        v = child[2 * v + b];
                    }
                }
                for (size_t v = 0; v < ni; ++v)
                    if (buf[v]) __atomic_fetch_or(&W[(pos[v] - 1) >> 6], buf[v], __ATOMIC_RELAXED);
            });
        }
        tf.clear();
        bv_ = BV(words.data(), total, threads);
        words = std::vector<uint64_t>();
        std::vector<uint64_t> rs(ni + 1);
        for (size_t v = 0; v <= ni; ++v) rs[v] = bv_.rank1(start[v]);
        child_ = Array<int32_t>(std::move(child));
        start_ = Array<uint64_t>(std::move(start));
        rstart_ = Array<uint64_t>(std::move(rs));
        code_ = Array<uint64_t>(std::move(code));
        clen_ = Array<uint8_t>(std::move(clen));
    }

    uint64_t size() const { return n_; }
    uint64_t sigma() const { return sigma_; }
    const BV& bits() const { return bv_; }

    /// Occurrences of c in [0, i).
    uint64_t rank(uint64_t c, uint64_t i) const {
        if (c >= sigma_) return 0;
        if (child_.size() == 0) return static_cast<int64_t>(c) == single_ ? i : 0;
        const int L = clen_[c];
        if (!L) return 0;
        const uint64_t cd = code_[c];
        int32_t v = 0;
        for (int d = L - 1; d >= 0; --d) {
            const uint64_t r1 = bv_.rank1(start_[v] + i) - rstart_[v];
            const int b = (cd >> d) & 1;
            i = b ? r1 : i - r1;
            if (i == 0) return 0;
            v = child_[2 * v + b];
        }
        return i;
    }

    /// rank(c, i) and rank(c, j) (i <= j) in one descent; stops when the range empties.
    void rank2(uint64_t c, uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const {
        if (c >= sigma_) { *ri = *rj = 0; return; }
        if (child_.size() == 0) {
            const bool ok = static_cast<int64_t>(c) == single_;
            *ri = ok ? i : 0; *rj = ok ? j : 0;
            return;
        }
        const int L = clen_[c];
        if (!L) { *ri = *rj = 0; return; }
        const uint64_t cd = code_[c];
        int32_t v = 0;
        for (int d = L - 1; d >= 0; --d) {
            const uint64_t s0 = start_[v], r0 = rstart_[v];
            const int b = (cd >> d) & 1;
            uint64_t a1, b1;
            bv_.rank_pair(s0 + i, s0 + j, &a1, &b1);
            a1 -= r0;
            b1 -= r0;
            i = b ? a1 : i - a1;
            j = b ? b1 : j - b1;
            if (j == i) {  // empty range: both ranks equal from here on; finish i alone
                v = child_[2 * v + b];
                for (--d; d >= 0 && i; --d) {
                    const uint64_t r1 = bv_.rank1(start_[v] + i) - rstart_[v];
                    const int bb = (cd >> d) & 1;
                    i = bb ? r1 : i - r1;
                    v = child_[2 * v + bb];
                }
                *ri = *rj = i;
                return;
            }
            v = child_[2 * v + b];
        }
        *ri = i;
        *rj = j;
    }

    /// rank2 of g queries on their own trees at once (w[a] may differ; g <= BV::kMaxBatch),
    /// in place: (i[a], j[a]) <- (rank(c[a], i[a]), rank(c[a], j[a])), i[a] <= j[a].
    /// The descents advance level by level, each level one batched rank pair
    /// (BV::rank_pair_multi), so their cache misses overlap. With stop_empty a
    /// descent whose range empties stops there with i[a] == j[a] (not the exact
    /// ranks: enough for a backward search, which then ends). O(sum of code lengths) ranks.
    static void rank2_multi(const HuffmanWaveletTree* const* w, const uint64_t* c, uint64_t* i, uint64_t* j,
                            size_t g, bool stop_empty) {
        constexpr size_t M = BV::kMaxBatch;
        const BV* bv[M];
        uint64_t pi[M], pj[M], ri[M], rj[M];
        int32_t v[M];
        int d[M];
        size_t act[M], na = 0;
        for (size_t a = 0; a < g; ++a) {
            const HuffmanWaveletTree& t = *w[a];
            if (c[a] >= t.sigma_) { i[a] = j[a] = 0; continue; }
            if (t.child_.size() == 0) {
                if (static_cast<int64_t>(c[a]) != t.single_) i[a] = j[a] = 0;
                continue;
            }
            d[a] = t.clen_[c[a]] - 1;
            if (d[a] < 0) { i[a] = j[a] = 0; continue; }
            v[a] = 0;
            act[na++] = a;
        }
        while (na) {
            for (size_t q = 0; q < na; ++q) {
                const size_t a = act[q];
                const HuffmanWaveletTree& t = *w[a];
                bv[q] = &t.bv_;
                pi[q] = t.start_[v[a]] + i[a];
                pj[q] = t.start_[v[a]] + j[a];
            }
            // Once this level's directory is read, the child's positions are
            // known to within a superblock: prefetch the child's directory
            // there (both ends of each range), overlapping the misses.
            BV::rank_pair_multi(bv, pi, pj, na, ri, rj,
                                [&](size_t q, uint64_t lo_i, uint64_t hi_i, uint64_t lo_j, uint64_t hi_j) {
                const size_t a = act[q];
                const HuffmanWaveletTree& t = *w[a];
                if (d[a] == 0) return;
                const int b = (t.code_[c[a]] >> d[a]) & 1;
                const int32_t nx = t.child_[2 * v[a] + b];
                if (nx < 0) return;
                const uint64_t r0 = t.rstart_[v[a]], s = t.start_[nx];
                auto ends = [&](uint64_t x, uint64_t lo, uint64_t hi) {  // ones before x in the node: [lo, hi] - r0, <= x
                    const uint64_t a1 = lo > r0 ? std::min(lo - r0, x) : 0, a2 = hi > r0 ? std::min(hi - r0, x) : 0;
                    t.bv_.prefetch(s + (b ? a1 : x - a2));
                    t.bv_.prefetch(s + (b ? a2 : x - a1));
                };
                ends(i[a], lo_i, hi_i);
                if (j[a] != i[a]) ends(j[a], lo_j, hi_j);
            });
            size_t nn = 0;
            for (size_t q = 0; q < na; ++q) {
                const size_t a = act[q];
                const HuffmanWaveletTree& t = *w[a];
                const uint64_t r0 = t.rstart_[v[a]];
                const int b = (t.code_[c[a]] >> d[a]) & 1;
                i[a] = b ? ri[q] - r0 : i[a] - (ri[q] - r0);
                j[a] = b ? rj[q] - r0 : j[a] - (rj[q] - r0);
                v[a] = t.child_[2 * v[a] + b];
                --d[a];
                const bool done = d[a] < 0 || j[a] == 0 || (stop_empty && i[a] == j[a]);
                if (!done) act[nn++] = a;
            }
            na = nn;
        }
    }

    /// (s[i], rank(s[i], i)).
    std::pair<uint64_t, uint64_t> access_rank(uint64_t i) const {
        if (child_.size() == 0) return {static_cast<uint64_t>(single_), i};
        int32_t v = 0;
        for (;;) {
            int b;
            const uint64_t r1 = bv_.rank_access(start_[v] + i, &b) - rstart_[v];
            i = b ? r1 : i - r1;
            const int32_t nx = child_[2 * v + b];
            if (nx < 0) return {static_cast<uint64_t>(-static_cast<int64_t>(nx) - 1), i};
            v = nx;
        }
    }
    uint64_t access(uint64_t i) const { return access_rank(i).first; }
    /// One level of g independent descents (g <= BV::kMaxBatch), each at its
    /// own node: walk a stands at node v[a], position i[a] in it; one batched
    /// rank (BV::rank_access_batch) moves every walk to the child holding its
    /// symbol. On return sym[a] >= 0 when that child is a leaf: the symbol,
    /// with i[a] = rank(sym, start position of the descent); else sym[a] = -1
    /// and (v[a], i[a]) is the child and the position in it. A descent starts
    /// at v = 0 (the root), i = its position. Callers keep g walks in flight,
    /// starting a new descent in a slot as soon as one ends, so every batch
    /// is full whatever the code lengths (access_rank's symbol: ~H0 levels).
    void step_batch(int32_t* v, uint64_t* i, size_t g, int64_t* sym) const {
        if (child_.size() == 0) {  // one symbol: every position is a leaf at once
            for (size_t a = 0; a < g; ++a) sym[a] = single_;
            return;
        }
        constexpr size_t M = BV::kMaxBatch;
        uint64_t p[M], r1[M];
        int b[M];
        for (size_t a = 0; a < g; ++a) p[a] = start_[v[a]] + i[a];
        bv_.rank_access_batch(p, g, r1, b);
        for (size_t a = 0; a < g; ++a) {
            const uint64_t r = r1[a] - rstart_[v[a]];
            i[a] = b[a] ? r : i[a] - r;
            const int32_t nx = child_[2 * v[a] + b[a]];
            sym[a] = nx < 0 ? -static_cast<int64_t>(nx) - 1 : -1;
            v[a] = nx < 0 ? 0 : nx;
        }
    }

    /// Position of the k-th (0-based) occurrence of c; k < rank(c, size()).
    uint64_t select(uint64_t c, uint64_t k) const {
        if (child_.size() == 0) return k;
        const int L = clen_[c];
        const uint64_t cd = code_[c];
        int32_t path[64];
        int32_t v = 0;
        for (int d = 0; d < L; ++d) {
            path[d] = v;
            v = child_[2 * v + ((cd >> (L - 1 - d)) & 1)];
        }
        for (int d = L - 1; d >= 0; --d) {
            const int32_t u = path[d];
            const int b = (cd >> (L - 1 - d)) & 1;
            if (b) k = bv_.select1(rstart_[u] + k) - start_[u];
            else k = bv_.select0((start_[u] - rstart_[u]) + k) - start_[u];
        }
        return k;
    }

    /// f(c, rank(c, i), rank(c, j)) for every symbol c occurring in [i, j).
    template <class F>
    void distinct(uint64_t i, uint64_t j, F&& f) const {
        if (i >= j) return;
        if (child_.size() == 0) { f(static_cast<uint64_t>(single_), i, j); return; }
        distinct_rec(0, i, j, f);
    }

    size_t bytes() const {
        return bv_.bytes() + child_.size() * 4 + (start_.size() + rstart_.size() + code_.size()) * 8 + clen_.size();
    }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(sigma_);
        b.put_u64(static_cast<uint64_t>(single_));
        bv_.save(b);
        child_.save(b);
        start_.save(b);
        rstart_.save(b);
        code_.save(b);
        clen_.save(b);
    }
    static HuffmanWaveletTree load(BlobReader& r) {
        HuffmanWaveletTree w;
        w.n_ = r.get_u64();
        w.sigma_ = r.get_u64();
        w.single_ = static_cast<int64_t>(r.get_u64());
        w.bv_ = BV::load(r);
        w.child_ = Array<int32_t>::load(r);
        w.start_ = Array<uint64_t>::load(r);
        w.rstart_ = Array<uint64_t>::load(r);
        w.code_ = Array<uint64_t>::load(r);
        w.clen_ = Array<uint8_t>::load(r);
        if (w.code_.size() != w.sigma_ || w.clen_.size() != w.sigma_ || w.start_.size() != w.child_.size() / 2 + 1)
            r.bad();
        return w;
    }

private:
    template <class F>
    static void run(int threads, F&& f) {
        if (threads == 1) { f(0); return; }
        std::vector<std::thread> pool;
        std::exception_ptr err;
        std::mutex mu;
        for (int t = 1; t < threads; ++t)
            pool.emplace_back([&, t] {
                try { f(t); } catch (...) { std::lock_guard<std::mutex> g(mu); err = std::current_exception(); }
            });
        try { f(0); } catch (...) { std::lock_guard<std::mutex> g(mu); err = std::current_exception(); }
        for (auto& th : pool) th.join();
        if (err) std::rethrow_exception(err);
    }

    template <class F>
    void distinct_rec(int32_t v, uint64_t i, uint64_t j, F& f) const {
        const uint64_t ai = bv_.rank1(start_[v] + i) - rstart_[v];
        const uint64_t aj = bv_.rank1(start_[v] + j) - rstart_[v];
        const uint64_t li = i - ai, lj = j - aj;
        if (lj > li) {
            const int32_t c = child_[2 * v];
            if (c < 0) f(static_cast<uint64_t>(-static_cast<int64_t>(c) - 1), li, lj);
            else distinct_rec(c, li, lj, f);
        }
        if (aj > ai) {
            const int32_t c = child_[2 * v + 1];
            if (c < 0) f(static_cast<uint64_t>(-static_cast<int64_t>(c) - 1), ai, aj);
            else distinct_rec(c, ai, aj, f);
        }
    }

    uint64_t n_ = 0, sigma_ = 0;
    int64_t single_ = -1;  // the only symbol when the tree has no internal node
    BV bv_;
    Array<int32_t> child_;              // 2 per internal node; < 0: leaf -(symbol + 1)
    Array<uint64_t> start_, rstart_;    // node bit offset in bv_, and rank1 there
    Array<uint64_t> code_;              // per symbol: Huffman code (MSB = root decision)
    Array<uint8_t> clen_;               // per symbol: code length (0: absent)
};

}  // namespace infinigram

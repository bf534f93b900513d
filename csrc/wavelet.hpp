// wavelet.hpp — Huffman-shaped wavelet trees over integer symbols [0, sigma),
// one per fixed block of the sequence (fixed-block compression boosting).
//
// The sequence is cut into blocks of 2^block_bits symbols (block_bits = 0:
// one block, the classic Huffman-shaped wavelet tree). Each block gets the
// Huffman tree of its own symbol frequencies; each internal node owns a bit
// vector (0 = the symbol goes left, 1 = right), and all node bit vectors are
// concatenated, block by block and breadth-first within a block, into a bit
// vector BV (RRRVector for the FM-index, BitVector where speed matters more
// than space); with BV = RRRVector the nodes RRR would hardly shrink go to a
// plain BitVector instead (ranked ~2x faster; about a quarter of a BWT's
// descent levels). A query for c in block b touches len(code_b(c)) nodes,
// and the bits total sum_b n_b * H0(block b) <= n * H0 (+ < 1 bit/symbol):
// on a BWT, whose blocks each see few symbols, descents are much shorter
// than in one tree (100 MB of English: 3.3 levels per symbol with 2^17-
// symbol blocks, 5.2 with one tree) and the bits fewer.
// Per block (packed integers, rows of 2^sb >= sigma entries): cnt[b][c] =
// occurrences of c before the block, code_b(c) (0: c absent from the block),
// the block's root. Per node, one packed record: its first bit in BV, the
// ones before it, its two children. A node reference is 2 * node id (an
// internal node) or 2 * ((cnt[b][c] << sb) | c) + 1 (the leaf of c in block
// b): a descent ending at a leaf has the symbol and its count before the
// block at hand, without another table read.
//
//   rank(c, i)            occurrences of c in [0, i): cnt[b][c] + the block's
//                         descent (none when i starts a block or c is absent)
//   rank2(c, i, j)        rank(c, i) and rank(c, j), one descent when i and j
//                         share a block
//   rank2_multi(...)      rank2 of many queries (on many trees), level by
//                         level, one batched rank pair per level
//   access(i) / access_rank(i) -> (s[i], rank(s[i], i))    one descent
//   begin(i, &ref, &li) + step_batch(ref, li, g, sym)   descents of g
//                         independent walks, one level each per batched rank
//   select(c, k)          position of the k-th (0-based) c
//   distinct(i, j, f)     f(c, rank(c, i), rank(c, j)) for every c in s[i, j)
//                         (tree order inside one block; symbol order across blocks)
//
// Construction: one counting pass (per thread, per block), a Huffman code per
// block, then each thread fills the node bits of its slice of the sequence
// (disjoint bit ranges per node), and the bit vector is built (compressed)
// in parallel.
#pragma once

#include <algorithm>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include "bitvector.hpp"

namespace infinigram {

template <class BV>
class HuffmanWaveletTree {
public:
    HuffmanWaveletTree() = default;

    /// The tree of s[0, n) (symbols < sigma) with blocks of 2^block_bits
    /// symbols (0, or 2^block_bits >= n: one block). O(n * average code
    /// length / threads) time; tables of (n / 2^block_bits + 1) * 2^ceil(log2 sigma)
    /// entries. With BV = RRRVector, a node whose estimated RRR size is over
    /// plain_ratio (< 0: kPlainRatio) of its bits is stored plain instead.
    template <class Sym>
    HuffmanWaveletTree(const Sym* s, uint64_t n, uint64_t sigma, int threads = 1, int block_bits = 0,
                       double plain_ratio = -1)
        : n_(n), sigma_(sigma) {
        bb_ = (block_bits <= 0 || block_bits >= 63 || (n >> block_bits) == 0) ? 63 : block_bits;
        nblk_ = n == 0 ? 1 : ((n - 1) >> bb_) + 1;
        sb_ = 0;
        while ((uint64_t(1) << sb_) < sigma) ++sb_;
        const uint64_t sp = uint64_t(1) << sb_, rows = nblk_ << sb_;
        threads = std::max(1, std::min<int>(threads, static_cast<int>(n / (1 << 20) + 1)));
        // ---- frequencies per block (per thread: its slice of the sequence)
        std::vector<std::vector<uint64_t>> tf(threads, std::vector<uint64_t>(rows, 0));
        run(threads, [&](int t) {
            auto& f = tf[t];
            for (uint64_t i = n * t / threads; i < n * (t + 1) / threads; ++i) {
                if (s[i] >= sigma) throw std::invalid_argument("wavelet tree: symbol out of range");
                ++f[((i >> bb_) << sb_) | static_cast<uint64_t>(s[i])];
            }
        });
        std::vector<uint64_t> freq(rows, 0);
        for (auto& f : tf)
            for (uint64_t x = 0; x < rows; ++x) freq[x] += f[x];
        // ---- one Huffman tree per block; global node ids block by block
        std::vector<uint64_t> code(rows, 0);  // (code << 6) | length; kAll: the block's only symbol
        std::vector<uint64_t> node0(nblk_ + 1, 0);
        std::vector<int64_t> root(nblk_);    // per block: its root's node id, or -1 - leaf (leaf = (b << sb) | c)
        std::vector<int64_t> gch;            // 2 per node: the same for its children
        std::vector<uint64_t> nlen;          // bits per node
        int maxlen = 0;
        // f(node, bit) for each node on the code path of row x = (b << sb) | c (its code has a length)
        auto path = [&](uint64_t x, auto&& f) {
            const uint64_t pc = code[x];
            int64_t v = root[x >> sb_];
            for (int d = static_cast<int>(pc & 63) - 1; d >= 0; --d) {
                const uint64_t bit = (pc >> (6 + d)) & 1;
                f(static_cast<uint64_t>(v), bit);
                v = gch[2 * v + bit];
            }
        };
        for (uint64_t b = 0; b < nblk_; ++b) {
            node0[b] = nlen.size();
            const uint64_t* fb = freq.data() + (b << sb_);
            std::vector<int64_t> lch;         // local: 2 per node, >= 0 node, < 0 -(c + 1)
            std::vector<uint64_t> cd(sp, 0);
            std::vector<uint8_t> cl(sp, 0);
            int64_t only = huffman(fb, sigma, &lch, &cd, &cl);
            const uint64_t ni = lch.size() / 2;
            if (ni == 0) {  // one symbol (or none): no node
                const uint64_t c = only < 0 ? 0 : static_cast<uint64_t>(only);
                root[b] = -1 - static_cast<int64_t>((b << sb_) | c);
                if (only >= 0) code[(b << sb_) | c] = kAll;
                continue;
            }
            root[b] = static_cast<int64_t>(node0[b]);
            for (uint64_t x = 0; x < 2 * ni; ++x)
                gch.push_back(lch[x] >= 0 ? static_cast<int64_t>(node0[b]) + lch[x] : -1 - static_cast<int64_t>((b << sb_) | static_cast<uint64_t>(-lch[x] - 1)));
            nlen.resize(node0[b] + ni, 0);
            for (uint64_t c = 0; c < sigma; ++c) {
                if (!cl[c]) continue;
                maxlen = std::max<int>(maxlen, cl[c]);
                code[(b << sb_) | c] = (cd[c] << 6) | cl[c];
                path((b << sb_) | c, [&](uint64_t v, uint64_t) { nlen[v] += fb[c]; });  // each symbol passes its path
            }
        }
        const uint64_t nn = nlen.size();
        node0[nblk_] = nn;
        std::vector<uint64_t> start(nn + 1, 0);
        for (uint64_t v = 0; v < nn; ++v) start[v + 1] = start[v] + nlen[v];
        const uint64_t total = start[nn];
        // ---- node bits: thread t writes its slice at per-node cursors
        std::vector<uint64_t> words(total / 64 + 2, 0);
        if (nn) {
            std::vector<std::vector<uint64_t>> cur(threads);
            {
                std::vector<uint64_t> acc(start.begin(), start.end() - 1);
                for (int t = 0; t < threads; ++t) {
                    cur[t] = acc;
                    for (uint64_t x = 0; x < rows; ++x)
                        if (const uint64_t f = tf[t][x]) path(x, [&](uint64_t v, uint64_t) { acc[v] += f; });
                }
            }
            uint64_t* W = words.data();
            run(threads, [&](int t) {
                // Runs of equal symbols (frequent in a BWT) append a run of equal bits per node.
                // Words wholly inside this thread's range of a node are written plainly; the
                // partial words at the ends (shared with a neighbour thread) by atomic OR.
                std::vector<uint64_t>& pos = cur[t];
                std::vector<uint64_t> buf(nn, 0);  // the node's current partial word
                const uint64_t i1 = n * (t + 1) / threads;
                for (uint64_t i = n * t / threads; i < i1;) {
                    const uint64_t c = s[i], b = i >> bb_;
                    const uint64_t end = std::min(i1, bb_ >= 63 ? i1 : (b + 1) << bb_);  // runs stay in their block
                    uint64_t j = i + 1;
                    while (j < end && s[j] == c) ++j;
                    const uint64_t R = j - i;
                    i = j;
                    path((b << sb_) | c, [&](uint64_t v, uint64_t bit) {
                        const uint64_t bm = uint64_t(0) - bit;  // all ones for a 1 bit: no branch on the bit
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
                                if (bit) W[w] = ~uint64_t(0);
                            if (bit && rem) buf[v] = (uint64_t(1) << rem) - 1;
                        }
                    });
                }
                for (uint64_t v = 0; v < nn; ++v)
                    if (buf[v]) __atomic_fetch_or(&W[(pos[v] - 1) >> 6], buf[v], __ATOMIC_RELAXED);
            });
        }
        tf.clear();
        // ---- plain or compressed, per node: a node whose RRR estimate is over
        // plain_ratio of its length goes to the plain vector (cheaper to rank)
        std::vector<uint8_t> plain(nn, 0);
        if (std::is_same<BV, RRRVector>::value && nn) {
            const double ratio = plain_ratio < 0 ? kPlainRatio : plain_ratio;
            run(threads, [&](int t) {
                for (uint64_t v = nn * t / threads; v < nn * (t + 1) / threads; ++v)
                    plain[v] = rrr_estimate(words.data(), start[v], start[v + 1]) > ratio * static_cast<double>(nlen[v]);
            });
        }
        std::vector<uint64_t> fld(nn + 1), rs(nn + 1);
        uint64_t ptotal = 0, ctotal = 0;
        for (uint64_t v = 0; v < nn; ++v) {
            uint64_t& at = plain[v] ? ptotal : ctotal;
            fld[v] = (at << 1) | plain[v];
            at += nlen[v];
        }
        fld[nn] = ctotal << 1;
        {
            std::vector<uint64_t> cw(ctotal / 64 + 2, 0), pw(ptotal / 64 + 2, 0);
            for (uint64_t v = 0; v < nn; ++v)
                copy_bits(plain[v] ? pw.data() : cw.data(), fld[v] >> 1, words.data(), start[v], nlen[v]);
            words = std::vector<uint64_t>();
            bv_ = BV(cw.data(), ctotal, threads);
            pv_ = BitVector(std::move(pw), ptotal);
        }
        for (uint64_t v = 0; v <= nn; ++v) rs[v] = (fld[v] & 1) ? pv_.rank1(fld[v] >> 1) : bv_.rank1(fld[v] >> 1);
        // ---- packed tables
        std::vector<uint64_t> cnt(rows + sp, 0);  // row b: before block b; row nblk: totals
        for (uint64_t b = 0; b < nblk_; ++b)
            for (uint64_t c = 0; c < sp; ++c) cnt[((b + 1) << sb_) | c] = cnt[(b << sb_) | c] + freq[(b << sb_) | c];
        const int wn = bits_for(nn), wl = sb_ + bits_for(n);  // an internal node's id; a leaf's (cnt, code)
        if (wl + 1 > 63) throw std::invalid_argument("wavelet tree: alphabet too large for the sequence length");
        auto ref_of = [&](int64_t x) {  // gch / root encoding -> node reference
            if (x >= 0) return 2 * static_cast<uint64_t>(x);
            const uint64_t leaf = static_cast<uint64_t>(-1 - x);
            return (((cnt[leaf] << sb_) | (leaf & (sp - 1))) << 1) | 1;
        };
        std::vector<uint64_t> rootref(nblk_), ch(2 * nn + 2, 0);
        for (uint64_t b = 0; b < nblk_; ++b) rootref[b] = ref_of(root[b]);
        for (uint64_t x = 0; x < 2 * nn; ++x) ch[x] = ref_of(gch[x]);
        const int rw = 1 + std::max(wn, wl);
        root_ = PackedInts(rootref, rw);
        nodes_ = NodeTable(fld, rs, ch, bits_for(2 * total + 1), rw);
        code_ = PackedInts(code, std::max(7, 6 + maxlen));
        cnt_ = PackedInts(cnt, bits_for(n));
    }

    uint64_t size() const { return n_; }
    uint64_t sigma() const { return sigma_; }
    const BV& bits() const { return bv_; }

    /// Occurrences of c in [0, i), i <= size(). O(len(code_b(c))) ranks.
    uint64_t rank(uint64_t c, uint64_t i) const {
        if (c >= sigma_) return 0;
        const uint64_t b = i >> bb_, li = i - (b << bb_), k = (b << sb_) | c;
        const uint64_t base = cnt_[k];
        return li == 0 ? base : base + local_rank(b, code_[k], li);
    }

    /// rank(c, i) and rank(c, j) (i <= j): one descent when both fall in one block (rank2_multi of one query).
    void rank2(uint64_t c, uint64_t i, uint64_t j, uint64_t* ri, uint64_t* rj) const {
        const HuffmanWaveletTree* w = this;
        *ri = i;
        *rj = j;
        rank2_multi(&w, &c, ri, rj, 1, false);
    }

    /// rank2 of g queries on their own trees at once (w[a] may differ; g <= BV::kMaxBatch),
    /// in place: (i[a], j[a]) <- (rank(c[a], i[a]), rank(c[a], j[a])), i[a] <= j[a].
    /// Each query is one descent (i and j in one block) or two; the descents
    /// advance level by level, each level one batched rank pair
    /// (BV::rank_pair_multi), so their cache misses overlap. With stop_empty a
    /// one-descent query whose range empties stops there with i[a] == j[a]
    /// (not the exact ranks: enough for a backward search, which then ends).
    /// O(sum of code lengths) ranks.
    static void rank2_multi(const HuffmanWaveletTree* const* w, const uint64_t* c, uint64_t* i, uint64_t* j,
                            size_t g, bool stop_empty) {
        constexpr size_t M = BV::kMaxBatch;
        struct Desc {
            const HuffmanWaveletTree* t;
            uint64_t pc, v, li, lj, base, s0;  // s0: the node's first bit in its vector
            uint64_t *oi, *oj;  // oj null: one position (li == lj)
            int d;
        };
        Desc ds[2 * M];
        size_t act[2 * M], na = 0, nd = 0;
        auto add = [&](const HuffmanWaveletTree& t, uint64_t b, uint64_t cc, uint64_t li, uint64_t lj, uint64_t* oi, uint64_t* oj) {
            const uint64_t k = (b << t.sb_) | cc, base = t.cnt_[k];
            const uint64_t pc = li == lj && li == 0 ? 0 : t.code_[k];  // nothing before the block start
            const int L = static_cast<int>(pc & 63);
            if (!L) {
                const bool all = pc == kAll;
                *oi = base + (all ? li : 0);
                if (oj) *oj = base + (all ? lj : 0);
                return;
            }
            ds[nd] = Desc{&t, pc, t.root_[b] >> 1, li, lj, base, 0, oi, oj, L - 1};
            t.nodes_.prefetch(ds[nd].v);
            act[na++] = nd++;
        };
        uint64_t xi[M], xj[M];  // the inputs (the outputs overwrite i, j)
        for (size_t a = 0; a < g; ++a) { xi[a] = i[a]; xj[a] = j[a]; }
        for (size_t a = 0; a < g; ++a) {
            const HuffmanWaveletTree& t = *w[a];
            if (c[a] >= t.sigma_) { i[a] = j[a] = 0; continue; }
            const uint64_t bi = xi[a] >> t.bb_, bj = xj[a] >> t.bb_;
            const uint64_t li = xi[a] - (bi << t.bb_), lj = xj[a] - (bj << t.bb_);
            if (bi == bj && li != 0) {
                add(t, bi, c[a], li, lj, &i[a], &j[a]);
            } else {
                add(t, bi, c[a], li, li, &i[a], nullptr);
                add(t, bj, c[a], lj, lj, &j[a], nullptr);
            }
        }
        const BV* bv[M];
        uint64_t pi[M], pj[M], ri[M], rj[M];
        auto descend = [](Desc& x, uint64_t a1, uint64_t b1) {  // ones before li, lj in the node's vector -> child
            const HuffmanWaveletTree& t = *x.t;
            const uint64_t r0 = t.nodes_.rstart(x.v);
            const int b = (x.pc >> (6 + x.d)) & 1;
            x.li = b ? a1 - r0 : x.li - (a1 - r0);
            x.lj = b ? b1 - r0 : x.lj - (b1 - r0);
            x.v = t.nodes_.child(x.v, b) >> 1;
            --x.d;
        };
        while (na) {
            size_t cq[2 * M], nc = 0, pq[2 * M], np = 0;  // descents at compressed / plain nodes
            for (size_t q = 0; q < na; ++q) {
                Desc& x = ds[act[q]];
                const uint64_t f = x.t->nodes_.field(x.v);
                x.s0 = f >> 1;
                if (x.d > 0) {  // the code names the child: its record is read at the next level
                    const uint64_t nx = x.t->nodes_.child(x.v, (x.pc >> (6 + x.d)) & 1);
                    if (!(nx & 1)) x.t->nodes_.prefetch(nx >> 1);
                }
                if (f & 1) {
                    x.t->pv_.prefetch(x.s0 + x.li);
                    x.t->pv_.prefetch_rank(x.s0 + x.li);
                    x.t->pv_.prefetch(x.s0 + x.lj);
                    pq[np++] = act[q];
                } else {
                    cq[nc++] = act[q];
                }
            }
            for (size_t q0 = 0; q0 < nc; q0 += M) {
                const size_t m = std::min(M, nc - q0);
                for (size_t q = 0; q < m; ++q) {
                    const Desc& x = ds[cq[q0 + q]];
                    bv[q] = &x.t->bv_;
                    pi[q] = x.s0 + x.li;
                    pj[q] = x.s0 + x.lj;
                }
                // Once this level's superblock records are read, the child's positions
                // are known to within a block: prefetch the child's records
                // there (both ends of each range), overlapping the misses.
                BV::rank_pair_multi(bv, pi, pj, m, ri, rj,
                                    [&](size_t q, uint64_t lo_i, uint64_t hi_i, uint64_t lo_j, uint64_t hi_j) {
                    const Desc& x = ds[cq[q0 + q]];
                    if (x.d == 0) return;
                    const HuffmanWaveletTree& t = *x.t;
                    const int b = (x.pc >> (6 + x.d)) & 1;
                    const uint64_t nx = t.nodes_.child(x.v, b);
                    if (nx & 1) return;
                    const uint64_t r0 = t.nodes_.rstart(x.v), f = t.nodes_.field(nx >> 1), s = f >> 1;
                    auto ends = [&](uint64_t p, uint64_t lo, uint64_t hi) {  // ones before p in the node: [lo, hi] - r0, <= p
                        const uint64_t a1 = lo > r0 ? std::min(lo - r0, p) : 0, a2 = hi > r0 ? std::min(hi - r0, p) : 0;
                        const uint64_t e1 = s + (b ? a1 : p - a2), e2 = s + (b ? a2 : p - a1);
                        if (f & 1) { t.pv_.prefetch(e1); t.pv_.prefetch(e2); }
                        else { t.bv_.prefetch(e1); t.bv_.prefetch(e2); }
                    };
                    ends(x.li, lo_i, hi_i);
                    if (x.lj != x.li) ends(x.lj, lo_j, hi_j);
                });
                for (size_t q = 0; q < m; ++q) descend(ds[cq[q0 + q]], ri[q], rj[q]);
            }
            for (size_t q = 0; q < np; ++q) {  // plain nodes: their lines were prefetched above
                Desc& x = ds[pq[q]];
                uint64_t a1, b1;
                x.t->pv_.rank_pair(x.s0 + x.li, x.s0 + x.lj, &a1, &b1);
                descend(x, a1, b1);
            }
            size_t nn = 0;
            for (size_t q = 0; q < na; ++q) {
                Desc& x = ds[act[q]];
                const bool done = x.d < 0 || x.lj == 0 || (stop_empty && x.oj && x.li == x.lj);
                if (!done) { act[nn++] = act[q]; continue; }
                *x.oi = x.base + x.li;
                if (x.oj) *x.oj = x.base + x.lj;
            }
            na = nn;
        }
    }

    /// (s[i], rank(s[i], i)), i < size().
    std::pair<uint64_t, uint64_t> access_rank(uint64_t i) const {
        uint64_t ref, li;
        begin(i, &ref, &li);
        while (!(ref & 1)) {
            const uint64_t v = ref >> 1;
            int bit;
            const uint64_t r1 = node_rank_access(v, li, &bit);
            li = bit ? r1 : li - r1;
            ref = nodes_.child(v, bit);
        }
        return {sym_of(ref), cnt_of(ref) + li};
    }
    uint64_t access(uint64_t i) const { return access_rank(i).first; }

    /// The start of a descent to s[i] (i < size()): its block's root and i's place in the block.
    void begin(uint64_t i, uint64_t* ref, uint64_t* li) const {
        const uint64_t b = i >> bb_;
        *ref = root_[b];
        *li = i - (b << bb_);
        if (!(*ref & 1)) nodes_.prefetch(*ref >> 1);
    }
    /// One level of g independent descents (g <= BV::kMaxBatch), each at its
    /// own node: walk a stands at node reference ref[a] (from begin), position
    /// li[a] in it; one batched rank (BV::rank_access_batch) moves every walk
    /// to the child holding its symbol. On return sym[a] >= 0 when that child
    /// is a leaf: the symbol, with li[a] = rank(sym, the descent's start);
    /// else sym[a] = -1 and (ref[a], li[a]) is the child and the position in
    /// it. Callers keep g walks in flight, starting a new descent in a slot as
    /// soon as one ends, so every batch is full whatever the code lengths.
    void step_batch(uint64_t* ref, uint64_t* li, size_t g, int64_t* sym) const {
        constexpr size_t M = BV::kMaxBatch;
        uint64_t p[M], r1[M];
        int bit[M];
        uint8_t idx[M];
        size_t m = 0, np = g;  // compressed nodes at [0, m), plain ones at [np, g)
        for (size_t a = 0; a < g; ++a) {
            if (ref[a] & 1) {  // a block of one symbol: the root is a leaf
                sym[a] = static_cast<int64_t>(sym_of(ref[a]));
                li[a] += cnt_of(ref[a]);
                continue;
            }
            const uint64_t f = nodes_.field(ref[a] >> 1);
            if (f & 1) {
                --np;
                idx[np] = static_cast<uint8_t>(a);
                p[np] = (f >> 1) + li[a];
                pv_.prefetch(p[np]);
                pv_.prefetch_rank(p[np]);
            } else {
                idx[m] = static_cast<uint8_t>(a);
                p[m++] = (f >> 1) + li[a];
            }
        }
        bv_.rank_access_batch(p, m, r1, bit);
        for (size_t q = np; q < g; ++q) r1[q] = pv_.rank_access(p[q], &bit[q]);
        auto down = [&](size_t q) {  // to the child of walk idx[q]
            const size_t a = idx[q];
            const uint64_t v = ref[a] >> 1, r = r1[q] - nodes_.rstart(v);
            const uint64_t l = bit[q] ? r : li[a] - r, nx = nodes_.child(v, bit[q]);
            ref[a] = nx;
            const bool leaf = nx & 1;
            sym[a] = leaf ? static_cast<int64_t>(sym_of(nx)) : -1;
            li[a] = leaf ? l + cnt_of(nx) : l;
            if (!leaf) nodes_.prefetch(nx >> 1);  // read in the next round
        };
        for (size_t q = 0; q < m; ++q) down(q);
        for (size_t q = np; q < g; ++q) down(q);
    }

    /// Position of the k-th (0-based) occurrence of c; k < rank(c, size()).
    uint64_t select(uint64_t c, uint64_t k) const {
        uint64_t lo = 0, hi = nblk_;  // the last block b with cnt[b][c] <= k
        while (hi - lo > 1) {
            const uint64_t mid = (lo + hi) / 2;
            if (cnt_[(mid << sb_) | c] <= k) lo = mid; else hi = mid;
        }
        const uint64_t b = lo, pc = code_[(b << sb_) | c];
        k -= cnt_[(b << sb_) | c];
        const int L = static_cast<int>(pc & 63);
        if (L) {
            uint64_t path[64];
            uint64_t v = root_[b] >> 1;
            for (int d = 0; d < L; ++d) {
                path[d] = v;
                v = nodes_.child(v, ((pc >> (6 + L - 1 - d)) & 1)) >> 1;
            }
            for (int d = L - 1; d >= 0; --d) {
                const uint64_t u = path[d], f = nodes_.field(u), su = f >> 1, ru = nodes_.rstart(u);
                const bool one = (pc >> (6 + L - 1 - d)) & 1;
                if (f & 1) k = (one ? pv_.select1(ru + k) : pv_.select0((su - ru) + k)) - su;
                else k = (one ? bv_.select1(ru + k) : bv_.select0((su - ru) + k)) - su;
            }
        }
        return (b << bb_) + k;
    }

    /// f(c, rank(c, i), rank(c, j)) for every symbol c occurring in [i, j).
    /// Inside one block: the block's tree, O(distinct * code length) ranks;
    /// across blocks: the end blocks' trees plus O(sigma) table reads.
    template <class F>
    void distinct(uint64_t i, uint64_t j, F&& f) const {
        if (i >= j) return;
        const uint64_t bi = i >> bb_, bj = (j - 1) >> bb_;
        if (bi == bj) { block_distinct(bi, i - (bi << bb_), j - (bi << bb_), f); return; }
        std::vector<uint64_t> lo(sigma_), hi(sigma_);
        const uint64_t hb = i == (bi << bb_) ? bi : bi + 1, tb = j >> bb_;
        for (uint64_t c = 0; c < sigma_; ++c) {
            lo[c] = cnt_[(hb << sb_) | c];  // c absent from the head [i, end of block bi): its rank at the block's end
            hi[c] = cnt_[(tb << sb_) | c];
        }
        if (hb != bi) block_distinct(bi, i - (bi << bb_), uint64_t(1) << bb_, [&](uint64_t c, uint64_t a, uint64_t) { lo[c] = a; });
        if (j != (tb << bb_)) block_distinct(tb, 0, j - (tb << bb_), [&](uint64_t c, uint64_t, uint64_t x) { hi[c] = x; });
        for (uint64_t c = 0; c < sigma_; ++c)
            if (hi[c] > lo[c]) f(c, lo[c], hi[c]);
    }

    size_t bytes() const {
        return bv_.bytes() + pv_.bytes() + root_.bytes() + nodes_.bytes() + code_.bytes() + cnt_.bytes() + 32;
    }
    void save(Blob& b) const {
        b.put_u64(n_);
        b.put_u64(sigma_);
        b.put_u64(static_cast<uint64_t>(bb_));
        b.put_u64(static_cast<uint64_t>(sb_));
        bv_.save(b);
        pv_.save(b);
        root_.save(b);
        nodes_.save(b);
        code_.save(b);
        cnt_.save(b);
    }
    static HuffmanWaveletTree load(BlobReader& r) {
        HuffmanWaveletTree w;
        w.n_ = r.get_u64();
        w.sigma_ = r.get_u64();
        const uint64_t bb = r.get_u64(), sb = r.get_u64();
        if (bb < 1 || bb > 63 || sb > 40 || (uint64_t(1) << sb) < w.sigma_) r.bad();
        w.bb_ = static_cast<int>(bb);
        w.sb_ = static_cast<int>(sb);
        w.nblk_ = w.n_ == 0 ? 1 : ((w.n_ - 1) >> w.bb_) + 1;
        w.bv_ = BV::load(r);
        w.pv_ = BitVector::load(r);
        w.root_ = PackedInts::load(r);
        w.nodes_ = NodeTable::load(r);
        w.code_ = PackedInts::load(r);
        w.cnt_ = PackedInts::load(r);
        const uint64_t rows = w.nblk_ << w.sb_;
        if (w.root_.size() != w.nblk_ || w.code_.size() != rows || w.cnt_.size() != rows + (uint64_t(1) << w.sb_) ||
            w.nodes_.size() == 0 || w.nodes_.field(w.nodes_.size() - 1) >> 1 != w.bv_.size())
            r.bad();
        return w;
    }

private:
    static constexpr uint64_t kAll = uint64_t(1) << 6;  // code_ of a block's only symbol (no node)
    /// Nodes RRR would shrink by less than this stay plain (BitVector: 1.064
    /// bits per bit with its rank tables, and ranked faster): on a BWT these
    /// are the near-balanced top nodes of the block trees. 0.95 rather than
    /// lower since the RRR rank has no class walk (FM version 5): on 100 MB of
    /// English, 0.75 / 0.85 / 0.95 / 1.1 gave 0.401x / 0.389x / 0.382x /
    /// 0.380x the text and extraction within the noise of each other.
    static constexpr double kPlainRatio = 0.95;

    /// Estimated RRRVector bits for bits [a, b) of w: per 31-bit block its
    /// offset bits, its 5-bit class and its share of the 32-bit record header.
    static double rrr_estimate(const uint64_t* w, uint64_t a, uint64_t b) {
        const rrr_detail::Tables& t = rrr_detail::tables();
        double bits = 0;
        for (uint64_t p = a; p < b; p += rrr_detail::kB) {
            const int len = static_cast<int>(std::min<uint64_t>(rrr_detail::kB, b - p));
            const int k = popcnt64(rrr_detail::read_bits(w, p, len));
            bits += (len == rrr_detail::kB ? t.len[k] : len) + 5 + 32.0 / rrr_detail::kSB;  // offset, class, record share
        }
        return bits;
    }
    /// Copies len bits from src at bit sp to dst at bit dp (dst zero there).
    static void copy_bits(uint64_t* dst, uint64_t dp, const uint64_t* src, uint64_t sp, uint64_t len) {
        for (uint64_t k = 0; k < len; k += 64) {
            const int l = static_cast<int>(std::min<uint64_t>(64, len - k));
            rrr_detail::or_bits(dst, dp + k, rrr_detail::read_bits(src, sp + k, l), l);
        }
    }

    /// Ones before local position p (p <= the node's length) in node v's bits, and so on.
    uint64_t node_rank1(uint64_t v, uint64_t p) const {
        const uint64_t f = nodes_.field(v), x = (f >> 1) + p;
        return ((f & 1) ? pv_.rank1(x) : bv_.rank1(x)) - nodes_.rstart(v);
    }
    uint64_t node_rank_access(uint64_t v, uint64_t p, int* bit) const {
        const uint64_t f = nodes_.field(v), x = (f >> 1) + p;
        return ((f & 1) ? pv_.rank_access(x, bit) : bv_.rank_access(x, bit)) - nodes_.rstart(v);
    }
    void node_rank_pair(uint64_t v, uint64_t p, uint64_t q, uint64_t* rp, uint64_t* rq) const {
        const uint64_t f = nodes_.field(v), s = f >> 1, r0 = nodes_.rstart(v);
        if (f & 1) pv_.rank_pair(s + p, s + q, rp, rq);
        else bv_.rank_pair(s + p, s + q, rp, rq);
        *rp -= r0;
        *rq -= r0;
    }

    /// A leaf's node reference carries its symbol and the symbol's count before the block.
    uint64_t sym_of(uint64_t ref) const { return (ref >> 1) & ((uint64_t(1) << sb_) - 1); }
    uint64_t cnt_of(uint64_t ref) const { return ref >> (1 + sb_); }

    /// One packed record per node: its first bit in its vector (<< 1 | plain)
    /// and the ones before it there (ws bits each), its two children's
    /// references (wc bits each), so a level of a descent reads one record
    /// (one cache line, or two).
    class NodeTable {
    public:
        NodeTable() = default;
        /// start (fields as field() returns them), rstart: nn + 1 entries; child: 2 per entry (the last record's are unused).
        NodeTable(const std::vector<uint64_t>& start, const std::vector<uint64_t>& rstart, const std::vector<uint64_t>& child,
                  int ws, int wc)
            : n_(start.size()), ws_(ws), wc_(wc) {
            const uint64_t W = rec();
            std::vector<uint64_t> words((n_ * W + 63) / 64 + 2, 0);
            auto put = [&](uint64_t p, uint64_t x, int w) {
                if (x >> w) throw std::invalid_argument("wavelet tree: node field too wide");
                rrr_detail::or_bits(words.data(), p, x, w);
            };
            for (uint64_t v = 0; v < n_; ++v) {
                put(v * W, start[v], ws_);
                put(v * W + ws_, rstart[v], ws_);
                put(v * W + 2 * ws_, child[2 * v], wc_);
                put(v * W + 2 * ws_ + wc_, child[2 * v + 1], wc_);
            }
            words_ = Array<uint64_t>(std::move(words));
        }
        uint64_t size() const { return n_; }
        /// The node's first bit, << 1 | 1 if its bits are in the plain vector.
        uint64_t field(uint64_t v) const { return rrr_detail::read_bits_padded(words_.data(), v * rec(), ws_); }
        uint64_t rstart(uint64_t v) const { return rrr_detail::read_bits_padded(words_.data(), v * rec() + ws_, ws_); }
        uint64_t child(uint64_t v, uint64_t side) const {
            return rrr_detail::read_bits_padded(words_.data(), v * rec() + 2 * ws_ + side * wc_, wc_);
        }
        void prefetch(uint64_t v) const {
            const uint64_t p = v * rec();
            __builtin_prefetch(words_.data() + (p >> 6));
            __builtin_prefetch(words_.data() + ((p + rec() - 1) >> 6));
        }
        size_t bytes() const { return words_.size() * 8 + 24; }
        void save(Blob& b) const {
            b.put_u64(n_);
            b.put_u64(static_cast<uint64_t>(ws_));
            b.put_u64(static_cast<uint64_t>(wc_));
            words_.save(b);
        }
        static NodeTable load(BlobReader& r) {
            NodeTable t;
            t.n_ = r.get_u64();
            const uint64_t ws = r.get_u64(), wc = r.get_u64();
            if (ws < 1 || ws > 63 || wc < 1 || wc > 63) r.bad();
            t.ws_ = static_cast<int>(ws);
            t.wc_ = static_cast<int>(wc);
            t.words_ = Array<uint64_t>::load(r);
            if (t.words_.size() != (t.n_ * t.rec() + 63) / 64 + 2) r.bad();
            return t;
        }

    private:
        uint64_t rec() const { return 2 * static_cast<uint64_t>(ws_ + wc_); }
        uint64_t n_ = 0;
        int ws_ = 1, wc_ = 1;
        Array<uint64_t> words_;
    };

    /// Huffman code of the symbols with freq > 0 (ties broken by id:
    /// deterministic), nodes numbered breadth-first from the root 0:
    /// lch = 2 per node (>= 0 a node, < 0 the leaf -(c + 1)); code / clen per
    /// symbol (MSB = the root's decision). Returns the only symbol when
    /// there is no node (-1: none).
    static int64_t huffman(const uint64_t* freq, uint64_t sigma, std::vector<int64_t>* lch_out,
                           std::vector<uint64_t>* code, std::vector<uint8_t>* clen) {
        struct Item { uint64_t f; int64_t id; bool operator>(const Item& o) const { return f != o.f ? f > o.f : id > o.id; } };
        std::priority_queue<Item, std::vector<Item>, std::greater<Item>> pq;
        for (uint64_t c = 0; c < sigma; ++c)
            if (freq[c]) pq.push(Item{freq[c], -static_cast<int64_t>(c) - 1});
        if (pq.empty()) return -1;
        std::vector<int64_t> lch, rch;  // merge order; child < 0: leaf
        while (pq.size() > 1) {
            Item a = pq.top(); pq.pop();
            Item b = pq.top(); pq.pop();
            lch.push_back(a.id);
            rch.push_back(b.id);
            pq.push(Item{a.f + b.f, static_cast<int64_t>(lch.size() - 1)});
        }
        const size_t ni = lch.size();
        if (ni == 0) return -pq.top().id - 1;
        std::vector<int64_t>& out = *lch_out;
        out.assign(2 * ni, 0);
        std::vector<int64_t> bfs{static_cast<int64_t>(ni - 1)};  // bfs order of merge ids
        std::vector<int64_t> newid(ni);
        std::vector<uint64_t> ncode(ni, 0);
        std::vector<uint8_t> ndepth(ni, 0);
        newid[ni - 1] = 0;
        for (size_t q = 0; q < bfs.size(); ++q) {
            const int64_t m = bfs[q];
            const int64_t me = newid[m];
            for (int side = 0; side < 2; ++side) {
                const int64_t c = side ? rch[m] : lch[m];
                const uint64_t cc = (ncode[m] << 1) | static_cast<uint64_t>(side);
                const int d = ndepth[m] + 1;
                if (d > 57) throw std::runtime_error("wavelet tree: Huffman code longer than 57 bits");
                if (c < 0) {
                    const uint64_t sym = static_cast<uint64_t>(-c - 1);
                    (*code)[sym] = cc;
                    (*clen)[sym] = static_cast<uint8_t>(d);
                    out[2 * me + side] = c;
                } else {
                    newid[c] = static_cast<int64_t>(bfs.size());
                    ncode[c] = cc;
                    ndepth[c] = static_cast<uint8_t>(d);
                    out[2 * me + side] = newid[c];
                    bfs.push_back(c);
                }
            }
        }
        return -1;
    }

    /// Rank of the symbol with packed code pc in block b, before li > 0.
    uint64_t local_rank(uint64_t b, uint64_t pc, uint64_t li) const {
        const int L = static_cast<int>(pc & 63);
        if (!L) return pc == kAll ? li : 0;
        uint64_t v = root_[b] >> 1;
        for (int d = L - 1; d >= 0; --d) {
            const uint64_t r1 = node_rank1(v, li);
            const int bit = (pc >> (6 + d)) & 1;
            li = bit ? r1 : li - r1;
            if (!li) return 0;
            v = nodes_.child(v, bit) >> 1;
        }
        return li;
    }

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

    /// f(c, rank(c, .), rank(c, .)) for the symbols of block b's [li, lj), li < lj.
    template <class F>
    void block_distinct(uint64_t b, uint64_t li, uint64_t lj, F&& f) const {
        const uint64_t ref = root_[b];
        if (ref & 1) {
            f(sym_of(ref), cnt_of(ref) + li, cnt_of(ref) + lj);
            return;
        }
        distinct_rec(ref >> 1, li, lj, f);
    }
    template <class F>
    void distinct_rec(uint64_t v, uint64_t i, uint64_t j, F& f) const {
        uint64_t ai, aj;
        node_rank_pair(v, i, j, &ai, &aj);
        const uint64_t li = i - ai, lj = j - aj;
        for (int side = 0; side < 2; ++side) {
            const uint64_t x = side ? ai : li, y = side ? aj : lj;
            if (y <= x) continue;
            const uint64_t ref = nodes_.child(v, side);
            if (ref & 1) {
                f(sym_of(ref), cnt_of(ref) + x, cnt_of(ref) + y);
            } else {
                distinct_rec(ref >> 1, x, y, f);
            }
        }
    }

    uint64_t n_ = 0, sigma_ = 0, nblk_ = 1;
    int bb_ = 63, sb_ = 0;        // block = 2^bb_ symbols (63: one block); cnt_ / code_ rows of 2^sb_ >= sigma
    BV bv_;                       // the bits of the nodes RRR compresses well
    BitVector pv_;                // the bits of the others (plain: cheaper to rank)
    PackedInts root_;             // per block: node reference of its root (a leaf when it holds one symbol)
    NodeTable nodes_;             // per node (+ the end): first bit in bv_, the ones before it, two node references
    PackedInts code_;             // per (block, symbol): (code << 6) | length; 0: absent; kAll: the only symbol
    PackedInts cnt_;              // per (block, symbol) + a final row: occurrences before the block
};

}  // namespace infinigram

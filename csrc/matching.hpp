// matching.hpp — matching statistics of a text against all shards of an Engine<Tok>.
//
// For every position i of a text q[0, m):
//   length[i] = the largest L such that q[i, i+L) occurs in the corpus (union of
//               shards; 0 if q[i] never occurs),
//   count[i]  = occurrences of q[i, i+length[i]) summed over shards (0 when length 0),
//   one occurrence of it: (shard, SA rank) -> (global doc, offset in its text).
//
// Per shard the walk keeps the SA range of the current match while extending it
// one token at a time (each extension narrows the range with two binary searches
// that compare one token only: every suffix in the range shares the first d
// tokens), and reuses ms[i+1] >= ms[i] - 1: the next position starts from a
// re-search of q[i+1, i+ms[i]) (an lcp-accelerated binary search: comparisons
// skip the prefix already known to be shared by both bounds), so no position is
// ever searched once per length. Cost per shard O(m log n) binary-search steps
// plus the token comparisons of the re-searches (at most sum of ms, sequential
// reads). A match with a single occurrence extends by direct text comparison.
//
// The longest match is over the union of shards: length[i] = max over shards,
// and count[i] adds only the shards reaching that maximum.
//
// Uses only the public API of SAShard/Engine (tokens(), n_positions(),
// suffix_at(), doc_of(), doc_base()).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "engine.hpp"

namespace infinigram {

/// Results for one text (parallel arrays of its length m).
struct MatchStats {
    std::vector<uint64_t> length, count;
    std::vector<int64_t> doc, offset;  // -1 when length == 0 or occurrences not requested
};

namespace matching_detail {

/// Search helpers over one shard; the shard's text is T[0, n).
template <class Tok>
struct ShardWalk {
    const SAShard<Tok>& sh;
    const Tok* T;
    uint64_t n;

    explicit ShardWalk(const SAShard<Tok>& s) : sh(s), T(s.tokens()), n(s.n_positions()) {}

    /// lcp of the suffix at pos with q[0, l), starting the comparison at k.
    size_t lcp_from(uint64_t pos, const Tok* q, size_t l, size_t k) const {
        const uint64_t avail = n - pos;
        const size_t lim = avail < l ? static_cast<size_t>(avail) : l;
        const Tok* s = T + pos;
        while (k < lim && s[k] == q[k]) ++k;
        return k;
    }

    /// SA range of the suffixes starting with q[0, l) (l >= 1), by two
    /// lcp-accelerated binary searches (mlr heuristic).
    Range find(const Tok* q, size_t l) const {
        // lower bound: first rank whose suffix is not < q (prefix-equal counts as not less)
        uint64_t lo = 0, hi = n;
        size_t llcp = 0, rlcp = 0;
        while (lo < hi) {
            const uint64_t mid = lo + (hi - lo) / 2;
            const uint64_t pos = sh.suffix_at(mid);
            const size_t j = lcp_from(pos, q, l, std::min(llcp, rlcp));
            if (j == l) { hi = mid; rlcp = j; }
            else if (pos + j == n || T[pos + j] < q[j]) { lo = mid + 1; llcp = j; }
            else { hi = mid; rlcp = j; }
        }
        const uint64_t a = lo;
        if (a == n) return Range{a, a};
        {
            const uint64_t pos = sh.suffix_at(a);
            if (lcp_from(pos, q, l, 0) != l) return Range{a, a};
        }
        // upper bound: first rank in (a, n] whose suffix is > q and not prefix-equal
        lo = a + 1; hi = n;
        llcp = l; rlcp = 0;
        while (lo < hi) {
            const uint64_t mid = lo + (hi - lo) / 2;
            const uint64_t pos = sh.suffix_at(mid);
            const size_t j = lcp_from(pos, q, l, std::min(llcp, rlcp));
            if (j == l) { lo = mid + 1; llcp = j; }
            else { hi = mid; rlcp = j; }  // within [a, n) a non-prefix suffix is > q
        }
        return Range{a, lo};
    }

    /// Key of the suffix at rank k at depth d: its token, or -1 if it ends before d.
    int64_t key(uint64_t rank, size_t d) const {
        const uint64_t pos = sh.suffix_at(rank) + d;
        return pos >= n ? -1 : static_cast<int64_t>(T[pos]);
    }

    /// Narrows r (all suffixes share d tokens) to those whose token at depth d is c.
    Range narrow(Range r, size_t d, Tok c) const {
        const int64_t cc = static_cast<int64_t>(c);
        uint64_t lo = r.lo, hi = r.hi;
        while (lo < hi) {  // first with key >= c
            const uint64_t mid = lo + (hi - lo) / 2;
            if (key(mid, d) < cc) lo = mid + 1; else hi = mid;
        }
        const uint64_t a = lo;
        hi = r.hi;
        while (lo < hi) {  // first with key > c
            const uint64_t mid = lo + (hi - lo) / 2;
            if (key(mid, d) <= cc) lo = mid + 1; else hi = mid;
        }
        return Range{a, lo};
    }

    /// Per-position longest match in this shard: len[i], range[i].
    void run(const Tok* q, size_t m, std::vector<uint64_t>& len, std::vector<Range>& rng) const {
        len.assign(m, 0);
        rng.assign(m, Range{0, 0});
        size_t l = 0;  // q[i, i+l) is known to occur in this shard
        for (size_t i = 0; i < m; ++i) {
            Range r = l == 0 ? Range{0, n} : find(q + i, l);
            while (i + l < m) {
                if (r.size() == 1) {  // one occurrence: extend by direct comparison
                    const uint64_t pos = sh.suffix_at(r.lo);
                    l = lcp_from(pos, q + i, m - i, l);
                    break;
                }
                Range r2 = narrow(r, l, q[i + l]);
                if (r2.size() == 0) break;
                r = r2;
                ++l;
            }
            len[i] = l;
            rng[i] = l == 0 ? Range{0, 0} : r;
            if (l > 0) --l;
        }
    }
};

}  // namespace matching_detail

/// Matching statistics of q[0, m) against every shard of e (see the file comment).
template <class Tok>
void matching_statistics(const Engine<Tok>& e, const Tok* q, size_t m, bool with_occurrence, MatchStats& out) {
    out.length.assign(m, 0);
    out.count.assign(m, 0);
    out.doc.assign(m, -1);
    out.offset.assign(m, -1);
    std::vector<size_t> best_shard(m, SIZE_MAX);
    std::vector<uint64_t> best_rank(m, 0);
    std::vector<uint64_t> len;
    std::vector<Range> rng;
    for (size_t s = 0; s < e.n_shards(); ++s) {
        matching_detail::ShardWalk<Tok> w(e.shard(s));
        if (w.n == 0) continue;
        w.run(q, m, len, rng);
        for (size_t i = 0; i < m; ++i) {
            if (len[i] == 0) continue;
            if (len[i] > out.length[i]) {
                out.length[i] = len[i];
                out.count[i] = rng[i].size();
                best_shard[i] = s;
                best_rank[i] = rng[i].lo;
            } else if (len[i] == out.length[i]) {
                out.count[i] += rng[i].size();
            }
        }
    }
    if (!with_occurrence) return;
    for (size_t i = 0; i < m; ++i) {
        if (best_shard[i] == SIZE_MAX) continue;
        const auto& sh = e.shard(best_shard[i]);
        auto d = sh.doc_of(sh.suffix_at(best_rank[i]));
        out.doc[i] = static_cast<int64_t>(e.doc_base(best_shard[i]) + d.first);
        out.offset[i] = static_cast<int64_t>(d.second);
    }
}

/// Matching statistics of many texts (text k = flat[offsets[k], offsets[k+1])),
/// written into flat output arrays aligned with `flat`; texts are spread over
/// `threads` threads by an atomic cursor. Ids must be valid tokens. Any
/// backend: the per-text function is found by overload (this file's for
/// suffix arrays, fm_matching.hpp's for FM-indexes).
template <class Shard>
void matching_statistics_many(const ShardedEngine<Shard>& e, const int64_t* flat, const int64_t* offsets, size_t nt,
                              bool with_occurrence, uint64_t* length, uint64_t* count, int64_t* doc,
                              int64_t* offset, int threads) {
    using Tok = typename Shard::Token;
    parallel_for(nt, 1, threads, [&](size_t k) {
        thread_local std::vector<Tok> buf;
        thread_local MatchStats ms;
        const size_t a = static_cast<size_t>(offsets[k]), b = static_cast<size_t>(offsets[k + 1]);
        buf.resize(b - a);
        for (size_t x = a; x < b; ++x) buf[x - a] = static_cast<Tok>(flat[x]);
        matching_statistics(e, buf.data(), buf.size(), with_occurrence, ms);
        for (size_t x = 0; x < b - a; ++x) {
            length[a + x] = ms.length[x];
            count[a + x] = ms.count[x];
            doc[a + x] = ms.doc[x];
            offset[a + x] = ms.offset[x];
        }
    });
}

}  // namespace infinigram

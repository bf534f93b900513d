// continuations.hpp — the distinct tokens that follow a prefix in the corpus,
// with their counts (always exact), and a per-step cursor that extends a
// prefix by one token without searching it again (constrained decoding).
//
// A cursor is one Range per shard plus the prefix length d:
//
//   suffix array  ranks [lo, hi) of the suffixes starting with the prefix.
//                 extend(t): the sub-range whose token at depth d is t, two
//                 binary searches on that one depth inside the range
//                 (lm::refine): O(log count) reads, not a search of the
//                 whole prefix. list(): the blocks of equal next tokens,
//                 galloped (lm::ntd_in, exact): O(distinct * log count).
//   FM-index      rows [lo, hi) of the REVERSED prefix in an FM-index of the
//                 reversed text (each document reversed in place, documents
//                 and separators where they were, so doc_offsets.bin is the
//                 forward shard's). Backward search prepends, so appending a
//                 token to the forward prefix is one backward-search step
//                 (one wavelet rank pair). The BWT symbol of a row is the
//                 token before the reversed prefix there, i.e. the token
//                 after the prefix in the corpus: the continuations are the
//                 distinct symbols of BWT[lo, hi), found by the wavelet
//                 tree's distinct-symbols walk (HuffmanWaveletTree::distinct)
//                 with their counts as rank differences: O(distinct * code
//                 length) ranks inside one wavelet block, O(sigma) table
//                 reads when the rows span blocks (the empty prefix). The
//                 separator symbol counts the prefix's document ends.
//
// Every count sums over shards (lm.hpp's rules): occ = occurrences of the
// prefix (n_tokens for the empty prefix), end = those that end a document
// (0 for the empty prefix), counts[t] = occurrences of prefix + t, so
// sum(counts) = occ - end.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "engine.hpp"
#include "fm_index.hpp"
#include "lm.hpp"

namespace infinigram {
namespace cont {

/// Continuations of one prefix: (token, count) ascending, plus occ / end as above.
struct List {
    std::vector<std::pair<uint64_t, uint64_t>> counts;
    uint64_t occ = 0, end = 0;
};

// ------------------------------------------------------------ suffix array

/// Cursor of the prefix q[0, m): its SA range in every shard. O(m log n) per shard.
template <class Tok>
inline void start(const Engine<Tok>& e, const Tok* q, size_t m, std::vector<Range>& rr) {
    rr = e.find(q, m);
}

/// Appends t to a prefix of length d: O(log range) reads per shard.
template <class Tok>
inline void extend(const Engine<Tok>& e, std::vector<Range>& rr, size_t d, Tok t) {
    for (size_t s = 0; s < rr.size(); ++s) rr[s] = lm::refine(e.shard(s), rr[s], d, t);
}

/// The exact continuations of the prefix (length d) whose ranges are rr.
template <class Tok>
inline void list(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d, List& out) {
    lm::NtdOut o = lm::ntd_in(e, rr, d, std::numeric_limits<uint64_t>::max(), 1, 0);
    out.occ = o.prompt_count;
    out.end = o.end_count;
    if (o.denom() == 0) o.counts.clear();
    out.counts = std::move(o.counts);
}

// ------------------------------------------------- FM-index of the reversed text

/// Cursor of q[0, m) in an engine over reversed shards: the rows of reversed q.
/// O(m) rank pairs per shard.
template <class Tok>
inline void start(const FMEngine<Tok>& rev, const Tok* q, size_t m, std::vector<Range>& rr) {
    std::vector<Tok> r(q, q + m);
    std::reverse(r.begin(), r.end());
    rr.resize(rev.n_shards());
    for (size_t s = 0; s < rev.n_shards(); ++s) rr[s] = rev.shard(s).find_rows(r.data(), m);
}

/// Appends t: one backward-search step (one wavelet rank pair) per shard.
template <class Tok>
inline void extend(const FMEngine<Tok>& rev, std::vector<Range>& rr, size_t /*d*/, Tok t) {
    for (size_t s = 0; s < rr.size(); ++s) {
        Range& r = rr[s];
        if (r.lo >= r.hi) { r = Range{0, 0}; continue; }
        const auto& sh = rev.shard(s);
        const int64_t c = sh.code_of(t);
        if (c < 0) { r = Range{0, 0}; continue; }
        sh.step(static_cast<uint64_t>(c), r.lo, r.hi);
        if (r.lo >= r.hi) r = Range{0, 0};
    }
}

/// The continuations of the prefix whose reversed rows are rr: the distinct
/// BWT symbols of each shard's rows (the separator's count = document ends).
template <class Tok>
inline void list(const FMEngine<Tok>& rev, const std::vector<Range>& rr, size_t d, List& out) {
    out.counts.clear();
    out.occ = out.end = 0;
    const Tok sep = separator_of<Tok>();
    for (size_t s = 0; s < rr.size(); ++s) {
        const Range r = rr[s];
        if (r.lo >= r.hi) continue;
        const auto& sh = rev.shard(s);
        const int64_t sc = sh.code_of(sep);
        const uint64_t p = sh.primary();
        out.occ += r.hi - r.lo;
        // tree positions of rows [lo, hi): the primary row (no symbol) is not in the tree
        sh.wavelet().distinct(r.lo - (r.lo > p), r.hi - (r.hi > p), [&](uint64_t c, uint64_t a, uint64_t b) {
            if (static_cast<int64_t>(c) == sc) out.end += b - a;
            else out.counts.emplace_back(static_cast<uint64_t>(sh.token_of(c)), b - a);
        });
    }
    if (d == 0) {  // the empty prefix: every token, none "ends a document"
        out.occ = rev.n_tokens();
        out.end = 0;
    }
    lm::merge_counts(out.counts);
}

/// Continuations of many prefixes (flat + offsets) on `threads` threads.
template <class E>
void list_many(const E& e, const typename E::Tok* flat, const int64_t* offsets, size_t nq, List* out, int threads) {
    parallel_for(nq, 4, threads, [&](size_t i) {
        std::vector<Range> rr;
        const size_t m = static_cast<size_t>(offsets[i + 1] - offsets[i]);
        start(e, flat + offsets[i], m, rr);
        list(e, rr, m, out[i]);
    });
}

/// One decoding step of B cursors: cursor b (ranges[b * S, (b + 1) * S), depth[b])
/// is extended by tok[b] (unless tok[b] < 0), then its continuations are
/// listed into out[b] when `want`, except empty prefixes when `skip_root`
/// (the caller keeps the empty prefix's list: it never changes).
template <class E>
void step_many(const E& e, Range* ranges, int64_t* depth, const int64_t* tok, size_t B, bool want, List* out,
               int threads, bool skip_root = false) {
    using Tok = typename E::Tok;
    const size_t S = e.n_shards();
    parallel_for(B, 1, threads, [&](size_t b) {
        std::vector<Range> rr(ranges + b * S, ranges + (b + 1) * S);
        if (tok[b] >= 0) {
            extend(e, rr, static_cast<size_t>(depth[b]), static_cast<Tok>(tok[b]));
            ++depth[b];
        }
        std::copy(rr.begin(), rr.end(), ranges + b * S);
        if (want && !(skip_root && depth[b] == 0)) list(e, rr, static_cast<size_t>(depth[b]), out[b]);
    });
}

}  // namespace cont
}  // namespace infinigram

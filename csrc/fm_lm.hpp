// fm_lm.hpp — sequence scoring (n-gram / ∞-gram log-probabilities) on the
// FM-index backend, with the semantics of lm.hpp (docs/QUERIES.md).
//
// An FM-index extends a pattern to the left, so for each scored token t the
// context s grows leftwards from t, and four row ranges per shard move
// together, one backward-search step per prepended token:
//   s       occurrences of the context             (occ)
//   s·SEP   ... followed by a document separator   (end, part 1)
//   s·$     ... at the very end of the shard       (end, part 2)
//   s·t     ... followed by the scored token       (cont)
// denom = occ - end. The ∞-gram context is the longest suffix with denom > 0
// over the union of shards (monotone in the length, so the walk stops at the
// first failure); it is at most one longer than the previous position's.
// Cost: O(suffix length) steps of 4 ranges per shard per token.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "fm_index.hpp"
#include "lm.hpp"

namespace infinigram {
namespace fm_lm {

struct Rows {
    uint64_t lo = 0, hi = 0;
    uint64_t size() const { return hi - lo; }
};

/// The four ranges of one shard for one context.
struct Quad {
    Rows occ, sep, end, cont;
};

template <class Tok>
inline Rows symbol_rows(const FMShard<Tok>& sh, int64_t code) {
    if (code < 0) return Rows{};
    return Rows{sh.C(static_cast<uint64_t>(code)), sh.C(static_cast<uint64_t>(code) + 1)};
}

/// Ranges of the empty context before token t.
template <class Tok>
inline Quad start(const FMShard<Tok>& sh, Tok t) {
    Quad q;
    q.occ = Rows{0, sh.n_positions() + 1};  // every suffix, the empty one (row 0) included
    q.sep = symbol_rows(sh, sh.code_of(separator_of<Tok>()));
    q.end = Rows{0, 1};  // the empty suffix: "at the end of the shard"
    q.cont = symbol_rows(sh, sh.code_of(t));
    return q;
}

/// Prepends token c to the context of every range.
template <class Tok>
inline void prepend(const FMShard<Tok>& sh, Quad& q, Tok c) {
    const int64_t code = sh.code_of(c);
    if (code < 0) {
        q = Quad{};
        return;
    }
    const uint64_t k = static_cast<uint64_t>(code);
    for (Rows* r : {&q.occ, &q.sep, &q.end, &q.cont})
        if (r->lo < r->hi) sh.step(k, r->lo, r->hi);
}

template <class Tok>
inline uint64_t denom(const std::vector<Quad>& qs) {
    uint64_t d = 0;
    for (const Quad& q : qs) d += q.occ.size() - q.sep.size() - q.end.size();
    return d;
}

template <class Tok>
inline void write(const std::vector<Quad>& qs, size_t l, const lm::ScoreOut& o, size_t i) {
    uint64_t cont = 0;
    for (const Quad& q : qs) cont += q.cont.size();
    o.set(i, l, cont, denom<Tok>(qs));
}

/// The context of a query q[0, m) with the ranges of `next` after it, per
/// shard: the whole of q (infgram = false), or its longest suffix with a next
/// token in the corpus (at most `cap` tokens). Returns the context length.
template <class Tok>
size_t context(const ShardedEngine<FMShard<Tok>>& e, const Tok* q, size_t m, Tok next, bool infgram, size_t cap,
               std::vector<Quad>& cur) {
    const size_t S = e.n_shards();
    cur.resize(S);
    for (size_t s = 0; s < S; ++s) cur[s] = start(e.shard(s), next);
    size_t l = 0;
    if (!infgram) {
        for (; l < m; ++l)
            for (size_t s = 0; s < S; ++s) prepend(e.shard(s), cur[s], q[m - 1 - l]);
        return l;
    }
    if (denom<Tok>(cur) == 0) return 0;
    std::vector<Quad> nxt(S);
    const size_t top = std::min(m, cap);
    while (l < top) {
        for (size_t s = 0; s < S; ++s) {
            nxt[s] = cur[s];
            prepend(e.shard(s), nxt[s], q[m - 1 - l]);
        }
        if (denom<Tok>(nxt) == 0) break;
        cur.swap(nxt);
        ++l;
    }
    return l;
}

/// Scores x[a, b) of one sequence (contexts may reach back to x[0]).
/// n == 0: ∞-gram; n >= 1: n-gram with the previous min(n - 1, i) tokens.
template <class Tok>
void score_range(const ShardedEngine<FMShard<Tok>>& e, const Tok* x, size_t a, size_t b, size_t n,
                 const lm::ScoreOut& o) {
    std::vector<Quad> cur;
    size_t prev = a;  // cap for the first position of a chunk: no previous context
    for (size_t i = a; i < b; ++i) {
        const size_t l = n >= 1 ? context(e, x + i - std::min(n - 1, i), std::min(n - 1, i), x[i], false, 0, cur)
                                : context(e, x, i, x[i], true, i == a ? i : prev + 1, cur);
        write<Tok>(cur, l, o, i);
        prev = l;
    }
}

/// n-gram (infgram = false: the whole prompt is the context) or ∞-gram
/// (the longest suffix of the prompt with a next token in the corpus)
/// probability of `next`; lm::prob / lm::infgram_prob semantics.
template <class Tok>
lm::ProbOut prob(const ShardedEngine<FMShard<Tok>>& e, const Tok* q, size_t m, Tok next, bool infgram) {
    std::vector<Quad> cur;
    const size_t l = context(e, q, m, next, infgram, m, cur);
    lm::ProbOut o;
    uint64_t occ = 0, end = 0;
    for (const Quad& x : cur) {
        occ += x.occ.size();
        end += x.sep.size() + x.end.size();
        o.cont_count += x.cont.size();
    }
    if (l == 0) {  // the empty prompt: separators are its "end occurrences"
        o.prompt_count = occ - end;
        o.end_count = 0;
    } else {
        o.prompt_count = occ;
        o.end_count = end;
    }
    o.suffix_len = l;
    if (occ > end) o.prob = static_cast<double>(o.cont_count) / static_cast<double>(occ - end);
    return o;
}

/// Next-token distribution after q (infgram: after its longest suffix with a
/// next token), lm::ntd semantics: end-of-document occurrences excluded and
/// reported as end_count. A forward FM-index cannot enumerate the tokens that
/// follow a range, so each occurrence is located and its next token decoded
/// (O(sa_sample + isa_sample) LF steps each): exact when every shard has at
/// most max_support occurrences (or exact_mode == 1), else every unit-th row
/// from a random offset per shard, each weighted unit (unbiased; approx).
template <class Tok>
lm::NtdOut ntd(const ShardedEngine<FMShard<Tok>>& e, const Tok* q, size_t m, uint64_t max_support, int exact_mode,
               uint64_t seed, bool infgram) {
    const size_t S = e.n_shards();
    std::vector<Quad> cur;
    const size_t l = context(e, q, m, Tok(0), infgram, m, cur);
    lm::NtdOut o;
    uint64_t occ = 0, end = 0, max_occ = 0;
    for (const Quad& x : cur) {
        occ += x.occ.size();
        end += x.sep.size() + x.end.size();
        max_occ = std::max<uint64_t>(max_occ, x.occ.size());
    }
    o.prompt_count = l == 0 ? occ - end : occ;
    o.end_count = l == 0 ? 0 : end;
    o.suffix_len = l;
    if (occ <= end) return o;
    if (max_support == 0) max_support = 1;
    const Tok sep = separator_of<Tok>();
    std::vector<std::pair<uint64_t, uint64_t>> raw;  // (token, weight)
    std::vector<uint64_t> rows, pos;
    std::vector<Tok> toks;
    // The tokens after the occurrences in `rows` of shard sh, each weighted
    // `weight`: the rows located, then the next tokens read, both batched.
    auto visit_rows = [&](const FMShard<Tok>& sh, uint64_t weight) {
        pos.resize(rows.size());
        sh.locate_rows(rows.data(), rows.size(), pos.data());
        size_t k = 0;
        for (uint64_t p : pos)
            if (p + l < sh.n_positions()) pos[k++] = p + l;  // (else the occurrence ends the shard)
        pos.resize(k);
        toks.resize(k);
        sh.tokens_at(pos.data(), k, toks.data());
        for (Tok t : toks)
            if (t != sep) raw.emplace_back(static_cast<uint64_t>(t), weight);
        rows.clear();
    };
    const bool exact = exact_mode == 1 || (exact_mode == 0 && max_occ <= max_support);
    if (exact) {
        for (size_t s = 0; s < S; ++s) {
            for (uint64_t r = cur[s].occ.lo; r < cur[s].occ.hi; ++r) rows.push_back(r);
            visit_rows(e.shard(s), 1);
        }
    } else {
        uint64_t unit = 1;
        while ((occ + unit - 1) / unit > max_support) unit <<= 1;
        if (unit == 1) unit = 2;  // sampling asked for explicitly
        std::mt19937_64 rng(seed);
        for (size_t s = 0; s < S; ++s) {
            const uint64_t off = std::uniform_int_distribution<uint64_t>(0, unit - 1)(rng);
            for (uint64_t r = cur[s].occ.lo + off; r < cur[s].occ.hi; r += unit) rows.push_back(r);
            visit_rows(e.shard(s), unit);
        }
        o.unit = unit;
        o.approx = true;
    }
    std::sort(raw.begin(), raw.end());
    for (const auto& tw : raw) {
        if (!o.counts.empty() && o.counts.back().first == tw.first) o.counts.back().second += tw.second;
        else o.counts.push_back(tw);
    }
    return o;
}

/// Many (prompt, next) pairs on `threads` threads (lm::prob_many semantics).
template <class Tok>
void prob_many(const ShardedEngine<FMShard<Tok>>& e, const Tok* flat, const int64_t* offsets, const Tok* next,
               size_t nq, bool infgram, lm::ProbOut* out, int threads) {
    parallel_for(nq, 16, threads, [&](size_t i) {
        out[i] = prob(e, flat + offsets[i], static_cast<size_t>(offsets[i + 1] - offsets[i]), next[i], infgram);
    });
}

/// lm::score_many for FM engines: chunks of 2048 positions on `threads` threads.
template <class Tok>
void score_many(const ShardedEngine<FMShard<Tok>>& e, const Tok* flat, const int64_t* offsets, size_t nseq,
                size_t n, const lm::ScoreOut& o, int threads) {
    constexpr size_t kChunk = 2048;
    std::vector<std::pair<size_t, size_t>> items;
    for (size_t s = 0; s < nseq; ++s) {
        const size_t len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
        for (size_t c = 0; c < len; c += kChunk) items.emplace_back(s, c);
    }
    parallel_for(items.size(), 1, threads, [&](size_t k) {
        const size_t s = items[k].first, c = items[k].second;
        const size_t base = static_cast<size_t>(offsets[s]);
        const size_t len = static_cast<size_t>(offsets[s + 1]) - base;
        const lm::ScoreOut so{o.logprob + base, o.suffix_len + base, o.cont_count + base, o.denom + base};
        score_range(e, flat + base, c, std::min(len, c + kChunk), n, so);
    });
}

}  // namespace fm_lm
}  // namespace infinigram

// lm.hpp — language-model queries over an Engine<Tok>: n-gram and ∞-gram
// probabilities, next-token distributions, whole-sequence scoring.
//
// Semantics (docs/QUERIES.md has the user-facing version):
//  * An occurrence of a prompt q (|q| = d) at position p has a next token when
//    p + d is a real token; it is an *end occurrence* when p + d is a separator
//    or the end of the shard (the prompt ends a document).
//  * The denominator of every probability is the number of occurrences that
//    have a next token: denom(q) = count(q) - end_count(q). For the empty
//    prompt it is n_tokens (the unigram distribution). So prob(q, t) equals
//    ntd(q)[t].prob and the exact distribution sums to 1.
//  * The ∞-gram context of q is its longest suffix with denom > 0 over the
//    union of shards (the empty suffix if none; counts are monotone).
//  * Every count sums over shards.
//
// In the SA range of q, suffixes are ordered by their token at depth d ("key"):
// the end-of-shard suffix (if any) first, then real tokens ascending, then the
// separator block last (the separator is the largest token). Distinct next
// tokens are contiguous blocks, found by galloping: O(distinct * log) reads.
#pragma once

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "engine.hpp"

namespace infinigram {
namespace lm {

constexpr int64_t kEndKey = -1;  // "the suffix ends here" (end of shard); sorts first

/// Token at depth d of the suffix of rank `rank` (kEndKey past the shard end).
template <class Tok>
inline int64_t key_at(const SAShard<Tok>& sh, uint64_t rank, size_t d) {
    const uint64_t p = sh.suffix_at(rank) + d;
    return p >= sh.n_positions() ? kEndKey : static_cast<int64_t>(sh.tokens()[p]);
}

/// First rank in [lo, hi) whose key at depth d is >= key (hi if none).
template <class Tok>
inline uint64_t key_lower_bound(const SAShard<Tok>& sh, uint64_t lo, uint64_t hi, size_t d, int64_t key) {
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (key_at(sh, mid, d) < key) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/// Sub-range of r (all suffixes share their first d tokens) whose token at depth d is t.
template <class Tok>
inline Range refine(const SAShard<Tok>& sh, Range r, size_t d, Tok t) {
    if (r.lo >= r.hi) return Range{r.lo, r.lo};
    const int64_t k = static_cast<int64_t>(t);
    uint64_t a = key_lower_bound(sh, r.lo, r.hi, d, k);
    if (a == r.hi || key_at(sh, a, d) != k) return Range{a, a};
    uint64_t b = key_lower_bound(sh, a + 1, r.hi, d, k + 1);
    return Range{a, b};
}

/// Occurrences in r with no next token (followed by a separator or the shard end).
template <class Tok>
inline uint64_t end_count(const SAShard<Tok>& sh, Range r, size_t d) {
    if (r.lo >= r.hi) return 0;
    constexpr int64_t sep = static_cast<int64_t>(separator_of<Tok>());
    uint64_t e = 0, lo = r.lo;
    if (key_at(sh, lo, d) == kEndKey) { ++e; ++lo; }
    if (lo < r.hi && key_at(sh, r.hi - 1, d) == sep) e += r.hi - key_lower_bound(sh, lo, r.hi, d, sep);
    return e;
}

/// Whether some occurrence in r has a next token. O(1).
template <class Tok>
inline bool continuable(const SAShard<Tok>& sh, Range r, size_t d) {
    if (r.lo >= r.hi) return false;
    constexpr int64_t sep = static_cast<int64_t>(separator_of<Tok>());
    int64_t k = key_at(sh, r.lo, d);
    if (k == kEndKey) {
        if (r.lo + 1 >= r.hi) return false;
        k = key_at(sh, r.lo + 1, d);
    }
    return k != sep;
}

template <class Tok>
inline bool any_continuable(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d) {
    for (size_t s = 0; s < rr.size(); ++s)
        if (continuable(e.shard(s), rr[s], d)) return true;
    return false;
}

/// Occurrences, end occurrences and the denominator of a context (per-shard ranges, depth d).
struct ContextStats {
    uint64_t occ = 0, end = 0;
    uint64_t denom() const { return occ - end; }
};

template <class Tok>
inline ContextStats context_stats(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d) {
    ContextStats c;
    for (size_t s = 0; s < rr.size(); ++s) {
        c.occ += rr[s].size();
        c.end += end_count(e.shard(s), rr[s], d);
    }
    return c;
}

struct ProbOut {
    double prob = std::numeric_limits<double>::quiet_NaN();
    uint64_t prompt_count = 0;  // count(prompt) (n_tokens for the empty prompt)
    uint64_t cont_count = 0;    // count(prompt + next)
    uint64_t end_count = 0;     // occurrences of prompt ending a document
    uint64_t suffix_len = 0;    // context length used (= |prompt| for prob)
    uint64_t denom() const { return prompt_count - end_count; }
};

/// Probability of `next` after the context with ranges rr at depth d.
template <class Tok>
inline ProbOut prob_in(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d, Tok next) {
    ProbOut o;
    ContextStats c = context_stats(e, rr, d);
    for (size_t s = 0; s < rr.size(); ++s) o.cont_count += refine(e.shard(s), rr[s], d, next).size();
    if (d == 0) {  // the whole SA: separators are the "end occurrences" of the empty prompt
        o.prompt_count = c.denom();
        o.end_count = 0;
    } else {
        o.prompt_count = c.occ;
        o.end_count = c.end;
    }
    o.suffix_len = d;
    if (c.denom() > 0) o.prob = static_cast<double>(o.cont_count) / static_cast<double>(c.denom());
    return o;
}

template <class Tok>
inline ProbOut prob(const Engine<Tok>& e, const Tok* q, size_t m, Tok next) {
    return prob_in(e, e.find(q, m), m, next);
}

/// Whether q[0, m) occurs followed by a real token in some shard: one
/// lower-bound search per shard plus O(1) reads (cheaper than find()).
template <class Tok>
inline bool has_continuation(const Engine<Tok>& e, const Tok* q, size_t m) {
    constexpr int64_t sep = static_cast<int64_t>(separator_of<Tok>());
    for (size_t s = 0; s < e.n_shards(); ++s) {
        const SAShard<Tok>& sh = e.shard(s);
        const uint64_t n = sh.n_positions();
        uint64_t lo = 0, hi = n;
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (sh.compare(sh.suffix_at(mid), q, m) < 0) lo = mid + 1;
            else hi = mid;
        }
        for (uint64_t r = lo; r < n && r < lo + 2; ++r) {
            if (sh.compare(sh.suffix_at(r), q, m) != 0) break;
            const int64_t k = key_at(sh, r, m);
            if (k == kEndKey) continue;  // only the first suffix of a range can end the shard
            if (k != sep) return true;
            break;  // separator block is last: no real next token in this shard
        }
    }
    return false;
}

/// Longest suffix of q[0, m) with a next token somewhere (over all shards), at
/// most `cap` long; its per-shard ranges go to `out`. Galloping up from 4, then
/// binary search: O(log L) searches.
/// Finishes a suffix-length search: pred(lo) holds, pred(hi) does not; bisects
/// to the longest length with pred, stores its ranges in `out`, returns it.
template <class Tok, class Pred>
inline size_t bisect_suffix(const Engine<Tok>& e, const Tok* q, size_t m, size_t lo, size_t hi, Pred& pred,
                            std::vector<Range>& out) {
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (pred(mid)) lo = mid;
        else hi = mid;
    }
    out = e.find(q + m - lo, lo);
    return lo;
}

template <class Tok>
inline size_t longest_suffix(const Engine<Tok>& e, const Tok* q, size_t m, size_t cap, std::vector<Range>& out) {
    const size_t top = std::min(m, cap);
    size_t lo = 0, hi = top + 1;  // pred(lo) true, pred(hi) false (hi = top + 1: sentinel)
    auto pred = [&](size_t l) { return has_continuation(e, q + m - l, l); };
    size_t l = std::min<size_t>(4, top);  // short suffixes almost always continue: start at 4
    while (l >= 1 && l <= top) {
        if (pred(l)) {
            lo = l;
            if (l == top) break;
            l = std::min(2 * l, top);
        } else {
            hi = l;
            break;
        }
    }
    return bisect_suffix(e, q, m, lo, hi, pred, out);
}

/// As longest_suffix, knowing that the answer is < upper + 1 and probably close
/// to `upper`: gallops down from upper.
template <class Tok>
inline size_t longest_suffix_down(const Engine<Tok>& e, const Tok* q, size_t m, size_t upper,
                                  std::vector<Range>& out) {
    upper = std::min(upper, m);
    auto pred = [&](size_t l) { return has_continuation(e, q + m - l, l); };
    size_t hi = upper + 1, lo = 0;
    size_t step = 1;
    for (;;) {
        size_t cand = hi > step ? hi - step : 0;
        if (cand == 0) break;
        if (pred(cand)) { lo = cand; break; }
        hi = cand;
        step *= 2;
    }
    return bisect_suffix(e, q, m, lo, hi, pred, out);
}

template <class Tok>
inline ProbOut infgram_prob(const Engine<Tok>& e, const Tok* q, size_t m, Tok next) {
    std::vector<Range> rr;
    size_t l = longest_suffix(e, q, m, m, rr);
    return prob_in(e, rr, l, next);
}

// ------------------------------------------------------------------ ntd

struct NtdOut {
    std::vector<std::pair<uint64_t, uint64_t>> counts;  // (token, count or estimate), ascending tokens
    uint64_t prompt_count = 0, end_count = 0;           // exact (as in ProbOut)
    uint64_t suffix_len = 0;
    uint64_t unit = 1;  // sampling stride (1 = exact)
    bool approx = false;
    uint64_t denom() const { return prompt_count - end_count; }
};

/// Appends (token, weight) blocks of the grid ranks lo + off + j*unit, j in [0, G),
/// at depth d (real tokens only). Returns false if more than `budget` blocks.
template <class Tok>
inline bool enumerate_blocks(const SAShard<Tok>& sh, Range r, size_t d, uint64_t unit, uint64_t off,
                             uint64_t budget, std::vector<std::pair<uint64_t, uint64_t>>& out) {
    if (r.lo + off >= r.hi) return true;
    constexpr int64_t sep = static_cast<int64_t>(separator_of<Tok>());
    const uint64_t base = r.lo + off;
    const uint64_t G = (r.hi - base + unit - 1) / unit;
    auto key = [&](uint64_t j) { return key_at(sh, base + j * unit, d); };
    uint64_t blocks = 0;
    uint64_t j = 0;
    int64_t kj = key(0);
    while (j < G) {
        if (kj == sep) break;  // the separator block is last
        if (kj == kEndKey) {
            if (++j < G) kj = key(j);
            continue;
        }
        // gallop: key(a) == kj, find first b > j with key(b) != kj
        uint64_t a = j, step = 1, b;
        int64_t kb = kj;
        for (;;) {
            if (a + step >= G) { b = G; break; }
            int64_t k = key(a + step);
            if (k != kj) { b = a + step; kb = k; break; }
            a += step;
            step <<= 1;
        }
        while (b - a > 1) {
            uint64_t mid = a + (b - a) / 2;
            int64_t k = key(mid);
            if (k == kj) a = mid;
            else { b = mid; kb = k; }
        }
        if (++blocks > budget) return false;
        out.emplace_back(static_cast<uint64_t>(kj), (b - j) * unit);
        j = b;
        kj = kb;
    }
    return true;
}

inline void merge_counts(std::vector<std::pair<uint64_t, uint64_t>>& v) {
    std::sort(v.begin(), v.end());
    size_t w = 0;
    for (size_t i = 0; i < v.size(); ++i) {
        if (w > 0 && v[w - 1].first == v[i].first) v[w - 1].second += v[i].second;
        else v[w++] = v[i];
    }
    v.resize(w);
}

/// Next-token distribution of the context rr (depth d).
/// exact_mode: 0 = auto (exact if every shard has <= max_support distinct next
/// tokens, else sampled), 1 = always exact, 2 = always sampled (for tests).
/// Sampling: unit = smallest power of two with ceil(occ / unit) <= max_support;
/// per shard a uniform random offset o in [0, unit); every rank lo + o + j*unit
/// is read and its block weighted by unit: an unbiased estimate of each count.
/// Ranges this small (every shard) are read whole by small_ntd instead of galloped.
constexpr uint64_t kSmallRange = 32;

/// The exact distribution of a context whose ranges all hold <= kSmallRange
/// ranks: every key is read, the SA entries of all shards prefetched first and
/// then their text, so the cache misses of all shards and ranks overlap (the
/// galloping path reads them one dependent miss after another). Fills c and
/// out (unmerged); false if some shard has more than `budget` distinct tokens.
template <class Tok>
inline bool small_ntd(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d, uint64_t budget,
                      ContextStats& c, std::vector<std::pair<uint64_t, uint64_t>>& out) {
    constexpr int64_t sep = static_cast<int64_t>(separator_of<Tok>());
    uint64_t pos[kSmallRange];
    bool ok = true;
    for (size_t s = 0; s < rr.size(); ++s)
        for (uint64_t r = rr[s].lo; r < rr[s].hi; r += 8) e.shard(s).prefetch_rank(r);
    for (size_t s = 0; s < rr.size(); ++s) {
        const SAShard<Tok>& sh = e.shard(s);
        const uint64_t k = rr[s].size();
        for (uint64_t i = 0; i < k; ++i) {
            pos[i] = sh.suffix_at(rr[s].lo + i) + d;
            __builtin_prefetch(sh.tokens() + pos[i]);
        }
        c.occ += k;
        uint64_t blocks = 0;
        int64_t prev = kEndKey;
        for (uint64_t i = 0; i < k; ++i) {
            const int64_t key = pos[i] >= sh.n_positions() ? kEndKey : static_cast<int64_t>(sh.tokens()[pos[i]]);
            if (key == kEndKey || key == sep) { ++c.end; continue; }
            if (key != prev) { out.emplace_back(static_cast<uint64_t>(key), 0); ++blocks; prev = key; }
            ++out.back().second;
        }
        ok = ok && blocks <= budget;
    }
    return ok;
}

template <class Tok>
inline NtdOut ntd_in(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d, uint64_t max_support,
                     int exact_mode, uint64_t seed) {
    NtdOut o;
    if (max_support == 0) max_support = 1;
    if (d > 0 && exact_mode != 2 &&
        std::all_of(rr.begin(), rr.end(), [](const Range& r) { return r.size() <= kSmallRange; })) {
        ContextStats c;
        const bool ok = small_ntd(e, rr, d, exact_mode == 1 ? std::numeric_limits<uint64_t>::max() : max_support, c,
                                  o.counts);
        o.prompt_count = c.occ;
        o.end_count = c.end;
        o.suffix_len = d;
        if (ok || c.denom() == 0) {
            if (c.denom() == 0) o.counts.clear();
            if (rr.size() > 1) merge_counts(o.counts);
            return o;
        }
        o.counts.clear();  // too many distinct tokens for max_support: sampled below
    }
    ContextStats c = context_stats(e, rr, d);
    o.prompt_count = d == 0 ? c.denom() : c.occ;
    o.end_count = d == 0 ? 0 : c.end;
    o.suffix_len = d;
    if (c.denom() == 0) return o;
    bool ok = false;
    if (exact_mode != 2) {
        const uint64_t budget = exact_mode == 1 ? std::numeric_limits<uint64_t>::max() : max_support;
        ok = true;
        for (size_t s = 0; s < rr.size() && ok; ++s)
            ok = enumerate_blocks(e.shard(s), rr[s], d, 1, 0, budget, o.counts);
    }
    if (!ok) {
        o.counts.clear();
        uint64_t unit = 1;
        while ((c.occ + unit - 1) / unit > max_support) unit <<= 1;
        if (exact_mode == 2 && unit == 1) unit = 2;
        std::mt19937_64 rng(seed);
        for (size_t s = 0; s < rr.size(); ++s) {
            uint64_t off = std::uniform_int_distribution<uint64_t>(0, unit - 1)(rng);
            enumerate_blocks(e.shard(s), rr[s], d, unit, off, std::numeric_limits<uint64_t>::max(), o.counts);
        }
        o.unit = unit;
        o.approx = true;
    }
    if (rr.size() > 1) merge_counts(o.counts);
    return o;
}

template <class Tok>
inline NtdOut ntd(const Engine<Tok>& e, const Tok* q, size_t m, uint64_t max_support, int exact_mode,
                  uint64_t seed) {
    return ntd_in(e, e.find(q, m), m, max_support, exact_mode, seed);
}

template <class Tok>
inline NtdOut infgram_ntd(const Engine<Tok>& e, const Tok* q, size_t m, uint64_t max_support, int exact_mode,
                          uint64_t seed) {
    std::vector<Range> rr;
    size_t l = longest_suffix(e, q, m, m, rr);
    return ntd_in(e, rr, l, max_support, exact_mode, seed);
}

// ------------------------------------------------------- sequence scoring

struct ScoreOut {
    double* logprob;      // natural log of P(x[i] | context); -inf if 0, NaN if undefined
    int64_t* suffix_len;  // context length used
    int64_t* cont_count;  // count(context + x[i])
    int64_t* denom;       // occurrences of the context with a next token

    /// Writes position i's score: log(cont / den), -inf if cont == 0, NaN if den == 0.
    void set(size_t i, size_t d, uint64_t cont, uint64_t den) const {
        suffix_len[i] = static_cast<int64_t>(d);
        cont_count[i] = static_cast<int64_t>(cont);
        denom[i] = static_cast<int64_t>(den);
        if (den == 0) logprob[i] = std::numeric_limits<double>::quiet_NaN();
        else if (cont == 0) logprob[i] = -std::numeric_limits<double>::infinity();
        else logprob[i] = std::log(static_cast<double>(cont)) - std::log(static_cast<double>(den));
    }
};

template <class Tok>
inline void write_score(const Engine<Tok>& e, const std::vector<Range>& rr, size_t d, Tok t, std::vector<Range>& next,
                        const ScoreOut& o, size_t i) {
    ContextStats c = context_stats(e, rr, d);
    uint64_t cont = 0;
    next.resize(rr.size());
    for (size_t s = 0; s < rr.size(); ++s) {
        next[s] = refine(e.shard(s), rr[s], d, t);
        cont += next[s].size();
    }
    o.set(i, d, cont, c.denom());
}

/// ∞-gram scores of x[a, b) given the whole prefix x[0, i) of each position
/// (matching-statistics walk: extend the context by one token when the
/// extended context still has a next token, else gallop down).
template <class Tok>
inline void infgram_score_range(const Engine<Tok>& e, const Tok* x, size_t a, size_t b, const ScoreOut& o) {
    if (a >= b) return;
    std::vector<Range> rr, nxt;
    size_t l = longest_suffix(e, x, a, a, rr);
    for (size_t i = a; i < b; ++i) {
        write_score(e, rr, l, x[i], nxt, o, i);
        if (i + 1 == b) break;
        // context for i + 1: x[i - l, i + 1) if it still has a next token
        if (any_continuable(e, nxt, l + 1)) {
            ++l;
            rr.swap(nxt);
        } else {
            l = longest_suffix_down(e, x, i + 1, l, rr);
        }
    }
}

/// n-gram scores: context = the previous min(n - 1, i) tokens.
template <class Tok>
inline void ngram_score_range(const Engine<Tok>& e, const Tok* x, size_t a, size_t b, size_t n, const ScoreOut& o) {
    std::vector<Range> nxt;
    const size_t ctx = n == 0 ? 0 : n - 1;
    for (size_t i = a; i < b; ++i) {
        size_t l = std::min(ctx, i);
        std::vector<Range> rr = e.find(x + i - l, l);
        write_score(e, rr, l, x[i], nxt, o, i);
    }
}

/// Scores many sequences (flat tokens, offsets[0..nseq]) on `threads` threads;
/// long sequences are cut into chunks (each chunk re-derives its starting
/// context, so results do not depend on the chunking). n == 0: ∞-gram.
template <class Tok>
inline void score_many(const Engine<Tok>& e, const Tok* flat, const int64_t* offsets, size_t nseq, size_t n,
                       const ScoreOut& o, int threads) {
    constexpr size_t kChunk = 2048;
    std::vector<std::pair<size_t, size_t>> items;  // (seq, chunk start within seq)
    for (size_t s = 0; s < nseq; ++s) {
        size_t len = static_cast<size_t>(offsets[s + 1] - offsets[s]);
        for (size_t c = 0; c < len; c += kChunk) items.emplace_back(s, c);
    }
    parallel_for(items.size(), 1, threads, [&](size_t k) {
        const size_t s = items[k].first, c = items[k].second;
        const size_t base = static_cast<size_t>(offsets[s]);
        const size_t len = static_cast<size_t>(offsets[s + 1]) - base;
        const size_t end = std::min(len, c + kChunk);
        ScoreOut so{o.logprob + base, o.suffix_len + base, o.cont_count + base, o.denom + base};
        if (n == 0) infgram_score_range(e, flat + base, c, end, so);
        else ngram_score_range(e, flat + base, c, end, n, so);
    });
}

/// Many (prompt, next) pairs: n-gram (infgram = false) or ∞-gram probabilities.
template <class Tok>
inline void prob_many(const Engine<Tok>& e, const Tok* flat, const int64_t* offsets, const Tok* next, size_t nq,
                      bool infgram, ProbOut* out, int threads) {
    parallel_for(nq, 64, threads, [&](size_t i) {
        const Tok* q = flat + offsets[i];
        const size_t m = static_cast<size_t>(offsets[i + 1] - offsets[i]);
        out[i] = infgram ? infgram_prob(e, q, m, next[i]) : prob(e, q, m, next[i]);
    });
}

}  // namespace lm
}  // namespace infinigram

// cnf.hpp — boolean (CNF) search: an AND of OR-clauses of n-grams that must
// co-occur in one document within max_diff_tokens tokens.
//
// Semantics (docs/QUERIES.md):
//  * A clause's occurrences are the union of its n-grams' occurrences.
//  * The anchor clause is the clause with the fewest occurrences (ties: the
//    first). A match is an anchor occurrence at text position p such that every
//    other clause has an occurrence starting at q with |q - p| <= max_diff_tokens
//    in the same document. count = number of matching anchor occurrences.
//  * If the anchor clause has more than max_clause_freq occurrences, a uniform
//    random sample of max_clause_freq of them (without replacement, over all
//    shards) is tested and count = round(matches * total / sampled), approx =
//    true (an unbiased estimate). Non-anchor clauses are never subsampled: their
//    proximity test is exact, either against their sorted positions or, when
//    they are frequent, by scanning the text window around each anchor.
//  * A match's span is [min start, max end) over the anchor and, for each other
//    clause, its occurrence nearest to the anchor (ties: the earlier one; of
//    its n-grams starting there, the longest), whichever way it is found.
//
// Both backends (any ShardedEngine): the anchors' positions are suffix_at_many
// (SA reads; on an FM-index locates, < sa_sample LF steps, batched), the text
// around an anchor is the shard's tokens (suffix array) or an extraction of
// the window (FM-index). Per shard and clause the cheaper of "locate all the
// clause's occurrences" and "scan the window around each anchor" is chosen
// with the backend's costs (CnfCost); the answer is the same either way, and
// the same on both backends (same order, same sample for the same seed).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

#include "engine.hpp"

namespace infinigram {
namespace cnf {

struct CnfMatch {
    uint64_t shard, doc;            // doc: global index
    uint64_t start, end, anchor;    // token offsets within the document's text
};

struct CnfOut {
    uint64_t count = 0;
    bool approx = false;
    bool complete = true;     // false if stopped at `limit` matches (count then = matches found)
    uint64_t anchor_total = 0, anchor_tested = 0;
    std::vector<CnfMatch> matches;
};

template <class Tok>
using Clause = std::vector<std::vector<Tok>>;

namespace detail {

/// True for shards that keep their text (SAShard::tokens()).
template <class Shard, class = void>
struct has_tokens : std::false_type {};
template <class Shard>
struct has_tokens<Shard, std::void_t<decltype(std::declval<const Shard&>().tokens())>> : std::true_type {};

/// Estimated costs (ns, measured on 100 MB of English bytes on the 2-core
/// development VM) that choose between the two ways to test a clause.
struct CnfCost {
    double per_token_term;  // comparing one window position with one n-gram
    double per_window_token;  // getting one token of a window's text
    double per_window;        // getting a window's text at all
    double per_occurrence;    // the position of one occurrence (sorted afterwards)
};

template <class Shard>
CnfCost cnf_cost(const Shard& sh) {
    if constexpr (has_tokens<Shard>::value) {
        (void)sh;
        return CnfCost{3.0, 0.0, 0.0, 80.0};  // text and suffix array in memory
    } else {
        // FM-index: extraction ~0.2 us per token after ~isa_sample / 2 LF steps
        // to its start; a locate ~sa_sample / 2 LF steps of ~0.55 us
        return CnfCost{3.0, 200.0, 100.0 * static_cast<double>(sh.isa_sample()),
                       80.0 + 275.0 * static_cast<double>(sh.sa_sample())};
    }
}

/// Tokens [lo, hi) of a shard: a pointer into its text (suffix array) or
/// into `buf`, filled by extraction (FM-index).
template <class Shard>
const typename Shard::Token* text_window(const Shard& sh, uint64_t lo, uint64_t hi,
                                         std::vector<typename Shard::Token>& buf) {
    if constexpr (has_tokens<Shard>::value) {
        (void)hi;
        (void)buf;
        return sh.tokens() + lo;
    } else {
        buf.resize(hi > lo ? hi - lo : 1);
        if (hi > lo) sh.extract(lo, hi, buf.data());
        return buf.data();
    }
}

/// Sorted (pos, len) occurrences of a clause in one shard.
template <class Shard, class Tok>
std::vector<std::pair<uint64_t, uint32_t>> clause_positions(const Shard& sh, const Clause<Tok>& c,
                                                            const std::vector<Range>& ranges) {
    std::vector<std::pair<uint64_t, uint32_t>> v;
    size_t tot = 0;
    for (const auto& r : ranges) tot += r.size();
    v.reserve(tot);
    std::vector<uint64_t> ranks, pos;
    for (size_t t = 0; t < c.size(); ++t) {
        ranks.resize(ranges[t].size());
        pos.resize(ranks.size());
        for (uint64_t k = 0; k < ranks.size(); ++k) ranks[k] = ranges[t].lo + k;
        sh.suffix_at_many(ranks.data(), ranks.size(), pos.data());
        for (uint64_t p : pos) v.emplace_back(p, static_cast<uint32_t>(c[t].size()));
    }
    std::sort(v.begin(), v.end());
    return v;
}

/// Nearest occurrence start q of clause c to p in [wlo, whi] (positions), with
/// the length of the longest of c's n-grams there; -1 if none.
/// W holds the text from position W0 on, through doc_end or whi + the longest n-gram.
template <class Tok>
int64_t nearest_scan(const Tok* W, uint64_t W0, const Clause<Tok>& c, uint64_t p, uint64_t wlo, uint64_t whi,
                     uint64_t doc_end, uint32_t& len_out) {
    // visit p, p-1, p+1, p-2, p+2, ... : the first hit is the nearest (earlier on ties)
    const uint64_t span = std::max(p - wlo, whi - p);
    for (uint64_t dist = 0; dist <= span; ++dist) {
        for (int side = 0; side < 2; ++side) {
            if (dist == 0 && side == 1) break;
            uint64_t q;
            if (side == 0) { if (p < wlo + dist) continue; q = p - dist; }
            else { q = p + dist; if (q > whi) continue; }
            size_t longest = 0;  // of the n-grams starting at q
            for (const auto& term : c) {
                if (q + term.size() > doc_end || term.size() <= longest) continue;
                if (std::equal(term.begin(), term.end(), W + (q - W0))) longest = term.size();
            }
            if (longest > 0) { len_out = static_cast<uint32_t>(longest); return static_cast<int64_t>(q); }
        }
    }
    return -1;
}

}  // namespace detail

/// Evaluates a CNF query on either backend. limit: store at most this many
/// matches; stop_at_limit: stop scanning anchors once `limit` matches are
/// found (count is then partial).
template <class Shard, class Tok = typename Shard::Token>
CnfOut evaluate(const ShardedEngine<Shard>& e, const std::vector<Clause<Tok>>& cnf, uint64_t max_clause_freq,
                uint64_t max_diff, uint64_t limit, bool stop_at_limit, uint64_t seed) {
    CnfOut out;
    const size_t S = e.n_shards(), C = cnf.size();
    if (C == 0) return out;
    // ranges[c][s][t]
    std::vector<std::vector<std::vector<Range>>> ranges(C, std::vector<std::vector<Range>>(S));
    std::vector<uint64_t> ccount(C, 0);
    for (size_t c = 0; c < C; ++c) {
        for (const auto& term : cnf[c]) {
            std::vector<Range> r = e.find(term.data(), term.size());
            for (size_t s = 0; s < S; ++s) {
                ranges[c][s].push_back(r[s]);
                ccount[c] += r[s].size();
            }
        }
    }
    size_t a = 0;
    for (size_t c = 1; c < C; ++c)
        if (ccount[c] < ccount[a]) a = c;
    const uint64_t A = ccount[a];
    out.anchor_total = A;
    if (A == 0) return out;

    // anchor occurrence index i in [0, A): shard-major, then term, then rank
    std::vector<uint64_t> picks;  // sorted indices to test (empty = all)
    const bool sampled = max_clause_freq > 0 && A > max_clause_freq;
    if (sampled) {
        std::mt19937_64 rng(seed);
        const uint64_t K = max_clause_freq;
        if (K * 2 > A) {  // dense: partial shuffle of all indices
            std::vector<uint64_t> all(A);
            for (uint64_t i = 0; i < A; ++i) all[i] = i;
            for (uint64_t i = 0; i < K; ++i) std::swap(all[i], all[i + std::uniform_int_distribution<uint64_t>(0, A - 1 - i)(rng)]);
            picks.assign(all.begin(), all.begin() + static_cast<ptrdiff_t>(K));
        } else {  // Floyd's algorithm
            std::unordered_set<uint64_t> chosen;
            chosen.reserve(K * 2);
            for (uint64_t j = A - K; j < A; ++j) {
                uint64_t t = std::uniform_int_distribution<uint64_t>(0, j)(rng);
                if (!chosen.insert(t).second) chosen.insert(j);
            }
            picks.assign(chosen.begin(), chosen.end());
        }
        std::sort(picks.begin(), picks.end());
    }
    const uint64_t tested = sampled ? picks.size() : A;
    out.anchor_tested = tested;
    out.approx = sampled;

    uint64_t matches = 0;
    uint64_t base_index = 0;  // anchor index of the first occurrence of the current shard
    size_t pick_i = 0;
    bool stopped = false;
    for (size_t s = 0; s < S && !stopped; ++s) {
        const Shard& sh = e.shard(s);
        const detail::CnfCost cost = detail::cnf_cost(sh);
        uint64_t shard_total = 0;
        for (const auto& r : ranges[a][s]) shard_total += r.size();
        if (shard_total == 0) continue;
        // anchors of this shard to test
        uint64_t n_here = shard_total;
        if (sampled) {
            size_t j = pick_i;
            while (j < picks.size() && picks[j] < base_index + shard_total) ++j;
            n_here = j - pick_i;
        }
        if (n_here == 0) { base_index += shard_total; continue; }
        // per non-anchor clause: positions or scan
        std::vector<int> use_scan(C, 0);
        std::vector<std::vector<std::pair<uint64_t, uint32_t>>> pos(C);
        uint64_t scan_reach = 0;  // the longest n-gram of a scanned clause
        for (size_t c = 0; c < C; ++c) {
            if (c == a) continue;
            uint64_t cc = 0, longest = 0;
            for (const auto& r : ranges[c][s]) cc += r.size();
            for (const auto& term : cnf[c]) longest = std::max<uint64_t>(longest, term.size());
            const double win = static_cast<double>(2 * max_diff + 1);
            const double scan_cost =
                static_cast<double>(n_here) *
                (win * static_cast<double>(cnf[c].size()) * cost.per_token_term +
                 (win + static_cast<double>(longest)) * cost.per_window_token + cost.per_window);
            const double pos_cost = static_cast<double>(cc) * cost.per_occurrence;
            if (cc > 0 && scan_cost < pos_cost) {
                use_scan[c] = 1;
                scan_reach = std::max(scan_reach, longest);
            } else {
                pos[c] = detail::clause_positions(sh, cnf[c], ranges[c][s]);
            }
        }
        std::vector<Tok> window_buf;
        auto test_anchor = [&](uint64_t p, uint32_t alen) {
            auto d = sh.doc_of(p);
            auto span = sh.doc_span(d.first);
            const uint64_t dstart = span.first, dend = span.second;
            if (p < dstart || p >= dend) return;  // damaged doc offsets (never on an intact index)
            const uint64_t wlo = std::max<uint64_t>(dstart, p >= max_diff ? p - max_diff : 0);
            const uint64_t whi = std::min<uint64_t>(dend == 0 ? 0 : dend - 1, p + max_diff);
            uint64_t lo = p, hi = p + alen;
            const Tok* W = nullptr;  // the window's text, fetched once for every scanned clause
            for (size_t c = 0; c < C; ++c) {
                if (c == a) continue;
                int64_t q = -1;
                uint32_t len = 0;
                if (use_scan[c]) {
                    if (!W) W = detail::text_window(sh, wlo, std::min<uint64_t>(dend, whi + scan_reach), window_buf);
                    q = detail::nearest_scan(W, wlo, cnf[c], p, wlo, whi, dend, len);
                } else {
                    const auto& v = pos[c];
                    auto it = std::lower_bound(v.begin(), v.end(), std::make_pair(wlo, uint32_t(0)));
                    uint64_t best = UINT64_MAX;
                    for (; it != v.end() && it->first <= whi; ++it) {
                        uint64_t dist = it->first > p ? it->first - p : p - it->first;
                        if (dist < best) { best = dist; q = static_cast<int64_t>(it->first); len = it->second; }
                        else if (static_cast<int64_t>(it->first) == q) len = it->second;  // same start: longer (sorted)
                        else if (it->first > p) break;
                    }
                }
                if (q < 0) return;
                lo = std::min<uint64_t>(lo, static_cast<uint64_t>(q));
                hi = std::max<uint64_t>(hi, static_cast<uint64_t>(q) + len);
            }
            ++matches;
            if (out.matches.size() < limit)
                out.matches.push_back(CnfMatch{s, e.doc_base(s) + d.first, lo - dstart, hi - dstart, p - dstart});
            if (stop_at_limit && out.matches.size() >= limit) stopped = true;
        };
        // walk this shard's anchor occurrences (index = base_index + local),
        // their positions looked up kBatch at a time (an FM-index batches the locates)
        constexpr size_t kBatch = 256;
        std::vector<uint64_t> ranks, at;
        auto flush = [&](uint32_t alen) {
            at.resize(ranks.size());
            sh.suffix_at_many(ranks.data(), ranks.size(), at.data());
            for (size_t k = 0; k < at.size() && !stopped; ++k) test_anchor(at[k], alen);
            ranks.clear();
        };
        uint64_t local = 0;
        for (size_t t = 0; t < cnf[a].size() && !stopped; ++t) {
            const Range r = ranges[a][s][t];
            const uint32_t alen = static_cast<uint32_t>(cnf[a][t].size());
            if (!sampled) {
                for (uint64_t k = r.lo; k < r.hi && !stopped; ++k) {
                    ranks.push_back(k);
                    if (ranks.size() == kBatch) flush(alen);
                }
            } else {
                while (pick_i < picks.size() && !stopped) {
                    uint64_t g = picks[pick_i];
                    if (g >= base_index + local + r.size()) break;
                    ranks.push_back(r.lo + (g - base_index - local));
                    if (ranks.size() == kBatch) flush(alen);
                    ++pick_i;
                }
            }
            if (!ranks.empty() && !stopped) flush(alen);
            ranks.clear();
            local += r.size();
        }
        base_index += shard_total;
    }
    out.complete = !stopped;
    if (sampled) out.count = static_cast<uint64_t>(std::llround(static_cast<double>(matches) * static_cast<double>(A) / static_cast<double>(tested)));
    else out.count = matches;
    return out;
}

}  // namespace cnf
}  // namespace infinigram

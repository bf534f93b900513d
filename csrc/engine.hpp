// engine.hpp — all shards of one index, answered together (any backend).
//
// Queries arrive as 64-bit ids, are checked against the token range once,
// narrowed to the shard token type, and answered on every shard; counts sum.
// Batched calls split work across threads by an atomic cursor (dynamic
// scheduling), so a busy core slows them down only by its share.
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <vector>

#include "sa_index.hpp"

namespace infinigram {

/// Number of worker threads for `requested` (0 = all hardware threads).
inline int resolve_threads(int requested) {
    if (requested > 0) return requested;
    unsigned h = std::thread::hardware_concurrency();
    return h == 0 ? 1 : static_cast<int>(h);
}

/// True when Shard offers the lock-step batched search (SAShard::find_group).
/// Calls f(i) for every i in [0, n) on up to `threads` threads (0 = all
/// cores), which take `grain` consecutive indices at a time from an atomic
/// cursor (dynamic scheduling: a busy core only slows its own share).
template <class F>
void parallel_for(size_t n, size_t grain, int threads, F&& f) {
    if (grain == 0) grain = 1;
    const size_t chunks = (n + grain - 1) / grain;
    const int nt = static_cast<int>(std::max<size_t>(1, std::min<size_t>(resolve_threads(threads), chunks)));
    std::atomic<size_t> cursor{0};
    auto work = [&] {
        for (size_t s; (s = cursor.fetch_add(grain)) < n;)
            for (size_t i = s, e = std::min(n, s + grain); i < e; ++i) f(i);
    };
    if (nt <= 1) { work(); return; }
    std::vector<std::thread> pool;
    for (int t = 1; t < nt; ++t) pool.emplace_back(work);
    work();
    for (auto& th : pool) th.join();
}

template <class Shard, class = void>
struct has_find_group : std::false_type {};
template <class Shard>
struct has_find_group<Shard, std::void_t<decltype(&Shard::find_group)>> : std::true_type {};
/// True when Shard can search one query in several shards in lock step (SAShard::find_multi).
template <class Shard, class = void>
struct has_find_multi : std::false_type {};
template <class Shard>
struct has_find_multi<Shard, std::void_t<decltype(&Shard::find_multi)>> : std::true_type {};

/// The shards of one index, any backend: a Shard type provides Token, Spec,
/// a constructor from its Spec, find(q, m) -> Range, suffix_at(rank),
/// doc_of(pos), n_docs(), n_tokens() (SAShard in sa_index.hpp, FMShard in
/// fm_index.hpp). Everything that sums or spans shards lives here once.
template <class Shard>
class ShardedEngine {
public:
    using Tok = typename Shard::Token;

    explicit ShardedEngine(const std::vector<typename Shard::Spec>& specs) {
        uint64_t base = 0;
        for (const auto& s : specs) {
            shards_.push_back(std::make_unique<Shard>(s));
            doc_base_.push_back(base);
            base += shards_.back()->n_docs();
            n_tokens_ += shards_.back()->n_tokens();
        }
        doc_base_.push_back(base);
    }

    size_t n_shards() const { return shards_.size(); }
    uint64_t n_docs() const { return doc_base_.back(); }
    uint64_t n_tokens() const { return n_tokens_; }
    const Shard& shard(size_t s) const { return *shards_.at(s); }
    uint64_t doc_base(size_t s) const { return doc_base_.at(s); }

    /// Converts ids to tokens; throws std::invalid_argument for ids outside [0, separator).
    static void convert(const int64_t* ids, size_t m, std::vector<Tok>& out) {
        out.resize(m);
        for (size_t i = 0; i < m; ++i) {
            if (ids[i] < 0 || static_cast<uint64_t>(ids[i]) >= static_cast<uint64_t>(separator_of<Tok>()))
                throw std::invalid_argument("token id " + std::to_string(ids[i]) + " is outside [0, " +
                                            std::to_string(static_cast<uint64_t>(separator_of<Tok>())) +
                                            ") for this index's token width");
            out[i] = static_cast<Tok>(ids[i]);
        }
    }

    /// Occurrences of q summed over shards; the empty query counts real tokens.
    uint64_t count(const Tok* q, size_t m) const {
        if (m == 0) return n_tokens_;
        uint64_t c = 0;
        for (const Range& r : find(q, m)) c += r.size();
        return c;
    }

    /// The SA range of q in every shard (searched in lock step across shards
    /// when the backend supports it).
    std::vector<Range> find(const Tok* q, size_t m) const {
        std::vector<Range> r(shards_.size());
        if constexpr (has_find_multi<Shard>::value) {
            constexpr size_t G = Shard::kMaxGroup;
            const Shard* ptrs[G];
            for (size_t s0 = 0; s0 < shards_.size(); s0 += G) {
                const size_t S = std::min(G, shards_.size() - s0);
                for (size_t k = 0; k < S; ++k) ptrs[k] = shards_[s0 + k].get();
                Shard::find_multi(ptrs, S, q, m, r.data() + s0);
            }
        } else {
            for (size_t s = 0; s < shards_.size(); ++s) r[s] = shards_[s]->find(q, m);
        }
        return r;
    }

    /// counts[i] = count(flat[offsets[i], offsets[i+1])). Ids must be valid.
    /// Threads take chunks from an atomic cursor; shards with a lock-step
    /// group search answer 16 queries at a time.
    void count_many(const int64_t* flat, const int64_t* offsets, size_t nq, uint64_t* counts, int threads) const {
        const int nt = std::max(1, std::min<int>(resolve_threads(threads), static_cast<int>(nq / 64 + 1)));
        std::atomic<size_t> cursor{0};
        constexpr size_t kGrain = 256;
        auto work = [&] {
            constexpr size_t G = 16;
            std::vector<Tok> buf;
            size_t start[G], ms[G];
            const Tok* qs[G];
            Range part[G];
            for (;;) {
                const size_t s = cursor.fetch_add(kGrain);
                if (s >= nq) break;
                const size_t e = std::min(nq, s + kGrain);
                for (size_t g0 = s; g0 < e; g0 += G) {
                    const size_t g = std::min(G, e - g0);
                    buf.clear();
                    for (size_t k = 0; k < g; ++k) {
                        const size_t a = static_cast<size_t>(offsets[g0 + k]);
                        const size_t b = static_cast<size_t>(offsets[g0 + k + 1]);
                        start[k] = buf.size();
                        ms[k] = b - a;
                        for (size_t x = a; x < b; ++x) buf.push_back(static_cast<Tok>(flat[x]));
                    }
                    for (size_t k = 0; k < g; ++k) { qs[k] = buf.data() + start[k]; counts[g0 + k] = 0; }
                    for (const auto& sh : shards_) {
                        if constexpr (has_find_group<Shard>::value) {
                            static_assert(Shard::kMaxGroup >= G, "group size");
                            sh->find_group(qs, ms, g, part);
                        } else {
                            for (size_t k = 0; k < g; ++k) part[k] = ms[k] ? sh->find(qs[k], ms[k]) : Range{};
                        }
                        for (size_t k = 0; k < g; ++k) counts[g0 + k] += part[k].size();
                    }
                    for (size_t k = 0; k < g; ++k)
                        if (ms[k] == 0) counts[g0 + k] = n_tokens_;  // empty query: real tokens
                }
            }
        };
        if (nt == 1) { work(); return; }
        std::vector<std::thread> pool;
        for (int t = 1; t < nt; ++t) pool.emplace_back(work);
        work();
        for (auto& th : pool) th.join();
    }

    /// Up to `limit` occurrences (global doc index, offset in doc text), in
    /// shard order then SA order.
    void locate(const Tok* q, size_t m, uint64_t limit, std::vector<uint64_t>& docs,
                std::vector<uint64_t>& offs) const {
        std::vector<uint64_t> ranks, pos;
        for (size_t s = 0; s < shards_.size() && docs.size() < limit; ++s) {
            const Range r = m == 0 ? Range{0, 0} : shards_[s]->find(q, m);
            const uint64_t take = std::min<uint64_t>(r.size(), limit - docs.size());
            ranks.resize(take);
            pos.resize(take);
            for (uint64_t k = 0; k < take; ++k) ranks[k] = r.lo + k;
            shards_[s]->suffix_at_many(ranks.data(), take, pos.data());  // (FM: locates batched)
            for (uint64_t k = 0; k < take; ++k) {
                const auto d = shards_[s]->doc_of(pos[k]);
                docs.push_back(doc_base_[s] + d.first);
                offs.push_back(d.second);
            }
        }
    }

    /// (shard, local doc) of a global document index.
    std::pair<size_t, uint64_t> resolve_doc(uint64_t doc) const {
        if (doc >= n_docs())
            throw std::out_of_range("document index " + std::to_string(doc) + " out of range [0, " +
                                    std::to_string(n_docs()) + ")");
        const size_t s = static_cast<size_t>(std::upper_bound(doc_base_.begin(), doc_base_.end(), doc) -
                                             doc_base_.begin()) - 1;  // last shard whose base <= doc
        return {s, doc - doc_base_[s]};
    }

private:
    std::vector<std::unique_ptr<Shard>> shards_;
    std::vector<uint64_t> doc_base_;
    uint64_t n_tokens_ = 0;
};

/// The suffix-array engine.
template <class Tok>
using Engine = ShardedEngine<SAShard<Tok>>;

}  // namespace infinigram

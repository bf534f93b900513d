// drafter.hpp — draft tokens for speculative decoding.
//
// Three sources of continuations, combined per proposal:
//
//  * the live request (prompt + accepted tokens): a suffix automaton (SAM)
//    built online, O(1) amortised per token. Every state keeps its number of
//    end positions (occurrence count, maintained along the suffix-link path,
//    capped at kCountWalk steps: exact except in long periodic runs) and its
//    most recent end position. The longest suffix of the context that also
//    occurred earlier is link(last), found in O(1); its continuations are the
//    state's transitions, weighted by their occurrence counts.
//  * previous requests' outputs (online adaptation): one more SAM over their
//    concatenation (boundaries are kBoundary, which never matches), and per
//    request a matching-statistics cursor (state, length) advanced in O(1)
//    amortised per token.
//  * the static corpus (an Engine<Tok>): per request and per shard, the SA
//    range of the longest suffix of the context found in that shard. A new
//    token narrows the range by two binary searches inside it (the token at
//    offset L is sorted within the range); only when the extended suffix does
//    not occur does it fall back to fresh searches, galloping on the suffix
//    length (O(log L) probes). So a proposal never costs k engine queries.
//
// A proposal walks a virtual trie of continuations whose children at each
// node mix the sources that still match there: p(c) = sum_s w_s p_s(c) /
// sum_s w_s, where w_s starts at (match length)^2 (context sources boosted)
// and is multiplied by p_s of each token taken (a posterior over sources),
// and p_s(c) = count(c) / (N + alpha / (1 + L/tau)) discounts sparse
// evidence less the longer the match. Chains take the best child until k
// tokens or the path probability falls below min_prob; trees expand best
// first by path probability up to a node budget.
//
// Corpus children at a node with a large range are found from kSamples
// evenly spaced ranks (every token with >= 1/kSamples of the occurrences is
// among them), then their exact sub-ranges by binary search between samples.
//
// Not thread-safe: one Drafter per thread (the Engine it reads is shared).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <queue>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "engine.hpp"

namespace infinigram {
namespace draft {

using Id = uint32_t;
constexpr Id kBoundary = 0xFFFFFFFFu;   // never a real token: separates histories
constexpr uint32_t kNone = 0xFFFFFFFFu;
constexpr int kCountWalk = 256;          // max suffix-link steps of the count update
constexpr int kSamples = 16;             // corpus children: evenly spaced samples
constexpr uint64_t kScanAll = 32;        // ranges this small are scanned in full

// ----------------------------------------------------------------- hash map
/// Open addressing (linear probing) map u64 -> u32; keys never equal ~0.
class FlatMap {
public:
    FlatMap() { rehash(64); }
    uint32_t get(uint64_t key) const {
        size_t i = hash(key) & mask_;
        for (;;) {
            const Slot& s = slots_[i];
            if (s.key == key) return s.val;
            if (s.key == kEmpty) return kNone;
            i = (i + 1) & mask_;
        }
    }
    void set(uint64_t key, uint32_t val) {
        if ((size_ + 1) * 2 > slots_.size()) rehash(slots_.size() * 2);
        size_t i = hash(key) & mask_;
        for (;;) {
            Slot& s = slots_[i];
            if (s.key == key) { s.val = val; return; }
            if (s.key == kEmpty) { s.key = key; s.val = val; ++size_; return; }
            i = (i + 1) & mask_;
        }
    }
    void clear() { rehash(64); }
    size_t memory() const { return slots_.size() * sizeof(Slot); }

private:
    static constexpr uint64_t kEmpty = ~uint64_t(0);
    struct Slot { uint64_t key; uint32_t val; };
    static uint64_t hash(uint64_t k) {
        k ^= k >> 33; k *= 0xff51afd7ed558ccdULL; k ^= k >> 33; k *= 0xc4ceb9fe1a85ec53ULL; k ^= k >> 33;
        return k;
    }
    void rehash(size_t cap) {
        std::vector<Slot> old;
        old.swap(slots_);
        slots_.assign(cap, Slot{kEmpty, 0});
        mask_ = cap - 1;
        size_ = 0;
        for (const Slot& s : old)
            if (s.key != kEmpty) set(s.key, s.val);
    }
    std::vector<Slot> slots_;
    size_t mask_ = 0, size_ = 0;
};

// --------------------------------------------------------- suffix automaton
/// Online suffix automaton over token ids with occurrence counts.
class SuffixAutomaton {
public:
    struct State {
        uint32_t len, link, cnt, last, head;  // head: first edge (kNone = none)
    };
    struct Edge { Id tok; uint32_t to, next; };

    SuffixAutomaton() { clear(); }

    void clear() {
        st_.clear();
        ed_.clear();
        map_.clear();
        st_.push_back(State{0, kNone, 0, 0, kNone});
        last_ = 0;
        n_ = 0;
    }

    size_t size() const { return n_; }        // tokens added
    uint32_t last() const { return last_; }
    const State& state(uint32_t s) const { return st_[s]; }
    const std::vector<Edge>& edges() const { return ed_; }
    size_t memory() const { return st_.capacity() * sizeof(State) + ed_.capacity() * sizeof(Edge) + map_.memory(); }

    uint32_t next(uint32_t s, Id c) const {
        uint32_t e = map_.get(key(s, c));
        return e == kNone ? kNone : ed_[e].to;
    }

    void push(Id c) {
        const uint32_t pos = static_cast<uint32_t>(n_++);
        const uint32_t cur = static_cast<uint32_t>(st_.size());
        st_.push_back(State{st_[last_].len + 1, 0, 0, pos, kNone});
        uint32_t p = last_;
        while (p != kNone && map_.get(key(p, c)) == kNone) {
            add_edge(p, c, cur);
            p = st_[p].link;
        }
        if (p != kNone) {
            uint32_t e = map_.get(key(p, c));
            uint32_t q = ed_[e].to;
            if (st_[p].len + 1 == st_[q].len) {
                st_[cur].link = q;
            } else {
                const uint32_t cl = static_cast<uint32_t>(st_.size());
                State qs = st_[q];
                st_.push_back(State{st_[p].len + 1, qs.link, qs.cnt, qs.last, kNone});
                for (uint32_t f = qs.head; f != kNone; f = ed_[f].next) add_edge(cl, ed_[f].tok, ed_[f].to);
                while (p != kNone) {
                    uint32_t e2 = map_.get(key(p, c));
                    if (e2 == kNone || ed_[e2].to != q) break;
                    ed_[e2].to = cl;
                    p = st_[p].link;
                }
                st_[q].link = cl;
                st_[cur].link = cl;
            }
        }
        last_ = cur;
        // the new end position belongs to every state on the suffix path
        uint32_t v = cur;
        for (int i = 0; v != kNone && v != 0 && i < kCountWalk; ++i, v = st_[v].link) {
            st_[v].cnt += 1;
            st_[v].last = pos;
        }
    }

    /// Advances a matching-statistics cursor (state, length) by token c.
    void advance(uint32_t& s, uint32_t& len, Id c) const {
        if (c == kBoundary) { s = 0; len = 0; return; }
        for (;;) {
            uint32_t t = next(s, c);
            if (t != kNone) { s = t; ++len; return; }
            if (s == 0) { len = 0; return; }
            s = st_[s].link;
            len = st_[s].len;
        }
    }

private:
    static uint64_t key(uint32_t s, Id c) { return (uint64_t(s) << 32) | c; }
    void add_edge(uint32_t s, Id c, uint32_t to) {
        uint32_t e = static_cast<uint32_t>(ed_.size());
        ed_.push_back(Edge{c, to, st_[s].head});
        st_[s].head = e;
        map_.set(key(s, c), e);
    }
    std::vector<State> st_;
    std::vector<Edge> ed_;
    FlatMap map_;
    uint32_t last_ = 0;
    size_t n_ = 0;
};

// ---------------------------------------------------------------- settings
struct Config {
    double alpha = 1.0;          // discount of sparse evidence: p = cnt / (N + alpha / (1 + L / tau))
    double tau = 4.0;
    double context_boost = 2.0;  // weight multiplier of the live-context source
    double history_boost = 1.0;  // weight multiplier of the previous-outputs source
    double corpus_boost = 1.0;
    double power = 2.0;          // source weight = boost * L^power
    uint32_t min_match = 1;      // shorter matches are ignored (per source)
    bool use_context = true, use_history = true, use_corpus = true;
    size_t max_history = size_t(1) << 22;  // tokens kept for online adaptation
    uint32_t max_children = 8;   // children considered per node
};

/// A proposal: tokens in BFS-ish order; parents[i] < i (-1 = child of the root);
/// probs[i] = estimated probability that the path to node i is accepted.
struct Proposal {
    std::vector<int64_t> tokens;
    std::vector<int32_t> parents;
    std::vector<double> probs;
    uint32_t match_context = 0, match_history = 0, match_corpus = 0;  // root match lengths
};

// ----------------------------------------------------------------- drafter
template <class Tok>
class Drafter {
public:
    Drafter(const Engine<Tok>* engine, Config cfg) : eng_(engine), cfg_(cfg) {}

    Config& config() { return cfg_; }
    const Config& config() const { return cfg_; }
    bool has_corpus() const { return eng_ != nullptr; }

    // ------------------------------------------------------- request state
    void start(int64_t rid, const std::vector<int64_t>& prompt, const std::vector<int64_t>* corpus_prompt) {
        Request& r = reqs_[rid];
        r = Request();
        r.sam.clear();
        r.prompt_len = prompt.size();
        if (eng_) r.shards.assign(eng_->n_shards(), ShardMatch());
        push_ids(r, prompt.data(), prompt.size());
        if (eng_) {
            const std::vector<int64_t>& cp = corpus_prompt ? *corpus_prompt : prompt;
            push_corpus(r, cp.data(), cp.size());
        }
    }

    void observe(int64_t rid, const std::vector<int64_t>& ids, const std::vector<int64_t>* corpus_ids) {
        Request& r = get(rid);
        push_ids(r, ids.data(), ids.size());
        if (eng_) {
            const std::vector<int64_t>& cp = corpus_ids ? *corpus_ids : ids;
            push_corpus(r, cp.data(), cp.size());
        }
    }

    /// Restarts only the corpus track of a request with new corpus tokens
    /// (cross-vocabulary indexes whose tokenization is not incremental).
    void reset_corpus(int64_t rid, const std::vector<int64_t>& corpus_ids) {
        Request& r = get(rid);
        if (!eng_) return;
        r.cctx.clear();
        r.shards.assign(eng_->n_shards(), ShardMatch());
        push_corpus(r, corpus_ids.data(), corpus_ids.size());
    }

    /// Length of the request's context if `ids` extends it (ids starts with
    /// it), else -1.
    int64_t extends(int64_t rid, const int64_t* ids, size_t n) const {
        auto it = reqs_.find(rid);
        if (it == reqs_.end()) return -1;
        const std::vector<Id>& c = it->second.ctx;
        if (n < c.size()) return -1;
        for (size_t i = 0; i < c.size(); ++i)
            if (static_cast<int64_t>(c[i]) != ids[i]) return -1;
        return static_cast<int64_t>(c.size());
    }

    /// Ends a request; learn = 0 nothing, 1 its generated tokens, 2 prompt too.
    void stop(int64_t rid, int learn) {
        auto it = reqs_.find(rid);
        if (it == reqs_.end()) return;
        const Request& r = it->second;
        if (learn > 0) {
            size_t a = learn >= 2 ? 0 : r.prompt_len;
            if (a < r.ctx.size()) add_history(r.ctx.data() + a, r.ctx.size() - a);
        }
        reqs_.erase(it);
    }

    void add_history(const Id* ids, size_t n) {
        if (n == 0) return;
        if (hist_.size() + n + 1 > cfg_.max_history) {
            // keep the newest half (a SAM cannot forget): rebuild
            std::vector<Id> keep(hist_tokens_.begin() + static_cast<std::ptrdiff_t>(hist_tokens_.size() / 2),
                                 hist_tokens_.end());
            hist_.clear();
            hist_tokens_.clear();
            for (Id t : keep) { hist_.push(t); hist_tokens_.push_back(t); }
        }
        for (size_t i = 0; i < n; ++i) { hist_.push(ids[i]); hist_tokens_.push_back(ids[i]); }
        hist_.push(kBoundary);
        hist_tokens_.push_back(kBoundary);
        ++hist_gen_;
    }

    void clear_history() { hist_.clear(); hist_tokens_.clear(); ++hist_gen_; }
    size_t history_size() const { return hist_.size(); }
    size_t n_requests() const { return reqs_.size(); }
    bool has_request(int64_t rid) const { return reqs_.count(rid) != 0; }
    const std::vector<Id>& context(int64_t rid) const { return get_c(rid).ctx; }
    size_t memory(int64_t rid) const { return get_c(rid).sam.memory(); }

    /// Root match lengths (context, history, corpus).
    std::tuple<uint32_t, uint32_t, uint32_t> match_lengths(int64_t rid) {
        Request& r = get(rid);
        sync_history(r);
        uint32_t mc = 0;
        if (r.sam.size() > 0) { uint32_t m = r.sam.state(r.sam.last()).link; mc = m == kNone ? 0 : r.sam.state(m).len; }
        uint32_t mk = 0;
        for (const ShardMatch& s : r.shards) mk = std::max(mk, s.len);
        return {mc, r.hlen, mk};
    }

    // ------------------------------------------------------------ proposals
    /// Chain of up to `budget` tokens (width 1) or tree of up to `budget` nodes.
    /// sources: bit 0 context, 1 history, 2 corpus.
    void propose(int64_t rid, size_t budget, bool chain, double min_prob, int sources, Proposal& out) {
        Request& r = get(rid);
        cur_req_ = &r;
        sync_history(r);
        out.tokens.clear();
        out.parents.clear();
        out.probs.clear();
        out.match_context = out.match_history = out.match_corpus = 0;
        nodes_.clear();
        srcs_.clear();
        ranges_.clear();
        if (budget == 0) return;

        Node root;
        root.src_begin = 0;
        if ((sources & 1) && cfg_.use_context && r.sam.size() > 0) {
            uint32_t m = r.sam.state(r.sam.last()).link;
            if (m != kNone && m != 0 && r.sam.state(m).len >= cfg_.min_match) {
                uint32_t L = r.sam.state(m).len;
                out.match_context = L;
                srcs_.push_back(Src{kCtx, m, 0, L, cfg_.context_boost * std::pow(double(L), cfg_.power)});
            }
        }
        if ((sources & 2) && cfg_.use_history && hist_.size() > 0 && r.hstate != 0 && r.hlen >= cfg_.min_match) {
            out.match_history = r.hlen;
            srcs_.push_back(Src{kHist, r.hstate, 0, r.hlen, cfg_.history_boost * std::pow(double(r.hlen), cfg_.power)});
        }
        if ((sources & 4) && cfg_.use_corpus && eng_) {
            uint32_t L = 0;
            for (const ShardMatch& s : r.shards) L = std::max(L, s.len);
            if (L >= cfg_.min_match) {
                out.match_corpus = L;
                uint32_t rb = static_cast<uint32_t>(ranges_.size());
                for (size_t s = 0; s < r.shards.size(); ++s)
                    ranges_.push_back(r.shards[s].len == L ? r.shards[s].r : Range{0, 0});
                srcs_.push_back(Src{kCorpus, rb, L, L, cfg_.corpus_boost * std::pow(double(L), cfg_.power)});
            }
        }
        root.src_end = static_cast<uint32_t>(srcs_.size());
        if (root.src_end == 0) return;
        root.prob = 1.0;
        root.parent = -1;
        root.depth = 0;
        nodes_.push_back(root);

        if (chain) {
            uint32_t cur = 0;
            while (out.tokens.size() < budget) {
                expand(cur, 1);
                if (cands_.empty()) break;
                const Cand c = cands_[0];
                double p = nodes_[cur].prob * c.p;
                if (p < min_prob) break;
                cur = add_node(cur, c, p);
                out.tokens.push_back(c.tok);
                out.parents.push_back(static_cast<int32_t>(out.tokens.size()) - 2);
                out.probs.push_back(p);
            }
            return;
        }
        // tree: best first by path probability
        struct QItem {
            double p; uint32_t parent; uint32_t cand;
            bool operator<(const QItem& o) const { return p < o.p; }
        };
        std::priority_queue<QItem> pq;
        pending_.clear();
        std::vector<int32_t> out_ix(1, -1);  // node id -> output index (root = -1)
        auto push_children = [&](uint32_t nid) {
            size_t left = budget - out.tokens.size();
            expand(nid, static_cast<uint32_t>(std::min<size_t>(left, cfg_.max_children)));
            for (const Cand& c : cands_) {
                double p = nodes_[nid].prob * c.p;
                if (p < min_prob) continue;
                pending_.push_back(c);
                pq.push(QItem{p, nid, static_cast<uint32_t>(pending_.size() - 1)});
            }
        };
        push_children(0);
        while (!pq.empty() && out.tokens.size() < budget) {
            QItem q = pq.top();
            pq.pop();
            const Cand c = pending_[q.cand];
            uint32_t id = add_node(q.parent, c, q.p);
            out.tokens.push_back(c.tok);
            out.parents.push_back(out_ix[q.parent]);
            out.probs.push_back(q.p);
            out_ix.push_back(static_cast<int32_t>(out.tokens.size()) - 1);
            if (out.tokens.size() < budget) push_children(id);
        }
    }

private:
    enum : uint8_t { kCtx = 0, kHist = 1, kCorpus = 2 };
    struct ShardMatch { uint32_t len = 0; Range r{0, 0}; };
    struct Request {
        std::vector<Id> ctx;     // target-token context
        std::vector<Tok> cctx;   // corpus-token context
        SuffixAutomaton sam;
        std::vector<ShardMatch> shards;
        uint32_t hstate = 0, hlen = 0;
        uint64_t hgen = 0;
        size_t prompt_len = 0;
    };
    // a source active at a node: SAM state `a`, or corpus ranges
    // ranges_[a, a + n_shards) at token offset `off`
    struct Src { uint8_t kind; uint32_t a; uint32_t off; uint32_t L; double w; };
    struct Node { int32_t parent; uint32_t depth; double prob; uint32_t src_begin, src_end; };
    struct Cand { int64_t tok; double p; uint32_t src_begin, src_end; };  // sources in srcs_
    struct Child { int64_t tok; double cnt; uint32_t state; uint32_t rb; };
    struct Sample { int64_t tok; size_t shard; int n; uint64_t lo_a, lo_b, hi_a, hi_b; };
    struct MixItem { int64_t tok; double p; Src src; };

    Request& get(int64_t rid) {
        auto it = reqs_.find(rid);
        if (it == reqs_.end()) throw std::out_of_range("unknown request id " + std::to_string(rid));
        return it->second;
    }
    const Request& get_c(int64_t rid) const {
        auto it = reqs_.find(rid);
        if (it == reqs_.end()) throw std::out_of_range("unknown request id " + std::to_string(rid));
        return it->second;
    }

    void push_ids(Request& r, const int64_t* ids, size_t n) {
        for (size_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= static_cast<int64_t>(kBoundary))
                throw std::invalid_argument("token id " + std::to_string(ids[i]) + " is outside [0, 2^32 - 1)");
        sync_history(r);
        for (size_t i = 0; i < n; ++i) {
            Id t = static_cast<Id>(ids[i]);
            r.ctx.push_back(t);
            r.sam.push(t);
            if (hist_.size() > 0) hist_.advance(r.hstate, r.hlen, t);
        }
    }

    /// Re-derives a request's history cursor after the history changed.
    void sync_history(Request& r) {
        if (r.hgen == hist_gen_) return;
        r.hgen = hist_gen_;
        r.hstate = 0;
        r.hlen = 0;
        if (hist_.size() == 0) return;
        size_t a = r.ctx.size() > 256 ? r.ctx.size() - 256 : 0;
        for (size_t i = a; i < r.ctx.size(); ++i) hist_.advance(r.hstate, r.hlen, r.ctx[i]);
    }

    // ------------------------------------------------------- corpus track
    /// Key of rank `rank` at offset `off`: the token there, or -1 past the shard's end.
    static int64_t key_at(const SAShard<Tok>& sh, uint64_t rank, uint64_t off) {
        uint64_t p = sh.suffix_at(rank) + off;
        return p < sh.n_positions() ? static_cast<int64_t>(sh.tokens()[p]) : -1;
    }
    /// First rank in [lo, hi) whose key at `off` is >= v (keys are sorted there).
    static uint64_t lower(const SAShard<Tok>& sh, uint64_t lo, uint64_t hi, uint64_t off, int64_t v) {
        while (lo < hi) {
            uint64_t mid = lo + (hi - lo) / 2;
            if (key_at(sh, mid, off) < v) lo = mid + 1; else hi = mid;
        }
        return lo;
    }

    void push_corpus(Request& r, const int64_t* ids, size_t n) {
        const int64_t sep = static_cast<int64_t>(separator_of<Tok>());
        for (size_t i = 0; i < n; ++i)
            if (ids[i] < 0 || ids[i] >= sep)
                throw std::invalid_argument("token id " + std::to_string(ids[i]) + " is outside [0, " +
                                            std::to_string(sep) + ") for this index's token width");
        for (size_t i = 0; i < n; ++i) {
            r.cctx.push_back(static_cast<Tok>(ids[i]));
            for (size_t s = 0; s < r.shards.size(); ++s) extend_shard(eng_->shard(s), r.shards[s], r.cctx);
        }
    }

    /// ctx just got one more token: updates the shard's longest match.
    static void extend_shard(const SAShard<Tok>& sh, ShardMatch& m, const std::vector<Tok>& ctx) {
        const size_t n = ctx.size();
        const int64_t t = static_cast<int64_t>(ctx[n - 1]);
        const Range cur = m.len == 0 ? Range{0, sh.n_positions()} : m.r;
        const uint64_t a = lower(sh, cur.lo, cur.hi, m.len, t);
        const uint64_t b = lower(sh, a, cur.hi, m.len, t + 1);
        if (b > a) { m.len += 1; m.r = Range{a, b}; return; }
        // ctx[n-1-len, n) does not occur, so the longest match is at most len
        // long; occurs(l) is monotone in l: gallop up from 1, then bisect.
        uint32_t good = 0, bad = m.len + 1;
        Range good_r{0, 0};
        for (uint32_t l = 1; l < bad; l *= 2) {
            Range f = sh.find(ctx.data() + (n - l), l);
            if (f.size() == 0) { bad = l; break; }
            good = l; good_r = f;
        }
        while (good + 1 < bad) {
            uint32_t mid = good + (bad - good) / 2;
            Range f = sh.find(ctx.data() + (n - mid), mid);
            if (f.size() > 0) { good = mid; good_r = f; } else bad = mid;
        }
        m.len = good;
        m.r = good_r;
    }

    // ---------------------------------------------------------- expansion
    double discount(uint32_t L) const { return cfg_.alpha / (1.0 + double(L) / cfg_.tau); }

    uint32_t add_node(uint32_t parent, const Cand& c, double p) {
        Node nd;
        nd.parent = static_cast<int32_t>(parent);
        nd.depth = nodes_[parent].depth + 1;
        nd.prob = p;
        nd.src_begin = c.src_begin;
        nd.src_end = c.src_end;
        nodes_.push_back(nd);
        return static_cast<uint32_t>(nodes_.size() - 1);
    }

    /// Children of one source at a node, with counts (corpus: their ranges
    /// appended to ranges_, at most `want` tokens found by sampling); returns N.
    double children_of(const Src& s, uint32_t want, std::vector<Child>& out) {
        out.clear();
        if (s.kind == kCtx || s.kind == kHist) {
            const SuffixAutomaton& a = s.kind == kCtx ? cur_req_->sam : hist_;
            double N = 0;
            for (uint32_t e = a.state(s.a).head; e != kNone; e = a.edges()[e].next) {
                const auto& ed = a.edges()[e];
                if (ed.tok == kBoundary) continue;
                const auto& ts = a.state(ed.to);
                // equal counts: the most recent occurrence first (tiny bonus)
                double c = double(ts.cnt) + 1e-3 * double(ts.last + 1) / double(a.size() + 1);
                out.push_back(Child{ed.tok, c, ed.to, 0});
                N += ts.cnt;
            }
            return N;
        }
        const size_t ns = eng_->n_shards();
        const int64_t sep = static_cast<int64_t>(separator_of<Tok>());
        double N = 0;
        samples_.clear();
        for (size_t k = 0; k < ns; ++k) {
            const Range r = ranges_[s.a + k];
            if (r.size() == 0) continue;
            N += double(r.size());
            const SAShard<Tok>& sh = eng_->shard(k);
            if (r.size() <= kScanAll) {
                uint64_t i = r.lo;
                int64_t v = key_at(sh, i, s.off);
                while (i < r.hi) {
                    uint64_t j = i + 1;
                    int64_t w = 0;
                    while (j < r.hi && (w = key_at(sh, j, s.off)) == v) ++j;
                    if (v >= 0 && v != sep) samples_.push_back(Sample{v, k, int(j - i), i, i, j, j});
                    i = j;
                    v = w;
                }
            } else {
                const uint64_t m = r.size();
                const size_t first = samples_.size();
                uint64_t prev_rank = r.lo;  // last sample with a smaller key (exclusive bound)
                bool have_prev = false;
                for (int q = 0; q < kSamples; ++q) {
                    uint64_t rank = r.lo + (m * (2 * uint64_t(q) + 1)) / (2 * kSamples);
                    int64_t v = key_at(sh, rank, s.off);
                    if (samples_.size() > first && samples_.back().tok == v) {
                        samples_.back().n += 1;
                        samples_.back().hi_a = rank;       // upper bound is after this rank
                    } else {
                        if (samples_.size() > first) samples_.back().hi_b = rank;  // and at most here
                        samples_.push_back(Sample{v, k, 1, have_prev ? prev_rank + 1 : r.lo, rank, rank, r.hi});
                    }
                    prev_rank = rank;
                    have_prev = true;
                }
                // drop end-of-shard / separator groups
                size_t w = first;
                for (size_t i = first; i < samples_.size(); ++i)
                    if (samples_[i].tok >= 0 && samples_[i].tok != sep) samples_[w++] = samples_[i];
                samples_.resize(w);
            }
        }
        // the most sampled tokens first; exact ranges for `want` of them
        std::stable_sort(samples_.begin(), samples_.end(), [](const Sample& x, const Sample& y) { return x.n > y.n; });
        size_t kept = 0;
        for (size_t i = 0; i < samples_.size() && kept < want + 1; ++i) {
            Sample& sm = samples_[i];
            bool seen = false;
            for (const Child& c : out) seen |= c.tok == sm.tok;
            if (!seen) ++kept;
            Range sub;
            if (sm.lo_a == sm.lo_b && sm.hi_a == sm.hi_b) {
                sub = Range{sm.lo_a, sm.hi_a};  // scanned exactly
            } else {
                const SAShard<Tok>& sh = eng_->shard(sm.shard);
                uint64_t a = lower(sh, sm.lo_a, sm.lo_b, s.off, sm.tok);
                uint64_t b = lower(sh, sm.hi_a + 1, sm.hi_b, s.off, sm.tok + 1);
                sub = Range{a, b};
            }
            if (seen) {
                for (Child& c : out)
                    if (c.tok == sm.tok) { ranges_[c.rb + sm.shard] = sub; c.cnt += double(sub.size()); }
                continue;
            }
            uint32_t rb = static_cast<uint32_t>(ranges_.size());
            for (size_t k = 0; k < ns; ++k) ranges_.push_back(Range{0, 0});
            ranges_[rb + sm.shard] = sub;
            out.push_back(Child{sm.tok, double(sub.size()), 0, rb});
        }
        return N;
    }

    /// Fills cands_ with the best `width` children of node nid, by probability.
    void expand(uint32_t nid, uint32_t width) {
        cands_.clear();
        mix_.clear();
        const Node nd = nodes_[nid];
        double wsum = 0;
        for (uint32_t i = nd.src_begin; i < nd.src_end; ++i) wsum += srcs_[i].w;
        if (wsum <= 0) return;
        for (uint32_t i = nd.src_begin; i < nd.src_end; ++i) {
            const Src s = srcs_[i];
            double N = children_of(s, width, kids_);
            if (kids_.empty()) continue;
            const double denom = N + discount(s.L + nd.depth);
            for (const Child& ch : kids_) {
                const double p = ch.cnt / denom;
                Src ns = s;
                if (s.kind == kCorpus) { ns.a = ch.rb; ns.off = s.off + 1; } else { ns.a = ch.state; }
                ns.w = s.w * p;
                mix_.push_back(MixItem{ch.tok, s.w * p / wsum, ns});
            }
        }
        if (mix_.empty()) return;
        std::sort(mix_.begin(), mix_.end(), [](const MixItem& a, const MixItem& b) { return a.tok < b.tok; });
        for (size_t i = 0; i < mix_.size();) {
            Cand c{mix_[i].tok, 0.0, static_cast<uint32_t>(srcs_.size()), 0};
            size_t j = i;
            for (; j < mix_.size() && mix_[j].tok == mix_[i].tok; ++j) {
                c.p += mix_[j].p;
                srcs_.push_back(mix_[j].src);
            }
            c.src_end = static_cast<uint32_t>(srcs_.size());
            cands_.push_back(c);
            i = j;
        }
        std::sort(cands_.begin(), cands_.end(), [](const Cand& a, const Cand& b) {
            return a.p != b.p ? a.p > b.p : a.tok < b.tok;
        });
        if (cands_.size() > width) cands_.resize(width);
    }

    const Engine<Tok>* eng_;
    Config cfg_;
    std::unordered_map<int64_t, Request> reqs_;
    SuffixAutomaton hist_;
    std::vector<Id> hist_tokens_;
    uint64_t hist_gen_ = 1;
    Request* cur_req_ = nullptr;
    // scratch, reused between proposals
    std::vector<Node> nodes_;
    std::vector<Src> srcs_;
    std::vector<Range> ranges_;
    std::vector<Cand> cands_, pending_;
    std::vector<Child> kids_;
    std::vector<Sample> samples_;
    std::vector<MixItem> mix_;
};

/// A Drafter over any token width, or without a corpus.
class AnyDrafter {
public:
    explicit AnyDrafter(Config cfg) : d_(std::make_unique<Drafter<uint32_t>>(nullptr, cfg)) {}
    template <class Tok>
    AnyDrafter(const Engine<Tok>* e, Config cfg) : d_(std::make_unique<Drafter<Tok>>(e, cfg)) {}

    template <class F>
    decltype(auto) visit(F&& f) {
        return std::visit([&](auto& p) -> decltype(auto) { return f(*p); }, d_);
    }

private:
    std::variant<std::unique_ptr<Drafter<uint8_t>>, std::unique_ptr<Drafter<uint16_t>>,
                 std::unique_ptr<Drafter<uint32_t>>>
        d_;
};

}  // namespace draft
}  // namespace infinigram

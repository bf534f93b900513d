// fm_index.hpp — FM-index of one shard: count / find / locate / extract
// without storing the text or the suffix array.
//
// The shard's token string T[0, n) (documents, each preceded by the
// separator, exactly as tokens.bin) gets a virtual terminator $ smaller than
// every token (the SA order of sa_index.hpp: a suffix reaching the end sorts
// first). Rows 0..n of the BWT matrix: row 0 is the suffix "$" (position n),
// row r + 1 the suffix SA[r]. BWT[row] = T[pos - 1]; the row of position 0
// ("primary") has $ and is left out of the wavelet tree, so the tree holds n
// symbols. Tokens are renamed to dense codes 0..sigma-1 in token order
// (`alphabet[code]` = token value), so the separator, the largest token, has
// the largest code.
//
//   C[c]        = 1 + occurrences of codes < c         (the 1 is the $ row)
//   LF(row)     = C[c] + rank(c, row),  c = BWT[row]   (row of pos - 1)
//   find(q)     backward search: rows of q's last two symbols from the pair
//               table (alphabets <= kPairSigma codes; else of the last one
//               from C), then one rank pair per symbol left; rows [lo, hi) =
//               SA ranks [lo-1, hi-1)
//   find_multi / find_group   the backward searches of one query in several
//               shards (FMEngine.count / find) or of several queries in one
//               shard (count_many) in lock step: one batched rank2 per
//               pattern symbol over all of them, misses overlapped
//   locate(row) LF-walk to a sampled row (positions divisible by sa_sample are
//               sampled; their rows are an Elias–Fano set) -> < sa_sample steps;
//               locate_rows / suffix_at_many: many rows, 32 walks in lock step
//               as extract's; tokens_at: single tokens at many positions
//   extract     one LF walk per isa_sample tokens, each from the row of the
//               first sampled position at or after its end (the ISA sample
//               names that SA sample; past the last one, row 0 = position n);
//               32 walks in flight, one wavelet level each per round
//               (a batched rank whose stages overlap their cache misses; a
//               walk whose LF step ends starts its next one in the same
//               slot), and long ranges split their walks over threads
//
// Files (docs/FORMAT.md, "FM-index backend"): fm.bin (header, alphabet, C,
// wavelet tree of the BWT), fm_sa.bin (SA samples), fm_isa.bin (ISA samples);
// doc_offsets.bin is the SA backend's, unchanged.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <thread>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bitvector.hpp"
#include "engine.hpp"     // resolve_threads
#include "sa_index.hpp"  // Range
#include "text.hpp"
#include "wavelet.hpp"

namespace infinigram {

constexpr uint64_t kFMMagic = 0x31584e4944494d46ULL;  // "FMIDINX1"
/// Alphabets up to this many codes get a pair table in fm.bin (the rows of
/// every two-symbol prefix: a search starts from its last two symbols).
constexpr uint64_t kPairSigma = 256;
constexpr uint64_t kFMVersion = 5;  // 2: context-coded RRR classes, ISA samples as SA-sample indices; 3: 31-bit RRR blocks, split-coded offsets, 24-block superblocks; 4: one Huffman tree per BWT block; 5: RRR superblock records (5-bit classes)

using FMWavelet = HuffmanWaveletTree<RRRVector>;

/// log2 of the wavelet tree's block (symbols of the BWT per Huffman tree) for
/// an alphabet of sigma codes: 2^17 for byte alphabets; larger alphabets get
/// >= 2^9 symbols per entry of a block's table rows (2^ceil(log2 sigma)
/// entries), ~0.1 bit per symbol for those rows (on 100 MB of English bytes
/// all the per-block tables take 2.3 MB of the 27.8 MB tree).
inline int fm_block_bits(uint64_t sigma) {
    int sb = 0;
    while ((uint64_t(1) << sb) < sigma) ++sb;
    return std::max(17, sb + 9);
}

/// Files of one FM-index shard.
struct FMShardSpec {
    std::string fm, sa, isa, doc_offsets;
};

template <class Tok>
class FMShard {
public:
    using Token = Tok;
    using Spec = FMShardSpec;
    explicit FMShard(const FMShardSpec& s) : FMShard(s.fm, s.sa, s.isa, s.doc_offsets) {}
    FMShard(const std::string& fm_path, const std::string& sa_path, const std::string& isa_path,
            const std::string& doc_offsets_path)
        : fm_(fm_path), sa_(sa_path), isa_(isa_path), docs_(doc_offsets_path) {
        BlobReader r(fm_.data(), fm_.size(), fm_path);
        if (r.get_u64() != kFMMagic) throw std::invalid_argument(fm_path + ": not an infinigram FM-index file");
        const uint64_t ver = r.get_u64();
        if (ver != kFMVersion)
            throw std::invalid_argument(fm_path + ": FM-index file version " + std::to_string(ver) + " (this build reads " +
                                        std::to_string(kFMVersion) + "; rebuild the index)");
        if (r.get_u64() != sizeof(Tok)) throw std::invalid_argument(fm_path + ": token width differs from the index's");
        n_ = r.get_u64();
        primary_ = r.get_u64();
        alphabet_ = Array<uint32_t>::load(r);
        C_ = Array<uint64_t>::load(r);
        wt_ = FMWavelet::load(r);
        pairs_ = PackedInts::load(r);
        if (C_.size() != alphabet_.size() + 1 || wt_.size() != n_ || wt_.sigma() != alphabet_.size()) r.bad();
        const uint64_t sg = alphabet_.size();
        if (pairs_.size() != (sg <= kPairSigma && n_ > 0 ? sg * (sg + 1) : 0)) r.bad();
        BlobReader rs(sa_.data(), sa_.size(), sa_path);
        sa_sample_ = rs.get_u64();
        marks_ = EliasFano::load(rs);
        samples_ = PackedInts::load(rs);
        BlobReader ri(isa_.data(), isa_.size(), isa_path);
        isa_sample_ = ri.get_u64();
        isa_samples_ = PackedInts::load(ri);
        if (sa_sample_ == 0 || isa_sample_ == 0 || isa_samples_.size() != n_ / isa_sample_ + 1)
            throw std::invalid_argument(isa_path + ": inconsistent sampling");
        n_docs_ = check_doc_offsets(docs_.data(), docs_.size(), n_, doc_offsets_path);
        D_ = reinterpret_cast<const uint64_t*>(docs_.data());
        // O(sigma^2) checks of the tables every search starts from (a damaged
        // entry would lead ranks outside the tree): the alphabet increasing and
        // within the token width, C from 1 up to n + 1, the pair table within
        // [0, n + 1], the samples' counts. The tree's own bits are verify()'s.
        const uint64_t max_tok = static_cast<uint64_t>(separator_of<Tok>());
        if (primary_ > n_ || C_[0] != 1 || C_[sg] != n_ + 1) r.bad();
        for (uint64_t c = 0; c < sg; ++c)
            if (alphabet_[c] > max_tok || (c > 0 && alphabet_[c] <= alphabet_[c - 1]) || C_[c + 1] < C_[c]) r.bad();
        for (uint64_t k = 0; k < pairs_.size(); ++k)
            if (pairs_[k] > n_ + 1) r.bad();
        if (samples_.size() != marks_.size() || marks_.size() == 0)
            throw std::invalid_argument(sa_path + ": inconsistent sampling");
        if (sizeof(Tok) <= 2) {
            table_.assign(size_t(1) << (8 * sizeof(Tok)), -1);
            for (size_t c = 0; c < alphabet_.size(); ++c) table_[alphabet_[c]] = static_cast<int64_t>(c);
        }
    }

    uint64_t n_positions() const { return n_; }
    uint64_t n_docs() const { return n_docs_; }
    uint64_t n_tokens() const { return n_ - n_docs_; }
    uint64_t sa_sample() const { return sa_sample_; }
    uint64_t isa_sample() const { return isa_sample_; }
    const FMWavelet& wavelet() const { return wt_; }
    uint64_t C(uint64_t c) const { return C_[c]; }
    uint64_t sigma() const { return alphabet_.size(); }
    Tok token_of(uint64_t code) const { return static_cast<Tok>(alphabet_[code]); }
    uint64_t primary() const { return primary_; }

    /// Code of token t, or -1 if t does not occur in the shard.
    int64_t code_of(Tok t) const {
        if (sizeof(Tok) <= 2) return table_[t];
        const uint32_t* a = alphabet_.data();
        const uint32_t* it = std::lower_bound(a, a + alphabet_.size(), static_cast<uint32_t>(t));
        return (it != a + alphabet_.size() && *it == t) ? it - a : -1;
    }

    /// Occurrences of code c in BWT rows [0, row).
    uint64_t rank_row(uint64_t c, uint64_t row) const { return wt_.rank(c, row - (row > primary_)); }

    /// One backward-search step: rows [lo, hi) of string w -> rows of c·w.
    void step(uint64_t c, uint64_t& lo, uint64_t& hi) const {
        uint64_t a, b;
        wt_.rank2(c, lo - (lo > primary_), hi - (hi > primary_), &a, &b);
        lo = C_[c] + a;
        hi = C_[c] + b;
    }

    /// Rows [lo, hi) of the suffixes starting with q (lo == hi if none); m == 0: all n + 1 rows.
    Range find_rows(const Tok* q, size_t m) const {
        if (m == 0) return Range{0, n_ + 1};
        uint64_t lo, hi;
        size_t k0;
        if (!start_rows(q, m, &lo, &hi, &k0)) return Range{0, 0};
        for (size_t k = k0; k-- > 0;) {
            const int64_t c = code_of(q[k]);
            if (c < 0) return Range{0, 0};
            step(static_cast<uint64_t>(c), lo, hi);
            if (lo >= hi) return Range{0, 0};
        }
        return Range{lo, hi};
    }

    /// Rows [lo, hi) of the last symbols of q (m >= 1): the last two from the
    /// pair table when there is one, else the last one from C; *k = the
    /// symbols of q left to search. False if a symbol does not occur.
    bool start_rows(const Tok* q, size_t m, uint64_t* lo, uint64_t* hi, size_t* k) const {
        const int64_t c = code_of(q[m - 1]);
        if (c < 0) return false;
        if (m >= 2 && pairs_.size()) {
            const int64_t a = code_of(q[m - 2]);
            if (a < 0) return false;
            const uint64_t at = static_cast<uint64_t>(a) * (alphabet_.size() + 1) + static_cast<uint64_t>(c);
            *lo = pairs_[at];
            *hi = pairs_[at + 1];
            *k = m - 2;
            return true;
        }
        *lo = C_[c];
        *hi = C_[c + 1];
        *k = m - 1;
        return true;
    }

    /// SA ranks [lo, hi) of q, as SAShard::find (an empty result is {x, x} for some x).
    Range find(const Tok* q, size_t m) const {
        if (m == 0) return Range{0, n_};
        Range r = find_rows(q, m);
        if (r.lo >= r.hi) return Range{0, 0};
        return Range{r.lo - 1, r.hi - 1};
    }

    // ------------------------------------------------------------------
    // Lock-step backward search: several searches (one query in several
    // shards, or several queries in one shard) advance one pattern symbol per
    // round together; each round is one batched wavelet-tree rank2 over all
    // of them (HuffmanWaveletTree::rank2_multi), whose bit-vector ranks are
    // staged with prefetches so the searches' cache misses overlap.

    static constexpr size_t kMaxGroup = 16;

    /// SA ranges of g queries in this shard at once (g <= kMaxGroup);
    /// out[a] = find(qs[a], ms[a]) (an empty query gives [0, n)).
    void find_group(const Tok* const* qs, const size_t* ms, size_t g, Range* out) const {
        Search s[kMaxGroup];
        for (size_t a = 0; a < g; ++a) s[a].init(this, qs[a], ms[a]);
        search(s, g);
        for (size_t a = 0; a < g; ++a) out[a] = s[a].result();
    }

    /// The ranges of one query in several shards at once (S <= kMaxGroup):
    /// out[k] = shards[k]->find(q, m).
    static void find_multi(const FMShard* const* shards, size_t S, const Tok* q, size_t m, Range* out) {
        Search s[kMaxGroup];
        for (size_t k = 0; k < S; ++k) s[k].init(shards[k], q, m);
        search(s, S);
        for (size_t k = 0; k < S; ++k) out[k] = s[k].result();
    }

    /// Counts of g queries at once (see find_group).
    void count_group(const Tok* const* qs, const size_t* ms, size_t g, uint64_t* out) const {
        Range r[kMaxGroup];
        find_group(qs, ms, g, r);
        for (size_t a = 0; a < g; ++a) out[a] = r[a].size();
    }

    /// (code of BWT[row], LF(row)); row != primary.
    std::pair<uint64_t, uint64_t> lf(uint64_t row) const {
        auto cr = wt_.access_rank(row - (row > primary_));
        return {cr.first, C_[cr.first] + cr.second};
    }

    /// Text position of the suffix in `row`.
    /// (A walk longer than sa_sample steps, only on a damaged index, stops at n - 1.)
    uint64_t locate_row(uint64_t row) const {
        uint64_t steps = 0, k;
        for (;;) {
            if (marks_.contains(row, &k)) return samples_[k] * sa_sample_ + steps;
            if (steps > sa_sample_ || row > n_) return n_ - 1;
            row = lf(row).second;
            ++steps;
        }
    }
    /// SA[rank] (as SAShard::suffix_at).
    uint64_t suffix_at(uint64_t rank) const { return locate_row(rank + 1); }

    /// pos[k] = the text position of row rows[k] + add, k < n: locate_row for many rows,
    /// kGroup LF walks in flight, one wavelet level per round for all of them
    /// (their cache misses overlap; a walk that reaches a sampled row hands
    /// its slot to the next row at once).
    void locate_rows(const uint64_t* rows, size_t n, uint64_t* pos, uint64_t add = 0) const {
        size_t idx[kGroup];
        uint64_t steps[kGroup];
        size_t next = 0;
        lockstep(
            [&](size_t s, uint64_t& row) {  // the next row that needs a walk
                for (uint64_t k; next < n; ++next) {
                    if (marks_.contains(rows[next] + add, &k)) { pos[next] = samples_[k] * sa_sample_; continue; }
                    idx[s] = next;
                    steps[s] = 0;
                    row = rows[next++] + add;
                    return true;
                }
                return false;
            },
            [&](size_t s, int64_t, uint64_t row) {  // one LF step done: at a sampled row yet?
                ++steps[s];
                uint64_t k;
                if (!marks_.contains(row, &k)) {
                    if (steps[s] <= sa_sample_ && row <= n_) return false;
                    pos[idx[s]] = n_ - 1;  // a damaged index: no sample within sa_sample steps
                    return true;
                }
                pos[idx[s]] = samples_[k] * sa_sample_ + steps[s];
                return true;
            },
            [&](size_t to, size_t from) { idx[to] = idx[from]; steps[to] = steps[from]; });
    }
    /// out[k] = SA[ranks[k]] (suffix_at of many ranks, batched as locate_rows).
    void suffix_at_many(const uint64_t* ranks, size_t n, uint64_t* out) const { locate_rows(ranks, n, out, 1); }
    /// out[k] = the token at positions[k] (< n_positions()): one-token
    /// extractions, their LF walks batched as in extract.
    void tokens_at(const uint64_t* positions, size_t n, Tok* out) const {
        std::vector<Chain> chains(n);
        for (size_t k = 0; k < n; ++k) chains[k] = Chain{positions[k] + 1, positions[k], 0, out + k};
        walk(chains.data(), n);
    }

    /// (row, position) of the sampled position nearest at or after pos (pos <= n):
    /// the ISA sample of ceil(pos / isa_sample) names an SA sample (by index);
    /// past the last one, row 0 = position n.
    std::pair<uint64_t, uint64_t> start_row(uint64_t pos) const {
        const uint64_t k = (pos + isa_sample_ - 1) / isa_sample_;
        const uint64_t q = (k * isa_sample_ + sa_sample_ - 1) / sa_sample_ * sa_sample_;
        if (q >= n_) return {0, n_};
        return {marks_.select(std::min<uint64_t>(isa_samples_[k], marks_.size() - 1)), q};
    }

    /// Tokens [start, end) of the shard into out (end <= n): LF walks cut at
    /// the ISA samples, `kGroup` chains interleaved (their cache misses
    /// overlap), groups of walks handed out to `threads` threads for long
    /// ranges.
    void extract(uint64_t start, uint64_t end, Tok* out, int threads = 1) const {
        if (start >= end) return;
        const uint64_t t = isa_sample_;
        // chains: pieces [a, b) cut at multiples of t, each walked back from the row of b
        std::vector<Chain> chains;
        uint64_t b = end;
        while (b > start) {
            uint64_t a = (b - 1) / t * t;  // largest multiple of t below b
            if (a < start) a = start;
            chains.push_back(Chain{b, a, 0, out + (a - start)});
            b = a;
        }
        const size_t nc = chains.size();
        threads = std::max(1, std::min<int>(threads, static_cast<int>(nc / 4)));  // >= 4 walks (256 tokens at I = 64) each
        if (threads == 1) { walk(chains.data(), nc); return; }
        // Groups of <= kGroup walks, as many as a multiple of the threads,
        // handed out one at a time: equal shares on idle cores, and a thread
        // on a busy core takes fewer of them instead of holding the others up.
        size_t units = (nc + kGroup - 1) / kGroup;
        units = (units + threads - 1) / threads * threads;
        const size_t unit = (nc + units - 1) / units;
        std::atomic<size_t> next{0};
        auto work = [&] {
            for (size_t g0; (g0 = next.fetch_add(unit)) < nc;)
                walk(chains.data() + g0, std::min(unit, nc - g0));
        };
        std::vector<std::thread> pool;
        for (int th = 1; th < threads; ++th) pool.emplace_back(work);
        work();
        for (auto& x : pool) x.join();
    }

    /// Distinct next codes of rows [lo, hi) ... (for LM queries): f(code, lo', hi') rows of c·w.
    template <class F>
    void extend_all(uint64_t lo, uint64_t hi, F&& f) const {
        const uint64_t a = lo - (lo > primary_), b = hi - (hi > primary_);
        wt_.distinct(a, b, [&](uint64_t c, uint64_t ra, uint64_t rb) { f(c, C_[c] + ra, C_[c] + rb); });
    }

    /// (local document index, offset of pos within that document's text).
    std::pair<uint64_t, uint64_t> doc_of(uint64_t pos) const { return doc_of_offsets(D_, n_docs_, pos); }
    std::pair<uint64_t, uint64_t> doc_span(uint64_t d) const { return doc_span_offsets(D_, d, n_); }

    /// Bytes of the three FM files.
    uint64_t bytes() const { return fm_.size() + sa_.size() + isa_.size(); }

private:
    /// One backward search: rows [lo, hi) of q[k, m); live while k > 0 and the range is non-empty.
    struct Search {
        const FMShard* sh = nullptr;
        const Tok* q = nullptr;
        size_t m = 0, k = 0;
        uint64_t lo = 0, hi = 0;
        bool live = false;
        void init(const FMShard* s, const Tok* qq, size_t mm) {
            sh = s; q = qq; m = mm; live = false;
            if (m == 0) { lo = 0; hi = sh->n_ + 1; k = 0; return; }  // all rows
            if (!sh->start_rows(q, m, &lo, &hi, &k)) { lo = hi = 0; return; }
            live = k > 0 && lo < hi;
        }
        /// As find(q, m).
        Range result() const {
            if (m == 0) return Range{0, sh->n_};
            if (lo >= hi) return Range{0, 0};
            return Range{lo - 1, hi - 1};
        }
    };
    /// Advances the searches to their ends, one symbol per round for all live
    /// ones (ns <= kMaxGroup). O(max m) rounds of one batched rank2 each.
    static void search(Search* s, size_t ns) {
        const FMWavelet* w[kMaxGroup];
        uint64_t c[kMaxGroup], i[kMaxGroup], j[kMaxGroup];
        size_t act[kMaxGroup];
        for (;;) {
            size_t na = 0;
            for (size_t a = 0; a < ns; ++a) {
                Search& x = s[a];
                if (!x.live) continue;
                const int64_t cc = x.sh->code_of(x.q[x.k - 1]);
                if (cc < 0) { x.lo = x.hi = 0; x.live = false; continue; }
                const uint64_t p = x.sh->primary_;
                w[na] = &x.sh->wt_;
                c[na] = static_cast<uint64_t>(cc);
                i[na] = x.lo - (x.lo > p);
                j[na] = x.hi - (x.hi > p);
                act[na++] = a;
            }
            if (!na) return;
            FMWavelet::rank2_multi(w, c, i, j, na, true);
            for (size_t q = 0; q < na; ++q) {
                Search& x = s[act[q]];
                const uint64_t base = x.sh->C_[c[q]];
                x.lo = base + i[q];
                x.hi = base + j[q];
                --x.k;
                x.live = x.k > 0 && x.lo < x.hi;
            }
        }
    }

    static constexpr size_t kGroup = 32;  // walks in flight (<= RRRVector::kMaxBatch): independent work per batched rank
    struct Chain {
        uint64_t pos, stop, at;  // at: the position of the walk's current row (>= pos)
        Tok* out;                // where position `stop` goes (the tokens [stop, pos) follow it)
    };
    /// Walks chains [c, c + nc) (lockstep): each from the sample at or after
    /// its piece's end (phase 0, `at` down to `pos`), then down the piece
    /// (`pos` down to `stop`, writing tokens). (Lock step per whole LF step,
    /// before the slots, left the deep levels' rounds nearly empty.)
    void walk(Chain* c, size_t nc) const {
        size_t chain[kGroup];  // each slot's chain
        size_t next = 0;
        auto busy = [](const Chain& ch) { return ch.at > ch.stop; };  // at >= pos >= stop
        lockstep(
            [&](size_t s, uint64_t& row) {  // the next chain with work
                for (; next < nc; ++next) {
                    Chain& ch = c[next];
                    const auto rp = start_row(ch.pos);
                    ch.at = rp.second;
                    if (busy(ch)) { chain[s] = next++; row = rp.first; return true; }
                }
                return false;
            },
            [&](size_t s, int64_t sym, uint64_t row) {  // one LF step done: write its token once down the piece
                (void)row;
                Chain& ch = c[chain[s]];
                if (ch.at == ch.pos) { --ch.pos; ch.out[ch.pos - ch.stop] = token_of(static_cast<uint64_t>(sym)); }
                --ch.at;  // the row's position (>= pos; == pos once down the piece)
                return !busy(ch);
            },
            [&](size_t to, size_t from) { chain[to] = chain[from]; });
    }

    /// Runs LF walks kGroup at a time in slots, one wavelet level per round
    /// for all of them (one batched rank: their cache misses overlap).
    /// admit(s, row&) puts the next walk into slot s with its first row
    /// (false: none left); step(s, symbol, row) is called when slot s's LF
    /// step ends at `row` (BWT symbol `symbol`) and returns true if that walk
    /// is over; move(to, from) moves a slot's caller state when slots are
    /// compacted. A slot whose walk ends takes the next walk at once, so
    /// every round is full whatever the symbols' code lengths.
    template <class Admit, class Step, class Move>
    void lockstep(Admit&& admit, Step&& step, Move&& move) const {
        uint64_t v[kGroup], i[kGroup];  // each slot's wavelet node reference and position in it
        int64_t sym[kGroup];
        size_t ns = 0;
        auto start = [&](size_t s) {
            uint64_t row;
            if (!admit(s, row)) return false;
            wt_.begin(row - (row > primary_), &v[s], &i[s]);
            return true;
        };
        while (ns < kGroup && start(ns)) ++ns;
        while (ns > 0) {
            wt_.step_batch(v, i, ns, sym);
            for (size_t s = ns; s-- > 0;) {  // downwards: a finished slot takes the last one's walk
                if (sym[s] < 0) continue;
                const uint64_t row = C_[sym[s]] + i[s];
                if (!step(s, sym[s], row)) { wt_.begin(row - (row > primary_), &v[s], &i[s]); continue; }
                if (start(s)) continue;
                --ns;
                v[s] = v[ns];
                i[s] = i[ns];
                move(s, ns);
            }
        }
    }

    MappedFile fm_, sa_, isa_, docs_;
    uint64_t n_ = 0, primary_ = 0, n_docs_ = 0, sa_sample_ = 0, isa_sample_ = 0;
    Array<uint32_t> alphabet_;
    Array<uint64_t> C_;
    FMWavelet wt_;
    PackedInts pairs_;  // see kPairSigma (empty for larger alphabets)
    EliasFano marks_;
    PackedInts samples_, isa_samples_;
    std::vector<int64_t> table_;
    const uint64_t* D_ = nullptr;
};

/// All FM shards of one index: the same engine as the suffix-array backend.
template <class Tok>
using FMEngine = ShardedEngine<FMShard<Tok>>;

}  // namespace infinigram

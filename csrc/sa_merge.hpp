// sa_merge.hpp — k-way merge, on disk, of sorted suffix runs of one text
// into one suffix-array file.
//
//   merge_suffix_runs(tokens_path, token_width, run_paths, sa_path, opts, tick) -> ptr_width
//
// Each run is a file of positions of the token file T[0, n), ptr_width_for(n)
// bytes each (the sa.bin format), sorted in whole-text suffix order (as
// sa_parts.hpp writes them); together they hold every position once. The
// output is the suffix array of T, byte for byte what the in-memory build
// (sa_build.hpp) writes. Order: unsigned token values, a suffix that is a
// proper prefix of another first.
//
// Algorithm: a loser tree over the runs' heads (k leaves, ceil(log2 k)
// comparisons per output entry). Every run is read sequentially through its
// own buffer, the output written sequentially through one. When a run's
// buffer is refilled, each of its positions gets a cached key: the next 16
// bytes of tokens from the position, big endian (so integer order is token
// order), zero padded past n (a key that compares unequal then decides
// correctly; equal keys fall through). The keys are loaded in a batch with
// prefetches, so the text's random reads overlap; most comparisons then
// touch no text. Equal keys are resolved on the memory-mapped text from
// token 16 / w on, 8 bytes at a time.
//
// Cost: O(n log k) key comparisons + n key loads + the text compared on key
// ties: per tie, the two suffixes' common prefix beyond the key, 8 bytes per
// step. Natural text ties rarely and briefly (100 MB of English, 4 runs:
// 12% of comparisons tie, 1.35 steps per tie). A passage repeated R times
// in a row ties over the rest of the repetition, up to R times its length
// per comparison: a corpus that is one document repeated end to end costs
// O(n) per entry, O(n²) in all. That is the known slow case, measured in
// bench/README.md ("Shards larger than memory"); the in-memory SA-IS stays
// linear on it, and the build only merges shards that do not fit memory.
// Memory: k·B·24 bytes of run buffers (B entries each) + the output buffer
// + the text's mapped pages, which the merge returns to the page cache
// (MADV_DONTNEED) whenever the process's file-backed resident memory has
// grown by more than opts.text_rss_cap since the merge began (checked
// every 8 MiB of pages it may have touched: TextGuard).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "sais.hpp"
#include "text.hpp"

namespace infinigram {

struct MergeOptions {
    uint64_t buffer_entries = uint64_t(1) << 16;  ///< per run (24 bytes each: position + key)
    uint64_t text_rss_cap = ~uint64_t(0);         ///< bytes of mapped text kept resident (see the header)
    bool durable = true;                          ///< fsync the output
};

namespace merge_detail {

/// The file-backed resident memory of this process, in bytes (statm "shared").
inline uint64_t file_rss_bytes() {
    std::ifstream f("/proc/self/statm");
    uint64_t size = 0, res = 0, shared = 0;
    if (!(f >> size >> res >> shared)) return 0;
    return shared * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

struct Key {
    uint64_t hi, lo;
};

/// Keeps the text's mapped pages under a cap: callers count the pages they
/// may have touched; every kCheckPages of them the process's file-backed
/// resident memory is read, and the whole mapping dropped (MADV_DONTNEED:
/// the pages stay in the page cache) once it exceeds the start's + cap.
/// Overshoot at most kCheckPages pages.
class TextGuard {
public:
    static constexpr uint64_t kCheckPages = 2048;  // 8 MiB
    TextGuard(const MappedFile& text, uint64_t cap) : text_(text), cap_(cap), base_(file_rss_bytes()) {}
    void touch(uint64_t pages) {
        if (cap_ == ~uint64_t(0)) return;
        count_ += pages;
        if (count_ < kCheckPages) return;
        count_ = 0;
        if (file_rss_bytes() > base_ + cap_) text_.advise(MADV_DONTNEED);
    }

private:
    const MappedFile& text_;
    uint64_t cap_, base_, count_ = 0;
};

/// Tokens as a big-endian integer (first token most significant).
template <class Tok>
inline uint64_t be_word(const Tok* p) {
    uint64_t x;
    std::memcpy(&x, p, 8);
    if constexpr (sizeof(Tok) == 1) {
        return __builtin_bswap64(x);
    } else if constexpr (sizeof(Tok) == 2) {
        x = __builtin_bswap64(x);  // tokens reversed, bytes of each swapped
        return ((x & 0x00FF00FF00FF00FFull) << 8) | ((x >> 8) & 0x00FF00FF00FF00FFull);
    } else {
        return (x << 32) | (x >> 32);
    }
}

template <class Tok>
inline Key key_at(const Tok* T, uint64_t n, uint64_t p) {
    constexpr uint64_t per = 8 / sizeof(Tok);
    if (p + 2 * per <= n) return Key{be_word(T + p), be_word(T + p + per)};
    uint64_t h = 0, l = 0;
    for (uint64_t i = 0; i < 2 * per; ++i) {
        const uint64_t t = p + i < n ? static_cast<uint64_t>(T[p + i]) : 0;
        if (i < per) h = (h << (8 * sizeof(Tok))) | t;
        else l = (l << (8 * sizeof(Tok))) | t;
    }
    return Key{h, l};
}

/// T[p..n) < T[q..n), known equal on their first `from` tokens (p != q).
/// `steps` counts the 8-byte steps taken (pages touched: ~2 + 2·steps/512).
template <class Tok>
inline bool suffix_less_from(const Tok* T, uint64_t n, uint64_t p, uint64_t q, uint64_t from, uint64_t& steps) {
    constexpr uint64_t per = 8 / sizeof(Tok);
    uint64_t i = p + from, j = q + from;
    for (;;) {
        if (i >= n || j >= n) return i > j;  // the shorter suffix (the later start) first
        if (i + per <= n && j + per <= n) {
            uint64_t x, y;
            std::memcpy(&x, T + i, 8);
            std::memcpy(&y, T + j, 8);
            if (x != y) {
                const uint64_t t = static_cast<uint64_t>(__builtin_ctzll(x ^ y)) / (8 * sizeof(Tok));
                return T[i + t] < T[j + t];
            }
            i += per;
            j += per;
            ++steps;
        } else {
            if (T[i] != T[j]) return T[i] < T[j];
            ++i;
            ++j;
        }
    }
}

/// A run file read sequentially: positions and their keys, a buffer at a time.
template <class Tok>
class RunReader {
public:
    RunReader(const std::string& path, int w, const Tok* T, uint64_t n, uint64_t cap, TextGuard& guard)
        : path_(path), w_(w), T_(T), n_(n), cap_(std::max<uint64_t>(cap, 1)), guard_(guard) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd_, &st) != 0) throw std::runtime_error("cannot stat " + path + ": " + std::strerror(errno));
        if (static_cast<uint64_t>(st.st_size) % static_cast<uint64_t>(w) != 0)
            throw std::invalid_argument(path + ": size is not a multiple of the pointer width");
        total_ = static_cast<uint64_t>(st.st_size) / static_cast<uint64_t>(w);
        raw_.resize(cap_ * static_cast<uint64_t>(w));
        pos_.resize(cap_);
        key_.resize(cap_);
        refill();
    }
    RunReader(const RunReader&) = delete;
    RunReader& operator=(const RunReader&) = delete;
    ~RunReader() {
        if (fd_ >= 0) ::close(fd_);
    }
    uint64_t total() const { return total_; }
    bool done() const { return cur_ == len_; }
    uint64_t pos() const { return pos_[cur_]; }
    const Key& key() const { return key_[cur_]; }
    void advance() {
        if (++cur_ == len_) refill();
    }

private:
    void refill() {
        const uint64_t m = std::min(cap_, total_ - read_);
        cur_ = len_ = 0;
        if (m == 0) return;
        const size_t bytes = static_cast<size_t>(m) * static_cast<size_t>(w_);
        for (size_t got = 0; got < bytes;) {
            const ssize_t r = ::pread(fd_, raw_.data() + got, bytes - got,
                                      static_cast<off_t>(read_ * static_cast<uint64_t>(w_) + got));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) throw std::runtime_error("read failed for " + path_ + ": " +
                                                 (r < 0 ? std::strerror(errno) : "file shrank while reading"));
            got += static_cast<size_t>(r);
        }
        for (uint64_t i = 0; i < m; ++i) {
            const uint64_t p = load_le(raw_.data() + i * static_cast<uint64_t>(w_), w_);
            if (p >= n_) throw std::invalid_argument(path_ + ": position " + std::to_string(p) + " out of range");
            pos_[i] = p;
        }
        constexpr uint64_t kAhead = 16;
        for (uint64_t i = 0; i < m; ++i) {
            if (i + kAhead < m) __builtin_prefetch(T_ + pos_[i + kAhead]);
            key_[i] = key_at(T_, n_, pos_[i]);
            guard_.touch(1);
        }
        read_ += m;
        len_ = m;
    }

    std::string path_;
    int fd_ = -1, w_;
    const Tok* T_;
    uint64_t n_, cap_, total_ = 0, read_ = 0, cur_ = 0, len_ = 0;
    std::vector<uint8_t> raw_;
    std::vector<uint64_t> pos_;
    std::vector<Key> key_;
    TextGuard& guard_;
};

template <class Tok>
int merge_typed(const MappedFile& text, uint64_t n, const std::vector<std::string>& run_paths,
                const std::string& sa_path, const MergeOptions& opt, const sais_detail::Tick& tick) {
    const Tok* T = reinterpret_cast<const Tok*>(text.data());
    const int w = ptr_width_for(n);
    constexpr uint64_t per = 8 / sizeof(Tok);
    TextGuard guard(text, opt.text_rss_cap);
    std::vector<std::unique_ptr<RunReader<Tok>>> runs;
    uint64_t total = 0;
    for (const auto& p : run_paths) {
        runs.push_back(std::make_unique<RunReader<Tok>>(p, w, T, n, opt.buffer_entries, guard));
        total += runs.back()->total();
    }
    if (total != n)
        throw std::invalid_argument("the runs hold " + std::to_string(total) + " positions, the token file " +
                                    std::to_string(n));
    const size_t k = runs.size();
    auto less = [&](size_t a, size_t b) -> bool {  // run a's head before run b's; exhausted runs last
        if (a >= k || runs[a]->done()) return false;
        if (b >= k || runs[b]->done()) return true;
        const Key& x = runs[a]->key();
        const Key& y = runs[b]->key();
        if (x.hi != y.hi) return x.hi < y.hi;
        if (x.lo != y.lo) return x.lo < y.lo;
        uint64_t steps = 0;
        const bool r = suffix_less_from(T, n, runs[a]->pos(), runs[b]->pos(), 2 * per, steps);
        guard.touch(2 + steps / 256);
        return r;
    };
    size_t leaves = 1;
    while (leaves < k) leaves <<= 1;
    std::vector<size_t> loser(leaves, k);  // loser[1..leaves): internal nodes
    // Build bottom-up: winner of each subtree, losers stored.
    std::vector<size_t> win(2 * leaves);
    for (size_t i = 0; i < leaves; ++i) win[leaves + i] = i < k ? i : k;
    for (size_t v = leaves - 1; v >= 1; --v) {
        const size_t l = win[2 * v], r = win[2 * v + 1];
        if (less(r, l)) { win[v] = r; loser[v] = l; }
        else { win[v] = l; loser[v] = r; }
    }
    size_t top = leaves > 1 ? win[1] : win[leaves];

    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(sa_path.c_str(), "wb"), &std::fclose);
    if (!f) throw std::runtime_error("cannot create " + sa_path + ": " + std::strerror(errno));
    const size_t out_cap = size_t(1) << 16;
    std::vector<uint8_t> out(out_cap * static_cast<size_t>(w));
    size_t fill = 0;
    const uint64_t tick_every = std::max<uint64_t>(n / 40, 1);
    for (uint64_t done = 0; done < n; ++done) {
        RunReader<Tok>& r = *runs[top];
        const uint64_t p = r.pos();
        std::memcpy(out.data() + fill, &p, static_cast<size_t>(w));  // little-endian host
        fill += static_cast<size_t>(w);
        if (fill == out.size()) {
            if (std::fwrite(out.data(), 1, fill, f.get()) != fill)
                throw std::runtime_error("write failed for " + sa_path + ": " + std::strerror(errno));
            fill = 0;
        }
        r.advance();
        size_t cand = top;
        for (size_t v = (leaves + top) >> 1; v >= 1; v >>= 1) {
            if (less(loser[v], cand)) std::swap(loser[v], cand);
        }
        top = cand;
        if (tick && (done + 1) % tick_every == 0) tick(static_cast<double>(done + 1) / static_cast<double>(n));
    }
    if ((fill && std::fwrite(out.data(), 1, fill, f.get()) != fill) || std::fflush(f.get()) != 0 ||
        (opt.durable && ::fsync(::fileno(f.get())) != 0))
        throw std::runtime_error("write failed for " + sa_path + ": " + std::strerror(errno));
    return w;
}

}  // namespace merge_detail

/// Merges sorted suffix runs of the token file (see the header) into the
/// suffix-array file sa_path; returns its pointer width.
inline int merge_suffix_runs(const std::string& tokens_path, int token_width,
                             const std::vector<std::string>& run_paths, const std::string& sa_path,
                             const MergeOptions& opt, const sais_detail::Tick& tick) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4, got " + std::to_string(token_width));
    MappedFile text(tokens_path);
    if (text.size() % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size " + std::to_string(text.size()) +
                                    " is not a multiple of the token width " + std::to_string(token_width));
    const uint64_t n = text.size() / static_cast<size_t>(token_width);
    if (n == 0) throw std::invalid_argument(tokens_path + ": empty token file");
    text.advise(MADV_RANDOM);
    int w;
    if (token_width == 1) w = merge_detail::merge_typed<uint8_t>(text, n, run_paths, sa_path, opt, tick);
    else if (token_width == 2) w = merge_detail::merge_typed<uint16_t>(text, n, run_paths, sa_path, opt, tick);
    else w = merge_detail::merge_typed<uint32_t>(text, n, run_paths, sa_path, opt, tick);
    if (tick) tick(1.0);
    return w;
}

}  // namespace infinigram

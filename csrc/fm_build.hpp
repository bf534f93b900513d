// fm_build.hpp — FM-index files of a shard.
//
//   build_fm_shard(tokens_path, token_width, files, sa_sample, isa_sample, wt_block_bits, threads, tick) -> ptr_width
//       from the token file alone: SA-IS in memory, the BWT written in place
//       into the SA buffer; no suffix-array file (the `infinigram build` path)
//   build_fm_files(tokens_path, sa_path, ptr_width, token_width, files, sa_sample, isa_sample, wt_block_bits, threads, tick)
//       from the token file and a suffix-array file (build_suffix_array_file)
//
// Both produce the same bytes. Steps:
//  1. alphabet: the distinct tokens, renamed to dense codes in token order;
//  2. one pass over the SA in rank order: BWT codes, the rows of sampled
//     positions (pos % sa_sample == 0) with pos / sa_sample; then the ISA
//     samples: for each multiple of isa_sample, the index of the SA sample at
//     the first sampled position at or after it (inverting the sample
//     permutation; no row stored twice);
//  3. the wavelet tree of the BWT (one Huffman-shaped tree per block of
//     2^wt_block_bits BWT symbols, 0: fm_block_bits(sigma); RRR bit
//     vectors), built on `threads` threads;
//  4. the three files (fsync'd).
//
// Memory, n positions, bytes per code c (1, 2 or 4), samples ~ 16 n / sa_sample:
//   build_fm_shard: peak = max(tokens (read into memory) + n * 4 (SA, 8 from 2^31
//     positions) + n / 8 (SA-IS type bits),  n * c + tree bits (~n * H0 / 8)
//     + samples). The BWT overwrites the SA it is read from (code k lands at
//     byte k * c, SA[k] is read at byte k * 4 first), the rest of the SA
//     buffer and the token mapping are released before the wavelet tree.
//   build_fm_files: tokens (mapped) + n * c + tree bits + samples; the SA file
//     is streamed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>  // malloc_trim
#endif

#include "fm_index.hpp"
#include "sa_build.hpp"
#include "text.hpp"

namespace infinigram {

/// Output paths of one FM shard.
struct FMBuildFiles {
    std::string fm, fm_sa, fm_isa;
};

namespace fm_build_detail {

using Tick = std::function<void(double)>;

/// SA samples: rows whose position is a multiple of the rate, in row order,
/// with position / rate.
struct Samples {
    std::vector<uint64_t> mark_rows, mark_vals;
};

/// What one pass over the SA yields besides the BWT codes.
struct ScanResult {
    uint64_t primary = UINT64_MAX;  // the row of position 0 (its BWT symbol is $: not stored)
    std::vector<uint64_t> counts;   // occurrences of each code in the stored BWT (n symbols)
    Samples samples;                // including row 0 (position n) when sampled
};

/// The distinct tokens of T[0, n), ascending. O(n + 2^16) for u8/u16 tokens,
/// O(n log n) time and n * 4 bytes for u32.
template <class Tok>
std::vector<uint32_t> alphabet_of(const Tok* T, uint64_t n) {
    std::vector<uint32_t> alphabet;
    if (sizeof(Tok) <= 2) {
        std::vector<uint8_t> seen(size_t(1) << (8 * sizeof(Tok)), 0);
        for (uint64_t i = 0; i < n; ++i) seen[T[i]] = 1;
        for (size_t v = 0; v < seen.size(); ++v)
            if (seen[v]) alphabet.push_back(static_cast<uint32_t>(v));
    } else {
        std::vector<uint32_t> v(T, T + n);
        std::sort(v.begin(), v.end());
        v.erase(std::unique(v.begin(), v.end()), v.end());
        alphabet = std::move(v);
    }
    return alphabet;
}

/// Token -> dense code (its index in the alphabet): a table for u8/u16 tokens,
/// a binary search for u32.
template <class Tok, class Code>
class CodeMap {
public:
    explicit CodeMap(const std::vector<uint32_t>& alphabet) : alphabet_(alphabet) {
        if (sizeof(Tok) <= 2) {
            table_.assign(size_t(1) << (8 * sizeof(Tok)), 0);
            for (size_t c = 0; c < alphabet.size(); ++c) table_[alphabet[c]] = static_cast<Code>(c);
        }
    }
    Code operator()(Tok x) const {
        if (sizeof(Tok) <= 2) return table_[x];
        return static_cast<Code>(std::lower_bound(alphabet_.begin(), alphabet_.end(), static_cast<uint32_t>(x)) -
                                 alphabet_.begin());
    }

private:
    const std::vector<uint32_t>& alphabet_;
    std::vector<Code> table_;
};

/// ISA samples: for k = 0 .. n / t, the index (in row order) of the SA sample at
/// the smallest sampled position >= k * t, i.e. ceil(k t / s) * s (0 when that is
/// >= n: extraction starts at row 0 = position n then). O(n / t + samples).
inline std::vector<uint64_t> isa_samples(const std::vector<uint64_t>& mark_vals, uint64_t n, uint64_t s,
                                         uint64_t t) {
    std::vector<uint64_t> isa(n / t + 1, 0);
    for (uint64_t idx = 0; idx < mark_vals.size(); ++idx) {
        const uint64_t v = mark_vals[idx];
        if (v * s >= n) continue;
        // k with ceil(k t / s) == v:  (v - 1) s < k t <= v s
        uint64_t k = v == 0 ? 0 : ((v - 1) * s) / t + 1;
        for (; k * t <= v * s && k < isa.size(); ++k) isa[k] = idx;
    }
    return isa;
}

/// The pair table of fm.bin (alphabets of at most kPairSigma codes, else
/// empty): P[a * (sigma + 1) + b] = the first row of the suffixes starting
/// with codes a, b (b = sigma: the end of a's rows), from one pass over the
/// stored BWT (`bwt`: rows 0..n without the primary's $): a row of the
/// suffixes starting with b whose BWT symbol is a is one of "a b". O(n +
/// sigma^2) time, sigma^2 counters.
template <class Code>
std::vector<uint64_t> pair_rows(const Code* bwt, uint64_t n, uint64_t primary, const std::vector<uint64_t>& C) {
    const uint64_t sigma = C.size() - 1;
    if (sigma > kPairSigma || n == 0) return {};
    std::vector<uint64_t> cnt(sigma * sigma, 0);  // cnt[a * sigma + b] = occurrences of a b
    for (uint64_t b = 0; b < sigma; ++b)
        for (uint64_t row = C[b]; row < C[b + 1]; ++row)
            if (row != primary) ++cnt[static_cast<uint64_t>(bwt[row - (row > primary)]) * sigma + b];
    const uint64_t last = bwt[0];  // T[n-1]: its suffix (then $) comes first among last's rows
    std::vector<uint64_t> P(sigma * (sigma + 1));
    for (uint64_t a = 0; a < sigma; ++a) {
        uint64_t r = C[a] + (a == last);
        for (uint64_t b = 0; b < sigma; ++b) { P[a * (sigma + 1) + b] = r; r += cnt[a * sigma + b]; }
        P[a * (sigma + 1) + sigma] = r;
        if (r != C[a + 1]) throw std::logic_error("fm build: pair counts do not add up");
    }
    return P;
}

/// Steps 3-4: the wavelet tree of the n stored BWT codes (`bwt`, freed by
/// `release_bwt` once the tree is built) and the three files. `scan.counts`
/// counts every stored code. Ticks 0.8 .. 1.
template <class Code>
void write_fm(const Code* bwt, const std::function<void()>& release_bwt, uint64_t n, int token_width,
              const std::vector<uint32_t>& alphabet, ScanResult& scan, uint64_t s, uint64_t t, int block_bits,
              int threads, const FMBuildFiles& files, const Tick& tick) {
    const uint64_t sigma = alphabet.size();
    std::vector<uint64_t> C(sigma + 1, 0);  // the $ row + the n tokens
    C[0] = 1;
    for (uint64_t x = 0; x < sigma; ++x) C[x + 1] = C[x] + scan.counts[x];
    if (C[sigma] != n + 1) throw std::logic_error("fm build: BWT symbol counts do not add up");
    const std::vector<uint64_t> pairs = pair_rows(bwt, n, scan.primary, C);
    Samples& all = scan.samples;
    const std::vector<uint64_t> isa = isa_samples(all.mark_vals, n, s, t);
    if (tick) tick(0.8);
    FMWavelet wt(bwt, n, sigma, threads, block_bits > 0 ? block_bits : fm_block_bits(sigma));
    release_bwt();
    if (tick) tick(0.95);
    {
        Blob b;
        b.put_u64(kFMMagic);
        b.put_u64(kFMVersion);
        b.put_u64(static_cast<uint64_t>(token_width));
        b.put_u64(n);
        b.put_u64(scan.primary);
        b.put(alphabet);
        b.put(C);
        wt.save(b);
        PackedInts(pairs, bits_for(n + 1)).save(b);
        b.write_file(files.fm);
    }
    {
        Blob b;
        b.put_u64(s);
        EliasFano(all.mark_rows, n + 1).save(b);
        PackedInts(all.mark_vals, bits_for(n / s)).save(b);
        b.write_file(files.fm_sa);
    }
    {
        Blob b;
        b.put_u64(t);
        PackedInts(isa, bits_for(all.mark_vals.size())).save(b);
        b.write_file(files.fm_isa);
    }
    if (tick) tick(1.0);
}

/// Step 2 from an in-memory suffix array, in place: reads SA[0, n) (entries
/// of sizeof(Idx) bytes) in rank order and writes the n stored BWT codes to
/// the start of the same buffer, the $ row dropped: code(T[n-1]) (row 0,
/// suffix n) first, then rows 1..n except the primary. Code k is written at
/// byte <= k * sizeof(Code) after SA[k] (bytes k * sizeof(Idx) ..) was read,
/// so no unread entry is overwritten. All accesses go through memcpy (the
/// buffer is reused as another type). Time O(n), one random text read per
/// entry (prefetched); extra memory: the samples. Ticks f0 .. f1.
template <class Tok, class Code, class Idx>
ScanResult bwt_in_place(const Tok* T, uint64_t n, Idx* SA, const CodeMap<Tok, Code>& code_of, uint64_t sigma,
                        uint64_t s, const Tick& tick, double f0, double f1) {
    static_assert(sizeof(Code) <= sizeof(Idx), "a code must not be wider than an SA entry");
    unsigned char* const buf = reinterpret_cast<unsigned char*>(SA);
    auto sa_at = [buf](uint64_t k) {
        Idx v;
        std::memcpy(&v, buf + k * sizeof(Idx), sizeof(Idx));
        return static_cast<uint64_t>(v);
    };
    ScanResult r;
    r.counts.assign(sigma, 0);
    r.samples.mark_rows.reserve(n / s + 2);
    r.samples.mark_vals.reserve(n / s + 2);
    if (n % s == 0) {  // row 0: position n
        r.samples.mark_rows.push_back(0);
        r.samples.mark_vals.push_back(n / s);
    }
    uint64_t* const cnt = r.counts.data();
    uint64_t j = 0;  // codes written so far (the first one, row 0's, is placed at the end)
    constexpr uint64_t kAhead = 32;  // T[SA[k] - 1] is a random read: prefetch it ahead
    constexpr uint64_t kTick = uint64_t(1) << 22;
    for (uint64_t k0 = 0; k0 < n; k0 += kTick) {
        const uint64_t k1 = std::min(n, k0 + kTick);
        for (uint64_t k = k0; k < k1; ++k) {
            if (k + kAhead < n) {
                const uint64_t ahead = sa_at(k + kAhead);
                __builtin_prefetch(T + (ahead ? ahead - 1 : 0));
            }
            const uint64_t pos = sa_at(k);
            if (pos >= n) throw std::logic_error("fm build: suffix array entry out of range");
            if (pos == 0) {
                r.primary = k + 1;
            } else {
                const Code c = code_of(T[pos - 1]);
                ++cnt[c];
                std::memcpy(buf + j * sizeof(Code), &c, sizeof(Code));
                ++j;
            }
            if (pos % s == 0) {
                r.samples.mark_rows.push_back(k + 1);
                r.samples.mark_vals.push_back(pos / s);
            }
        }
        if (tick) tick(f0 + (f1 - f0) * static_cast<double>(k1) / static_cast<double>(n));
    }
    if (r.primary == UINT64_MAX || j != n - 1) throw std::logic_error("fm build: position 0 missing from the suffix array");
    std::memmove(buf + sizeof(Code), buf, j * sizeof(Code));
    const Code first = code_of(T[n - 1]);
    std::memcpy(buf, &first, sizeof(Code));
    ++cnt[first];
    return r;
}

/// build_fm_shard for one token type, SA entry type and code type. `tokens`
/// (the token file's bytes) is released after the BWT pass.
template <class Tok, class Idx, class Code>
void shard_typed(build_detail::HugeBuffer<uint8_t>& tokens, uint64_t n, int token_width, const std::vector<uint32_t>& alphabet,
                 const FMBuildFiles& files, uint64_t s, uint64_t t, int block_bits, int threads, const Tick& tick) {
    const Tok* T = reinterpret_cast<const Tok*>(tokens.data());
    build_detail::HugeBuffer<Idx> SA;
    build_detail::with_sa_text(tokens.data(), n, token_width, [&](const auto* text, uint64_t K) {
        using Char = std::remove_const_t<std::remove_pointer_t<decltype(text)>>;
        const sais_detail::Tick sa_tick = [&tick](double f) { if (tick) tick(0.7 * f); };
        SA = build_detail::suffix_array_buffer<Char, Idx>(text, n, K, sa_tick);
    });
    ScanResult scan;
    {
        const CodeMap<Tok, Code> code_of(alphabet);
        scan = bwt_in_place<Tok, Code, Idx>(T, n, SA.data(), code_of, alphabet.size(), s, tick, 0.7, 0.78);
    }
    SA.release_from(n * sizeof(Code));  // the BWT stays; the rest of the SA goes
    tokens.reset();
    const Code* bwt = reinterpret_cast<const Code*>(SA.data());
    write_fm<Code>(bwt, [&SA] { SA.reset(); }, n, token_width, alphabet, scan, s, t, block_bits, threads, files, tick);
}

/// build_fm_files for one token type and code type: step 2 from the SA file
/// (read in chunks, split across threads by rank range) into a vector of
/// n + 1 codes (row 0 .. n; the primary row dropped afterwards).
template <class Tok, class Code>
void from_sa_file_typed(const Tok* T, uint64_t n, int token_width, const std::string& sa_path, int w,
                        const std::vector<uint32_t>& alphabet, const FMBuildFiles& files, uint64_t s, uint64_t t,
                        int block_bits, int threads, const Tick& tick) {
    const uint64_t sigma = alphabet.size();
    const CodeMap<Tok, Code> code_of(alphabet);
    std::vector<Code> bwt(n + 1);
    bwt[0] = code_of(T[n - 1]);  // row 0: the suffix at n
    std::vector<Samples> part(threads);
    std::vector<uint64_t> primary_of(threads, UINT64_MAX);
    std::vector<std::vector<uint64_t>> counts(threads, std::vector<uint64_t>(sigma, 0));
    std::atomic<uint64_t> done{0};
    {
        std::vector<std::thread> pool;
        std::exception_ptr err;
        std::mutex mu;
        auto body = [&](int th) {
            try {
                std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(sa_path.c_str(), "rb"), &std::fclose);
                if (!f) throw std::runtime_error("cannot open " + sa_path);
                const uint64_t r0 = n * th / threads, r1 = n * (th + 1) / threads;
                if (std::fseek(f.get(), static_cast<long>(r0 * w), SEEK_SET) != 0)
                    throw std::runtime_error("seek failed in " + sa_path);
                constexpr uint64_t kChunk = 1 << 18;
                std::vector<uint8_t> buf(kChunk * w);
                Samples& sp = part[th];
                auto& cnt = counts[th];
                for (uint64_t r = r0; r < r1; r += kChunk) {
                    const uint64_t e = std::min(r1, r + kChunk);
                    const size_t bytes = static_cast<size_t>((e - r) * w);
                    if (std::fread(buf.data(), 1, bytes, f.get()) != bytes)
                        throw std::runtime_error("short read in " + sa_path);
                    const uint8_t* p = buf.data();
                    constexpr uint64_t kAhead = 32;  // T[SA[k] - 1] is a random read: prefetch it ahead
                    for (uint64_t k = r; k < e; ++k, p += w) {
                        if (k + kAhead < e) {
                            const uint64_t ahead = load_le(p + kAhead * w, w);
                            __builtin_prefetch(T + (ahead ? ahead - 1 : 0));
                        }
                        const uint64_t pos = load_le(p, w);
                        const uint64_t row = k + 1;
                        if (pos >= n) throw std::runtime_error(sa_path + ": entry out of range");
                        if (pos == 0) {
                            primary_of[th] = row;
                            bwt[row] = 0;
                        } else {
                            const Code c = code_of(T[pos - 1]);
                            bwt[row] = c;
                            ++cnt[c];
                        }
                        if (pos % s == 0) {
                            sp.mark_rows.push_back(row);
                            sp.mark_vals.push_back(pos / s);
                        }
                    }
                    done += e - r;
                    if (th == 0 && tick) tick(0.75 * static_cast<double>(done.load()) / static_cast<double>(n));
                }
            } catch (...) {
                std::lock_guard<std::mutex> g(mu);
                err = std::current_exception();
            }
        };
        for (int th = 1; th < threads; ++th) pool.emplace_back(body, th);
        body(0);
        for (auto& x : pool) x.join();
        if (err) std::rethrow_exception(err);
    }
    ScanResult scan;
    for (uint64_t p : primary_of)
        if (p != UINT64_MAX) scan.primary = p;
    if (scan.primary == UINT64_MAX)
        throw std::runtime_error(sa_path + ": position 0 missing from the suffix array");
    scan.counts.assign(sigma, 0);
    for (auto& c : counts)
        for (uint64_t x = 0; x < sigma; ++x) scan.counts[x] += c[x];
    ++scan.counts[bwt[0]];
    counts.clear();
    // samples: position n (row 0) first if sampled, then in row order
    Samples& all = scan.samples;
    if (n % s == 0) {
        all.mark_rows.push_back(0);
        all.mark_vals.push_back(n / s);
    }
    for (auto& sp : part) {
        all.mark_rows.insert(all.mark_rows.end(), sp.mark_rows.begin(), sp.mark_rows.end());
        all.mark_vals.insert(all.mark_vals.end(), sp.mark_vals.begin(), sp.mark_vals.end());
        sp = Samples();
    }
    // drop the primary row: the tree holds n symbols
    const uint64_t primary = scan.primary;
    std::memmove(bwt.data() + primary, bwt.data() + primary + 1, (n - primary) * sizeof(Code));
    bwt.resize(n);
    write_fm<Code>(bwt.data(), [&bwt] { bwt = std::vector<Code>(); }, n, token_width, alphabet, scan, s, t,
                   block_bits, threads, files, tick);
}

/// Calls f(Tok*, Code*) (null pointers carrying the types) for the token width
/// and the alphabet size (codes of 1, 2 or 4 bytes).
template <class F>
void dispatch_types(int token_width, uint64_t sigma, F&& f) {
    auto with_code = [&](auto* tok) {
        if (sigma <= 256) f(tok, static_cast<uint8_t*>(nullptr));
        else if (sigma <= 65536) f(tok, static_cast<uint16_t*>(nullptr));
        else f(tok, static_cast<uint32_t*>(nullptr));
    };
    if (token_width == 1) with_code(static_cast<uint8_t*>(nullptr));
    else if (token_width == 2) with_code(static_cast<uint16_t*>(nullptr));
    else with_code(static_cast<uint32_t*>(nullptr));
}

/// The alphabet of n tokens of `token_width` bytes at `data`.
inline std::vector<uint32_t> alphabet_of_bytes(const uint8_t* data, uint64_t n, int token_width) {
    if (token_width == 1) return alphabet_of(data, n);
    if (token_width == 2) return alphabet_of(reinterpret_cast<const uint16_t*>(data), n);
    return alphabet_of(reinterpret_cast<const uint32_t*>(data), n);
}

/// Returns the free memory of the heap (all malloc arenas, the Python
/// interpreter's included) to the system. glibc keeps freed blocks below its
/// (self-raising, up to 32 MiB) mmap threshold resident otherwise: after a
/// shard's build that was ~100 MB that the next shard's suffix sort then
/// added to. No-op on other C libraries. Time O(heap size).
inline void release_free_heap() {
#if defined(__GLIBC__)
    ::malloc_trim(0);
#endif
}

/// Checks a token file's size; returns its number of tokens (>= 1).
inline uint64_t check_tokens(size_t size, const std::string& tokens_path, int token_width) {
    if (size % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size " + std::to_string(size) +
                                    " is not a multiple of the token width " + std::to_string(token_width));
    const uint64_t n = size / static_cast<size_t>(token_width);
    if (n == 0) throw std::invalid_argument(tokens_path + ": empty token file");
    return n;
}

/// Checks the arguments both builds share.
inline void check_args(int token_width, uint64_t sa_sample, uint64_t isa_sample, int wt_block_bits) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4, got " + std::to_string(token_width));
    if (sa_sample < 1 || isa_sample < 1) throw std::invalid_argument("sa_sample and isa_sample must be >= 1");
    if (wt_block_bits < 0 || wt_block_bits > 62)
        throw std::invalid_argument("wt_block_bits must be in [0, 62] (0: by alphabet size), got " + std::to_string(wt_block_bits));
}

}  // namespace fm_build_detail

/// Writes a shard's fm.bin / fm_sa.bin / fm_isa.bin from its token file alone
/// (SA-IS in memory, no suffix-array file); returns the pointer width the
/// shard's positions need (ptr_width_for(n), for the manifest). The suffix
/// sort and the BWT pass run on one thread; the wavelet tree on `threads`
/// (<= 0: all cores). Time O(n); memory: see the file header (about
/// tokens + 4.2 n bytes below 2^31 positions, far less after the BWT pass).
/// tick(fraction) reports progress (and may throw to cancel).
inline int build_fm_shard(const std::string& tokens_path, int token_width, const FMBuildFiles& files,
                          uint64_t sa_sample, uint64_t isa_sample, int wt_block_bits, int threads,
                          const std::function<void(double)>& tick) {
    using namespace fm_build_detail;
    check_args(token_width, sa_sample, isa_sample, wt_block_bits);
    size_t size = 0;
    build_detail::HugeBuffer<uint8_t> text = build_detail::read_file_huge(tokens_path, size);
    const uint64_t n = check_tokens(size, tokens_path, token_width);
    if (threads <= 0) threads = resolve_threads(0);
    const std::vector<uint32_t> alphabet = alphabet_of_bytes(text.data(), n, token_width);
    dispatch_types(token_width, alphabet.size(), [&](auto* tok, auto* code) {
        using Tok = std::remove_pointer_t<decltype(tok)>;
        using Code = std::remove_pointer_t<decltype(code)>;
        if (!build_detail::needs_sa64(n))
            shard_typed<Tok, int32_t, Code>(text, n, token_width, alphabet, files, sa_sample, isa_sample, wt_block_bits,
                                            threads, tick);
        else
            shard_typed<Tok, int64_t, Code>(text, n, token_width, alphabet, files, sa_sample, isa_sample, wt_block_bits,
                                            threads, tick);
    });
    release_free_heap();
    return ptr_width_for(n);
}

/// Writes fm.bin / fm_sa.bin / fm_isa.bin for a shard from its token file and
/// suffix-array file (ptr_width bytes per entry). threads <= 0: all cores.
inline void build_fm_files(const std::string& tokens_path, const std::string& sa_path, int ptr_width, int token_width,
                           const FMBuildFiles& files, uint64_t sa_sample, uint64_t isa_sample, int wt_block_bits,
                           int threads, const std::function<void(double)>& tick) {
    using namespace fm_build_detail;
    check_args(token_width, sa_sample, isa_sample, wt_block_bits);
    MappedFile f(tokens_path);
    const uint64_t n = check_tokens(f.size(), tokens_path, token_width);
    f.advise(MADV_WILLNEED);
    {
        MappedFile sa(sa_path);
        if (sa.size() != n * static_cast<uint64_t>(ptr_width))
            throw std::invalid_argument(sa_path + ": size does not match the token file");
    }
    if (threads <= 0) threads = resolve_threads(0);
    threads = std::max(1, std::min<int>(threads, static_cast<int>(n / (1 << 20) + 1)));
    const std::vector<uint32_t> alphabet = alphabet_of_bytes(f.data(), n, token_width);
    dispatch_types(token_width, alphabet.size(), [&](auto* tok, auto* code) {
        using Tok = std::remove_pointer_t<decltype(tok)>;
        using Code = std::remove_pointer_t<decltype(code)>;
        from_sa_file_typed<Tok, Code>(reinterpret_cast<const Tok*>(f.data()), n, token_width, sa_path, ptr_width,
                                      alphabet, files, sa_sample, isa_sample, wt_block_bits, threads, tick);
    });
}

}  // namespace infinigram

// fm_build.hpp — FM-index files of a shard from its token file and suffix array.
//
//   build_fm_files(tokens_path, sa_path, ptr_width, token_width,
//                  fm_path, fm_sa_path, fm_isa_path, sa_sample, isa_sample, threads, tick)
//
// The suffix array is the one build_suffix_array_file (SA-IS) wrote. Steps:
//  1. alphabet: the distinct tokens, renamed to dense codes in token order;
//  2. one pass over the SA (read in chunks, split across threads by rank
//     range): BWT codes, the rows of sampled positions (pos % sa_sample == 0)
//     with pos / sa_sample; then the ISA samples: for each multiple of
//     isa_sample, the index of the SA sample at the first sampled position
//     at or after it (inverting the sample permutation; no row stored twice);
//  3. the Huffman-shaped wavelet tree of the BWT (RRR bit vectors), built on
//     `threads` threads;
//  4. the three files (fsync'd).
// Peak memory: tokens (mapped) + n codes (1, 2 or 4 bytes each) + the
// uncompressed tree bits (~n * H0 / 8 bytes) + samples; the SA is streamed.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fm_index.hpp"
#include "text.hpp"

namespace infinigram {

namespace fm_build_detail {

using Tick = std::function<void(double)>;

struct Samples {
    std::vector<uint64_t> mark_rows, mark_vals;  // in row order
};

template <class Tok, class Code>
void build_typed(const Tok* T, uint64_t n, const std::string& sa_path, int w, const std::vector<uint32_t>& alphabet,
                 const std::string& fm_path, const std::string& fm_sa_path, const std::string& fm_isa_path,
                 uint64_t s, uint64_t t, int threads, const Tick& tick) {
    const uint64_t sigma = alphabet.size();
    // token -> code
    std::vector<Code> table;
    auto code_of = [&](Tok x) -> Code {
        if (sizeof(Tok) <= 2) return table[x];
        return static_cast<Code>(std::lower_bound(alphabet.begin(), alphabet.end(), static_cast<uint32_t>(x)) -
                                 alphabet.begin());
    };
    if (sizeof(Tok) <= 2) {
        table.assign(size_t(1) << (8 * sizeof(Tok)), 0);
        for (size_t c = 0; c < sigma; ++c) table[alphabet[c]] = static_cast<Code>(c);
    }
    // ---- 2. one pass over the SA
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
                    if (th == 0 && tick) tick(0.5 * static_cast<double>(done.load()) / static_cast<double>(n));
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
    uint64_t primary = UINT64_MAX;
    for (uint64_t p : primary_of)
        if (p != UINT64_MAX) primary = p;
    if (primary == UINT64_MAX) throw std::runtime_error(sa_path + ": position 0 missing from the suffix array");
    // C array: $ row + the n tokens (row 0 holds T[n-1], counted here)
    std::vector<uint64_t> C(sigma + 1, 0);
    {
        std::vector<uint64_t> cnt(sigma, 0);
        for (auto& c : counts)
            for (uint64_t x = 0; x < sigma; ++x) cnt[x] += c[x];
        ++cnt[bwt[0]];
        C[0] = 1;
        for (uint64_t x = 0; x < sigma; ++x) C[x + 1] = C[x] + cnt[x];
    }
    counts.clear();
    // samples: position n (row 0) first if sampled, then in row order
    Samples all;
    if (n % s == 0) {
        all.mark_rows.push_back(0);
        all.mark_vals.push_back(n / s);
    }
    for (auto& sp : part) {
        all.mark_rows.insert(all.mark_rows.end(), sp.mark_rows.begin(), sp.mark_rows.end());
        all.mark_vals.insert(all.mark_vals.end(), sp.mark_vals.begin(), sp.mark_vals.end());
        sp = Samples();
    }
    // ISA samples: for k = 0 .. n / t, the index (in row order) of the SA sample at the
    // smallest sampled position >= k * t, i.e. ceil(k t / s) * s (0 when that is >= n:
    // extraction starts at row 0 = position n then)
    std::vector<uint64_t> isa(n / t + 1, 0);
    for (uint64_t idx = 0; idx < all.mark_vals.size(); ++idx) {
        const uint64_t v = all.mark_vals[idx];
        if (v * s >= n) continue;
        // k with ceil(k t / s) == v:  (v - 1) s < k t <= v s
        uint64_t k = v == 0 ? 0 : ((v - 1) * s) / t + 1;
        for (; k * t <= v * s && k < isa.size(); ++k) isa[k] = idx;
    }
    // drop the primary row: the tree holds n symbols
    std::memmove(bwt.data() + primary, bwt.data() + primary + 1, (n - primary) * sizeof(Code));
    bwt.resize(n);
    if (tick) tick(0.55);
    FMWavelet wt(bwt.data(), n, sigma, threads);
    bwt = std::vector<Code>();
    if (tick) tick(0.9);
    // ---- 4. files
    {
        Blob b;
        b.put_u64(kFMMagic);
        b.put_u64(kFMVersion);
        b.put_u64(sizeof(Tok));
        b.put_u64(n);
        b.put_u64(primary);
        b.put(alphabet);
        b.put(C);
        wt.save(b);
        b.write_file(fm_path);
    }
    {
        Blob b;
        b.put_u64(s);
        EliasFano(all.mark_rows, n + 1).save(b);
        PackedInts(all.mark_vals, bits_for(n / s)).save(b);
        b.write_file(fm_sa_path);
    }
    {
        Blob b;
        b.put_u64(t);
        PackedInts(isa, bits_for(all.mark_vals.size())).save(b);
        b.write_file(fm_isa_path);
    }
    if (tick) tick(1.0);
}

}  // namespace fm_build_detail

/// Writes fm.bin / fm_sa.bin / fm_isa.bin for a shard. threads <= 0: all cores.
inline void build_fm_files(const std::string& tokens_path, const std::string& sa_path, int ptr_width, int token_width,
                           const std::string& fm_path, const std::string& fm_sa_path, const std::string& fm_isa_path,
                           uint64_t sa_sample, uint64_t isa_sample, int threads,
                           const std::function<void(double)>& tick) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4");
    if (sa_sample < 1 || isa_sample < 1) throw std::invalid_argument("sa_sample and isa_sample must be >= 1");
    if (threads <= 0) threads = resolve_threads(0);
    MappedFile f(tokens_path);
    if (f.size() % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size is not a multiple of the token width");
    const uint64_t n = f.size() / static_cast<size_t>(token_width);
    if (n == 0) throw std::invalid_argument(tokens_path + ": empty token file");
    {
        MappedFile sa(sa_path);
        if (sa.size() != n * static_cast<uint64_t>(ptr_width))
            throw std::invalid_argument(sa_path + ": size does not match the token file");
    }
    f.advise(MADV_WILLNEED);
    threads = std::max(1, std::min<int>(threads, static_cast<int>(n / (1 << 20) + 1)));
    auto go = [&](auto* T) {
        using Tok = std::remove_const_t<std::remove_pointer_t<decltype(T)>>;
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
        const uint64_t sigma = alphabet.size();
        using namespace fm_build_detail;
        if (sigma <= 256)
            build_typed<Tok, uint8_t>(T, n, sa_path, ptr_width, alphabet, fm_path, fm_sa_path, fm_isa_path, sa_sample,
                                      isa_sample, threads, tick);
        else if (sigma <= 65536)
            build_typed<Tok, uint16_t>(T, n, sa_path, ptr_width, alphabet, fm_path, fm_sa_path, fm_isa_path, sa_sample,
                                       isa_sample, threads, tick);
        else
            build_typed<Tok, uint32_t>(T, n, sa_path, ptr_width, alphabet, fm_path, fm_sa_path, fm_isa_path, sa_sample,
                                       isa_sample, threads, tick);
    };
    if (token_width == 1) go(reinterpret_cast<const uint8_t*>(f.data()));
    else if (token_width == 2) go(reinterpret_cast<const uint16_t*>(f.data()));
    else go(reinterpret_cast<const uint32_t*>(f.data()));
}

}  // namespace infinigram

// sa_parts.hpp — the suffixes starting in one part of a token file, sorted
// in the order of the whole text (a "run" of the out-of-core build).
//
//   sort_suffix_part(tokens_path, token_width, a, b, run_path, tick) -> count
//
// Writes the positions of [a, b) in the order the suffix array of the whole
// token file T[0, n) lists them (the order sa_build.hpp's in-memory SA-IS
// gives: unsigned token values, the separator the largest, a suffix that is
// a proper prefix of another first), each in ptr_width_for(n) bytes, little
// endian: the run file has the format of sa.bin restricted to the part.
// sa_merge.hpp merges the runs of all parts into the shard's sa.bin.
//
// Algorithm (exact for every text; the boundary idea of Kärkkäinen & Kempa's
// SAscan): two suffixes of the part compare as their tokens until the
// shorter one runs into b; SA-IS on T[a, b) alone would then put it first,
// which is wrong whenever the whole-text suffix T[b..] is larger than the
// rest of the longer one. So each position k of the part gets one bit
//   gt[k] = (T[k..n) > T[b..n))
// and SA-IS sorts the string X of b - a + 1 symbols
//   X[k - a] = 3·v(T[k]) + 2·gt[k]   for k in [a, b),   X[b - a] = 3·v(T[b]) + 1
// (v: the token order renamed to a small alphabet). Where two part suffixes
// agree on their tokens but not on gt, the bits order them as the whole-text
// suffixes at that place do (they lie on either side of T[b..]); where the
// shorter reaches X's last symbol, that symbol stands for T[b..] and compares
// with 3·v + 2·gt exactly as T[b..] does with the longer suffix's rest
// (never equal: 1 mod 3 against 0 or 2). So the suffix order of X is the
// whole-text order; the entry of the extra symbol is dropped. The last part
// (b = n) needs no bits: SA-IS's virtual end is the text's.
// The bits come from one Z-algorithm pass: Z of P = T[b..n) for the shifts
// < b - a, then the longest common prefix of every T[k..] with P (the
// classic text-against-pattern scan), each in amortised O(1) plus the
// pattern's longest match, which is scanned once (a long repeat of T[b..]
// costs one sequential read of it, not one per position).
//
// Time O((b - a) + longest match of T[b..] inside the part) plus SA-IS's
// O(b - a). Memory, m = b - a positions: the Z pass m·z (z = 4 bytes below
// 2^32 positions, else 8) + m/8 bits; the sort m·c (c = 2 bytes per symbol
// for u8 tokens, 4 otherwise) + m·s (s = 4 below 2^31, else 8) + SA-IS's
// type bits + 2·3σ buckets (u32: at most ~4 bytes per position, else
// the alphabet is ranked: m·4 for the sorted values), + the part's pages of
// the token file (m·w, w the token width). python/infinigram/build_ooc.py
// plans parts with (2 + 4 + 1) bytes per position for u8, (4 + 4 + 2) for
// u16, (4 + 4 + 4 + 4) for u32, + 0.25 + 8 MiB. Runs of several parts are independent: sort them on as many
// threads as the memory allows.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sa_build.hpp"
#include "sais.hpp"
#include "text.hpp"

namespace infinigram {

namespace parts_detail {

/// gt[k - a] = (T[k..n) > T[b..n)) for k in [a, b), b < n: see the header.
/// Z: Z-values of P = T[b..n) for shifts < b - a. Time O(b - a + longest match).
template <class Tok, class Z>
std::vector<uint64_t> greater_than_boundary(const Tok* T, uint64_t n, uint64_t a, uint64_t b,
                                            const sais_detail::Tick& tick) {
    const uint64_t m = b - a, plen = n - b;
    const Tok* P = T + b;
    std::vector<uint64_t> gt((m + 63) / 64, 0);
    {
        std::vector<Z> z(std::max<uint64_t>(m, 1));
        z[0] = static_cast<Z>(plen);
        // Z of the pattern for shifts d in [1, m): window [l, r) with P[l, r) = P[0, r - l).
        uint64_t l = 0, r = 0;
        for (uint64_t d = 1; d < m; ++d) {
            uint64_t k = 0;
            if (d < r) k = std::min<uint64_t>(z[d - l], r - d);
            if (d + k >= r) {
                while (d + k < plen && P[k] == P[d + k]) ++k;
                l = d;
                r = d + k;
            }
            z[d] = static_cast<Z>(k);
        }
        if (tick) tick(0.1);
        // The longest common prefix of each T[i..] (i in [a, b)) with P, by the same window.
        l = r = a;
        for (uint64_t i = a; i < b; ++i) {
            uint64_t k = 0;
            if (i < r) k = std::min<uint64_t>(z[i - l], r - i);
            if (i + k >= r) {
                while (k < plen && T[i + k] == P[k]) ++k;  // i + k < b + k <= n
                l = i;
                r = i + k;
            }
            // T[i..] is longer than P: larger when P is its prefix.
            const bool g = k == plen || T[i + k] > P[k];
            if (g) gt[(i - a) >> 6] |= uint64_t(1) << ((i - a) & 63);
        }
    }
    return gt;
}

/// Sorts X (m + 1 symbols, alphabet K) and writes positions a + SA[r] (the
/// entry m dropped when `drop_last`) packed to w bytes.
template <class Char>
void sort_and_write(const Char* X, uint64_t len, uint64_t K, uint64_t a, uint64_t skip, int w,
                    const std::string& run_path, const sais_detail::Tick& tick) {
    auto run = [&](auto tag) {
        using Idx = decltype(tag);
        build_detail::HugeBuffer<Idx> SA(len);
        sais_detail::Tick sub;
        if (tick) sub = [&](double f) { tick(0.2 + 0.75 * f); };
        suffix_array<Char, Idx>(X, static_cast<Idx>(len), static_cast<Idx>(K), SA.data(), sub);
        // In place: positions shifted by a, the dropped entry squeezed out (Idx is
        // wide enough for a + SA[r] only when a is small, so write 64-bit chunks).
        std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(run_path.c_str(), "wb"), &std::fclose);
        if (!f) throw std::runtime_error("cannot create " + run_path + ": " + std::strerror(errno));
        constexpr uint64_t kChunk = 1 << 16;
        std::vector<uint8_t> buf(kChunk * static_cast<size_t>(w));
        size_t fill = 0;
        for (uint64_t r = 0; r < len; ++r) {
            const uint64_t s = static_cast<uint64_t>(SA.data()[r]);
            if (s == skip) continue;
            const uint64_t v = a + s;
            std::memcpy(buf.data() + fill, &v, static_cast<size_t>(w));  // little-endian host
            fill += static_cast<size_t>(w);
            if (fill == buf.size()) {
                if (std::fwrite(buf.data(), 1, fill, f.get()) != fill)
                    throw std::runtime_error("write failed for " + run_path + ": " + std::strerror(errno));
                fill = 0;
            }
        }
        if ((fill && std::fwrite(buf.data(), 1, fill, f.get()) != fill) || std::fflush(f.get()) != 0)
            throw std::runtime_error("write failed for " + run_path + ": " + std::strerror(errno));
    };
    if (len < (uint64_t(1) << 31) - 2 && K < (uint64_t(1) << 31) - 2) run(int32_t{});
    else run(int64_t{});
}

template <class Tok, class Char>
uint64_t sort_part_typed(const Tok* T, uint64_t n, uint64_t a, uint64_t b, int w, const std::string& run_path,
                         const sais_detail::Tick& tick) {
    const uint64_t m = b - a;
    const bool tail = b < n;
    std::vector<uint64_t> gt;
    if (tail) {
        if (n < (uint64_t(1) << 32)) gt = greater_than_boundary<Tok, uint32_t>(T, n, a, b, tick);
        else gt = greater_than_boundary<Tok, uint64_t>(T, n, a, b, tick);
    }
    if (tick) tick(0.15);
    const uint64_t len = m + (tail ? 1 : 0);
    // v: token order on a small alphabet. u8/u16: the token itself. u32: the
    // separator renamed max + 1 when the ids are dense, else ranks (both over
    // the part and T[b]), as build_detail::with_sa_text does for whole files.
    std::vector<uint32_t> vals;
    uint64_t sigma;
    uint32_t mx = 0;
    bool dense = true;
    if (sizeof(Tok) < 4) {
        sigma = uint64_t(1) << (8 * sizeof(Tok));
    } else {
        const uint32_t sep = separator_of<uint32_t>();
        for (uint64_t i = a; i < a + len; ++i)
            if (T[i] != sep && T[i] > mx) mx = static_cast<uint32_t>(T[i]);
        // (dense only while the 2 * 3σ bucket entries stay within ~4 bytes per position)
        dense = 3 * (uint64_t(mx) + 2) <= std::min<uint64_t>(len / 2 + 65536, (uint64_t(1) << 31) - 2);
        if (dense) {
            sigma = uint64_t(mx) + 2;
        } else {
            vals.assign(T + a, T + a + len);
            std::sort(vals.begin(), vals.end());
            vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
            vals.shrink_to_fit();
            sigma = vals.size();
        }
    }
    auto v = [&](Tok t) -> uint64_t {
        if (sizeof(Tok) < 4) return t;
        if (dense) return t == separator_of<Tok>() ? uint64_t(mx) + 1 : uint64_t(t);
        return static_cast<uint64_t>(std::lower_bound(vals.begin(), vals.end(), static_cast<uint32_t>(t)) - vals.begin());
    };
    build_detail::HugeBuffer<Char> X(len);
    Char* x = X.data();
    for (uint64_t k = 0; k < m; ++k) {
        const uint64_t g = tail ? (gt[k >> 6] >> (k & 63)) & 1 : 0;
        x[k] = static_cast<Char>(3 * v(T[a + k]) + 2 * g);
    }
    if (tail) x[m] = static_cast<Char>(3 * v(T[b]) + 1);
    std::vector<uint64_t>().swap(gt);
    std::vector<uint32_t>().swap(vals);
    if (tick) tick(0.2);
    sort_and_write<Char>(x, len, 3 * sigma, a, tail ? m : ~uint64_t(0), w, run_path, tick);
    return m;
}

}  // namespace parts_detail

/// Sorts the suffixes starting in [a, b) of the token file in whole-text
/// order and writes their positions to run_path (ptr_width_for(n) bytes
/// each). Returns b - a. See the header for the algorithm and its cost.
inline uint64_t sort_suffix_part(const std::string& tokens_path, int token_width, uint64_t a, uint64_t b,
                                 const std::string& run_path, const sais_detail::Tick& tick) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4, got " + std::to_string(token_width));
    MappedFile file(tokens_path);
    if (file.size() % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size " + std::to_string(file.size()) +
                                    " is not a multiple of the token width " + std::to_string(token_width));
    const uint64_t n = file.size() / static_cast<size_t>(token_width);
    if (!(a < b && b <= n))
        throw std::invalid_argument("part [" + std::to_string(a) + ", " + std::to_string(b) +
                                    ") is empty or outside the token file's " + std::to_string(n) + " positions");
    const int w = ptr_width_for(n);
    const uint8_t* d = file.data();
    uint64_t r;
    if (token_width == 1)
        r = parts_detail::sort_part_typed<uint8_t, uint16_t>(d, n, a, b, w, run_path, tick);
    else if (token_width == 2)
        r = parts_detail::sort_part_typed<uint16_t, uint32_t>(reinterpret_cast<const uint16_t*>(d), n, a, b, w,
                                                              run_path, tick);
    else
        r = parts_detail::sort_part_typed<uint32_t, uint32_t>(reinterpret_cast<const uint32_t*>(d), n, a, b, w,
                                                              run_path, tick);
    if (tick) tick(1.0);
    return r;
}

}  // namespace infinigram

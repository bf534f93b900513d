// sa_build.hpp — build a shard's suffix array file from its token file.
//
//   build_suffix_array_file(tokens_path, sa_path, token_width, tick) -> ptr_width
//
// Reads the token file (memory-mapped), runs SA-IS (sais.hpp) with 32-bit
// entries when the shard has < 2^31 positions and 64-bit entries above, and
// writes the SA packed to ptr_width_for(n) bytes per entry, little endian.
// u32 tokens are copied with the separator 2^32-1 renamed max_real+1, or
// rank-compacted when the ids are sparse, so bucket arrays stay O(min(V, n)).
// Peak memory: token file + n * sizeof(Idx) (+ n * 4 for u32 remapping).
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <memory>
#include <string>
#include <vector>

#include "sais.hpp"
#include "text.hpp"

namespace infinigram {

namespace build_detail {

template <class Idx>
void write_packed(const Idx* SA, uint64_t n, int w, const std::string& path, bool durable = true) {
    std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "wb"), &std::fclose);
    if (!f) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    if (static_cast<size_t>(w) == sizeof(Idx)) {
        if (n && std::fwrite(SA, sizeof(Idx), n, f.get()) != n)
            throw std::runtime_error("write failed for " + path + ": " + std::strerror(errno));
    } else {
        constexpr uint64_t kChunk = 1 << 20;
        std::vector<uint8_t> buf(kChunk * static_cast<size_t>(w));
        for (uint64_t s = 0; s < n; s += kChunk) {
            uint64_t e = std::min(n, s + kChunk);
            uint8_t* o = buf.data();
            for (uint64_t i = s; i < e; ++i) {
                uint64_t v = static_cast<uint64_t>(SA[i]);
                std::memcpy(o, &v, static_cast<size_t>(w));  // little-endian host
                o += w;
            }
            size_t bytes = static_cast<size_t>(o - buf.data());
            if (std::fwrite(buf.data(), 1, bytes, f.get()) != bytes)
                throw std::runtime_error("write failed for " + path + ": " + std::strerror(errno));
        }
    }
    if (std::fflush(f.get()) != 0 || (durable && ::fsync(::fileno(f.get())) != 0))
        throw std::runtime_error("write failed for " + path + ": " + std::strerror(errno));
}

/// An uninitialised array in anonymous memory, 2 MiB aligned and marked for
/// transparent huge pages: SA-IS touches it (and the text) at random, and
/// with 4 KiB pages nearly every access is a TLB miss (measured here: 10-15%
/// faster construction on 100 MB of text with huge pages).
template <class T>
class HugeBuffer {
public:
    explicit HugeBuffer(size_t n) : bytes_(round_up(std::max<size_t>(n, 1) * sizeof(T))) {
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        ::madvise(p, bytes_, MADV_HUGEPAGE);  // a hint: ignored where THP is off
        data_ = static_cast<T*>(p);
    }
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    ~HugeBuffer() { ::munmap(data_, bytes_); }
    T* data() { return data_; }

private:
    static size_t round_up(size_t b) { return (b + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1); }
    size_t bytes_;
    T* data_;
};

template <class Char, class Idx>
void build_typed(const Char* T, uint64_t n, uint64_t K, const std::string& sa_path, int w,
                 const sais_detail::Tick& tick, bool durable) {
    // Uninitialised on purpose: SA-IS writes every entry before reading it.
    // (Building in place in a MAP_SHARED output file was measured slower:
    // writeback of randomly dirtied pages during construction.)
    HugeBuffer<Idx> SA(n);
    suffix_array<Char, Idx>(T, static_cast<Idx>(n), static_cast<Idx>(K), SA.data(), tick);
    write_packed<Idx>(SA.data(), n, w, sa_path, durable);
}

template <class Char>
void build_any_idx(const Char* T, uint64_t n, uint64_t K, const std::string& sa_path, int w,
                   const sais_detail::Tick& tick, bool durable = true) {
    if (n < (uint64_t(1) << 31) - 2)
        build_typed<Char, int32_t>(T, n, K, sa_path, w, tick, durable);
    else
        build_typed<Char, int64_t>(T, n, K, sa_path, w, tick, durable);
}

}  // namespace build_detail

/// Builds `sa_path` from `tokens_path`; returns the pointer width in bytes.
/// durable = false skips the fsync (a temporary SA, e.g. for the FM-index build).
inline int build_suffix_array_file(const std::string& tokens_path, const std::string& sa_path, int token_width,
                                   const sais_detail::Tick& tick, bool durable = true) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4, got " + std::to_string(token_width));
    MappedFile f(tokens_path);
    if (f.size() % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size " + std::to_string(f.size()) +
                                    " is not a multiple of the token width " + std::to_string(token_width));
    const uint64_t n = f.size() / static_cast<size_t>(token_width);
    const int w = ptr_width_for(n);
    f.advise(MADV_WILLNEED);
    if (token_width == 1) {
        build_detail::build_any_idx<uint8_t>(f.data(), n, 256, sa_path, w, tick, durable);
    } else if (token_width == 2) {
        build_detail::build_any_idx<uint16_t>(reinterpret_cast<const uint16_t*>(f.data()), n, 65536, sa_path, w,
                                              tick, durable);
    } else {
        const uint32_t* src = reinterpret_cast<const uint32_t*>(f.data());
        const uint32_t sep = separator_of<uint32_t>();
        uint32_t mx = 0;
        for (uint64_t i = 0; i < n; ++i)
            if (src[i] != sep && src[i] > mx) mx = src[i];
        build_detail::HugeBuffer<uint32_t> Tbuf(n);
        uint32_t* const T = Tbuf.data();
        std::copy(src, src + n, T);
        uint64_t K;
        if (uint64_t(mx) + 2 <= std::min<uint64_t>(2 * n + 65536, (uint64_t(1) << 31) - 2)) {
            // Dense enough: ids stay, the separator becomes max + 1.
            for (uint64_t i = 0; i < n; ++i) if (T[i] == sep) T[i] = mx + 1;
            K = uint64_t(mx) + 2;
        } else {
            // Sparse ids (few tokens, huge values): rank-compact the alphabet,
            // order preserved, so buckets stay O(n).
            std::vector<uint32_t> vals(T, T + n);
            std::sort(vals.begin(), vals.end());
            vals.erase(std::unique(vals.begin(), vals.end()), vals.end());
            for (uint64_t i = 0; i < n; ++i)
                T[i] = static_cast<uint32_t>(std::lower_bound(vals.begin(), vals.end(), T[i]) - vals.begin());
            K = vals.size();
        }
        build_detail::build_any_idx<uint32_t>(T, n, K, sa_path, w, tick, durable);
    }
    return w;
}

}  // namespace infinigram

// sa_build.hpp — a shard's suffix array from its token file.
//
//   build_suffix_array_file(tokens_path, sa_path, token_width, tick) -> ptr_width
//   build_detail::read_file_huge(path, size)            a file in huge pages
//   build_detail::with_sa_text(T, n, token_width, f)    the text SA-IS sorts
//   build_detail::suffix_array_buffer<Char, Idx>(T, n, K, tick)
//                                                        -> HugeBuffer<Idx>
//
// Reads the token file (into huge pages), runs SA-IS (sais.hpp) with 32-bit
// entries when the shard has < 2^31 positions and 64-bit entries above, and
// writes the SA packed to ptr_width_for(n) bytes per entry, little endian.
// u32 tokens are copied with the separator 2^32-1 renamed max_real+1, or
// rank-compacted when the ids are sparse, so bucket arrays stay O(min(V, n)).
// Peak memory: token file + n * sizeof(Idx) (+ n * 4 for u32 remapping).
// The FM-index build (fm_build.hpp) uses the in-memory pieces and never
// writes the SA.
#pragma once

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <memory>
#include <string>
#include <utility>
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
/// faster construction on 100 MB of text with huge pages). Move-only.
template <class T>
class HugeBuffer {
public:
    HugeBuffer() = default;
    explicit HugeBuffer(size_t n) : bytes_(round_up(std::max<size_t>(n, 1) * sizeof(T))) {
        void* p = ::mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        ::madvise(p, bytes_, MADV_HUGEPAGE);  // a hint: ignored where THP is off
        data_ = static_cast<T*>(p);
    }
    HugeBuffer(const HugeBuffer&) = delete;
    HugeBuffer& operator=(const HugeBuffer&) = delete;
    HugeBuffer(HugeBuffer&& o) noexcept { swap(o); }
    HugeBuffer& operator=(HugeBuffer&& o) noexcept {
        if (this != &o) { reset(); swap(o); }
        return *this;
    }
    ~HugeBuffer() { reset(); }
    T* data() { return data_; }
    const T* data() const { return data_; }
    /// Returns the memory from byte `keep` (rounded up to a 4 KiB page) to
    /// the end to the system (MADV_DONTNEED: resident size drops now; the
    /// range reads as zeros if touched again). O(pages released).
    void release_from(size_t keep) {
        const size_t page = 4096, k = (keep + page - 1) & ~(page - 1);
        if (data_ && k < bytes_) ::madvise(reinterpret_cast<char*>(data_) + k, bytes_ - k, MADV_DONTNEED);
    }
    /// Unmaps the buffer (data() becomes null).
    void reset() noexcept {
        if (data_) ::munmap(data_, bytes_);
        data_ = nullptr;
        bytes_ = 0;
    }

private:
    static size_t round_up(size_t b) { return (b + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1); }
    void swap(HugeBuffer& o) noexcept {
        std::swap(bytes_, o.bytes_);
        std::swap(data_, o.data_);
    }
    size_t bytes_ = 0;
    T* data_ = nullptr;
};

/// A whole file read into a HugeBuffer (anonymous, huge-page backed memory):
/// SA-IS and the BWT pass read the text at random, and a private copy in
/// huge pages costs fewer TLB misses and no page faults per 4 KiB (measured
/// here: ~4% less SA-IS CPU time than on the file mapping, the copy itself
/// ~0.01 s per 50 MB from the page cache). Sets `size` (bytes).
/// Time O(size); memory size bytes (the resident size equals a mapping's).
inline HugeBuffer<uint8_t> read_file_huge(const std::string& path, size_t& size) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    struct stat st {};
    if (::fstat(fd, &st) != 0) throw std::runtime_error("cannot stat " + path + ": " + std::strerror(errno));
    size = static_cast<size_t>(st.st_size);
    HugeBuffer<uint8_t> buf(size);
    for (size_t done = 0; done < size;) {
        const ssize_t r = ::pread(fd, buf.data() + done, std::min<size_t>(size - done, size_t(1) << 30),
                                  static_cast<off_t>(done));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0)
            throw std::runtime_error("read failed for " + path + ": " +
                                     (r < 0 ? std::strerror(errno) : "file shrank while reading"));
        done += static_cast<size_t>(r);
    }
    return buf;
}

/// The suffix array of T[0, n) (symbols in [0, K)) in a HugeBuffer of n
/// entries. Time O(n); memory n * sizeof(Idx) plus SA-IS's type bits (n / 8
/// bytes) and recursion buckets.
template <class Char, class Idx>
HugeBuffer<Idx> suffix_array_buffer(const Char* T, uint64_t n, uint64_t K, const sais_detail::Tick& tick) {
    // Uninitialised on purpose: SA-IS writes every entry before reading it.
    // (Building in place in a MAP_SHARED output file was measured slower:
    // writeback of randomly dirtied pages during construction.)
    HugeBuffer<Idx> SA(n);
    suffix_array<Char, Idx>(T, static_cast<Idx>(n), static_cast<Idx>(K), SA.data(), tick);
    return SA;
}

/// True when a shard of n positions needs 64-bit SA-IS entries.
inline bool needs_sa64(uint64_t n) { return n >= (uint64_t(1) << 31) - 2; }

/// Calls f(T, K) with the text SA-IS sorts and its alphabet size: the tokens
/// themselves for u8 / u16 (K = 256 / 65536); for u32 a remapped copy (see the
/// header; n * 4 bytes, freed when f returns). Order is preserved, so the
/// suffix array of the copy is the token file's.
template <class F>
void with_sa_text(const uint8_t* data, uint64_t n, int token_width, F&& f) {
    if (token_width == 1) {
        f(data, uint64_t(256));
    } else if (token_width == 2) {
        f(reinterpret_cast<const uint16_t*>(data), uint64_t(65536));
    } else {
        const uint32_t* src = reinterpret_cast<const uint32_t*>(data);
        const uint32_t sep = separator_of<uint32_t>();
        uint32_t mx = 0;
        for (uint64_t i = 0; i < n; ++i)
            if (src[i] != sep && src[i] > mx) mx = src[i];
        HugeBuffer<uint32_t> Tbuf(n);
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
        f(static_cast<const uint32_t*>(T), K);
    }
}

template <class Char>
void build_any_idx(const Char* T, uint64_t n, uint64_t K, const std::string& sa_path, int w,
                   const sais_detail::Tick& tick, bool durable = true) {
    if (!needs_sa64(n)) {
        HugeBuffer<int32_t> SA = suffix_array_buffer<Char, int32_t>(T, n, K, tick);
        write_packed<int32_t>(SA.data(), n, w, sa_path, durable);
    } else {
        HugeBuffer<int64_t> SA = suffix_array_buffer<Char, int64_t>(T, n, K, tick);
        write_packed<int64_t>(SA.data(), n, w, sa_path, durable);
    }
}

}  // namespace build_detail

/// Builds `sa_path` from `tokens_path`; returns the pointer width in bytes.
/// durable = false skips the fsync (a temporary SA, e.g. for the FM-index build).
inline int build_suffix_array_file(const std::string& tokens_path, const std::string& sa_path, int token_width,
                                   const sais_detail::Tick& tick, bool durable = true) {
    if (token_width != 1 && token_width != 2 && token_width != 4)
        throw std::invalid_argument("token_width must be 1, 2 or 4, got " + std::to_string(token_width));
    size_t size = 0;
    build_detail::HugeBuffer<uint8_t> text = build_detail::read_file_huge(tokens_path, size);
    if (size % static_cast<size_t>(token_width) != 0)
        throw std::invalid_argument(tokens_path + ": size " + std::to_string(size) +
                                    " is not a multiple of the token width " + std::to_string(token_width));
    const uint64_t n = size / static_cast<size_t>(token_width);
    const int w = ptr_width_for(n);
    build_detail::with_sa_text(text.data(), n, token_width, [&](const auto* T, uint64_t K) {
        build_detail::build_any_idx(T, n, K, sa_path, w, tick, durable);
    });
    return w;
}

}  // namespace infinigram

// text.hpp — token views and read-only memory-mapped files.
//
// A corpus shard is a flat array of tokens of one width (u8, u16 or u32,
// little endian). Every document is preceded by the separator token, the
// all-ones value of the width, which never equals a real token.
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fcntl.h>
#include <stdexcept>
#include <string>
#include <sys/mman.h>
#include <sys/stat.h>
#include <type_traits>
#include <utility>
#include <unistd.h>

namespace infinigram {

/// The separator of a token type: its all-ones value.
template <class Tok>
constexpr Tok separator_of() {
    static_assert(std::is_unsigned<Tok>::value, "tokens are unsigned");
    return static_cast<Tok>(~Tok(0));
}

/// Bytes needed to store any position in [0, n): max(1, ceil(bit_length(n) / 8)).
inline int ptr_width_for(uint64_t n) {
    int bits = 0;
    while (bits < 64 && (n >> bits) != 0) ++bits;
    int w = (bits + 7) / 8;
    return w < 1 ? 1 : w;
}

/// Reads a little-endian unsigned integer of `w` bytes (1..8) at `p`.
inline uint64_t load_le(const uint8_t* p, int w) {
    uint64_t v = 0;
    switch (w) {
        case 8: std::memcpy(&v, p, 8); return v;
        case 4: { uint32_t x; std::memcpy(&x, p, 4); return x; }
        case 5: { uint32_t x; std::memcpy(&x, p, 4); return x | (uint64_t(p[4]) << 32); }
        case 3: { uint16_t x; std::memcpy(&x, p, 2); return x | (uint64_t(p[2]) << 16); }
        case 2: { uint16_t x; std::memcpy(&x, p, 2); return x; }
        case 1: return p[0];
        default: std::memcpy(&v, p, static_cast<size_t>(w)); return v;  // 6, 7 (little-endian host)
    }
}

/// Checks of a shard's doc_offsets.bin at open (O(1)): u64 entries, the
/// first 0, the last n (the number of positions). The entries between are
/// not read (that is verify()'s job); doc_of / doc_span clamp what they
/// return, so damaged offsets give wrong documents, never reads out of bounds.
inline uint64_t check_doc_offsets(const uint8_t* data, size_t size, uint64_t n, const std::string& path) {
    if (size % 8 != 0 || size < 8) throw std::invalid_argument(path + ": not an array of u64 offsets");
    const uint64_t n_docs = size / 8 - 1;
    uint64_t first, last;
    std::memcpy(&first, data, 8);
    std::memcpy(&last, data + 8 * n_docs, 8);
    if (last != n) throw std::invalid_argument(path + ": last offset != number of positions");
    if (first != 0 && n_docs > 0) throw std::invalid_argument(path + ": first offset != 0");
    return n_docs;
}

/// The document of position pos < n (its index d < n_docs and the offset in
/// its text) from the offsets D[0..n_docs]; clamped so that damaged offsets
/// cannot lead outside the array.
inline std::pair<uint64_t, uint64_t> doc_of_offsets(const uint64_t* D, uint64_t n_docs, uint64_t pos) {
    const uint64_t* it = std::upper_bound(D, D + n_docs + 1, pos);
    uint64_t d = static_cast<uint64_t>(it - D);
    d = d == 0 ? 0 : d - 1;
    if (n_docs > 0 && d >= n_docs) d = n_docs - 1;
    return {d, pos - D[d] - 1};
}

/// Token span [start, end) of document d's text, clamped to 0 <= start <= end <= n.
inline std::pair<uint64_t, uint64_t> doc_span_offsets(const uint64_t* D, uint64_t d, uint64_t n) {
    const uint64_t a = std::min<uint64_t>(D[d] + 1, n);
    return {a, std::min<uint64_t>(std::max<uint64_t>(D[d + 1], a), n)};
}

/// A read-only memory map of a whole file. Move-only; unmaps on destruction.
class MappedFile {
public:
    MappedFile() = default;
    explicit MappedFile(const std::string& path) : path_(path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            int e = errno;
            ::close(fd);
            throw std::runtime_error("cannot stat " + path + ": " + std::strerror(e));
        }
        size_ = static_cast<size_t>(st.st_size);
        if (size_ > 0) {
            void* p = ::mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
            if (p == MAP_FAILED) {
                int e = errno;
                ::close(fd);
                throw std::runtime_error("cannot mmap " + path + ": " + std::strerror(e));
            }
            data_ = static_cast<const uint8_t*>(p);
        }
        ::close(fd);
    }
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;
    MappedFile(MappedFile&& o) noexcept { swap(o); }
    MappedFile& operator=(MappedFile&& o) noexcept {
        if (this != &o) { release(); swap(o); }
        return *this;
    }
    ~MappedFile() { release(); }

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }
    /// Hint the kernel about the access pattern (MADV_RANDOM / MADV_SEQUENTIAL / MADV_WILLNEED).
    void advise(int advice) const {
        if (data_) ::madvise(const_cast<uint8_t*>(data_), size_, advice);
    }

private:
    void swap(MappedFile& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        std::swap(path_, o.path_);
    }
    void release() noexcept {
        if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
        data_ = nullptr;
        size_ = 0;
    }
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
    std::string path_;
};

}  // namespace infinigram

// fm_matching.hpp — matching statistics on the FM-index backend.
//
// Same result as matching.hpp's suffix-array version (length and count
// exactly; the reported occurrence is one valid occurrence), computed with
// backward search only, since an FM-index extends patterns to the left:
//
//   E[j]  = longest suffix of q[0, j) occurring in some shard (one backward
//           walk from j per shard, E[j] steps, stopping at the first miss);
//   ms[i] = max(0, R(i) - i) with R(i) = max{ j : j - E[j] <= i }, because
//           every substring of an occurring string occurs;
//   count = backward search of q[i, i + ms[i]) in every shard.
//
// Time O(sum_j E[j] + sum_i ms[i]) wavelet-tree steps per shard, i.e.
// O(m * typical match length); memory O(m).
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "fm_index.hpp"
#include "matching.hpp"

namespace infinigram {

template <class Tok>
void matching_statistics(const ShardedEngine<FMShard<Tok>>& e, const Tok* q, size_t m, bool with_occurrence,
                         MatchStats& out) {
    out.length.assign(m, 0);
    out.count.assign(m, 0);
    out.doc.assign(m, -1);
    out.offset.assign(m, -1);
    if (m == 0) return;

    // E[j], over the union of shards.
    std::vector<uint64_t> E(m + 1, 0);
    for (size_t s = 0; s < e.n_shards(); ++s) {
        const FMShard<Tok>& sh = e.shard(s);
        for (size_t j = 1; j <= m; ++j) {
            uint64_t lo = 0, hi = sh.n_positions() + 1;  // all rows: the empty string
            uint64_t L = 0;
            for (size_t k = j; k-- > 0;) {
                const int64_t c = sh.code_of(q[k]);
                if (c < 0) break;
                uint64_t a = lo, b = hi;
                sh.step(static_cast<uint64_t>(c), a, b);
                if (a >= b) break;
                lo = a;
                hi = b;
                ++L;
            }
            E[j] = std::max(E[j], L);
        }
    }

    // ms[i] by a sweep over the starts of the occurring suffixes.
    std::vector<int64_t> end_at(m + 1, -1);  // end_at[st] = max j with j - E[j] == st
    for (size_t j = 1; j <= m; ++j)
        if (E[j] > 0) {
            const size_t st = j - E[j];
            end_at[st] = std::max<int64_t>(end_at[st], static_cast<int64_t>(j));
        }
    int64_t reach = -1;
    for (size_t i = 0; i < m; ++i) {
        reach = std::max(reach, end_at[i]);
        out.length[i] = reach > static_cast<int64_t>(i) ? static_cast<uint64_t>(reach - static_cast<int64_t>(i)) : 0;
    }

    // Counts over all shards, and one occurrence.
    for (size_t i = 0; i < m; ++i) {
        const uint64_t L = out.length[i];
        if (L == 0) continue;
        uint64_t c = 0;
        for (size_t s = 0; s < e.n_shards(); ++s) {
            const FMShard<Tok>& sh = e.shard(s);
            const Range r = sh.find_rows(q + i, static_cast<size_t>(L));
            if (r.lo >= r.hi) continue;
            c += r.hi - r.lo;
            if (with_occurrence && out.doc[i] < 0) {
                const auto d = sh.doc_of(sh.locate_row(r.lo));
                out.doc[i] = static_cast<int64_t>(e.doc_base(s) + d.first);
                out.offset[i] = static_cast<int64_t>(d.second);
            }
        }
        out.count[i] = c;
    }
}

}  // namespace infinigram

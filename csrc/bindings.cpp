// bindings.cpp — the only pybind11 file: infinigram._core.
//
// Every long call releases the GIL. C++ exceptions become Python errors:
// std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
// std::runtime_error -> RuntimeError (pybind11's standard translation).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <optional>
#include <thread>
#include <variant>

#include "engine.hpp"
#include "sa_build.hpp"
#include "sa_parts.hpp"  // out-of-core suffix arrays (out-of-core section)
#include "sa_merge.hpp"  // out-of-core suffix arrays (out-of-core section)
#include "lm.hpp"   // language-model queries
#include "cnf.hpp"  // boolean (CNF) search
#include "matching.hpp"  // matching statistics
#include "drafter.hpp"   // draft tokens (drafter section)
#include "fm_build.hpp"  // FM-index (FM-index section)
#include "fm_matching.hpp"  // matching statistics on FM-indexes (FM-index section)
#include "fm_lm.hpp"        // sequence scoring on FM-indexes (FM-index section)
#include "continuations.hpp"  // next-token continuations and cursors (continuations section)

namespace py = pybind11;
using namespace infinigram;

namespace {

/// Reads a query (list / tuple / numpy array / any sequence of ints) as int64 ids.
std::vector<int64_t> read_ids(py::handle q) {
    std::vector<int64_t> ids;
    if (PyList_Check(q.ptr()) || PyTuple_Check(q.ptr())) {
        PyObject* seq = q.ptr();
        const Py_ssize_t m = PySequence_Fast_GET_SIZE(seq);
        PyObject** items = PySequence_Fast_ITEMS(seq);
        ids.resize(static_cast<size_t>(m));
        for (Py_ssize_t i = 0; i < m; ++i) {
            int overflow = 0;
            long long v = PyLong_AsLongLongAndOverflow(items[i], &overflow);
            if (v == -1 && PyErr_Occurred()) throw py::error_already_set();
            if (overflow != 0) throw std::invalid_argument("token id does not fit in 64 bits");
            ids[static_cast<size_t>(i)] = v;
        }
        return ids;
    }
    if (py::isinstance<py::array>(q)) {
        const char kind = py::reinterpret_borrow<py::array>(q).dtype().kind();
        if (kind != 'i' && kind != 'u')
            throw std::invalid_argument(std::string("a query array must have an integer dtype, got kind '") + kind + "'");
    }
    auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(q);
    if (!arr) {
        PyErr_Clear();
        throw std::invalid_argument("a query must be a sequence of integer token ids");
    }
    if (arr.ndim() != 1) throw std::invalid_argument("a query must be one-dimensional");
    ids.assign(arr.data(), arr.data() + arr.size());
    return ids;
}

/// A type-erased engine of one backend (Shard = SAShard or FMShard) over
/// the three token widths.
template <template <class> class Shard>
class AnyEngine {
public:
    AnyEngine(int token_width, const std::vector<typename Shard<uint8_t>::Spec>& specs) {
        if (token_width == 1) e_ = std::make_unique<ShardedEngine<Shard<uint8_t>>>(specs);
        else if (token_width == 2) e_ = std::make_unique<ShardedEngine<Shard<uint16_t>>>(specs);
        else if (token_width == 4) e_ = std::make_unique<ShardedEngine<Shard<uint32_t>>>(specs);
        else throw std::invalid_argument("token_width must be 1, 2 or 4");
        width_ = token_width;
    }

    template <class F>
    auto visit(F&& f) const {
        return std::visit([&](const auto& p) { return f(*p); }, e_);
    }

    int width_ = 0;

private:
    std::variant<std::unique_ptr<ShardedEngine<Shard<uint8_t>>>, std::unique_ptr<ShardedEngine<Shard<uint16_t>>>,
                 std::unique_ptr<ShardedEngine<Shard<uint32_t>>>>
        e_;
};

using PyEngine = AnyEngine<SAShard>;
using PyFMEngine = AnyEngine<FMShard>;

/// The token type of a typed engine.
template <class E>
using TokOf = typename std::decay_t<E>::Tok;

/// Query ids -> the engine's tokens (ValueError for ids outside [0, separator)).
template <class E>
std::vector<TokOf<E>> to_tokens(const E& x, const std::vector<int64_t>& ids) {
    std::vector<TokOf<E>> t;
    x.convert(ids.data(), ids.size(), t);
    return t;
}

}  // namespace

using I64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

/// Checks a batch given as (flat, offsets): item k is flat[offsets[k]:offsets[k+1]];
/// offsets must be 1-d, start at 0, end at len(flat) and never decrease.
/// Returns the number of items; throws std::invalid_argument (ValueError).
size_t check_flat_offsets(const I64Array& flat, const I64Array& offsets) {
    if (offsets.ndim() != 1 || offsets.size() < 1)
        throw std::invalid_argument("offsets must be a 1-d array of n + 1 entries");
    const int64_t* o = offsets.data();
    const size_t n = static_cast<size_t>(offsets.size() - 1);
    if (o[0] != 0 || o[n] != flat.size()) throw std::invalid_argument("offsets must start at 0 and end at len(flat)");
    for (size_t i = 0; i < n; ++i)
        if (o[i + 1] < o[i]) throw std::invalid_argument("offsets must be non-decreasing");
    return n;
}

/// (prob, prompt_count, cont_count, end_count, suffix_len) of one probability query.
py::tuple prob_tuple(const lm::ProbOut& o) {
    return py::make_tuple(o.prob, o.prompt_count, o.cont_count, o.end_count, o.suffix_len);
}

/// The same fields as arrays, one entry per query.
py::tuple prob_arrays(const std::vector<lm::ProbOut>& out) {
    const auto nq = static_cast<py::ssize_t>(out.size());
    py::array_t<double> prob(nq);
    py::array_t<int64_t> pc(nq), cc(nq), ec(nq), sl(nq);
    double* p = prob.mutable_data();
    int64_t *a = pc.mutable_data(), *b = cc.mutable_data(), *c = ec.mutable_data(), *d = sl.mutable_data();
    for (size_t i = 0; i < out.size(); ++i) {
        p[i] = out[i].prob;
        a[i] = static_cast<int64_t>(out[i].prompt_count);
        b[i] = static_cast<int64_t>(out[i].cont_count);
        c[i] = static_cast<int64_t>(out[i].end_count);
        d[i] = static_cast<int64_t>(out[i].suffix_len);
    }
    return py::make_tuple(prob, pc, cc, ec, sl);
}

/// (dist {token: (count, prob)} in ascending tokens, prompt_count, end_count, suffix_len, approx, unit).
py::tuple ntd_tuple(const lm::NtdOut& o) {
    py::dict dist;
    const uint64_t den = o.denom();
    if (den > 0)
        for (const auto& tc : o.counts)
            dist[py::int_(tc.first)] = py::make_tuple(tc.second, static_cast<double>(tc.second) / static_cast<double>(den));
    return py::make_tuple(dist, o.prompt_count, o.end_count, o.suffix_len, o.approx, o.unit);
}

/// A seed for a sampled query when the caller gave none: the clock (ns) and
/// the thread, mixed (splitmix64). Cheap: most queries never sample.
inline uint64_t fresh_seed() {
    uint64_t z = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
                 (static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) << 1);
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/// Batched ntd as flat arrays: (offsets, tokens, counts, prompt_count,
/// end_count, suffix_len, approx, unit); prompt i's distribution is
/// tokens/counts[offsets[i]:offsets[i+1]] (ascending tokens).
py::tuple ntd_arrays(const std::vector<lm::NtdOut>& out) {
    const auto nq = static_cast<py::ssize_t>(out.size());
    py::array_t<int64_t> off(nq + 1), pc(nq), ec(nq), sl(nq), unit(nq);
    py::array_t<bool> approx(nq);
    int64_t* o = off.mutable_data();
    o[0] = 0;
    for (py::ssize_t i = 0; i < nq; ++i) o[i + 1] = o[i] + static_cast<int64_t>(out[i].denom() > 0 ? out[i].counts.size() : 0);
    py::array_t<int64_t> tok(o[nq]), cnt(o[nq]);
    int64_t *t = tok.mutable_data(), *c = cnt.mutable_data();
    for (py::ssize_t i = 0; i < nq; ++i) {
        const lm::NtdOut& r = out[i];
        pc.mutable_data()[i] = static_cast<int64_t>(r.prompt_count);
        ec.mutable_data()[i] = static_cast<int64_t>(r.end_count);
        sl.mutable_data()[i] = static_cast<int64_t>(r.suffix_len);
        unit.mutable_data()[i] = static_cast<int64_t>(r.unit);
        approx.mutable_data()[i] = r.approx;
        if (r.denom() == 0) continue;
        for (size_t k = 0; k < r.counts.size(); ++k) {
            t[o[i] + static_cast<int64_t>(k)] = static_cast<int64_t>(r.counts[k].first);
            c[o[i] + static_cast<int64_t>(k)] = static_cast<int64_t>(r.counts[k].second);
        }
    }
    return py::make_tuple(off, tok, cnt, pc, ec, sl, approx, unit);
}

/// Defines matching_statistics / matching_statistics_many for one engine
/// class PE (suffix-array or FM); `visit(e, f)` calls f on its typed engine.
/// Registered once per backend: pybind11 picks the overload by engine type.
template <class PE, class Visit>
void def_matching_statistics(py::module_& m, Visit visit) {
    using I64m = I64Array;
    m.def(
        "matching_statistics",
        [visit](const PE& e, py::handle q, bool with_occurrence) {
            std::vector<int64_t> ids = read_ids(q);
            MatchStats ms;
            visit(e, [&](auto& x) {
                using Tok = TokOf<decltype(x)>;
                std::vector<Tok> t;
                x.convert(ids.data(), ids.size(), t);
                py::gil_scoped_release release;
                matching_statistics(x, t.data(), t.size(), with_occurrence, ms);
                return 0;
            });
            const size_t mm = ms.length.size();
            return py::make_tuple(py::array_t<uint64_t>(mm, ms.length.data()), py::array_t<uint64_t>(mm, ms.count.data()),
                                  py::array_t<int64_t>(mm, ms.doc.data()), py::array_t<int64_t>(mm, ms.offset.data()));
        },
        py::arg("engine"), py::arg("q"), py::arg("with_occurrence") = true,
        "Matching statistics of a text: (length, count, doc_ix, offset) arrays, one entry per position i:\n"
        "the longest q[i:i+length] occurring in the corpus (union of shards), its count summed over shards,\n"
        "and one occurrence (global doc, offset in its text; -1 when length is 0). Suffix arrays: O(m log n)\n"
        "per shard; FM-indexes: backward search, O(m x match length) steps per shard.");
    m.def(
        "matching_statistics_many",
        [visit](const PE& e, I64m flat, I64m offsets, bool with_occurrence, int n_threads) {
            const size_t nt = check_flat_offsets(flat, offsets);
            const int64_t* o = offsets.data();
            const size_t n = static_cast<size_t>(flat.size());
            py::array_t<uint64_t> len(n), cnt(n);
            py::array_t<int64_t> doc(n), off(n);
            uint64_t* lp = len.mutable_data(); uint64_t* cp = cnt.mutable_data();
            int64_t* dp = doc.mutable_data(); int64_t* op = off.mutable_data();
            const int64_t* f = flat.data();
            visit(e, [&](auto& x) {
                using Tok = TokOf<decltype(x)>;
                std::vector<Tok> scratch;
                constexpr size_t kBlock = 4096;
                for (size_t s = 0; s < n; s += kBlock) x.convert(f + s, std::min(kBlock, n - s), scratch);
                py::gil_scoped_release release;
                matching_statistics_many(x, f, o, nt, with_occurrence, lp, cp, dp, op, n_threads);
                return 0;
            });
            return py::make_tuple(len, cnt, doc, off);
        },
        py::arg("engine"), py::arg("flat"), py::arg("offsets"), py::arg("with_occurrence") = false,
        py::arg("n_threads") = 0,
        "Matching statistics of many texts (text k = flat[offsets[k]:offsets[k+1]]): flat (length, count, doc_ix,\n"
        "offset) arrays aligned with flat. GIL released; texts spread over n_threads threads (0 = all cores).");
}

// The language-model computations of each backend, under one name per query
// so that def_lm_api binds both: lm.hpp on suffix arrays, fm_lm.hpp on FM.
template <class Tok>
lm::ProbOut prob_query(const Engine<Tok>& e, const Tok* q, size_t m, Tok next, bool infgram) {
    return infgram ? lm::infgram_prob(e, q, m, next) : lm::prob(e, q, m, next);
}
template <class Tok>
lm::ProbOut prob_query(const FMEngine<Tok>& e, const Tok* q, size_t m, Tok next, bool infgram) {
    return fm_lm::prob(e, q, m, next, infgram);
}
template <class Tok>
lm::NtdOut ntd_query(const Engine<Tok>& e, const Tok* q, size_t m, uint64_t max_support, int mode, uint64_t seed,
                     bool infgram) {
    return infgram ? lm::infgram_ntd(e, q, m, max_support, mode, seed) : lm::ntd(e, q, m, max_support, mode, seed);
}
template <class Tok>
lm::NtdOut ntd_query(const FMEngine<Tok>& e, const Tok* q, size_t m, uint64_t max_support, int mode, uint64_t seed,
                     bool infgram) {
    return fm_lm::ntd(e, q, m, max_support, mode, seed, infgram);
}
template <class Tok>
void prob_many_query(const Engine<Tok>& e, const Tok* f, const int64_t* o, const Tok* nxt, size_t nq, bool inf,
                     lm::ProbOut* out, int threads) {
    lm::prob_many(e, f, o, nxt, nq, inf, out, threads);
}
template <class Tok>
void prob_many_query(const FMEngine<Tok>& e, const Tok* f, const int64_t* o, const Tok* nxt, size_t nq, bool inf,
                     lm::ProbOut* out, int threads) {
    fm_lm::prob_many(e, f, o, nxt, nq, inf, out, threads);
}
template <class Tok>
void score_query(const Engine<Tok>& e, const Tok* f, const int64_t* o, size_t ns, size_t n, const lm::ScoreOut& so,
                 int threads) {
    lm::score_many(e, f, o, ns, n, so, threads);
}
template <class Tok>
void score_query(const FMEngine<Tok>& e, const Tok* f, const int64_t* o, size_t ns, size_t n, const lm::ScoreOut& so,
                 int threads) {
    fm_lm::score_many(e, f, o, ns, n, so, threads);
}

/// cnf_evaluate(engine, ...) for one engine class (cnf.hpp works on both backends).
template <class PE>
void def_cnf(py::module_& m) {
    m.def(
        "cnf_evaluate",
        [](const PE& e, py::list cnf, uint64_t max_clause_freq, uint64_t max_diff_tokens, uint64_t limit,
                 bool stop_at_limit, uint64_t seed) {
            return e.visit([&](auto& x) {
                using Tok = TokOf<decltype(x)>;
                std::vector<cnf::Clause<Tok>> clauses;
                for (py::handle cl : cnf) {
                    cnf::Clause<Tok> c;
                    for (py::handle term : cl) {
                        auto t = to_tokens(x, read_ids(term));
                        if (t.empty()) throw std::invalid_argument("a CNF n-gram must not be empty");
                        c.push_back(std::move(t));
                    }
                    if (c.empty()) throw std::invalid_argument("a CNF clause must not be empty");
                    clauses.push_back(std::move(c));
                }
                cnf::CnfOut o;
                {
                    py::gil_scoped_release release;
                    o = cnf::evaluate(x, clauses, max_clause_freq, max_diff_tokens, limit, stop_at_limit, seed);
                }
                py::array_t<int64_t> mt({static_cast<py::ssize_t>(o.matches.size()), py::ssize_t(5)});
                int64_t* p = mt.mutable_data();
                for (size_t i = 0; i < o.matches.size(); ++i) {
                    const auto& mm = o.matches[i];
                    p[5 * i + 0] = static_cast<int64_t>(mm.shard);
                    p[5 * i + 1] = static_cast<int64_t>(mm.doc);
                    p[5 * i + 2] = static_cast<int64_t>(mm.start);
                    p[5 * i + 3] = static_cast<int64_t>(mm.end);
                    p[5 * i + 4] = static_cast<int64_t>(mm.anchor);
                }
                return py::make_tuple(o.count, o.approx, o.complete, o.anchor_total, o.anchor_tested, mt);
            });
        },
        py::arg("engine"), py::arg("cnf"), py::arg("max_clause_freq"), py::arg("max_diff_tokens"),
        py::arg("limit") = 0, py::arg("stop_at_limit") = false, py::arg("seed") = 0,
        "CNF query: (count, approx, complete, anchor_total, anchor_tested, matches[k, 5] = shard, doc, start, end, anchor).");
}

// ---- continuations (continuations.hpp)
// cont_many / cont_start / cont_step for one engine class: on Engine the
// suffix array itself, on FMEngine an engine over the REVERSED shards (see
// continuations.hpp; infinigram/continuations.py opens it). GIL released.

/// (offsets, tokens, counts, occ, end) arrays of B continuation lists.
py::tuple cont_arrays(const std::vector<cont::List>& out) {
    const auto nq = static_cast<py::ssize_t>(out.size());
    py::array_t<int64_t> off(nq + 1), occ(nq), end(nq);
    int64_t* o = off.mutable_data();
    o[0] = 0;
    for (py::ssize_t i = 0; i < nq; ++i) o[i + 1] = o[i] + static_cast<int64_t>(out[i].counts.size());
    py::array_t<int64_t> tok(o[nq]), cnt(o[nq]);
    int64_t *t = tok.mutable_data(), *c = cnt.mutable_data();
    for (py::ssize_t i = 0; i < nq; ++i) {
        occ.mutable_data()[i] = static_cast<int64_t>(out[i].occ);
        end.mutable_data()[i] = static_cast<int64_t>(out[i].end);
        for (size_t k = 0; k < out[i].counts.size(); ++k) {
            t[o[i] + static_cast<int64_t>(k)] = static_cast<int64_t>(out[i].counts[k].first);
            c[o[i] + static_cast<int64_t>(k)] = static_cast<int64_t>(out[i].counts[k].second);
        }
    }
    return py::make_tuple(off, tok, cnt, occ, end);
}

template <class PE>
void def_continuations(py::module_& m) {
    using U64Array = py::array_t<uint64_t, py::array::c_style | py::array::forcecast>;
    m.def(
        "cont_many",
        [](const PE& e, I64Array flat, I64Array offsets, int n_threads) {
            const size_t nq = check_flat_offsets(flat, offsets);
            return e.visit([&](auto& x) {
                std::vector<TokOf<decltype(x)>> ft;
                x.convert(flat.data(), static_cast<size_t>(flat.size()), ft);
                std::vector<cont::List> out(nq);
                {
                    py::gil_scoped_release release;
                    cont::list_many(x, ft.data(), offsets.data(), nq, out.data(), n_threads);
                }
                return cont_arrays(out);
            });
        },
        py::arg("engine"), py::arg("flat"), py::arg("offsets"), py::arg("n_threads") = 0,
        "Exact continuations of many prefixes: (offsets, tokens, counts, occ, end) arrays; prefix i's\n"
        "tokens (ascending) and counts are [offsets[i]:offsets[i+1]]. GIL released, n_threads (0 = all).");
    m.def(
        "cont_start",
        [](const PE& e, py::handle q) {
            std::vector<int64_t> ids = read_ids(q);
            return e.visit([&](auto& x) {
                const auto t = to_tokens(x, ids);
                std::vector<Range> rr;
                {
                    py::gil_scoped_release release;
                    cont::start(x, t.data(), t.size(), rr);
                }
                py::array_t<uint64_t> out({static_cast<py::ssize_t>(rr.size()), py::ssize_t(2)});
                uint64_t* p = out.mutable_data();
                for (size_t s = 0; s < rr.size(); ++s) { p[2 * s] = rr[s].lo; p[2 * s + 1] = rr[s].hi; }
                return out;
            });
        },
        py::arg("engine"), py::arg("q"), "A cursor's ranges (n_shards, 2) for the prefix q (uint64).");
    m.def(
        "cont_step",
        [](const PE& e, U64Array ranges, I64Array depth, I64Array tok, bool want, int n_threads, bool skip_root) {
            const size_t B = static_cast<size_t>(depth.size());
            return e.visit([&](auto& x) {
                const size_t S = x.n_shards();
                if (depth.ndim() != 1 || tok.ndim() != 1 || static_cast<size_t>(tok.size()) != B ||
                    static_cast<size_t>(ranges.size()) != B * S * 2)
                    throw std::invalid_argument("cont_step: ranges must be (B, n_shards, 2), depth and tok (B,)");
                for (size_t b = 0; b < B; ++b) {
                    const int64_t v = tok.data()[b];
                    if (v >= static_cast<int64_t>(separator_of<TokOf<decltype(x)>>()))
                        throw std::invalid_argument("token id " + std::to_string(v) + " is outside the index's token range");
                    if (depth.data()[b] < 0) throw std::invalid_argument("cont_step: negative depth");
                }
                std::vector<Range> rr(B * S);
                const uint64_t* rp = ranges.data();
                for (size_t k = 0; k < B * S; ++k) rr[k] = Range{rp[2 * k], rp[2 * k + 1]};
                std::vector<int64_t> d(depth.data(), depth.data() + B);
                std::vector<cont::List> out(B);
                {
                    py::gil_scoped_release release;
                    cont::step_many(x, rr.data(), d.data(), tok.data(), B, want, out.data(), n_threads, skip_root);
                }
                py::array_t<uint64_t> nr({static_cast<py::ssize_t>(B), static_cast<py::ssize_t>(S), py::ssize_t(2)});
                uint64_t* p = nr.mutable_data();
                for (size_t k = 0; k < B * S; ++k) { p[2 * k] = rr[k].lo; p[2 * k + 1] = rr[k].hi; }
                py::array_t<int64_t> nd(static_cast<py::ssize_t>(B), d.data());
                return py::make_tuple(nr, nd, cont_arrays(out));
            });
        },
        py::arg("engine"), py::arg("ranges"), py::arg("depth"), py::arg("tok"), py::arg("want") = true,
        py::arg("n_threads") = 1, py::arg("skip_root") = false,
        "One decoding step of B cursors: cursor b is extended by tok[b] (not when tok[b] < 0), then listed\n"
        "(not the empty prefixes when skip_root: their list never changes).\n"
        "Returns (ranges (B, S, 2), depth (B,), (offsets, tokens, counts, occ, end)). GIL released.");
}
// ---- end of continuations

/// Defines lm_prob, lm_ntd, lm_prob_many and lm_score_many for one engine
/// class (an overload per backend; infinigram/lm.py calls them).
template <class PE>
void def_lm_api(py::module_& m) {
    m.def(
        "lm_prob",
        [](const PE& e, py::handle q, int64_t next, bool infgram) {
            std::vector<int64_t> ids = read_ids(q);
            return e.visit([&](auto& x) {
                const auto t = to_tokens(x, ids);
                const auto nt = to_tokens(x, std::vector<int64_t>{next});
                lm::ProbOut o;
                {
                    py::gil_scoped_release release;
                    o = prob_query(x, t.data(), t.size(), nt[0], infgram);
                }
                return prob_tuple(o);
            });
        },
        py::arg("engine"), py::arg("q"), py::arg("next"), py::arg("infgram") = false,
        "(prob, prompt_count, cont_count, end_count, suffix_len); prob = cont / (prompt_count - end_count), NaN if 0.");
    m.def(
        "lm_ntd",
        [](const PE& e, py::handle q, uint64_t max_support, std::optional<bool> exact, std::optional<uint64_t> seed,
           bool infgram) {
            if (max_support == 0) throw std::invalid_argument("max_support must be > 0");
            std::vector<int64_t> ids = read_ids(q);
            const int exact_mode = !exact ? 0 : (*exact ? 1 : 2);
            const uint64_t s = seed ? *seed : fresh_seed();
            return e.visit([&](auto& x) {
                const auto t = to_tokens(x, ids);
                lm::NtdOut o;
                {
                    py::gil_scoped_release release;
                    o = ntd_query(x, t.data(), t.size(), max_support, exact_mode, s, infgram);
                }
                return ntd_tuple(o);
            });
        },
        py::arg("engine"), py::arg("q"), py::arg("max_support"), py::arg("exact") = py::none(),
        py::arg("seed") = py::none(), py::arg("infgram") = false,
        "(dist {token: (count, prob)}, prompt_count, end_count, suffix_len, approx, unit); ascending tokens.\n"
        "exact: None = auto (exact if every shard has <= max_support distinct next tokens), True, False (sampled);\n"
        "seed: None = a fresh random seed.");
    m.def(
        "lm_ntd_many",
        [](const PE& e, I64Array flat, I64Array offsets, uint64_t max_support, int exact_mode, uint64_t seed,
           bool infgram, int n_threads) {
            const size_t nq = check_flat_offsets(flat, offsets);
            return e.visit([&](auto& x) {
                std::vector<TokOf<decltype(x)>> ft;
                x.convert(flat.data(), static_cast<size_t>(flat.size()), ft);
                std::vector<lm::NtdOut> out(nq);
                {
                    py::gil_scoped_release release;
                    const int64_t* o = offsets.data();
                    parallel_for(nq, 16, n_threads, [&](size_t i) {
                        // per-prompt seed: the same results whatever the thread count
                        const uint64_t si = seed ^ (0x9E3779B97F4A7C15ULL * (i + 1));
                        out[i] = ntd_query(x, ft.data() + o[i], static_cast<size_t>(o[i + 1] - o[i]), max_support,
                                           exact_mode, si, infgram);
                    });
                }
                return ntd_arrays(out);
            });
        },
        py::arg("engine"), py::arg("flat"), py::arg("offsets"), py::arg("max_support"), py::arg("exact_mode") = 0,
        py::arg("seed") = 0, py::arg("infgram") = false, py::arg("n_threads") = 0,
        "Batched lm_ntd: (offsets, tokens, counts, prompt_count, end_count, suffix_len, approx, unit) arrays;\n"
        "prompt i's distribution is tokens/counts[offsets[i]:offsets[i+1]]. GIL released, all cores.");
    m.def(
        "lm_prob_many",
        [](const PE& e, I64Array flat, I64Array offsets, I64Array next, bool infgram, int n_threads) {
            const size_t nq = check_flat_offsets(flat, offsets);
            if (next.ndim() != 1 || static_cast<size_t>(next.size()) != nq)
                throw std::invalid_argument("next must have one token per prompt");
            return e.visit([&](auto& x) {
                std::vector<TokOf<decltype(x)>> ft, nt;
                x.convert(flat.data(), static_cast<size_t>(flat.size()), ft);
                x.convert(next.data(), nq, nt);
                std::vector<lm::ProbOut> out(nq);
                {
                    py::gil_scoped_release release;
                    prob_many_query(x, ft.data(), offsets.data(), nt.data(), nq, infgram, out.data(), n_threads);
                }
                return prob_arrays(out);
            });
        },
        py::arg("engine"), py::arg("flat"), py::arg("offsets"), py::arg("next"), py::arg("infgram") = false,
        py::arg("n_threads") = 0,
        "Batched lm_prob: arrays (prob, prompt_count, cont_count, end_count, suffix_len). GIL released.");
    m.def(
        "lm_score_many",
        [](const PE& e, I64Array flat, I64Array offsets, size_t n, int n_threads) {
            const size_t ns = check_flat_offsets(flat, offsets);
            const py::ssize_t N = flat.size();
            py::array_t<double> lp(N);
            py::array_t<int64_t> sl(N), cc(N), dn(N);
            e.visit([&](auto& x) {
                std::vector<TokOf<decltype(x)>> ft;
                x.convert(flat.data(), static_cast<size_t>(N), ft);
                lm::ScoreOut so{lp.mutable_data(), sl.mutable_data(), cc.mutable_data(), dn.mutable_data()};
                py::gil_scoped_release release;
                score_query(x, ft.data(), offsets.data(), ns, n, so, n_threads);
                return 0;
            });
            return py::make_tuple(lp, sl, cc, dn);
        },
        py::arg("engine"), py::arg("flat"), py::arg("offsets"), py::arg("n") = 0, py::arg("n_threads") = 0,
        "Per-token scores of many sequences: (logprob, suffix_len, cont_count, denom), flat arrays.\n"
        "n = 0: infinity-gram; n >= 1: n-gram (context of n - 1 tokens). GIL released, all cores.");
}

/// The methods both engine classes share (Engine and FMEngine). With
/// kReleaseShort the short lookups (count, find, sa_at) release the GIL too:
/// worth it when they take tens of microseconds (FM), not a few (SA).
template <class PE, bool kReleaseShort>
void def_engine_api(py::class_<PE>& c) {
    c.def_property_readonly("token_width", [](const PE& e) { return e.width_; })
        .def_property_readonly("n_shards", [](const PE& e) { return e.visit([](auto& x) { return x.n_shards(); }); })
        .def_property_readonly("n_docs", [](const PE& e) { return e.visit([](auto& x) { return x.n_docs(); }); })
        .def_property_readonly("n_tokens", [](const PE& e) { return e.visit([](auto& x) { return x.n_tokens(); }); })
        .def("shard_n_positions",
             [](const PE& e, size_t s) { return e.visit([&](auto& x) { return x.shard(s).n_positions(); }); })
        .def("shard_n_docs", [](const PE& e, size_t s) { return e.visit([&](auto& x) { return x.shard(s).n_docs(); }); })
        .def("shard_doc_base", [](const PE& e, size_t s) { return e.visit([&](auto& x) { return x.doc_base(s); }); })
        .def(
            "count",
            [](const PE& e, py::handle q) {
                std::vector<int64_t> ids = read_ids(q);
                return e.visit([&](auto& x) {
                    const auto t = to_tokens(x, ids);
                    std::optional<py::gil_scoped_release> release;
                    if (kReleaseShort) release.emplace();
                    return x.count(t.data(), t.size());
                });
            },
            py::arg("q"), "Occurrences of q (token ids) summed over shards; the empty query counts every token.")
        .def(
            "find",
            [](const PE& e, py::handle q) {
                std::vector<int64_t> ids = read_ids(q);
                return e.visit([&](auto& x) {
                    const auto t = to_tokens(x, ids);
                    std::vector<Range> rs;
                    {
                        std::optional<py::gil_scoped_release> release;
                        if (kReleaseShort) release.emplace();
                        rs = x.find(t.data(), t.size());
                    }
                    std::vector<std::pair<uint64_t, uint64_t>> out;
                    for (const Range& r : rs) out.emplace_back(r.lo, r.hi);
                    return out;
                });
            },
            py::arg("q"), "Per-shard SA rank ranges [lo, hi) of q.")
        .def(
            "count_many",
            [](const PE& e, I64Array flat, I64Array offsets, int n_threads) {
                const size_t nq = check_flat_offsets(flat, offsets);
                const int64_t* f = flat.data();
                py::array_t<uint64_t> out(static_cast<py::ssize_t>(nq));
                uint64_t* c = out.mutable_data();
                e.visit([&](auto& x) {
                    std::vector<TokOf<decltype(x)>> scratch;  // validate ids up front (ValueError)
                    constexpr size_t kBlock = 4096;
                    for (py::ssize_t s = 0; s < flat.size(); s += kBlock)
                        x.convert(f + s, std::min<size_t>(kBlock, static_cast<size_t>(flat.size() - s)), scratch);
                    py::gil_scoped_release release;
                    x.count_many(f, offsets.data(), nq, c, n_threads);
                    return 0;
                });
                return out;
            },
            py::arg("flat"), py::arg("offsets"), py::arg("n_threads") = 0,
            "Counts of many queries given as one flat id array and n+1 offsets; GIL released, all cores.")
        .def(
            "locate",
            [](const PE& e, py::handle q, uint64_t limit) {
                std::vector<int64_t> ids = read_ids(q);
                std::vector<uint64_t> docs, offs;
                e.visit([&](auto& x) {
                    const auto t = to_tokens(x, ids);
                    py::gil_scoped_release release;
                    x.locate(t.data(), t.size(), limit, docs, offs);
                    return 0;
                });
                return py::make_tuple(py::array_t<uint64_t>(docs.size(), docs.data()),
                                      py::array_t<uint64_t>(offs.size(), offs.data()));
            },
            py::arg("q"), py::arg("limit"),
            "Up to limit occurrences of q: (global doc index array, token offset in the doc's text array).")
        .def(
            "doc_span",
            [](const PE& e, uint64_t doc) {
                return e.visit([&](auto& x) {
                    auto sd = x.resolve_doc(doc);
                    auto span = x.shard(sd.first).doc_span(sd.second);
                    return py::make_tuple(sd.first, span.first, span.second);
                });
            },
            py::arg("doc_ix"), "(shard, start, end): token positions of a document's text in its shard.")
        .def(
            "position_to_doc",
            [](const PE& e, size_t s, uint64_t pos) {
                return e.visit([&](auto& x) {
                    const auto& sh = x.shard(s);
                    if (pos >= sh.n_positions()) throw std::out_of_range("position out of bounds");
                    auto d = sh.doc_of(pos);
                    return py::make_tuple(x.doc_base(s) + d.first, d.second);
                });
            },
            py::arg("shard"), py::arg("pos"), "(global doc index, offset in its text) of a shard position.")
        .def(
            "sa_at",
            [](const PE& e, size_t s, uint64_t rank) {
                return e.visit([&](auto& x) {
                    const auto& sh = x.shard(s);
                    if (rank >= sh.n_positions()) throw std::out_of_range("rank out of bounds");
                    std::optional<py::gil_scoped_release> release;
                    if (kReleaseShort) release.emplace();
                    return sh.suffix_at(rank);
                });
            },
            py::arg("shard"), py::arg("rank"), "SA[rank] of a shard.");
}

PYBIND11_MODULE(_core, m) {
    m.doc() = "infinigram C++ core: suffix-array construction and search";

    m.def("ptr_width_for", &ptr_width_for, py::arg("n_positions"),
          "Bytes per suffix-array entry for a shard of n positions: max(1, ceil(bit_length(n) / 8)).");

    m.def(
        "suffix_array",
        [](const py::array& tokens) -> py::array {
            // In memory, as pydivsufsort.divsufsort: the benchmarks time this call against it.
            const py::buffer_info info = tokens.request();
            if (info.ndim != 1) throw std::invalid_argument("suffix_array: a 1-D array of tokens is expected");
            const py::dtype dt = tokens.dtype();
            const int width = static_cast<int>(dt.itemsize());
            if (dt.kind() != 'u' || (width != 1 && width != 2 && width != 4))
                throw std::invalid_argument("suffix_array: tokens must be uint8, uint16 or uint32, got " +
                                            std::string(py::str(dt)));
            if (info.strides[0] != width) throw std::invalid_argument("suffix_array: tokens must be contiguous");
            const uint64_t n = static_cast<uint64_t>(info.shape[0]);
            // The text and the result in huge pages, as the file builds have them (SA-IS reads
            // and writes both at random: 10-15% faster than with 4 KiB pages); the result is
            // handed to numpy without a copy, its memory freed with the array.
            auto run = [&](auto tag) -> py::array {
                using Idx = decltype(tag);
                auto* sa = new build_detail::HugeBuffer<Idx>(n);
                py::capsule owner(sa, [](void* p) { delete static_cast<build_detail::HugeBuffer<Idx>*>(p); });
                {
                    py::gil_scoped_release release;
                    // (u32 tokens: with_sa_text sorts a renamed copy in huge pages of its own)
                    build_detail::HugeBuffer<uint8_t> text;
                    const auto* src = static_cast<const uint8_t*>(info.ptr);
                    if (width != 4) {
                        text = build_detail::HugeBuffer<uint8_t>(n * static_cast<uint64_t>(width));
                        std::memcpy(text.data(), src, n * static_cast<uint64_t>(width));
                        src = text.data();
                    }
                    build_detail::with_sa_text(src, n, width, [&](const auto* T, uint64_t K) {
                        using Char = std::remove_const_t<std::remove_pointer_t<decltype(T)>>;
                        suffix_array<Char, Idx>(T, static_cast<Idx>(n), static_cast<Idx>(K), sa->data());
                    });
                }
                return py::array_t<Idx>({static_cast<py::ssize_t>(n)}, {static_cast<py::ssize_t>(sizeof(Idx))},
                                        sa->data(), owner);
            };
            return build_detail::needs_sa64(n) ? run(int64_t{}) : run(int32_t{});
        },
        py::arg("tokens"),
        "The suffix array of a uint8 / uint16 / uint32 token array (int32 below 2^31 - 2 tokens, else\n"
        "int64), built in memory (SA-IS, one thread, the GIL released). A suffix that is a prefix of\n"
        "another sorts first. Time O(n); memory n * 4 (or 8) bytes for the result + a copy of the tokens.");

    m.def(
        "build_suffix_array",
        [](const std::string& tokens_path, const std::string& sa_path, int token_width, py::object progress,
           bool durable) {
            // Called with the GIL held from the building thread; checks Ctrl-C
            // (main thread only) and forwards progress.
            sais_detail::Tick tick = [progress](double frac) {
                py::gil_scoped_acquire gil;
                if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                if (!progress.is_none()) progress(frac);
            };
            py::gil_scoped_release release;
            return build_suffix_array_file(tokens_path, sa_path, token_width, tick, durable);
        },
        py::arg("tokens_path"), py::arg("sa_path"), py::arg("token_width"), py::arg("progress") = py::none(),
        py::arg("durable") = true,
        "Builds the suffix array of a token file (SA-IS, one thread; the GIL is released so several\n"
        "shards can build concurrently) and writes it packed to the minimal pointer width.\n"
        "progress(fraction) is called a few dozen times with the GIL held; Ctrl-C interrupts.\n"
        "Returns the pointer width in bytes. Time O(n); memory n * 4 bytes (+ the token file) below 2^31 tokens.\n"
        "durable=False skips the fsync (a temporary SA, as the FM-index build's).");

    // ---- out-of-core suffix arrays (sa_parts.hpp, sa_merge.hpp)
    // A shard larger than memory: its parts sorted in whole-text order (one
    // call per part, parts on concurrent threads), then merged on disk.
    {
        auto make_tick = [](py::object progress) -> sais_detail::Tick {
            return [progress](double frac) {
                py::gil_scoped_acquire gil;
                if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                if (!progress.is_none()) progress(frac);
            };
        };
        m.def(
            "sort_suffix_part",
            [make_tick](const std::string& tokens_path, int token_width, uint64_t start, uint64_t end,
                        const std::string& run_path, py::object progress) {
                sais_detail::Tick tick = make_tick(progress);
                py::gil_scoped_release release;
                return sort_suffix_part(tokens_path, token_width, start, end, run_path, tick);
            },
            py::arg("tokens_path"), py::arg("token_width"), py::arg("start"), py::arg("end"), py::arg("run_path"),
            py::arg("progress") = py::none(),
            "Writes to run_path the positions [start, end) of the token file in the order of the whole\n"
            "file's suffix array (ptr_width_for(n) bytes each, the sa.bin format): a run for\n"
            "merge_suffix_runs. Exact (SA-IS of the part with one bit per position telling whether its\n"
            "suffix is greater than the suffix at end; csrc/sa_parts.hpp). GIL released; progress and\n"
            "Ctrl-C as build_suffix_array. Returns end - start. Time O(end - start + the longest match\n"
            "of the suffix at end inside the part); memory ~(2 + 4 + w) bytes per position for u8\n"
            "(4 + 4 + w for u16, up to 4 + 4 + 8 for u32) + the part's token pages.");
        m.def(
            "merge_suffix_runs",
            [make_tick](const std::string& tokens_path, int token_width, const std::vector<std::string>& run_paths,
                        const std::string& sa_path, uint64_t buffer_entries, py::object text_rss_cap, bool durable,
                        py::object progress) {
                MergeOptions opt;
                opt.buffer_entries = std::max<uint64_t>(buffer_entries, 1);
                if (!text_rss_cap.is_none()) opt.text_rss_cap = text_rss_cap.cast<uint64_t>();
                opt.durable = durable;
                sais_detail::Tick tick = make_tick(progress);
                py::gil_scoped_release release;
                return merge_suffix_runs(tokens_path, token_width, run_paths, sa_path, opt, tick);
            },
            py::arg("tokens_path"), py::arg("token_width"), py::arg("run_paths"), py::arg("sa_path"),
            py::arg("buffer_entries") = 1 << 16, py::arg("text_rss_cap") = py::none(), py::arg("durable") = true,
            py::arg("progress") = py::none(),
            "Merges sorted suffix runs of one token file (sort_suffix_part's, or any files of positions\n"
            "in whole-text suffix order that together hold every position once) into its suffix-array\n"
            "file; returns the pointer width. Byte-identical to build_suffix_array. A loser tree over\n"
            "the runs with 16-byte cached prefixes, text compared on ties (csrc/sa_merge.hpp); runs read\n"
            "and output written sequentially. Memory: 24 * buffer_entries bytes per run + ~1 MiB + the\n"
            "token file's mapped pages, dropped (MADV_DONTNEED) whenever they grow past text_rss_cap\n"
            "bytes (None: never). GIL released; progress and Ctrl-C as build_suffix_array.");
    }
    // ---- end of out-of-core suffix arrays

    {
        py::class_<PyEngine> c(m, "Engine", "The suffix-array engine: all shards of one index, memory-mapped.");
        c.def(py::init([](int token_width, const std::vector<std::tuple<std::string, std::string, std::string, int>>& shards) {
                  std::vector<ShardSpec> specs;
                  for (const auto& t : shards)
                      specs.push_back(ShardSpec{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t)});
                  return new PyEngine(token_width, specs);
              }),
              py::arg("token_width"), py::arg("shards"),
              "shards: one (tokens_path, sa_path, doc_offsets_path, ptr_width) tuple per shard.");
        def_engine_api<PyEngine, false>(c);
        c.def(
            "tokens",
            [](const PyEngine& e, size_t s, uint64_t start, uint64_t end) -> py::array {
                return e.visit([&](auto& x) -> py::array {
                    const auto& sh = x.shard(s);
                    if (start > end || end > sh.n_positions()) throw std::out_of_range("token range out of bounds");
                    return py::array_t<TokOf<decltype(x)>>(static_cast<py::ssize_t>(end - start), sh.tokens() + start);
                });
            },
            py::arg("shard"), py::arg("start"), py::arg("end"), "A copy of shard tokens [start, end).");
    }

    // ---- language-model queries (lm.hpp, cnf.hpp)
    // Module-level functions taking the Engine; the Python side is infinigram/lm.py.
    def_lm_api<PyEngine>(m);  // prob, ntd, prob_many, sequence scores (lm.hpp)
    def_continuations<PyEngine>(m);  // continuations and cursors (continuations.hpp)
    def_cnf<PyEngine>(m);     // boolean search (cnf.hpp)
    // ---- end of language-model queries
    // ---- matching statistics (matching.hpp)
    // Module-level functions taking the Engine; the Python side is Index.longest_matches
    // / Index.maximal_matches and infinigram/analysis/.
    def_matching_statistics<PyEngine>(m, [](const PyEngine& e, auto&& f) { return e.visit(f); });
    // ---- end of matching statistics
    // ---- drafter (drafter.hpp)
    {
        using draft::AnyDrafter;
        using draft::Config;
        auto ids_or_none = [](py::handle h, std::vector<int64_t>& buf) -> const std::vector<int64_t>* {
            if (h.is_none()) return nullptr;
            buf = read_ids(h);
            return &buf;
        };
        auto to_result = [](const draft::Proposal& p, bool tree) -> py::tuple {
            py::array_t<int64_t> toks(static_cast<py::ssize_t>(p.tokens.size()), p.tokens.data());
            py::array_t<double> probs(static_cast<py::ssize_t>(p.probs.size()), p.probs.data());
            if (!tree) return py::make_tuple(toks, probs);
            py::array_t<int32_t> par(static_cast<py::ssize_t>(p.parents.size()), p.parents.data());
            return py::make_tuple(toks, par, probs);
        };
        // propose (chain) and propose_tree: observe new_ids first, then draft.
        auto propose = [to_result](bool chain) {
            return [to_result, chain](AnyDrafter& a, int64_t rid, size_t k, double min_prob, int sources,
                                      py::handle new_ids) {
                thread_local draft::Proposal p;
                std::vector<int64_t> buf;
                if (!new_ids.is_none()) buf = read_ids(new_ids);
                a.visit([&](auto& x) {
                    if (!buf.empty()) x.observe(rid, buf, nullptr);
                    x.propose(rid, k, chain, min_prob, sources, p);
                    return 0;
                });
                return to_result(p, !chain);
            };
        };
        py::class_<AnyDrafter> d(m, "Drafter",
                                 "Draft-token proposer (see csrc/drafter.hpp). Not thread-safe.");
        d.def(py::init([](py::object engine) {
                  Config cfg;
                  if (engine.is_none()) return new AnyDrafter(cfg);
                  const PyEngine& pe = engine.cast<const PyEngine&>();
                  return pe.visit([&](const auto& x) { return new AnyDrafter(&x, cfg); });
              }),
              py::arg("engine") = py::none(), py::keep_alive<1, 2>(),
              "Drafter over an Engine (or None: live context and history only).");
#define IG_DRAFT_CFG(name) \
    d.def_property(#name, [](AnyDrafter& a) { return a.visit([](auto& x) { return x.config().name; }); }, \
                   [](AnyDrafter& a, decltype(Config::name) v) { a.visit([&](auto& x) { x.config().name = v; return 0; }); })
        IG_DRAFT_CFG(alpha);
        IG_DRAFT_CFG(tau);
        IG_DRAFT_CFG(context_boost);
        IG_DRAFT_CFG(history_boost);
        IG_DRAFT_CFG(corpus_boost);
        IG_DRAFT_CFG(power);
        IG_DRAFT_CFG(min_match);
        IG_DRAFT_CFG(use_context);
        IG_DRAFT_CFG(use_history);
        IG_DRAFT_CFG(use_corpus);
        IG_DRAFT_CFG(max_history);
        IG_DRAFT_CFG(max_children);
#undef IG_DRAFT_CFG
        d.def_property_readonly("has_corpus", [](AnyDrafter& a) { return a.visit([](auto& x) { return x.has_corpus(); }); })
            .def_property_readonly("n_requests", [](AnyDrafter& a) { return a.visit([](auto& x) { return x.n_requests(); }); })
            .def_property_readonly("history_size", [](AnyDrafter& a) { return a.visit([](auto& x) { return x.history_size(); }); })
            .def("has_request", [](AnyDrafter& a, int64_t rid) { return a.visit([&](auto& x) { return x.has_request(rid); }); },
                 py::arg("rid"))
            .def(
                "start",
                [=](AnyDrafter& a, int64_t rid, py::handle prompt, py::handle corpus_prompt) {
                    std::vector<int64_t> p = read_ids(prompt), cbuf;
                    const std::vector<int64_t>* c = ids_or_none(corpus_prompt, cbuf);
                    a.visit([&](auto& x) { x.start(rid, p, c); return 0; });
                },
                py::arg("rid"), py::arg("prompt"), py::arg("corpus_prompt") = py::none(),
                "(Re)starts request rid with its prompt (corpus_prompt: the prompt in index tokens, if they differ).")
            .def(
                "observe",
                [=](AnyDrafter& a, int64_t rid, py::handle ids, py::handle corpus_ids) {
                    std::vector<int64_t> p = read_ids(ids), cbuf;
                    const std::vector<int64_t>* c = ids_or_none(corpus_ids, cbuf);
                    a.visit([&](auto& x) { x.observe(rid, p, c); return 0; });
                },
                py::arg("rid"), py::arg("ids"), py::arg("corpus_ids") = py::none(),
                "Appends accepted tokens to request rid (incremental: O(1) amortised + a narrowing per shard).")
            .def(
                "reset_corpus",
                [](AnyDrafter& a, int64_t rid, py::handle corpus_ids) {
                    std::vector<int64_t> c = read_ids(corpus_ids);
                    a.visit([&](auto& x) { x.reset_corpus(rid, c); return 0; });
                },
                py::arg("rid"), py::arg("corpus_ids"))
            .def(
                "extends",
                [](AnyDrafter& a, int64_t rid, py::handle ids) {
                    std::vector<int64_t> p = read_ids(ids);
                    return a.visit([&](auto& x) { return x.extends(rid, p.data(), p.size()); });
                },
                py::arg("rid"), py::arg("ids"), "len(context) if ids starts with request rid's context, else -1.")
            .def(
                "context",
                [](AnyDrafter& a, int64_t rid) {
                    return a.visit([&](auto& x) {
                        const auto& c = x.context(rid);
                        return py::array_t<uint32_t>(static_cast<py::ssize_t>(c.size()), c.data());
                    });
                },
                py::arg("rid"))
            .def("stop", [](AnyDrafter& a, int64_t rid, int learn) { a.visit([&](auto& x) { x.stop(rid, learn); return 0; }); },
                 py::arg("rid"), py::arg("learn") = 1,
                 "Ends request rid; learn: 0 forget, 1 add its generated tokens to the history, 2 prompt too.")
            .def(
                "add_history",
                [](AnyDrafter& a, py::handle ids) {
                    std::vector<int64_t> p = read_ids(ids);
                    std::vector<draft::Id> t(p.size());
                    for (size_t i = 0; i < p.size(); ++i) {
                        if (p[i] < 0 || p[i] >= static_cast<int64_t>(draft::kBoundary))
                            throw std::invalid_argument("token id out of range");
                        t[i] = static_cast<draft::Id>(p[i]);
                    }
                    a.visit([&](auto& x) { x.add_history(t.data(), t.size()); return 0; });
                },
                py::arg("ids"))
            .def("clear_history", [](AnyDrafter& a) { a.visit([](auto& x) { x.clear_history(); return 0; }); })
            .def("match_lengths", [](AnyDrafter& a, int64_t rid) { return a.visit([&](auto& x) { return x.match_lengths(rid); }); },
                 py::arg("rid"), "(context, history, corpus) lengths of the longest matched suffix.")
            .def("propose", propose(true), py::arg("rid"), py::arg("k"), py::arg("min_prob") = 0.0,
                 py::arg("sources") = 7, py::arg("new_ids") = py::none(),
                 "Chain of up to k draft tokens: (tokens int64, path probabilities). new_ids: observe them first.")
            .def("propose_tree", propose(false), py::arg("rid"), py::arg("budget"), py::arg("min_prob") = 0.0,
                 py::arg("sources") = 7, py::arg("new_ids") = py::none(),
                 "Tree of up to budget nodes: (tokens, parents (-1 = root), path probabilities), parents[i] < i.");
    }
    // ---- end of drafter
    // ---- FM-index (fm_index.hpp)
    // FMEngine: the Engine API over the compressed FM backend (fm_index.hpp,
    // fm_build.hpp); fm_build writes a shard's FM files from tokens.bin + sa.bin,
    // fm_build_shard from tokens.bin alone (the suffix array stays in memory).
    {
        auto fv = [](const PyFMEngine& pe, auto&& f) { return pe.visit(f); };
        m.def(
            "fm_build",
            [](const std::string& tokens_path, const std::string& sa_path, int ptr_width, int token_width,
               const std::string& fm_path, const std::string& fm_sa_path, const std::string& fm_isa_path,
               uint64_t sa_sample, uint64_t isa_sample, int n_threads, py::object progress, int wt_block_bits) {
                std::function<void(double)> tick = [progress](double frac) {
                    py::gil_scoped_acquire gil;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                    if (!progress.is_none()) progress(frac);
                };
                py::gil_scoped_release release;
                build_fm_files(tokens_path, sa_path, ptr_width, token_width, FMBuildFiles{fm_path, fm_sa_path, fm_isa_path},
                               sa_sample, isa_sample, wt_block_bits, n_threads, tick);
            },
            py::arg("tokens_path"), py::arg("sa_path"), py::arg("ptr_width"), py::arg("token_width"),
            py::arg("fm_path"), py::arg("fm_sa_path"), py::arg("fm_isa_path"), py::arg("sa_sample") = 32,
            py::arg("isa_sample") = 64, py::arg("n_threads") = 0, py::arg("progress") = py::none(),
            py::arg("wt_block_bits") = 0,
            "Writes a shard's FM-index files (fm.bin, fm_sa.bin, fm_isa.bin) from its token file and suffix\n"
            "array. GIL released; n_threads (0 = all cores) for the BWT pass and the wavelet tree;\n"
            "wt_block_bits as for fm_build_shard.");
        m.def(
            "fm_build_shard",
            [](const std::string& tokens_path, int token_width, const std::string& fm_path,
               const std::string& fm_sa_path, const std::string& fm_isa_path, uint64_t sa_sample,
               uint64_t isa_sample, int n_threads, py::object progress, int wt_block_bits) {
                std::function<void(double)> tick = [progress](double frac) {
                    py::gil_scoped_acquire gil;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                    if (!progress.is_none()) progress(frac);
                };
                py::gil_scoped_release release;
                return build_fm_shard(tokens_path, token_width, FMBuildFiles{fm_path, fm_sa_path, fm_isa_path},
                                      sa_sample, isa_sample, wt_block_bits, n_threads, tick);
            },
            py::arg("tokens_path"), py::arg("token_width"), py::arg("fm_path"), py::arg("fm_sa_path"),
            py::arg("fm_isa_path"), py::arg("sa_sample") = 32, py::arg("isa_sample") = 64, py::arg("n_threads") = 0,
            py::arg("progress") = py::none(), py::arg("wt_block_bits") = 0,
            "Writes a shard's FM-index files (fm.bin, fm_sa.bin, fm_isa.bin) from its token file alone:\n"
            "SA-IS in memory (no sa.bin), the BWT written over the suffix array, the rest of it and the\n"
            "token mapping released before the wavelet tree. Same bytes as fm_build on the SA file.\n"
            "GIL released; one thread for the suffix sort and the BWT pass, n_threads (0 = all cores)\n"
            "for the wavelet tree. progress(fraction) as for build_suffix_array (Ctrl-C interrupts).\n"
            "Returns the pointer width (bytes) the shard's positions need. Time O(n); peak memory\n"
            "tokens + ~4.2 bytes per position below 2^31 positions. wt_block_bits: one Huffman-shaped\n"
            "wavelet tree per 2^wt_block_bits BWT symbols (0: by alphabet size, 2^17 for bytes).");
        // test hooks (tests/test_bitvector.py, tests/test_wavelet.py): answers of the
        // succinct structures for given queries, checked in Python against naive ones
        m.def(
            "_fm_bitvector_check",
            [](const std::string& kind, py::array_t<uint8_t, py::array::c_style | py::array::forcecast> bits) {
                const uint64_t n = static_cast<uint64_t>(bits.size());
                std::vector<uint64_t> words((n + 63) / 64 + 1, 0);
                for (uint64_t i = 0; i < n; ++i)
                    if (bits.data()[i]) words[i >> 6] |= uint64_t(1) << (i & 63);
                auto go = [&](const auto& bv) {
                    // through a save/load round trip, as the index uses it
                    Blob b;
                    bv.save(b);
                    BlobReader r(b.bytes().data(), b.bytes().size(), "test");
                    auto v = std::remove_const_t<std::remove_reference_t<decltype(bv)>>::load(r);
                    const uint64_t ones = v.ones();
                    py::array_t<uint64_t> rank(n + 1), s1(ones), s0(n - ones);
                    py::array_t<uint8_t> acc(n);
                    for (uint64_t i = 0; i <= n; ++i) rank.mutable_data()[i] = v.rank1(i);
                    for (uint64_t i = 0; i < n; ++i) acc.mutable_data()[i] = v[i];
                    for (uint64_t k = 0; k < ones; ++k) s1.mutable_data()[k] = v.select1(k);
                    for (uint64_t k = 0; k < n - ones; ++k) s0.mutable_data()[k] = v.select0(k);
                    // rank_access_batch: positions 0..n in a scrambled order, batches of 1..kMaxBatch
                    // positions, each with one position past the end mixed in
                    py::array_t<uint64_t> brank(n + 1);
                    py::array_t<uint8_t> bacc(n);
                    std::vector<uint64_t> perm(n + 1);
                    for (uint64_t i = 0; i <= n; ++i) perm[i] = i;
                    uint64_t st = 0x9E3779B97F4A7C15ULL;
                    for (uint64_t i = n; i > 0; --i) {
                        st = st * 6364136223846793005ULL + 1442695040888963407ULL;
                        std::swap(perm[i], perm[(st >> 33) % (i + 1)]);
                    }
                    constexpr size_t M = std::remove_reference_t<decltype(v)>::kMaxBatch;
                    for (uint64_t at = 0, round = 0; at <= n; ++round) {
                        uint64_t idx[M], r[M];
                        int bit[M];
                        const size_t m = static_cast<size_t>(std::min<uint64_t>(round % M + 1, n + 1 - at));
                        const bool past = (round & 1) && m < M;  // every other batch: one position past the end
                        for (size_t q = 0; q < m; ++q) idx[q] = perm[at + q];
                        if (past) idx[m] = n + 1 + (round & 7);
                        v.rank_access_batch(idx, m + past, r, bit);
                        if (past && r[m] != ones) throw std::logic_error("rank_access_batch past the end");
                        for (size_t q = 0; q < m; ++q) {
                            brank.mutable_data()[idx[q]] = r[q];
                            if (idx[q] < n) bacc.mutable_data()[idx[q]] = static_cast<uint8_t>(bit[q]);
                        }
                        at += m;
                    }
                    return py::make_tuple(rank, acc, s1, s0, brank, bacc);
                };
                if (kind == "plain") return go(BitVector(words.data(), n));
                if (kind == "rrr") return go(RRRVector(words.data(), n, 2));
                throw std::invalid_argument("kind must be 'plain' or 'rrr'");
            },
            py::arg("kind"), py::arg("bits"),
            "(rank1[0..n], bits, select1, select0, rank1[0..n] and bits by rank_access_batch) of a bit vector (tests).");
        m.def(
            "_fm_eliasfano_check",
            [](py::array_t<uint64_t, py::array::c_style | py::array::forcecast> vals, uint64_t u,
               py::array_t<uint64_t, py::array::c_style | py::array::forcecast> qs) {
                std::vector<uint64_t> v(vals.data(), vals.data() + vals.size());
                EliasFano ef0(v, u);
                Blob b;
                ef0.save(b);
                BlobReader r(b.bytes().data(), b.bytes().size(), "test");
                EliasFano ef = EliasFano::load(r);
                py::array_t<uint64_t> sel(v.size()), rk(qs.size());
                py::array_t<int64_t> ct(qs.size());
                for (size_t i = 0; i < v.size(); ++i) sel.mutable_data()[i] = ef.select(i);
                for (py::ssize_t i = 0; i < qs.size(); ++i) {
                    rk.mutable_data()[i] = ef.rank1(qs.data()[i]);
                    uint64_t k;
                    ct.mutable_data()[i] = ef.contains(qs.data()[i], &k) ? static_cast<int64_t>(k) : -1;
                }
                return py::make_tuple(sel, rk, ct);
            },
            py::arg("values"), py::arg("universe"), py::arg("queries"), "(select, rank1(q), contains(q) or -1) (tests).");
        m.def(
            "_fm_wavelet_check",
            [](py::array_t<uint32_t, py::array::c_style | py::array::forcecast> seq, uint64_t sigma, const std::string& kind,
               int block_bits, double plain_ratio,
               py::array_t<int64_t, py::array::c_style | py::array::forcecast> rank_q,    // [k, 2]: (c, i)
               py::array_t<int64_t, py::array::c_style | py::array::forcecast> select_q,  // [k, 2]: (c, k)
               py::array_t<int64_t, py::array::c_style | py::array::forcecast> range_q) { // [k, 2]: (i, j)
                const uint64_t n = static_cast<uint64_t>(seq.size());
                auto go = [&](auto tag) {
                    using WT = HuffmanWaveletTree<decltype(tag)>;
                    WT w0(seq.data(), n, sigma, 2, block_bits, plain_ratio);
                    Blob b;
                    w0.save(b);
                    BlobReader r(b.bytes().data(), b.bytes().size(), "test");
                    WT w = WT::load(r);
                    py::array_t<uint64_t> acc(n), accr(n), rk(rank_q.shape(0)), r2(rank_q.shape(0)), sel(select_q.shape(0));
                    for (uint64_t i = 0; i < n; ++i) {
                        auto ar = w.access_rank(i);
                        acc.mutable_data()[i] = ar.first;
                        accr.mutable_data()[i] = ar.second;
                    }
                    const int64_t* rq = rank_q.data();
                    for (py::ssize_t k = 0; k < rank_q.shape(0); ++k) {
                        rk.mutable_data()[k] = w.rank(rq[2 * k], rq[2 * k + 1]);
                        uint64_t a, bb;
                        w.rank2(rq[2 * k], rq[2 * k + 1] / 2, rq[2 * k + 1], &a, &bb);  // (rank at i/2, rank at i)
                        r2.mutable_data()[k] = (a << 32) | bb;
                    }
                    const int64_t* sq = select_q.data();
                    for (py::ssize_t k = 0; k < select_q.shape(0); ++k) sel.mutable_data()[k] = w.select(sq[2 * k], sq[2 * k + 1]);
                    py::list dist;
                    const int64_t* gq = range_q.data();
                    for (py::ssize_t k = 0; k < range_q.shape(0); ++k) {
                        std::vector<std::tuple<uint64_t, uint64_t, uint64_t>> out;
                        w.distinct(gq[2 * k], gq[2 * k + 1], [&](uint64_t c, uint64_t a, uint64_t bb) { out.emplace_back(c, a, bb); });
                        std::sort(out.begin(), out.end());
                        dist.append(py::cast(out));
                    }
                    return py::make_tuple(acc, accr, rk, r2, sel, dist);
                };
                if (kind == "plain") return go(BitVector());
                if (kind == "rrr") return go(RRRVector());
                throw std::invalid_argument("kind must be 'plain' or 'rrr'");
            },
            py::arg("seq"), py::arg("sigma"), py::arg("kind"), py::arg("block_bits"), py::arg("plain_ratio"),
            py::arg("rank_q"), py::arg("select_q"), py::arg("range_q"),
            "Wavelet-tree answers for test queries (blocks of 2^block_bits symbols, 0: one; 'rrr': nodes whose\n"
            "RRR estimate exceeds plain_ratio of their bits stored plain, < 0: the default ratio):\n"
            "(access, access_rank, rank, rank2 packed, select, distinct).");
        py::class_<PyFMEngine> fc(m, "FMEngine",
                                  "The Engine API over FM-index shards (text and suffix array not stored).");
        fc.def(py::init([](int token_width,
                           const std::vector<std::tuple<std::string, std::string, std::string, std::string>>& shards) {
                   std::vector<FMShardSpec> specs;
                   for (const auto& t : shards)
                       specs.push_back(FMShardSpec{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t)});
                   return new PyFMEngine(token_width, specs);
               }),
               py::arg("token_width"), py::arg("shards"),
               "shards: one (fm_path, fm_sa_path, fm_isa_path, doc_offsets_path) tuple per shard.");
        def_engine_api<PyFMEngine, true>(fc);
        fc.def("shard_bytes", [fv](const PyFMEngine& e, size_t s) { return fv(e, [&](auto& x) { return x.shard(s).bytes(); }); },
                 "Bytes of the shard's three FM files.")
            .def("shard_sampling",
                 [fv](const PyFMEngine& e, size_t s) {
                     return fv(e, [&](auto& x) { return py::make_tuple(x.shard(s).sa_sample(), x.shard(s).isa_sample()); });
                 },
                 "(sa_sample, isa_sample) of a shard.")
            .def(
                "tokens",
                [fv](const PyFMEngine& e, size_t s, uint64_t start, uint64_t end, int n_threads) -> py::array {
                    return fv(e, [&](auto& x) -> py::array {
                        using Tok = TokOf<decltype(x)>;
                        const auto& sh = x.shard(s);
                        if (start > end || end > sh.n_positions()) throw std::out_of_range("token range out of bounds");
                        py::array_t<Tok> out(static_cast<py::ssize_t>(end - start));
                        Tok* p = out.mutable_data();
                        {
                            py::gil_scoped_release release;  // not over the return: converting `out` to
                            sh.extract(start, end, p, resolve_threads(n_threads));  // py::array takes a reference
                        }
                        return out;
                    });
                },
                py::arg("shard"), py::arg("start"), py::arg("end"), py::arg("n_threads") = 0,
                "Shard tokens [start, end), decoded from the index: LF walks from the ISA samples, one per\n"
                "isa_sample tokens, 32 walks in flight (one batched rank per wavelet level), split over n_threads threads\n"
                "(0: all cores; 1: the calling thread only) when each gets 4 walks or more.");
        // Matching statistics on FM shards (fm_matching.hpp): overloads of the
        // suffix-array functions of the same name, same arguments and results.
        def_matching_statistics<PyFMEngine>(m, fv);
        def_lm_api<PyFMEngine>(m);  // prob, ntd, prob_many, sequence scores (fm_lm.hpp)
        def_continuations<PyFMEngine>(m);  // on an engine of reversed shards (continuations.hpp)
        def_cnf<PyFMEngine>(m);     // boolean search (cnf.hpp)
    }
    // ---- end of FM-index
}

// bindings.cpp — the only pybind11 file: infinigram._core.
//
// Every long call releases the GIL. C++ exceptions become Python errors:
// std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
// std::runtime_error -> RuntimeError (pybind11's standard translation).
#include <pybind11/functional.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <variant>

#include "engine.hpp"
#include "sa_build.hpp"

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
    auto arr = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(q);
    if (!arr) {
        PyErr_Clear();
        throw std::invalid_argument("a query must be a sequence of integer token ids");
    }
    if (arr.ndim() != 1) throw std::invalid_argument("a query must be one-dimensional");
    ids.assign(arr.data(), arr.data() + arr.size());
    return ids;
}

/// Type-erased engine over the three token widths.
class PyEngine {
public:
    PyEngine(int token_width, const std::vector<std::tuple<std::string, std::string, std::string, int>>& shards) {
        std::vector<ShardSpec> specs;
        for (const auto& t : shards)
            specs.push_back(ShardSpec{std::get<0>(t), std::get<1>(t), std::get<2>(t), std::get<3>(t)});
        if (token_width == 1) e_ = std::make_unique<Engine<uint8_t>>(specs);
        else if (token_width == 2) e_ = std::make_unique<Engine<uint16_t>>(specs);
        else if (token_width == 4) e_ = std::make_unique<Engine<uint32_t>>(specs);
        else throw std::invalid_argument("token_width must be 1, 2 or 4");
        width_ = token_width;
    }

    template <class F>
    auto visit(F&& f) const {
        return std::visit([&](const auto& p) { return f(*p); }, e_);
    }

    int width_ = 0;

private:
    std::variant<std::unique_ptr<Engine<uint8_t>>, std::unique_ptr<Engine<uint16_t>>,
                 std::unique_ptr<Engine<uint32_t>>>
        e_;
};

template <class E>
using TokOf = std::remove_const_t<std::remove_reference_t<decltype(*std::declval<E>().shard(0).tokens())>>;

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "infinigram C++ core: suffix-array construction and search";

    m.def("ptr_width_for", &ptr_width_for, py::arg("n_positions"),
          "Bytes per suffix-array entry for a shard of n positions: max(1, ceil(bit_length(n) / 8)).");

    m.def(
        "build_suffix_array",
        [](const std::string& tokens_path, const std::string& sa_path, int token_width, int n_threads,
           py::object progress) {
            sais_detail::Tick tick;
            if (!progress.is_none()) {
                tick = [progress](double frac) {
                    py::gil_scoped_acquire gil;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                    progress(frac);
                };
            } else {
                tick = [](double) {
                    py::gil_scoped_acquire gil;
                    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                };
            }
            int threads = resolve_threads(n_threads);
            py::gil_scoped_release release;
            return build_suffix_array_file(tokens_path, sa_path, token_width, threads, tick);
        },
        py::arg("tokens_path"), py::arg("sa_path"), py::arg("token_width"), py::arg("n_threads") = 0,
        py::arg("progress") = py::none(),
        "Builds the suffix array of a token file (SA-IS) and writes it packed to the minimal pointer width.\n"
        "progress(fraction) is called a few dozen times with the GIL held; Ctrl-C interrupts.\n"
        "Returns the pointer width in bytes. Time O(n), memory n * 4 bytes (+ the token file) below 2^31 tokens.");

    py::class_<PyEngine>(m, "Engine")
        .def(py::init<int, const std::vector<std::tuple<std::string, std::string, std::string, int>>&>(),
             py::arg("token_width"), py::arg("shards"))
        .def_property_readonly("token_width", [](const PyEngine& e) { return e.width_; })
        .def_property_readonly("n_shards", [](const PyEngine& e) { return e.visit([](auto& x) { return x.n_shards(); }); })
        .def_property_readonly("n_docs", [](const PyEngine& e) { return e.visit([](auto& x) { return x.n_docs(); }); })
        .def_property_readonly("n_tokens",
                               [](const PyEngine& e) { return e.visit([](auto& x) { return x.n_tokens(); }); })
        .def("shard_n_positions",
             [](const PyEngine& e, size_t s) { return e.visit([&](auto& x) { return x.shard(s).n_positions(); }); })
        .def("shard_n_docs",
             [](const PyEngine& e, size_t s) { return e.visit([&](auto& x) { return x.shard(s).n_docs(); }); })
        .def("shard_doc_base", [](const PyEngine& e, size_t s) { return e.visit([&](auto& x) { return x.doc_base(s); }); })
        .def(
            "count",
            [](const PyEngine& e, py::handle q) {
                std::vector<int64_t> ids = read_ids(q);
                return e.visit([&](auto& x) {
                    using Tok = TokOf<decltype(x)>;
                    std::vector<Tok> t;
                    x.convert(ids.data(), ids.size(), t);
                    return x.count(t.data(), t.size());
                });
            },
            py::arg("q"), "Occurrences of q (token ids) summed over shards. O(|q| log n) per shard.")
        .def(
            "find",
            [](const PyEngine& e, py::handle q) {
                std::vector<int64_t> ids = read_ids(q);
                return e.visit([&](auto& x) {
                    using Tok = TokOf<decltype(x)>;
                    std::vector<Tok> t;
                    x.convert(ids.data(), ids.size(), t);
                    std::vector<std::pair<uint64_t, uint64_t>> out;
                    for (const Range& r : x.find(t.data(), t.size())) out.emplace_back(r.lo, r.hi);
                    return out;
                });
            },
            py::arg("q"), "Per-shard SA rank ranges [lo, hi) of q.")
        .def(
            "count_many",
            [](const PyEngine& e, py::array_t<int64_t, py::array::c_style | py::array::forcecast> flat,
               py::array_t<int64_t, py::array::c_style | py::array::forcecast> offsets, int n_threads) {
                if (offsets.ndim() != 1 || offsets.size() < 1)
                    throw std::invalid_argument("offsets must be a 1-d array of n_queries + 1 entries");
                const size_t nq = static_cast<size_t>(offsets.size() - 1);
                const int64_t* f = flat.data();
                const int64_t* o = offsets.data();
                if (o[0] != 0 || o[nq] != flat.size())
                    throw std::invalid_argument("offsets must start at 0 and end at len(flat)");
                for (size_t i = 0; i < nq; ++i)
                    if (o[i + 1] < o[i]) throw std::invalid_argument("offsets must be non-decreasing");
                py::array_t<uint64_t> out(static_cast<py::ssize_t>(nq));
                uint64_t* c = out.mutable_data();
                e.visit([&](auto& x) {
                    using Tok = TokOf<decltype(x)>;
                    std::vector<Tok> scratch;
                    // validate ids once, up front (throws ValueError)
                    constexpr size_t kBlock = 4096;
                    for (py::ssize_t s = 0; s < flat.size(); s += kBlock) {
                        size_t len = std::min<size_t>(kBlock, static_cast<size_t>(flat.size() - s));
                        x.convert(f + s, len, scratch);
                    }
                    py::gil_scoped_release release;
                    x.count_many(f, o, nq, c, n_threads);
                    return 0;
                });
                return out;
            },
            py::arg("flat"), py::arg("offsets"), py::arg("n_threads") = 0,
            "Counts of many queries given as one flat id array and n+1 offsets; GIL released, all cores.")
        .def(
            "locate",
            [](const PyEngine& e, py::handle q, uint64_t limit) {
                std::vector<int64_t> ids = read_ids(q);
                std::vector<uint64_t> docs, offs;
                e.visit([&](auto& x) {
                    using Tok = TokOf<decltype(x)>;
                    std::vector<Tok> t;
                    x.convert(ids.data(), ids.size(), t);
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
            [](const PyEngine& e, uint64_t doc) {
                return e.visit([&](auto& x) {
                    auto sd = x.resolve_doc(doc);
                    auto span = x.shard(sd.first).doc_span(sd.second);
                    return py::make_tuple(sd.first, span.first, span.second);
                });
            },
            py::arg("doc_ix"), "(shard, start, end): token positions of a document's text in its shard.")
        .def(
            "tokens",
            [](const PyEngine& e, size_t s, uint64_t start, uint64_t end) -> py::array {
                return e.visit([&](auto& x) -> py::array {
                    using Tok = TokOf<decltype(x)>;
                    const auto& sh = x.shard(s);
                    if (start > end || end > sh.n_positions())
                        throw std::out_of_range("token range out of bounds");
                    return py::array_t<Tok>(static_cast<py::ssize_t>(end - start), sh.tokens() + start);
                });
            },
            py::arg("shard"), py::arg("start"), py::arg("end"), "A copy of shard tokens [start, end).")
        .def(
            "position_to_doc",
            [](const PyEngine& e, size_t s, uint64_t pos) {
                return e.visit([&](auto& x) {
                    const auto& sh = x.shard(s);
                    if (pos >= sh.n_positions()) throw std::out_of_range("position out of bounds");
                    auto d = sh.doc_of(pos);
                    return py::make_tuple(x.doc_base(s) + d.first, d.second);
                });
            },
            py::arg("shard"), py::arg("pos"))
        .def(
            "sa_at",
            [](const PyEngine& e, size_t s, uint64_t rank) {
                return e.visit([&](auto& x) {
                    const auto& sh = x.shard(s);
                    if (rank >= sh.n_positions()) throw std::out_of_range("rank out of bounds");
                    return sh.suffix_at(rank);
                });
            },
            py::arg("shard"), py::arg("rank"));
}

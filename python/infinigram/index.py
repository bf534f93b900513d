"""``Index``: every query over a built index is answered here.

An index directory (see ``docs/FORMAT.md``) holds one or more shards; each is
memory-mapped by the C++ engine (``infinigram._core.Engine``), so opening is
O(number of files) and the OS page cache is shared between processes. All
methods are read-only and safe to call from several threads at once; the
batched ones release the GIL and use all cores.

Queries (``q``) are a ``str`` (tokenized with the index's own tokenizer), or a
sequence / 1-d numpy array of token ids. Costs below use ``m`` = query length in
tokens, ``n`` = tokens per shard, ``S`` = number of shards.
"""

from __future__ import annotations

import bisect
import itertools
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import format as fmt
from . import lm  # language-model queries
from .errors import IndexCorruptError, InfinigramError
from .tokenizer import Tokenizer, load_index_tokenizer

Query = Union[str, Sequence[int], np.ndarray]


@dataclass
class Locations:
    """Occurrences of a query: parallel arrays (global document index, token
    offset of the match within that document's text)."""

    doc_ix: np.ndarray
    offset: np.ndarray

    def __len__(self) -> int:
        return len(self.doc_ix)


@dataclass
class Document:
    """A whole document: its tokens, decoded text and metadata (every input
    field but the text field)."""

    doc_ix: int
    tokens: np.ndarray
    text: str
    metadata: Dict[str, Any] = field(default_factory=dict)
    source: Optional[Tuple[str, int]] = None  # (index name, id there): set by a union Index

    @property
    def length(self) -> int:
        """Length in tokens."""
        return len(self.tokens)


@dataclass
class Match:
    """A window of a document around an occurrence.

    ``offset``/``length``: the needle's token span in the document's text;
    ``start``/``end``: the window's token span (needle plus context, clipped to
    the document); ``tokens``/``text``: the window's tokens and decoded text;
    ``needle_start``/``needle_end``: the needle's span within ``tokens``.
    """

    doc_ix: int
    offset: int
    length: int
    start: int
    end: int
    tokens: np.ndarray
    text: str
    metadata: Dict[str, Any] = field(default_factory=dict)
    source: Optional[Tuple[str, int]] = None  # (index name, id there): set by a union Index

    @property
    def needle_start(self) -> int:
        return self.offset - self.start

    @property
    def needle_end(self) -> int:
        return self.offset + self.length - self.start


IndexPath = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class Part:
    """One index directory of an :class:`Index` (a union has several).

    ``name``: how documents from it are named (the directory's base name, or
    the key given in ``Index({name: path})``); ``first_shard``/``n_shards``:
    its shards' places among the union's; ``doc_base``: the union-wide id of
    its first document."""

    name: str
    path: str
    manifest: Dict[str, Any]
    first_shard: int
    n_shards: int
    doc_base: int
    n_docs: int


def _tokenizer_key(manifest: Dict[str, Any]) -> Tuple[Any, ...]:
    """What must agree for two indexes to be searched as one: the tokenizer's
    kind and content (sha256 of its file), its special-token handling, and the
    token width. Where a tokenizer file was copied from does not matter."""
    t = manifest.get("tokenizer") or {}
    return (t.get("kind"), t.get("sha256"), bool(t.get("add_special_tokens", False)),
            int(manifest["token_width"]))


def _union_manifest(parts: List[Part]) -> Dict[str, Any]:
    """The manifest of a union as one index would have it: the first part's
    format fields, counts summed, every shard listed with its absolute
    directory (``shard_paths`` joins an absolute ``dir`` as is)."""
    first = parts[0].manifest
    m = {k: v for k, v in first.items() if k not in ("shards", "build")}
    for k in ("n_docs", "n_tokens", "n_positions"):
        m[k] = sum(int(p.manifest[k]) for p in parts)
    m["shards"] = [dict(s, dir=os.path.join(os.path.abspath(p.path), s["dir"]))
                   for p in parts for s in p.manifest["shards"]]
    m["union"] = [{"name": p.name, "path": p.path, "n_docs": p.n_docs, "doc_base": p.doc_base} for p in parts]
    return m


class Index:
    """An opened index (all shards), memory-mapped; or several indexes
    searched as one.

    ``Index(path)`` checks the manifest and every file's size (cheap: no file
    contents are read); ``verify=True`` also checks sha256 checksums (reads
    everything). The tokenizer is loaded on first use (string queries,
    decoding).

    ``Index([path_a, path_b, ...])`` (or ``Index({"a": path_a, ...})``) opens
    several indexes as one: one engine over all their shards, so every query
    answers exactly as one index built over both corpora would (counts summed,
    ∞-gram suffixes and next-token distributions over the union, CNF and
    documents across all). Document ids run on from one index to the next in
    the order given (``doc_base`` of each :class:`Part`); :meth:`doc_source`
    names a document by its index and its id there, and the documents and
    matches a union returns carry it as ``source``. The indexes must share the backend, the
    token width and the tokenizer (its file's sha256); otherwise
    :class:`InfinigramError` names both.
    """

    def __init__(self, path: Union[IndexPath, Sequence[IndexPath], Dict[str, IndexPath]],
                 verify: bool = False) -> None:
        named: List[Tuple[Optional[str], str]]
        if isinstance(path, (str, os.PathLike)):
            named = [(None, os.fspath(path))]
        elif isinstance(path, dict):
            named = [(str(k), os.fspath(v)) for k, v in path.items()]
        else:
            named = [(None, os.fspath(p)) for p in path]
        if not named:
            raise InfinigramError("Index: no index path given")
        self._spec = path
        manifests = [fmt.read_manifest(p) for _, p in named]
        if verify:
            for (_, p), m in zip(named, manifests):
                fmt.verify_checksums(p, m)
        self._check_compatible(named, manifests)
        base_names = [os.path.basename(os.path.normpath(p)) or p for _, p in named]
        unique = len(set(base_names)) == len(base_names)
        self.parts: List[Part] = []
        shard0 = doc0 = 0
        for (name, p), m, bn in zip(named, manifests, base_names):
            n_docs = int(m["n_docs"])
            self.parts.append(Part(name or (bn if unique else p), p, m, shard0, len(m["shards"]), doc0, n_docs))
            shard0 += len(m["shards"])
            doc0 += n_docs
        self._part_bases = [p.doc_base for p in self.parts]  # for doc_source
        self.path = named[0][1]
        self.manifest: Dict[str, Any] = manifests[0] if len(named) == 1 else _union_manifest(self.parts)
        m = self.manifest
        self.token_width: int = int(m["token_width"])
        self.separator: int = int(m["separator"])
        self.backend: str = m.get("backend", "sa")
        if self.backend not in ("sa", "fm"):
            raise InfinigramError(f"{self.path}: backend {self.backend!r} is not supported by this version")
        self._shard_paths = [fmt.shard_paths(self.path, s) for s in m["shards"]]
        try:
            if self.backend == "fm":  # FM-index backend: same engine API (_core.FMEngine)
                specs = [(p["fm"], p["fm_sa"], p["fm_isa"], p["doc_offsets"]) for p in self._shard_paths]
                self._engine = _core.FMEngine(self.token_width, specs)
            else:
                specs = [(p["tokens"], p["sa"], p["doc_offsets"], int(s["ptr_width"]))
                         for p, s in zip(self._shard_paths, m["shards"])]
                self._engine = _core.Engine(self.token_width, specs)
        except (ValueError, TypeError, OverflowError, RuntimeError) as e:
            # the engine's checks at open (headers, sizes, first/last offsets): name the file
            msg = str(e)
            bad = next((f for p in self._shard_paths for f in p.values() if msg.startswith(f)), None)
            raise IndexCorruptError(msg if bad else f"{self.path}: cannot open the index: {msg}",
                                    bad or os.path.join(self.path, fmt.MANIFEST)) from None
        # mapped now (O(1) per shard, nothing read), so that this Index keeps
        # every file of its generation even if a compaction unlinks them later
        self._meta: List[fmt.MetadataReader] = [fmt.MetadataReader(p["meta"], p["meta_offsets"])
                                                for p in self._shard_paths]
        self._tokenizer: Optional[Tokenizer] = None
        self._lock = threading.Lock()

    @staticmethod
    def _check_compatible(named: List[Tuple[Optional[str], str]], manifests: List[Dict[str, Any]]) -> None:
        """Raises InfinigramError naming both indexes when two of a union
        differ in backend, token width or tokenizer."""
        (_, p0), m0 = named[0], manifests[0]
        for (_, p), m in zip(named[1:], manifests[1:]):
            if m.get("backend", "sa") != m0.get("backend", "sa"):
                raise InfinigramError(f"cannot search {p0} (backend {m0.get('backend', 'sa')}) and {p} "
                                      f"(backend {m.get('backend', 'sa')}) as one index: the backends differ")
            if int(m["token_width"]) != int(m0["token_width"]):
                raise InfinigramError(f"cannot search {p0} (u{8 * int(m0['token_width'])} tokens) and {p} "
                                      f"(u{8 * int(m['token_width'])} tokens) as one index: the token widths differ")
            if _tokenizer_key(m) != _tokenizer_key(m0):
                def show(x: Dict[str, Any]) -> str:
                    t = x.get("tokenizer") or {}
                    return t.get("kind", "?") + (f" sha256 {str(t.get('sha256'))[:12]}" if t.get("sha256") else "")
                raise InfinigramError(f"cannot search {p0} (tokenizer {show(m0)}) and {p} (tokenizer {show(m)}) "
                                      "as one index: the tokenizers differ")

    def reload(self) -> "Index":
        """Re-read the manifest(s) and reopen, to see documents appended
        since this Index was opened (``infinigram append``). Until then an
        Index answers from the generation it opened. Calls already running in
        other threads finish on the engine they started with. O(files)."""
        fresh = Index(self._spec)
        self.__dict__.update(fresh.__dict__)
        return self

    @property
    def generation(self) -> int:
        """The manifest generation this Index answers from (0 for a fresh
        build, +1 per append; for a union, the sum over its parts)."""
        return sum(int(p.manifest.get("generation", 0)) for p in self.parts)

    @property
    def is_union(self) -> bool:
        """True when this Index searches several index directories as one."""
        return len(self.parts) > 1

    def doc_source(self, doc_ix: int) -> Tuple[str, int]:
        """``(name, id)`` of a document: the index it comes from (its
        :class:`Part` name) and its id within that index. O(log parts)."""
        doc_ix = self._check_doc(doc_ix)
        k = bisect.bisect_right(self._part_bases, doc_ix) - 1
        return self.parts[k].name, doc_ix - self.parts[k].doc_base

    # ---------------------------------------------------------------- basics
    @property
    def n_docs(self) -> int:
        """Number of documents."""
        return int(self._engine.n_docs)

    @property
    def n_tokens(self) -> int:
        """Number of corpus tokens (separators excluded)."""
        return int(self._engine.n_tokens)

    @property
    def n_shards(self) -> int:
        return int(self._engine.n_shards)

    @property
    def tokenizer(self) -> Tokenizer:
        """The index's tokenizer (loaded on first use; sha256-checked)."""
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    self._tokenizer = load_index_tokenizer(self.path, self.manifest)
        return self._tokenizer

    def encode(self, text: str) -> np.ndarray:
        """Tokenize ``text`` with the index's tokenizer. O(len(text))."""
        return self.tokenizer.encode(text)

    def decode(self, tokens: Union[Sequence[int], np.ndarray]) -> str:
        """Decode token ids to text (bytes indexes: UTF-8, invalid bytes replaced)."""
        return self.tokenizer.decode(tokens)

    def _ids(self, q: Query) -> Any:
        if isinstance(q, str):
            return self.tokenizer.encode(q)
        return q

    def __repr__(self) -> str:
        where = repr(self.path) if not self.is_union else "[" + ", ".join(repr(p.path) for p in self.parts) + "]"
        return (f"Index({where}: {self.n_docs:,} docs, {self.n_tokens:,} tokens, "
                f"u{8 * self.token_width}, {self.n_shards} shard(s))")

    # ---------------------------------------------------------------- search
    def count(self, q: Query) -> int:
        """Number of occurrences of ``q`` in the corpus, summed over shards.

        The empty query counts every corpus token (``n_tokens``), as
        infini-gram does. O(m log n) per shard. Raises ``ValueError`` for a
        token id outside ``[0, separator)``.
        """
        return self._engine.count(self._ids(q))

    def find(self, q: Query) -> List[Tuple[int, int]]:
        """Per-shard suffix-array rank ranges ``[lo, hi)`` of ``q``. O(m log n) per shard.

        The empty query gives each shard's whole SA (separator positions included).
        """
        return self._engine.find(self._ids(q))

    def count_many(self, queries: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]],
                   n_threads: int = 0) -> np.ndarray:
        """Counts of many queries at once, as an int64 array.

        ``queries`` is a list of queries (strings, id lists or arrays), or a
        pre-packed ``(flat_ids, offsets)`` pair where query ``i`` is
        ``flat_ids[offsets[i]:offsets[i+1]]`` (the fastest form). Runs in C++
        with the GIL released on ``n_threads`` threads (0 = all cores).
        """
        flat, offsets = self._pack(queries)
        return self._engine.count_many(flat, offsets, n_threads).astype(np.int64, copy=False)

    def _pack(self, queries: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
        """(flat int64 ids, offsets) of many queries: a list of queries (strings
        encoded in one batch) or an already packed ``(flat, offsets)`` pair.
        An id beyond 64 bits raises ValueError (as in a single query)."""
        try:
            return self._pack_ids(queries)
        except OverflowError:
            raise ValueError("a token id does not fit in 64 bits") from None

    def _pack_ids(self, queries: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]]) -> Tuple[np.ndarray, np.ndarray]:
        if isinstance(queries, tuple) and len(queries) == 2 and isinstance(queries[0], np.ndarray) \
                and isinstance(queries[1], np.ndarray):
            return queries
        qs = list(queries)
        if any(isinstance(q, str) for q in qs):
            strs = [i for i, q in enumerate(qs) if isinstance(q, str)]
            enc = self.tokenizer.encode_batch([qs[i] for i in strs])
            for i, e in zip(strs, enc):
                qs[i] = e
        offsets = np.zeros(len(qs) + 1, dtype=np.int64)
        if all(type(q) in (list, tuple) for q in qs):  # the common case: one pass, no per-query arrays
            np.cumsum([len(q) for q in qs], out=offsets[1:])
            return np.fromiter(itertools.chain.from_iterable(qs), dtype=np.int64, count=int(offsets[-1])), offsets
        arrs = [np.asarray(q, dtype=np.int64).reshape(-1) for q in qs]
        if arrs:
            np.cumsum([len(a) for a in arrs], out=offsets[1:])
        flat = np.concatenate(arrs) if arrs else np.zeros(0, np.int64)
        return flat, offsets

    def locate(self, q: Query, limit: int = 100) -> Locations:
        """Up to ``limit`` occurrences of ``q``: document index and token offset
        in that document's text, in shard order then suffix order.
        O(m log n + limit log n_docs)."""
        if limit < 0:
            raise ValueError("limit must be >= 0")
        docs, offs = self._engine.locate(self._ids(q), int(limit))
        return Locations(docs.astype(np.int64), offs.astype(np.int64))

    # ------------------------------------------------------------- documents
    def _metadata(self, doc_ix: int, shard: int) -> Dict[str, Any]:
        return self._meta[shard].get(doc_ix - int(self._engine.shard_doc_base(shard)))

    def _check_doc(self, doc_ix: int) -> int:
        doc_ix = int(doc_ix)
        if not 0 <= doc_ix < self.n_docs:
            raise IndexError(f"document index {doc_ix} out of range [0, {self.n_docs})")
        return doc_ix

    def doc_length(self, doc_ix: int) -> int:
        """Length of a document's text in tokens. O(S)."""
        _, a, b = self._engine.doc_span(self._check_doc(doc_ix))
        return int(b - a)

    def get_doc(self, doc_ix: int) -> Document:
        """A whole document: tokens, decoded text and metadata. O(length)."""
        doc_ix = self._check_doc(doc_ix)
        shard, a, b = self._engine.doc_span(doc_ix)
        toks = self._engine.tokens(shard, a, b)
        return Document(doc_ix, toks, self.decode(toks), self._metadata(doc_ix, shard),
                        self.doc_source(doc_ix) if self.is_union else None)

    def window(self, doc_ix: int, offset: int, length: int = 0, context: int = 50) -> Match:
        """Tokens and text of document ``doc_ix`` around the span
        ``[offset, offset + length)``, with ``context`` tokens on each side
        (clipped to the document). O(length + 2 * context)."""
        doc_ix = self._check_doc(doc_ix)
        if offset < 0 or length < 0 or context < 0:
            raise ValueError("offset, length and context must be >= 0")
        shard, a, b = self._engine.doc_span(doc_ix)
        dlen = b - a
        if offset + length > dlen:
            raise IndexError(f"span [{offset}, {offset + length}) is outside document {doc_ix} "
                             f"of {dlen} tokens")
        start = max(0, offset - context)
        end = min(dlen, offset + length + context)
        toks = self._engine.tokens(shard, a + start, a + end)
        return Match(doc_ix, int(offset), int(length), int(start), int(end), toks,
                     self.decode(toks), self._metadata(doc_ix, shard),
                     self.doc_source(doc_ix) if self.is_union else None)

    def search_docs(self, q: Query, maxnum: int = 10, context: int = 50,
                    sample: bool = False, seed: Optional[int] = None) -> List[Match]:
        """Documents containing ``q``: up to ``maxnum`` matches, each with
        ``context`` tokens around the needle and the document's metadata.

        By default the first occurrences in suffix order (deterministic;
        equal-continuation matches come together); ``sample=True`` draws
        occurrences uniformly at random without replacement (``seed`` for
        repeatability). O(m log n + maxnum (log n_docs + context)).
        """
        ids = self._ids(q)
        m = len(ids)
        if maxnum <= 0 or m == 0:
            return []
        if not sample:
            loc = self.locate(ids, maxnum)
            pairs = list(zip(loc.doc_ix.tolist(), loc.offset.tolist()))
        else:
            ranges = self.find(ids)
            sizes = np.array([hi - lo for lo, hi in ranges], dtype=np.int64)
            total = int(sizes.sum())
            if total == 0:
                return []
            rng = np.random.default_rng(seed)
            picks = np.sort(rng.choice(total, size=min(maxnum, total), replace=False))
            bounds = np.concatenate([[0], np.cumsum(sizes)])
            pairs = []
            for p in picks.tolist():
                s = int(np.searchsorted(bounds, p, side="right") - 1)
                pos = self._engine.sa_at(s, ranges[s][0] + (p - int(bounds[s])))
                pairs.append(tuple(self._engine.position_to_doc(s, pos)))
        return [self.window(d, o, m, context) for d, o in pairs]

    # ----------------------------------------------------------------- checks
    def verify(self) -> None:
        """Check every file's sha256 against the manifest (reads the whole
        index; every part of a union). Raises ``IndexCorruptError`` naming the
        first bad file."""
        for p in self.parts:
            fmt.verify_checksums(p.path, p.manifest)

    # ------------------------------------------- language-model queries (lm.py)
    # Thin delegates; semantics and costs are documented in infinigram.lm and
    # docs/QUERIES.md.
    def prob(self, prompt: Query, next_token: Union[int, str]) -> "lm.ProbResult":
        """n-gram probability cnt(prompt + next) / (cnt(prompt) - end occurrences); see :func:`infinigram.lm.prob`."""
        return lm.prob(self, prompt, next_token)

    def ntd(self, prompt: Query, max_support: int = lm.DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
            seed: Optional[int] = None) -> "lm.NtdResult":
        """Next-token distribution {token: (count, prob)}; see :func:`infinigram.lm.ntd`."""
        return lm.ntd(self, prompt, max_support, exact, seed)

    def infgram_prob(self, prompt: Query, next_token: Union[int, str]) -> "lm.ProbResult":
        """∞-gram probability (longest suffix with a next token); see :func:`infinigram.lm.infgram_prob`."""
        return lm.infgram_prob(self, prompt, next_token)

    def infgram_ntd(self, prompt: Query, max_support: int = lm.DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
                    seed: Optional[int] = None) -> "lm.NtdResult":
        """∞-gram next-token distribution; see :func:`infinigram.lm.infgram_ntd`."""
        return lm.infgram_ntd(self, prompt, max_support, exact, seed)

    def ntd_many(self, prompts: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]],
                 max_support: int = lm.DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None, seed: Optional[int] = None,
                 n_threads: int = 0) -> "lm.NtdBatch":
        """Batched :meth:`ntd` (flat numpy arrays); GIL released, all cores; see :func:`infinigram.lm.ntd_many`."""
        return lm.ntd_many(self, prompts, max_support, exact, seed, n_threads)

    def infgram_ntd_many(self, prompts: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]],
                         max_support: int = lm.DEFAULT_MAX_SUPPORT, exact: Optional[bool] = None,
                         seed: Optional[int] = None, n_threads: int = 0) -> "lm.NtdBatch":
        """Batched :meth:`infgram_ntd`; see :func:`infinigram.lm.ntd_many`."""
        return lm.infgram_ntd_many(self, prompts, max_support, exact, seed, n_threads)

    def prob_many(self, prompts: Sequence[Query], next_tokens: Sequence[Union[int, str]],
                  n_threads: int = 0) -> Dict[str, np.ndarray]:
        """Batched :meth:`prob` (dict of arrays); GIL released, all cores."""
        return lm.prob_many(self, prompts, next_tokens, n_threads)

    def infgram_prob_many(self, prompts: Sequence[Query], next_tokens: Sequence[Union[int, str]],
                          n_threads: int = 0) -> Dict[str, np.ndarray]:
        """Batched :meth:`infgram_prob` (dict of arrays); GIL released, all cores."""
        return lm.infgram_prob_many(self, prompts, next_tokens, n_threads)

    def infgram_logprobs(self, tokens: Query, n_threads: int = 0) -> "lm.SequenceScores":
        """Per-token ∞-gram log-probs (natural log) and suffix lengths of a text; see :func:`infinigram.lm.infgram_logprobs`."""
        return lm.infgram_logprobs(self, tokens, n_threads)

    def ngram_logprobs(self, tokens: Query, n: int, n_threads: int = 0) -> "lm.SequenceScores":
        """Per-token n-gram log-probs (natural log); see :func:`infinigram.lm.ngram_logprobs`."""
        return lm.ngram_logprobs(self, tokens, n, n_threads)

    def infgram_logprobs_many(self, seqs: Sequence[Query], n_threads: int = 0) -> List["lm.SequenceScores"]:
        """:meth:`infgram_logprobs` of many sequences, on all cores."""
        return lm.infgram_logprobs_many(self, seqs, n_threads)

    def ngram_logprobs_many(self, seqs: Sequence[Query], n: int, n_threads: int = 0) -> List["lm.SequenceScores"]:
        """:meth:`ngram_logprobs` of many sequences, on all cores."""
        return lm.ngram_logprobs_many(self, seqs, n, n_threads)

    def count_cnf(self, cnf: Sequence[Any], max_clause_freq: int = lm.DEFAULT_MAX_CLAUSE_FREQ,
                  max_diff_tokens: int = lm.DEFAULT_MAX_DIFF_TOKENS, seed: Optional[int] = None) -> Tuple[int, bool]:
        """(count, approx) of a CNF query; see :func:`infinigram.lm.find_cnf`."""
        return lm.count_cnf(self, cnf, max_clause_freq, max_diff_tokens, seed)

    def find_cnf(self, cnf: Sequence[Any], max_clause_freq: int = lm.DEFAULT_MAX_CLAUSE_FREQ,
                 max_diff_tokens: int = lm.DEFAULT_MAX_DIFF_TOKENS, limit: int = 1000,
                 seed: Optional[int] = None) -> "lm.CnfResult":
        """CNF matches (AND of ORs of n-grams within max_diff_tokens); see :func:`infinigram.lm.find_cnf`."""
        return lm.find_cnf(self, cnf, max_clause_freq, max_diff_tokens, limit, seed)

    def search_docs_cnf(self, cnf: Sequence[Any], maxnum: int = 10, context: int = 50,
                        max_clause_freq: int = lm.DEFAULT_MAX_CLAUSE_FREQ,
                        max_diff_tokens: int = lm.DEFAULT_MAX_DIFF_TOKENS, seed: Optional[int] = None) -> List[Match]:
        """Up to maxnum CNF matches as Match windows; see :func:`infinigram.lm.search_docs_cnf`."""
        return lm.search_docs_cnf(self, cnf, maxnum, context, max_clause_freq, max_diff_tokens, seed)

    # ------------------------------ matching statistics (matching.hpp, analysis/)
    # Added by the corpus-analysis work (issue 5); the C++ side is
    # csrc/matching.hpp, results are infinigram.analysis.matches types.
    def longest_matches(self, q: Query, with_occurrence: bool = True) -> "Any":
        """Matching statistics of a text: for every token position ``i``, the
        longest ``q[i:i+L]`` occurring in the corpus (over all shards), its
        count and one occurrence.

        Returns :class:`infinigram.analysis.LongestMatches` (arrays ``tokens``,
        ``length``, ``count``, ``doc_ix``, ``offset``). A position whose token
        never occurs has length 0, count 0 and doc/offset -1. Cost
        O(m log n) binary-search steps per shard in total (not one search per
        position and length): the SA range is kept while extending and
        ``ms[i+1] >= ms[i] - 1`` is reused.
        """
        from .analysis.matches import LongestMatches

        try:
            ids = np.asarray(self._ids(q), dtype=np.int64)
        except OverflowError:
            raise ValueError("a token id does not fit in 64 bits") from None
        length, count, doc, off = _core.matching_statistics(self._engine, ids, bool(with_occurrence))
        return LongestMatches(ids, length.astype(np.int64), count.astype(np.int64), doc, off)

    def maximal_matches(self, q: Query, min_len: int = 1, max_count: Optional[int] = None,
                        max_docs: int = 10) -> "List[Any]":
        """The maximal spans of a text that occur in the corpus (each is
        contained in no longer occurring span), as OLMoTrace shows them.

        Spans shorter than ``min_len`` tokens or occurring more than
        ``max_count`` times are left out; each span lists up to ``max_docs``
        occurrences (document ids and offsets, shard order then suffix order).
        Returns a list of :class:`infinigram.analysis.MaximalMatch` in text order.
        """
        from .analysis.matches import MaximalMatch, maximal_starts

        lm_ = self.longest_matches(q, with_occurrence=False)
        out = []
        for i in maximal_starts(lm_.length, min_len).tolist():
            L = int(lm_.length[i])
            c = int(lm_.count[i])
            if max_count is not None and c > max_count:
                continue
            span = lm_.tokens[i:i + L]
            loc = self.locate(span, max_docs) if max_docs > 0 else None
            out.append(MaximalMatch(i, i + L, c, self.decode(span),
                                    loc.doc_ix.tolist() if loc is not None else [],
                                    loc.offset.tolist() if loc is not None else []))
        return out
    # ------------------------------------------- end of matching statistics

    # ------------------------------- continuations (continuations.py, continuations.hpp)
    # Added for corpus-constrained decoding and SEAL retrieval (issue 22).
    def continuations(self, tokens: Query) -> "Any":
        """The distinct tokens that follow ``tokens`` in the corpus, with their
        counts (always exact): :class:`infinigram.continuations.Continuations`
        (``tokens``, ``counts``, ``count``, ``end_count``). Suffix array:
        O(distinct × log count) reads; FM-index: O(distinct × code length)
        wavelet ranks on its reversed index (``infinigram reverse IDX``),
        else every occurrence is located (slow). See ``docs/QUERIES.md``."""
        from . import continuations as _c

        return _c.continuations(self, tokens)

    def continuations_many(self, prefixes: Union[Sequence[Query], Tuple[np.ndarray, np.ndarray]],
                           n_threads: int = 0) -> "Any":
        """:meth:`continuations` of many prefixes as flat arrays
        (:class:`infinigram.continuations.ContinuationsBatch`); GIL released, all cores."""
        from . import continuations as _c

        return _c.continuations_many(self, prefixes, n_threads)
    # ------------------------------- end of continuations

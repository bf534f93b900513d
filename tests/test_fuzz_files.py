"""Fuzzing the index files: truncated, extended, bit-flipped and overwritten
copies of every file of small indexes (SA and FM backends, u8 and u16
tokens, several shards) and mutated manifest fields, opened and queried with
every query type (tests/fuzz_util.py: battery) in a forked child.

Every case must end in one of:

* a clear error at open: ``IndexCorruptError`` naming the damaged file (or
  ``NotAnIndexError`` / ``IndexVersionError`` for the manifest);
* answers identical to the intact index's;
* for same-size changes of file contents that opening cannot see without
  reading everything (SA entries, wavelet-tree bits, metadata frames):
  answers that may differ, or a clean ``InfinigramError`` / ``ValueError`` /
  ``IndexError`` at query time, and then ``verify()`` (sha256) must name the
  file;

and never a crash, a sanitizer report or a hang (the child is killed after
20 s). Budget: :func:`fuzz_util.budget` (``INFINIGRAM_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import infinigram
from infinigram import format as fmt
from infinigram.errors import IndexCorruptError, IndexVersionError, InfinigramError, NotAnIndexError

from conftest import synthetic_records, write_jsonl
from fuzz_util import Crash, answers, budget, record, run_isolated

KINDS = ["sa_u8", "fm_u8", "sa_u16", "fm_u16"]


class Case:
    """An intact index, the answers to compare with, and its files."""

    def __init__(self, path: str, queries: List[List[int]], docs: List[int]) -> None:
        self.path = path
        self.queries = queries
        self.docs = docs
        ix = infinigram.Index(path)
        self.expected = answers(ix, queries, docs)
        self.files = sorted(os.path.relpath(os.path.join(dp, f), path)
                            for dp, _, fs in os.walk(path) for f in fs)
        self.data = {f: open(os.path.join(path, f), "rb").read() for f in self.files}


@pytest.fixture(scope="module")
def cases(tmp_path_factory, bpe_tokenizer_path) -> Dict[str, Case]:
    d = tmp_path_factory.mktemp("fuzz_files")
    recs = synthetic_records()
    recs += [{"text": "the quick brown fox jumps over the lazy dog " * 3, "id": "fox"}]
    src = write_jsonl(str(d / "c.jsonl"), recs)
    out: Dict[str, Case] = {}
    rng = random.Random(5)
    for kind in KINDS:
        backend, width = kind.split("_")
        tok = "bytes" if width == "u8" else bpe_tokenizer_path
        kw: Dict[str, Any] = dict(sa_sample=3, isa_sample=4, wt_block_bits=5) if backend == "fm" else {}
        p = str(d / kind)
        infinigram.build(src, p, tokenizer=tok, progress=False, backend=backend, shard_size=400, **kw)
        ix = infinigram.Index(p)
        assert ix.n_shards >= 2
        qs: List[List[int]] = []
        for r in recs[:12] + recs[-1:]:
            t = ix.encode(r["text"]).tolist()
            if len(t) >= 2:
                a = rng.randrange(len(t) - 1)
                qs.append(t[a:a + rng.randint(1, 6)])
        qs.append([0])
        qs.append([ix.separator - 1])
        out[kind] = Case(p, qs, list(range(0, ix.n_docs, 3)))
    return out


# ------------------------------------------------------------------ mutations
def _apply(case: Case, work: str, mutation: Tuple[Any, ...]) -> str:
    """A fresh copy of the index in ``work`` with ``mutation`` applied. Returns what changed."""
    if os.path.exists(work):
        shutil.rmtree(work)
    shutil.copytree(case.path, work)
    kind, f = mutation[0], mutation[1]
    p = os.path.join(work, f)
    data = bytearray(case.data[f])
    if kind == "truncate":
        data = data[: mutation[2] % max(1, len(data))]
    elif kind == "extend":
        data += bytes(mutation[2])
    elif kind == "flip":
        if not data:
            return "none"
        i = mutation[2] % len(data)
        data[i] ^= 1 << mutation[3]
    elif kind == "overwrite":
        if not data:
            return "none"
        i = mutation[2] % len(data)
        blob = bytes(mutation[3])[: len(data) - i]
        data[i:i + len(blob)] = blob
    elif kind == "delete":
        os.unlink(p)
        return "delete"
    with open(p, "wb") as fh:
        fh.write(data)
    return "size" if len(data) != len(case.data[f]) else ("content" if bytes(data) != case.data[f] else "none")


def _probe(path: str, case: Case) -> Tuple[str, Any]:
    """In the child: open and query; ("open-error", type, msg) / ("same",) /
    ("differs", first query) / ("query-error", name, type, msg)."""
    try:
        ix = infinigram.Index(path)
    except Exception as e:  # noqa: BLE001
        return ("open-error", type(e), str(e))
    from fuzz_util import battery, _plain

    for name, f in battery(ix, case.queries, case.docs):
        try:
            got = _plain(f())
        except Exception as e:  # noqa: BLE001
            return ("query-error", name, type(e), str(e))
        if got != case.expected[name]:
            return ("differs", name)
    return ("same",)


OPEN_ERRORS = (IndexCorruptError, NotAnIndexError, IndexVersionError)


def _wavelet_range(data: bytes) -> Tuple[int, int]:
    """Byte range of fm.bin's wavelet tree: the sections after the header,
    alphabet and C (7 sections) and before the pair table (3 sections)."""
    starts, o = [], 0
    while o + 8 <= len(data):
        starts.append(o)
        o += 8 + (struct.unpack_from("<Q", data, o)[0] + 7) // 8 * 8
    return starts[7], starts[-3]


def _trusted(case: Case, mutation: Tuple[Any, ...]) -> bool:
    """A same-size change inside the FM wavelet tree (node table, bit vectors
    and their rank directories) or fm_sa.bin's Elias-Fano set: opening does not check these (it would cost
    a pass over them), queries trust them, and only verify() (sha256) finds
    the damage. A known gap, see docs/RELIABILITY.md; such cases are checked
    with verify only."""
    if mutation[0] not in ("flip", "overwrite"):
        return False
    if mutation[1].endswith("/fm_sa.bin"):  # its Elias-Fano set of sampled rows: the same gap
        return mutation[2] % max(1, len(case.data[mutation[1]])) >= 16
    if not mutation[1].endswith("/fm.bin"):
        return False
    data = case.data[mutation[1]]
    a, b = _wavelet_range(data)
    i = mutation[2] % max(1, len(data))
    return a <= i + (len(mutation[3]) if mutation[0] == "overwrite" else 1) - 1 and i < b


def _check(case: Case, work: str, mutation: Tuple[Any, ...]) -> None:
    changed = _apply(case, work, mutation)
    if changed == "content" and _trusted(case, mutation):
        record("files/fm-wavelet-verify-only")
        with pytest.raises(IndexCorruptError) as ei:
            fmt.verify_checksums(work)
        assert ei.value.path == os.path.join(work, mutation[1])
        return
    try:
        out = run_isolated(lambda: _probe(work, case))
    except Crash as e:
        raise AssertionError(f"{mutation[:2]} ({changed}): {e}") from None
    assert out[0] == "ok", f"{mutation[:2]}: the probe itself failed: {out}"
    res = out[1]
    f = os.path.join(work, mutation[1])
    if res[0] == "open-error":
        assert issubclass(res[1], OPEN_ERRORS), f"{mutation[:2]}: open raised {res[1].__name__}: {res[2]}"
        if changed in ("size", "delete") and f.endswith(".bin"):
            assert issubclass(res[1], IndexCorruptError) and f in res[2], \
                f"{mutation[:2]}: the error does not name the file: {res[2]}"
        return
    if mutation[1] == fmt.TOKENIZER_FILE and res[0] == "query-error" and issubclass(res[2], InfinigramError):
        return  # the tokenizer is loaded (and checked) on first use: TokenizerError / IndexCorruptError then
    assert changed in ("content", "none"), f"{mutation[:2]} ({changed}) opened without an error: {res}"
    if res[0] == "query-error":
        assert issubclass(res[2], (InfinigramError, ValueError, IndexError)), \
            f"{mutation[:2]}: query {res[1]} raised {res[2].__name__}: {res[3]}"
    if res[0] != "same" and changed == "content" and mutation[1] != fmt.MANIFEST:
        # opening could not see it: the full check must
        with pytest.raises(IndexCorruptError) as ei:
            fmt.verify_checksums(work)
        assert ei.value.path == f


def _file_mutation(files: List[str]) -> st.SearchStrategy:
    f = st.sampled_from(files)
    return st.one_of(
        st.tuples(st.just("truncate"), f, st.integers(0, 1 << 20)),
        st.tuples(st.just("extend"), f, st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("flip"), f, st.integers(0, 1 << 20), st.integers(0, 7)),
        st.tuples(st.just("flip"), f, st.integers(0, 63), st.integers(0, 7)),  # headers
        st.tuples(st.just("overwrite"), f, st.integers(0, 1 << 20), st.binary(min_size=1, max_size=24)),
        st.tuples(st.just("overwrite"), f, st.integers(0, 63), st.sampled_from(
            [b"\xff" * 8, b"\x00" * 8, b"\x7f\xff\xff\xff\xff\xff\xff\xff", b"\x01" + b"\x00" * 7])),
        st.tuples(st.just("delete"), f),
    )


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz_index_files(cases, kind, tmp_path):
    case = cases[kind]
    files = [f for f in case.files if f != fmt.MANIFEST]
    work = str(tmp_path / "idx")

    @settings(max_examples=budget(60), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(_file_mutation(files))
    def run(mutation):
        record(f"files/{kind}")
        _check(case, work, mutation)

    run()


# -------------------------------------------------------------- the manifest
def _leaves(x: Any, path: Tuple[Any, ...] = ()) -> List[Tuple[Any, ...]]:
    if isinstance(x, dict):
        return [p for k, v in x.items() for p in _leaves(v, path + (k,))] + ([path] if path else [])
    if isinstance(x, list):
        return [p for i, v in enumerate(x) for p in _leaves(v, path + (i,))] + ([path] if path else [])
    return [path]


WEIRD = [None, True, False, 0, 1, -1, 2, 3, 7, 255, 65535, 2**31, 2**32 - 1, 2**63, 2**64 + 1, -2**63, 1.5,
         float("1e308"), "", "sa", "fm", "x" * 300, "../../etc", [], {}, [1, 2], {"a": 1}]


def _set(m: Any, path: Tuple[Any, ...], value: Any, delete: bool) -> None:
    for k in path[:-1]:
        m = m[k]
    if delete:
        del m[path[-1]]
    else:
        m[path[-1]] = value


@pytest.mark.parametrize("kind", KINDS)
def test_fuzz_manifest_fields(cases, kind, tmp_path):
    """Every field of index.json (format_version too) set to odd values or
    deleted: a clear error at open, or the intact answers (fields that are
    information only), never a crash."""
    case = cases[kind]
    manifest = json.loads(case.data[fmt.MANIFEST])
    leaves = _leaves(manifest)
    work = str(tmp_path / "idx")

    @settings(max_examples=budget(60), deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(st.sampled_from(leaves), st.sampled_from(WEIRD), st.booleans(), st.integers(-3, 3))
    def run(path, value, delete, delta):
        record(f"manifest/{kind}")
        m = json.loads(case.data[fmt.MANIFEST])
        old = m
        for k in path:
            old = old[k]
        if isinstance(old, int) and not isinstance(old, bool) and delta:
            value = old + delta  # near the right value: off by a few
        _set(m, path, value, delete)
        if os.path.exists(work):
            shutil.rmtree(work)
        shutil.copytree(case.path, work)
        with open(os.path.join(work, fmt.MANIFEST), "w") as fh:
            json.dump(m, fh)
        try:
            out = run_isolated(lambda: _probe(work, case))
        except Crash as e:
            raise AssertionError(f"manifest {path} = {value!r} (delete={delete}): {e}") from None
        res = out[1]
        what = f"manifest {'/'.join(map(str, path))} {'deleted' if delete else '= ' + repr(value)[:40]}"
        if res[0] == "open-error":  # e.g. InfinigramError "backend None is not supported by this version"
            assert issubclass(res[1], InfinigramError), f"{what}: open raised {res[1].__name__}: {res[2]}"
            return
        if res[0] == "query-error" and issubclass(res[2], InfinigramError):
            return  # e.g. the tokenizer entry, checked when first used
        assert res == ("same",), f"{what}: opened, then {res}"

    run()


def test_every_file_every_byte_flip_found_by_verify(cases, tmp_path):
    """Corruption at rest: one changed byte anywhere in any file of the index
    (manifest and tokenizer included) is found by ``verify`` / ``infinigram
    info --verify``, naming the file (the manifest: it no longer opens or
    lists different data)."""
    n = 0
    for kind in ("sa_u16", "fm_u16"):
        case = cases[kind]
        rng = random.Random(kind)
        for f in case.files:
            if f == fmt.MANIFEST:
                continue
            work = str(tmp_path / f"{kind}-{f.replace('/', '_')}")
            shutil.copytree(case.path, work)
            data = bytearray(case.data[f])
            for i in sorted({0, len(data) // 2, len(data) - 1, rng.randrange(len(data))}):
                data[i] ^= 0x10
                open(os.path.join(work, f), "wb").write(data)
                with pytest.raises(IndexCorruptError) as ei:
                    infinigram.Index(work).verify()
                assert ei.value.path == os.path.join(work, f), (f, i)
                data[i] ^= 0x10
                n += 1
            open(os.path.join(work, f), "wb").write(data)
            infinigram.Index(work).verify()
    record("verify/byte-flips", n)
    assert n >= 40


def test_info_verify_cli_names_the_file(cases, tmp_path, capsys):
    from infinigram.cli import main

    case = cases["fm_u8"]
    work = str(tmp_path / "idx")
    shutil.copytree(case.path, work)
    assert main(["info", work, "--verify"]) in (0, None)
    p = os.path.join(work, "shard-00001", "fm.bin")
    data = bytearray(open(p, "rb").read())
    data[len(data) // 3] ^= 0x01
    open(p, "wb").write(data)
    capsys.readouterr()
    assert main(["info", work, "--verify"]) == 2
    assert "shard-00001/fm.bin: checksum mismatch" in capsys.readouterr().err


@pytest.mark.parametrize("field,value", [
    (("format_version",), 0), (("format_version",), True), (("shards", 0, "dir"), "../shard-00000"),
    (("shards", 1, "doc_base"), 0), (("n_docs",), 1), (("shards", 0, "n_tokens"), 1),
    (("tokenizer",), "bytes"), (("backend",), "fm"), (("shards", 0, "ptr_width"), 9),
])
def test_manifest_checks_at_open(cases, tmp_path, field, value):
    """Manifest values the open-time checks refuse (each was accepted before
    and either misread the index or failed later with a KeyError/TypeError)."""
    case = cases["sa_u8"]
    work = str(tmp_path / "idx")
    shutil.copytree(case.path, work)
    m = json.loads(case.data[fmt.MANIFEST])
    _set(m, field, value, False)
    with open(os.path.join(work, fmt.MANIFEST), "w") as fh:
        json.dump(m, fh)
    with pytest.raises((IndexCorruptError, NotAnIndexError)) as ei:
        infinigram.Index(work)
    assert fmt.MANIFEST in str(ei.value)


def test_damaged_doc_offsets_and_sa_entries_do_not_crash(cases, tmp_path):
    """doc_offsets.bin's first entry changed (opening refuses it, naming the
    file: it segfaulted in doc_of before), and sa.bin entries >= n (read as
    n - 1: they read outside the text before); the latter opens, answers
    without a crash, and verify names the file."""
    case = cases["sa_u8"]
    work = str(tmp_path / "a")
    shutil.copytree(case.path, work)
    p = os.path.join(work, "shard-00000", "doc_offsets.bin")
    data = bytearray(open(p, "rb").read())
    data[0] ^= 0x02
    open(p, "wb").write(data)
    with pytest.raises(IndexCorruptError) as ei:
        infinigram.Index(work)
    assert ei.value.path == p and "first offset" in str(ei.value)
    work = str(tmp_path / "b")
    shutil.copytree(case.path, work)
    p = os.path.join(work, "shard-00001", "sa.bin")
    data = bytearray(open(p, "rb").read())
    data[: 2 * 8] = b"\xff" * 16  # ptr_width 2: the first 8 entries become 65535 > n
    open(p, "wb").write(data)
    out = run_isolated(lambda: _probe(work, case))
    assert out[0] == "ok" and out[1][0] in ("same", "differs", "query-error"), out
    with pytest.raises(IndexCorruptError) as ei:
        fmt.verify_checksums(work)
    assert ei.value.path == p

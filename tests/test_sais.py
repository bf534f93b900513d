"""Suffix-array construction (``infinigram._core.build_suffix_array``) against
a naive sort of all suffixes."""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infinigram import _core

from reference import check_sorted_suffixes, naive_suffix_array

DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32}
SEP = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}
# typical large u32 id (Llama-3 sized vocabularies and beyond)
U32_HI = (1 << 20)
PTR_DTYPES = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def read_sa(path: str, ptr_width: int, n: int) -> np.ndarray:
    """Decode a packed little-endian SA file of ``ptr_width`` bytes per entry."""
    raw = np.fromfile(path, dtype=np.uint8)
    assert raw.size == n * ptr_width, f"SA file has {raw.size} bytes, expected {n} x {ptr_width}"
    if ptr_width in PTR_DTYPES:
        return raw.view(np.dtype(PTR_DTYPES[ptr_width]).newbyteorder("<")).astype(np.int64)
    b = raw.reshape(n, ptr_width).astype(np.uint64)
    out = np.zeros(n, dtype=np.uint64)
    for k in range(ptr_width):
        out |= b[:, k] << np.uint64(8 * k)
    return out.astype(np.int64)


def build_sa(tmp_dir: str, tokens, width: int, name: str = "t") -> np.ndarray:
    arr = np.asarray(tokens, dtype=np.int64)
    tpath = os.path.join(tmp_dir, f"{name}.tokens")
    spath = os.path.join(tmp_dir, f"{name}.sa")
    arr.astype(np.dtype(DTYPES[width]).newbyteorder("<")).tofile(tpath)
    w = _core.build_suffix_array(tpath, spath, width)
    n = len(arr)
    assert w == _core.ptr_width_for(n)
    assert os.path.getsize(spath) == n * w
    return read_sa(spath, w, n)


def check_naive(tmp_dir: str, tokens, width: int) -> None:
    sa = build_sa(tmp_dir, tokens, width)
    assert sa.tolist() == naive_suffix_array(tokens)


# ----------------------------------------------------------------- ptr_width_for
@pytest.mark.parametrize("n,w", [(0, 1), (1, 1), (255, 1), (256, 2), (65535, 2), (65536, 3),
                                 ((1 << 24) - 1, 3), (1 << 24, 4), ((1 << 32) - 1, 4), (1 << 32, 5),
                                 ((1 << 40), 6)])
def test_ptr_width_for(n, w):
    assert _core.ptr_width_for(n) == w
    assert w == max(1, (n.bit_length() + 7) // 8)


# ------------------------------------------------------------------ hand cases
def separated(docs, sep):
    """The token-file layout: for each doc, SEP then its tokens."""
    out = []
    for d in docs:
        out.append(sep)
        out.extend(d)
    return out


HAND_CASES = {
    "empty": [],
    "one": [7],
    "one-sep": ["S"],
    "two-equal": [3, 3],
    "abab": [0, 1] * 20,
    "abab-odd": [0, 1] * 20 + [0],
    "aab-periodic": [0, 0, 1] * 17,
    "one-symbol": [5] * 64,
    "all-sep": ["S"] * 33,
    "descending": list(range(40, 0, -1)),
    "ascending": list(range(40)),
    "mississippi": [ord(c) % 200 for c in "mississippi"],
    "docs": ["S", 1, 2, 3, "S", 1, 2, "S", 1, 2, 3, 4, "S", "S", 2],
    "fibonacci": None,  # filled below
}


def _fib_word(n: int):
    a, b = [0], [0, 1]
    while len(b) < n:
        a, b = b, b + a
    return b[:n]


HAND_CASES["fibonacci"] = _fib_word(200)


@pytest.mark.parametrize("width", [1, 2, 4])
@pytest.mark.parametrize("case", sorted(HAND_CASES))
def test_hand_cases(tmp_path, case, width):
    toks = [SEP[width] if t == "S" else t for t in HAND_CASES[case]]
    check_naive(str(tmp_path), toks, width)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_separator_is_largest(tmp_path, width):
    """The separator sorts after every real token (it is the all-ones value)."""
    sep = SEP[width]
    top = 254 if width == 1 else (65534 if width == 2 else U32_HI)
    toks = [top, sep, 0, top, sep]
    sa = build_sa(str(tmp_path), toks, width)
    # suffixes: 0=[top,S,0,top,S] 1=[S,0,top,S] 2=[0,top,S] 3=[top,S] 4=[S]
    assert sa.tolist() == [2, 3, 0, 4, 1]


def test_pointer_width_grows(tmp_path):
    """256 positions need 2-byte pointers; the file must decode to the true SA."""
    rng = np.random.default_rng(5)
    toks = rng.integers(0, 3, size=300).tolist()
    sa = build_sa(str(tmp_path), toks, 1)
    assert sa.tolist() == naive_suffix_array(toks)


def test_large_u32_ids(tmp_path):
    """Ids up to the top of the u32 range (just below the separator) sort by value."""
    toks = [U32_HI, 0, U32_HI - 1, U32_HI, SEP[4], 0, 128255, 128000]
    check_naive(str(tmp_path), toks, 4)
    big = [(1 << 32) - 2, 1, (1 << 31), 1, SEP[4], (1 << 32) - 2, (1 << 31) - 2, (1 << 31) - 3, 7]
    sa = build_sa(str(tmp_path), big, 4, name="big")
    assert sa.tolist() == naive_suffix_array(big)


def test_bad_width_and_size(tmp_path):
    p = tmp_path / "t.bin"
    p.write_bytes(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        _core.build_suffix_array(str(p), str(tmp_path / "sa"), 2)  # 3 bytes is not a multiple of 2
    with pytest.raises(ValueError):
        _core.build_suffix_array(str(p), str(tmp_path / "sa"), 3)


# ----------------------------------------------------------- property tests
def token_lists(width: int, max_size: int = 120):
    sep = SEP[width]
    hi = {1: 254, 2: 65534, 4: U32_HI}[width]
    small = st.integers(0, 3)
    anyid = st.integers(0, hi)
    if width == 4:  # sparse ids anywhere below the separator
        anyid = st.one_of(anyid, st.integers(0, sep - 1))
    symbol = st.one_of(small, small, anyid, st.just(sep))
    random_list = st.lists(symbol, max_size=max_size)
    # periodic strings: a random short pattern repeated, maybe with a tail
    periodic = st.builds(lambda p, k, tail: (p * k) + tail,
                         st.lists(st.one_of(small, st.just(sep)), min_size=1, max_size=4),
                         st.integers(1, max_size // 4), st.lists(small, max_size=3))
    return st.one_of(random_list, periodic)


_settings = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("width", [1, 2, 4])
@_settings
@given(data=st.data())
def test_property_matches_naive(tmp_path, width, data):
    toks = data.draw(token_lists(width))
    check_naive(str(tmp_path), toks, width)


# ----------------------------------------------------------- medium inputs
def _docs_layout(rng, n, alphabet, width):
    """``n`` tokens: random docs separated by SEP, with copied chunks (long LCPs)."""
    toks = rng.integers(0, alphabet, size=n)
    # copy chunks around so there are long repeats
    for _ in range(50):
        ln = int(rng.integers(50, 2000))
        a, b = rng.integers(0, n - ln, size=2)
        toks[b:b + ln] = toks[a:a + ln]
    seps = rng.integers(0, n, size=n // 500)
    toks[seps] = SEP[width]
    toks[0] = SEP[width]
    return toks


@pytest.mark.parametrize("width,alphabet", [
    (1, 4), (1, 255), (2, 60000), (4, 128256), (2, 2), (4, (1 << 32) - 1),
])
def test_medium_sorted(tmp_path, width, alphabet):
    rng = np.random.default_rng(width * 1000 + alphabet)
    n = 200_000
    toks = _docs_layout(rng, n, alphabet, width)
    sa = build_sa(str(tmp_path), toks, width)
    check_sorted_suffixes(toks, sa)


def test_check_sorted_suffixes_detects_errors():
    """The medium-size checker itself must reject a wrong array."""
    toks = np.array([1, 0, 1, 0, 1, 0], dtype=np.int64)
    good = np.array(naive_suffix_array(toks.tolist()))
    check_sorted_suffixes(toks, good)
    bad = good.copy()
    bad[[1, 2]] = bad[[2, 1]]
    with pytest.raises(AssertionError):
        check_sorted_suffixes(toks, bad)
    long = np.array([0] * 100, dtype=np.int64)
    good = np.arange(99, -1, -1)
    check_sorted_suffixes(long, good)  # resolved past the vectorised prefix
    with pytest.raises(AssertionError):
        check_sorted_suffixes(long, good[::-1].copy())


@pytest.mark.skipif(bool(os.environ.get("INFINIGRAM_SANITIZED")),
                    reason="AddressSanitizer reserves terabytes of address space for its shadow: no RLIMIT_AS test")
def test_sparse_u32_ids_bounded_memory(tmp_path):
    """A few tokens with one large (but allowed, < 2^31 - 2) u32 id must not
    need memory proportional to the id: sa_build.hpp says u32 tokens are
    remapped to a dense alphabet "so bucket arrays stay vocabulary-sized".
    Run under a 1 GiB address-space limit; a correct array or a clean
    ValueError is acceptable, running out of memory is not."""
    import subprocess
    import sys
    import textwrap

    toks = [1 << 28, 0, 1, SEP[4], 5, 1 << 28, 0]
    tpath, spath = tmp_path / "t.bin", tmp_path / "sa.bin"
    np.asarray(toks, dtype="<u4").tofile(tpath)
    code = textwrap.dedent(f"""
        import resource, sys
        import numpy as np
        from infinigram import _core
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        try:
            w = _core.build_suffix_array({str(tpath)!r}, {str(spath)!r}, 4)
        except ValueError as e:
            print("VALUEERROR", e)
            sys.exit(0)
        print("OK", w)
    """)
    env = dict(os.environ)
    import infinigram
    pkg_parent = os.path.dirname(os.path.dirname(os.path.abspath(infinigram.__file__)))
    env["PYTHONPATH"] = pkg_parent + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, f"build_suffix_array failed under a 1 GiB limit: {r.stderr.strip()[-300:]}"
    if r.stdout.startswith("OK"):
        w = int(r.stdout.split()[1])
        assert read_sa(str(spath), w, len(toks)).tolist() == naive_suffix_array(toks)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_in_memory_suffix_array(width):
    """_core.suffix_array (the in-memory call the benchmarks time) equals the
    naive sort, for every token width, and refuses what it cannot sort."""
    rng = np.random.default_rng(width)
    hi = {1: 256, 2: 65536, 4: U32_HI}[width]
    for n, k in [(0, 2), (1, 2), (2, 2), (17, 2), (300, 3), (500, hi), (64, 1)]:
        a = rng.integers(0, k, n).astype(DTYPES[width])
        sa = _core.suffix_array(a)
        assert sa.dtype == np.int32 and sa.shape == (n,)
        assert np.array_equal(sa, naive_suffix_array(a.astype(np.int64).tolist()))
    with pytest.raises(ValueError, match="uint8, uint16 or uint32"):
        _core.suffix_array(np.zeros(4, np.int64))
    with pytest.raises(ValueError, match="contiguous"):
        _core.suffix_array(np.zeros(8, DTYPES[width])[::2])
    with pytest.raises(ValueError, match="1-D"):
        _core.suffix_array(np.zeros((2, 3), DTYPES[width]))

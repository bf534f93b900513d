"""Tokenizers: raw UTF-8 bytes, or a Hugging Face ``tokenizer.json``.

Never touches the network: a Hugging Face tokenizer is only ever loaded from
a local ``tokenizer.json`` file.
"""

from __future__ import annotations

import abc

import hashlib
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from .errors import IndexCorruptError, TokenizerError
from .format import TOKENIZER_FILE, dtype_for, separator_for, token_width_for

__all__ = ["Tokenizer", "BytesTokenizer", "HFTokenizer", "NoTokenizer", "FastBPETokenizer", "fast_bpe_plan",
           "load_tokenizer", "load_index_tokenizer"]

TokenSeq = Union[Sequence[int], np.ndarray]


class Tokenizer(abc.ABC):
    """Common interface (BytesTokenizer, HFTokenizer). Attributes: ``kind``, ``vocab_size``, ``token_width``,
    ``separator`` (``vocab_size <= separator``: no real token equals it)."""

    kind: str = ""
    vocab_size: int = 0
    token_width: int = 0
    separator: int = 0

    @property
    def dtype(self) -> np.dtype:
        """numpy dtype of encoded tokens (little endian, token_width bytes)."""
        return dtype_for(self.token_width)

    @abc.abstractmethod
    def identity(self) -> Dict[str, Any]:
        """The manifest's ``tokenizer`` entry."""

    @abc.abstractmethod
    def encode(self, text: str) -> np.ndarray:
        """Token ids of ``text`` as an array of :attr:`dtype`."""

    def encode_batch(self, texts: Sequence[str]) -> List[np.ndarray]:
        """:meth:`encode` of each text (the HF tokenizer runs them on threads)."""
        return [self.encode(t) for t in texts]

    @abc.abstractmethod
    def decode(self, tokens: TokenSeq) -> str:
        """Text of token ids."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} kind={self.kind} vocab_size={self.vocab_size} width={self.token_width}>"


class BytesTokenizer(Tokenizer):
    """One token per UTF-8 byte. 1-byte tokens, separator 0xFF.

    ``vocab_size`` is 255: byte 0xFF never occurs in UTF-8, so ids are 0..254.
    encode/decode are O(len) and vectorised.
    """

    kind = "bytes"
    vocab_size = 255
    token_width = 1
    separator = 0xFF

    def identity(self) -> Dict[str, Any]:
        return {"kind": "bytes"}

    def encode(self, text: str) -> np.ndarray:
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise TokenizerError(f"text is not valid Unicode ({e.reason} at character {e.start})") from None
        return np.frombuffer(data, dtype=np.uint8)

    def decode(self, tokens: TokenSeq) -> str:
        """UTF-8 decode with ``errors="replace"`` (a window may cut a character)."""
        arr = np.asarray(tokens)
        if arr.dtype != np.uint8:  # (uint8, as the engine returns: no range check, no copy)
            if arr.size and (arr.min() < 0 or arr.max() > 0xFF):
                raise ValueError("byte tokens must be in [0, 255]")
            arr = arr.astype(np.uint8)
        return arr.tobytes().decode("utf-8", errors="replace")


class HFTokenizer(Tokenizer):
    """A Hugging Face ``tokenizers`` tokenizer loaded from a local tokenizer.json.

    ``vocab_size`` counts added (special) tokens, and is at least max id + 1.
    """

    kind = "hf"

    def __init__(self, path: str, add_special_tokens: bool = False) -> None:
        path = os.path.abspath(os.fspath(path))
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as e:
            raise TokenizerError(f"{path}: cannot read tokenizer file ({e.strerror or e})") from None
        try:
            from tokenizers import Tokenizer as _HF

            tok = _HF.from_str(data.decode("utf-8"))
        except Exception as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise TokenizerError(
                f"{path}: not a valid Hugging Face tokenizer.json ({msg}); "
                "expected the tokenizer.json file of a tokenizers/transformers tokenizer, or 'bytes'"
            ) from None
        self.path = path
        self.sha256 = hashlib.sha256(data).hexdigest()
        self.add_special_tokens = bool(add_special_tokens)
        self._tok = tok
        vocab = tok.get_vocab(with_added_tokens=True)
        max_id = max(vocab.values()) if vocab else -1
        self.vocab_size = max(tok.get_vocab_size(with_added_tokens=True), max_id + 1, 1)
        try:
            self.token_width = token_width_for(self.vocab_size)
        except ValueError:
            raise TokenizerError(
                f"{path}: vocabulary of {self.vocab_size} tokens does not fit in 32-bit token ids"
            ) from None
        self.separator = separator_for(self.token_width)
        if self.vocab_size > self.separator:  # cannot happen with token_width_for; kept as a guard
            raise TokenizerError(f"{path}: token ids up to {self.vocab_size - 1} collide with the separator")
        # encode_batch_fast (tokenizers >= 0.21) skips computing offsets
        self._batch = getattr(tok, "encode_batch_fast", None) or tok.encode_batch

    def identity(self) -> Dict[str, Any]:
        return {
            "kind": "hf",
            "file": TOKENIZER_FILE,
            "sha256": self.sha256,
            "vocab_size": self.vocab_size,
            "source_path": self.path,
            "add_special_tokens": self.add_special_tokens,
        }

    def _to_array(self, ids: List[int]) -> np.ndarray:
        return np.asarray(ids, dtype=np.int64).astype(self.dtype) if ids else np.zeros(0, self.dtype)

    def encode(self, text: str) -> np.ndarray:
        return self._to_array(self._tok.encode(text, add_special_tokens=self.add_special_tokens).ids)

    def encode_batch(self, texts: Sequence[str]) -> List[np.ndarray]:
        """Batched encode on the tokenizers thread pool. O(total length)."""
        encs = self._batch(list(texts), add_special_tokens=self.add_special_tokens)
        return [self._to_array(e.ids) for e in encs]

    def decode(self, tokens: TokenSeq) -> str:
        """``decode(ids, skip_special_tokens=False)``."""
        ids = [int(t) for t in np.asarray(tokens).ravel()]
        return self._tok.decode(ids, skip_special_tokens=False)


class NoTokenizer(Tokenizer):
    """The tokenizer of an index built from token ids alone (``build_from_tokens``
    without a tokenizer): manifest ``{"kind": "none", "token_width": w}``.

    Queries are token ids; :meth:`encode` (a text query) raises a
    :class:`TokenizerError` saying so; :meth:`decode` returns ``""`` (documents
    come back as tokens with no text). Every id below the separator is valid.
    """

    kind = "none"

    def __init__(self, token_width: int) -> None:
        if token_width not in (1, 2, 4):
            raise TokenizerError(f"token width {token_width} (expected 1, 2 or 4 bytes)")
        self.token_width = int(token_width)
        self.separator = separator_for(self.token_width)
        self.vocab_size = self.separator

    def identity(self) -> Dict[str, Any]:
        return {"kind": "none", "token_width": self.token_width}

    def encode(self, text: str) -> np.ndarray:
        raise TokenizerError("this index was built from token ids without a tokenizer: query it with token ids "
                             "(e.g. index.count([791, 4062]), or --tokens 791,4062 on the command line), not text")

    def decode(self, tokens: TokenSeq) -> str:
        """``""``: an index without a tokenizer has no text."""
        return ""


# ---------------------------------------------------------------------------
# The fast exact path for byte-level BPE: tiktoken with the tokenizer.json's
# own ranks and split pattern
# ---------------------------------------------------------------------------

#: GPT-2's ByteLevel pre-tokenizer pattern (``use_regex: true``)
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def byte_decoder() -> Dict[str, int]:
    """GPT-2's bytes_to_unicode table, inverted: vocabulary character → byte."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def fast_bpe_plan(tj: Dict[str, Any], add_special_tokens: bool = False) -> Union[str, Dict[str, Any]]:
    """What a rank encoder (tiktoken) needs to reproduce the tokenizer.json
    ``tj`` exactly — ``{"pat_str", "mergeable_ranks", "special_tokens"}`` — or
    a string saying why it cannot.

    Eligible: a byte-level BPE model (no dropout, no byte fallback, no
    subword prefix/suffix), no normalizer, pre-tokenizer ``ByteLevel`` with
    its GPT-2 regex or ``Split(regex, Isolated)`` then ``ByteLevel`` without
    regex (no prefix space either way), added tokens without
    lstrip/rstrip/single_word and none a prefix of another, and no post-processor
    adding tokens when ``add_special_tokens``. O(vocabulary).

    tiktoken merges the pair whose result has the lowest id, the tokenizers
    library the pair listed first in ``merges``; for tokenizers trained as
    rank encoders (GPT-2/4, Llama 3, Qwen, OLMo) these agree, but nothing
    here proves it for a given file: the build checks the ids on a sample of
    its own documents before using this path (:meth:`FastBPETokenizer.check_against`).
    """
    m = tj.get("model") or {}
    if m.get("type") != "BPE":
        return f"model {m.get('type')!r} is not BPE"
    if m.get("dropout") or m.get("byte_fallback") or m.get("continuing_subword_prefix") or m.get("end_of_word_suffix"):
        return "BPE with dropout, byte fallback or subword affixes"
    if tj.get("normalizer") is not None:
        return f"a normalizer ({(tj['normalizer'] or {}).get('type')})"
    pre = tj.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    if len(steps) == 1 and steps[0].get("type") == "ByteLevel" and steps[0].get("use_regex", True):
        pat = GPT2_PATTERN
        bl = steps[0]
    elif (len(steps) == 2 and steps[0].get("type") == "Split" and steps[1].get("type") == "ByteLevel"
          and not steps[1].get("use_regex", True) and "Regex" in (steps[0].get("pattern") or {})
          and steps[0].get("behavior") == "Isolated" and not steps[0].get("invert")):
        pat = steps[0]["pattern"]["Regex"]
        bl = steps[1]
    else:
        return "pre-tokenizer is not ByteLevel or Split(regex) + ByteLevel"
    if bl.get("add_prefix_space"):
        return "ByteLevel adds a prefix space"
    post = tj.get("post_processor") or {}
    if add_special_tokens and post and post.get("type") != "ByteLevel":
        return f"add_special_tokens with a {post.get('type')} post-processor"
    dec = byte_decoder()
    vocab = m.get("vocab") or {}
    ranks: Dict[bytes, int] = {}
    try:
        for piece, i in vocab.items():
            ranks[bytes(dec[ch] for ch in piece)] = int(i)
    except KeyError:
        return "vocabulary not in the byte-level alphabet"
    if len(ranks) != len(vocab) or len(set(ranks.values())) != len(ranks):
        return "vocabulary maps two ids to one byte string"
    specials: Dict[str, int] = {}
    for t in tj.get("added_tokens") or []:
        if t.get("lstrip") or t.get("rstrip") or t.get("single_word"):
            return f"added token {t.get('content')!r} strips spaces or matches single words"
        specials[t["content"]] = int(t["id"])
    contents = sorted(specials)
    for x, y in zip(contents, contents[1:]):
        if y.startswith(x):
            return f"added token {x!r} is a prefix of {y!r}"
    return {"pat_str": pat, "mergeable_ranks": ranks, "special_tokens": specials}


class FastBPETokenizer(HFTokenizer):
    """An :class:`HFTokenizer` that encodes with tiktoken, built from the same
    ``tokenizer.json`` (:func:`fast_bpe_plan`): the same ids (checked against
    the tokenizers library by the build before use, see
    :meth:`check_against`), several times faster. Identity, decode and width
    are the HF tokenizer's: an index built with it is the same index.

    :meth:`encode_batch` runs on ``n_threads`` threads (tiktoken releases the
    GIL). O(total length). Raises :class:`TokenizerError` when the file is
    not eligible or tiktoken is missing (``reason`` says which).
    """

    def __init__(self, path: str, add_special_tokens: bool = False, n_threads: int = 0,
                 base: Optional[HFTokenizer] = None) -> None:
        if base is not None:  # reuse a loaded HFTokenizer (the tokenizers object is shared, read-only)
            self.__dict__.update(base.__dict__)
        else:
            super().__init__(path, add_special_tokens=add_special_tokens)
        try:
            import tiktoken
        except ImportError:
            raise TokenizerError("tiktoken is not installed (pip install tiktoken)") from None
        import json

        with open(self.path, encoding="utf-8") as fh:
            plan = fast_bpe_plan(json.load(fh), add_special_tokens)
        if isinstance(plan, str):
            raise TokenizerError(plan)
        try:
            self._enc = tiktoken.Encoding(f"infinigram-{self.sha256[:12]}", **plan)
        except Exception as e:
            raise TokenizerError(f"tiktoken refused the vocabulary ({e})") from None
        self.n_threads = max(1, n_threads or (os.cpu_count() or 1))
        self._pool: Optional[Any] = None

    def encode(self, text: str) -> np.ndarray:
        """Ids as a numpy array straight from tiktoken's buffer (no Python list of ints)."""
        return self._enc.encode_to_numpy(text, allowed_special="all").astype(self.dtype, copy=False)

    def encode_batch(self, texts: Sequence[str]) -> List[np.ndarray]:
        """:meth:`encode` of each text on :attr:`n_threads` threads (tiktoken
        releases the GIL while encoding). O(total length)."""
        if len(texts) < 2 or self.n_threads == 1:
            return [self.encode(t) for t in texts]
        if self._pool is None:
            import concurrent.futures

            self._pool = concurrent.futures.ThreadPoolExecutor(self.n_threads, thread_name_prefix="infinigram-tiktoken")
        return list(self._pool.map(self.encode, texts, chunksize=max(1, len(texts) // (4 * self.n_threads))))

    def __del__(self) -> None:
        if getattr(self, "_pool", None) is not None:
            self._pool.shutdown(wait=False)

    def check_against(self, texts: Sequence[str]) -> Optional[int]:
        """Index of the first of ``texts`` whose ids differ from the
        tokenizers library's, or None when all agree. O(total length)."""
        mine = self.encode_batch(texts)
        ref = HFTokenizer.encode_batch(self, texts)
        for i, (a, b) in enumerate(zip(mine, ref)):
            if a.shape != b.shape or not np.array_equal(a, b):
                return i
        return None


def load_tokenizer(spec: Union[str, "os.PathLike[str]", Tokenizer] = "bytes", add_special_tokens: bool = False) -> Tokenizer:
    """``"bytes"`` → :class:`BytesTokenizer`; a path → :class:`HFTokenizer`.
    (``"none"`` is not accepted here: an index without a tokenizer comes only
    from ``build_from_tokens``.)

    A :class:`Tokenizer` instance is returned as is. Unreadable or invalid
    files raise :class:`TokenizerError` naming the path. No network access.
    """
    if isinstance(spec, Tokenizer):
        return spec
    spec = os.fspath(spec)
    if spec == "bytes":
        return BytesTokenizer()
    if os.path.isdir(spec):
        candidate = os.path.join(spec, TOKENIZER_FILE)
        if not os.path.isfile(candidate):
            raise TokenizerError(f"{spec}: a directory without {TOKENIZER_FILE} (expected 'bytes' or a tokenizer.json path)")
        spec = candidate
    if not os.path.exists(spec):
        raise TokenizerError(f"{spec}: no such tokenizer file (expected 'bytes' or a path to a tokenizer.json)")
    return HFTokenizer(spec, add_special_tokens=add_special_tokens)


def load_index_tokenizer(index_path: str, manifest: Dict[str, Any]) -> Tokenizer:
    """The tokenizer of an existing index (its copied tokenizer.json, sha256-checked).

    Raises :class:`IndexCorruptError` if the copy is missing or altered,
    :class:`TokenizerError` for an unknown kind.
    """
    ident = manifest.get("tokenizer") or {}
    kind = ident.get("kind")
    if kind == "bytes":
        return BytesTokenizer()
    if kind == "none":
        return NoTokenizer(int(manifest.get("token_width", ident.get("token_width", 0))))
    if kind != "hf":
        raise TokenizerError(f"{index_path}: unknown tokenizer kind {kind!r} in the manifest (expected bytes, hf or none)")
    path = os.path.join(os.fspath(index_path), ident.get("file", TOKENIZER_FILE))
    if not os.path.isfile(path):
        raise IndexCorruptError(f"{path}: tokenizer file missing", path)
    tok = HFTokenizer(path, add_special_tokens=bool(ident.get("add_special_tokens", False)))
    if ident.get("sha256") and tok.sha256 != ident["sha256"]:
        raise IndexCorruptError(f"{path}: checksum mismatch (not the tokenizer the index was built with)", path)
    if tok.token_width != manifest.get("token_width"):
        raise IndexCorruptError(f"{path}: token width {tok.token_width} differs from the index's", path)
    return tok

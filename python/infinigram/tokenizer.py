"""Tokenizers: raw UTF-8 bytes, or a Hugging Face ``tokenizer.json``.

Never touches the network: a Hugging Face tokenizer is only ever loaded from
a local ``tokenizer.json`` file.
"""

from __future__ import annotations

import abc

import hashlib
import os
from typing import Any, Dict, List, Sequence, Union

import numpy as np

from .errors import IndexCorruptError, TokenizerError
from .format import TOKENIZER_FILE, dtype_for, separator_for, token_width_for

__all__ = ["Tokenizer", "BytesTokenizer", "HFTokenizer", "load_tokenizer", "load_index_tokenizer"]

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


def load_tokenizer(spec: Union[str, "os.PathLike[str]", Tokenizer] = "bytes", add_special_tokens: bool = False) -> Tokenizer:
    """``"bytes"`` → :class:`BytesTokenizer`; a path → :class:`HFTokenizer`.

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
    if kind != "hf":
        raise TokenizerError(f"{index_path}: unknown tokenizer kind {kind!r} in the manifest (expected bytes or hf)")
    path = os.path.join(os.fspath(index_path), ident.get("file", TOKENIZER_FILE))
    if not os.path.isfile(path):
        raise IndexCorruptError(f"{path}: tokenizer file missing", path)
    tok = HFTokenizer(path, add_special_tokens=bool(ident.get("add_special_tokens", False)))
    if ident.get("sha256") and tok.sha256 != ident["sha256"]:
        raise IndexCorruptError(f"{path}: checksum mismatch (not the tokenizer the index was built with)", path)
    if tok.token_width != manifest.get("token_width"):
        raise IndexCorruptError(f"{path}: token width {tok.token_width} differs from the index's", path)
    return tok

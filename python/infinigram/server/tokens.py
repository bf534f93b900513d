"""Token ids as text for display: per-token pieces that add up to the decoded
text, single-token labels, and infini-gram's raw token strings.

Works for the bytes tokenizer and for Hugging Face tokenizers. A token's
bytes are known exactly for the bytes tokenizer, byte-level BPE vocabularies
(GPT-2 / Llama 3 style, mapped back through the GPT-2 byte alphabet) and
sentencepiece byte-fallback tokens (``<0xNN>``); other vocabularies fall back
to decoding each token alone.
"""

from __future__ import annotations

import codecs
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["TokenText"]


def _byte_level_alphabet() -> Dict[str, int]:
    """The GPT-2 byte-level alphabet: printable character -> the byte it stands for."""
    keep = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    out = {chr(b): b for b in keep}
    extra = 0
    for b in range(256):
        if b not in out.values():
            out[chr(256 + extra)] = b
            extra += 1
    return out


class TokenText:
    """Display helpers over an index's tokenizer (an infinigram ``Tokenizer``)."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.kind: str = getattr(tokenizer, "kind", "bytes")
        self._hf = getattr(tokenizer, "_tok", None) if self.kind == "hf" else None
        self._bytes_cache: Dict[int, Optional[bytes]] = {}
        self._byte_level = False
        if self._hf is not None:
            dec = getattr(self._hf, "decoder", None)
            self._byte_level = dec is not None and type(dec).__name__ == "ByteLevel"
            self._alphabet = _byte_level_alphabet()

    # ------------------------------------------------------------- one token
    def token_bytes(self, t: int) -> Optional[bytes]:
        """The bytes token ``t`` stands for, or None when the vocabulary does not say. O(1) amortized."""
        if self.kind == "bytes":
            return bytes((t,))
        b = self._bytes_cache.get(t, b"?")
        if b != b"?":
            return b
        s = self._hf.id_to_token(int(t))
        if s is None:
            b = None
        elif self._byte_level and all(ch in self._alphabet for ch in s):
            b = bytes(self._alphabet[ch] for ch in s)
        elif len(s) == 6 and s.startswith("<0x") and s.endswith(">"):
            try:
                b = bytes((int(s[3:5], 16),))
            except ValueError:
                b = None
        else:
            b = None
        self._bytes_cache[t] = b
        return b

    def raw_token(self, t: int) -> str:
        """infini-gram's ``tokens`` entry: the vocabulary string of a token
        (``chr(id)`` for bytes, as infini-gram's byte tokenizer gives)."""
        if self.kind == "bytes":
            return chr(int(t))
        s = self._hf.id_to_token(int(t))
        return "" if s is None else s

    def label(self, t: int) -> str:
        """A readable label of one token: its text when its bytes are valid
        UTF-8 on their own, else its bytes as ``\\xNN`` escapes."""
        b = self.token_bytes(int(t))
        if b is None:
            return self.tokenizer.decode([int(t)])
        try:
            return b.decode("utf-8")
        except UnicodeDecodeError:
            return "".join(f"\\x{x:02x}" for x in b)

    # ----------------------------------------------------------- a sequence
    def pieces(self, ids: Sequence[int], text: Optional[str] = None) -> List[str]:
        """One string per token whose concatenation is the decoded text
        (``text`` if given, else ``tokenizer.decode(ids)``). A UTF-8 character
        whose bytes are split over several tokens goes to the first of them;
        the others get "". O(len(ids))."""
        ids = [int(t) for t in (ids.tolist() if isinstance(ids, np.ndarray) else ids)]
        if self.kind == "bytes":  # fast paths: ASCII, then any valid UTF-8
            b = bytes(ids)
            if b.isascii():
                return [chr(t) for t in ids]
            try:
                s = b.decode("utf-8")
            except UnicodeDecodeError:
                s = None
            if s is not None:
                out = [""] * len(ids)
                pos = 0
                for ch in s:
                    out[pos] = ch
                    pos += 1 if ch < "\x80" else len(ch.encode("utf-8"))
                return out
        elif self._hf is not None:  # every token's bytes a whole UTF-8 text: its own piece
            parts = [self.token_bytes(t) for t in ids]
            if all(p is not None for p in parts):
                try:
                    return [p.decode("utf-8") for p in parts]  # type: ignore[union-attr]
                except UnicodeDecodeError:
                    pass
        if text is None:
            text = self.tokenizer.decode(ids)
        out2 = self._pieces_by_bytes(ids)
        if out2 is None or "".join(out2) != text:
            out2 = [self.tokenizer.decode([t]) for t in ids]
            if "".join(out2) != text:  # a decoder that is not concatenative (e.g. strips a leading space)
                out2 = [text] + [""] * (len(ids) - 1) if ids else []
        return out2

    def _pieces_by_bytes(self, ids: List[int]) -> Optional[List[str]]:
        dec = codecs.getincrementaldecoder("utf-8")(errors="replace")
        out = [""] * len(ids)
        owner = -1  # token where the pending (incomplete) character began
        for i, t in enumerate(ids):
            b = self.token_bytes(t)
            if b is None:
                return None
            s = dec.decode(b)
            if owner >= 0 and s:
                out[owner] += s[0]  # the character pending since an earlier token
                s = s[1:]
                owner = -1
            out[i] += s
            if owner < 0 and dec.getstate()[0]:
                owner = i
        tail = dec.decode(b"", final=True)
        if tail:
            out[owner if owner >= 0 else len(ids) - 1] += tail
        return out

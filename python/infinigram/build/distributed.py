"""Distributed builds on Ray (the ``ray`` extra): ``build(..., ray=True|"ADDRESS")``,
``infinigram build ... --ray [ADDRESS]``.

Reading, tokenizing and writing shards stay on the driver (one stream, as
in a local build); each shard's construction — the same
:func:`.construct.run_shard_job` a local build runs on its thread pool: the
suffix sort (in memory or out of core) or the FM build, then the checksums
of the shard's files — runs as a Ray task on whichever node has a free CPU.
Shards travel by path, never through Ray's object store, so the output
directory must be on a filesystem every node sees (checked at start: each
node reads a probe file the driver wrote in the build's temp dir and writes
one back). The manifest and every file are byte-identical to a local build.

* ``ray=True``: a local cluster (``num_cpus`` = the build's workers, no
  dashboard, quiet logs), shut down at the end; if this process is already
  connected to Ray (``ray.init`` called before), that cluster is used and
  left running.
* ``ray="host:port"`` (or ``"ray://host:port"``, ``"auto"``): join that
  cluster; one that does not answer within ``CONNECT_TIMEOUT_S`` is an
  :class:`InputError` before any work. The nodes need this infinigram
  installed (same version).
* A task whose worker dies (OOM kill, node lost) or that raises ``OSError``
  is rerun up to ``MAX_RETRIES`` times; the job is idempotent (an FM shard's
  tokens.bin is removed by the driver once its task succeeded). Any other
  failure cancels the other tasks and removes the temp dir: nothing is left
  that opens as an index.
* Memory: each task takes its peak from its own copy of the build's budget
  (``--max-memory`` applies per task, and a node runs at most one task per
  CPU); the in-memory / out-of-core choice is the local build's.

Test hook (documented, one line): with ``INFINIGRAM_RAY_FAIL_ONCE=PATH`` in
the driver's environment, the first task that removes the file ``PATH``
kills its own worker (``os._exit``), as a crash would; Ray reruns it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from typing import Any, Dict, List, Optional, Tuple, Union

from .. import build_ooc as _ooc
from ..errors import InputError
from .construct import ShardJob, _tqdm, run_shard_job
from .fs import _fsync_path

__all__ = ["RaySession", "INSTALL_HINT", "FAIL_ONCE_ENV"]

INSTALL_HINT = "pip install 'infinigram[ray]' (or: pip install ray)"
FAIL_ONCE_ENV = "INFINIGRAM_RAY_FAIL_ONCE"
MAX_RETRIES = 3
CONNECT_TIMEOUT_S = 5.0
PROBE_TIMEOUT_S = 120.0


def import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise InputError(f"a build on Ray needs the ray package: {INSTALL_HINT}") from exc
    return ray


def check_address(address: str) -> None:
    """InputError unless ``address`` (``host:port`` or ``ray://host:port``)
    accepts a TCP connection within ``CONNECT_TIMEOUT_S``."""
    a = address.strip()
    if a.lower() in ("auto", "local"):
        return
    hostport = a.split("://", 1)[1] if "://" in a else a
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"bad Ray address {address!r} (expected host:port, ray://host:port or auto)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise InputError(
            f"the Ray cluster at {address!r} does not answer ({exc}); start one there with "
            f"'ray start --head', or give --ray without an address for a local cluster"
        ) from exc


def _shard_task(job: ShardJob, max_memory: int, baseline: int, fail_once: Optional[str]) -> Dict[str, Any]:
    """A shard's construction on a Ray worker: the local build's job, with
    its own copy of the build's memory budget."""
    if fail_once:
        try:
            os.remove(fail_once)
        except FileNotFoundError:
            pass
        else:
            os._exit(1)  # the test hook: this worker dies once (FAIL_ONCE_ENV)
    return run_shard_job(job, _ooc.MemoryBudget(max_memory, baseline))


def _probe(tmp: str, token: str) -> Tuple[str, Optional[str]]:
    """On one node: read the driver's probe file, write this node's."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    try:
        with open(os.path.join(tmp, ".ray-probe")) as fh:
            if fh.read() != token:
                return node, "read another probe file"
        with open(os.path.join(tmp, f".ray-probe-{node}"), "w") as fh:
            fh.write(token)
    except OSError as exc:
        return node, str(exc)
    return node, None


class RaySession:
    """A connection to a Ray cluster for one build (see the module doc)."""

    def __init__(self, ray_arg: Union[bool, str], workers: int) -> None:
        ray = import_ray()
        self.ray = ray
        self.owned = False
        address = None if ray_arg is True or (isinstance(ray_arg, str) and not ray_arg.strip()) else str(ray_arg)
        if address is not None:
            check_address(address)
        if not ray.is_initialized():
            quiet = dict(logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
            try:
                if address is None:
                    ray.init(num_cpus=max(1, workers), include_dashboard=False, **quiet)
                else:
                    ray.init(address=address, **quiet)
            except Exception as exc:  # noqa: BLE001 - ray raises several kinds
                raise InputError(f"could not {'start a local Ray cluster' if address is None else f'join the Ray cluster at {address!r}'}: {exc}") from exc
            self.owned = True
        opts = dict(num_cpus=1, max_retries=MAX_RETRIES, retry_exceptions=[OSError])
        self.task = ray.remote(**opts)(_shard_task)
        self.probe = ray.remote(num_cpus=0, max_retries=0)(_probe)

    def close(self) -> None:
        if self.owned:
            self.ray.shutdown()
            self.owned = False

    def check_shared_fs(self, tmp: str) -> None:
        """InputError unless every alive node reads and writes ``tmp``."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        token = secrets.token_hex(8)
        with open(os.path.join(tmp, ".ray-probe"), "w") as fh:
            fh.write(token)
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        refs = {self.probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False))
                .remote(tmp, token): n for n in nodes}
        ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=PROBE_TIMEOUT_S)
        bad: List[str] = []
        for ref, n in refs.items():
            where = f"node {n.get('NodeManagerAddress', '?')} ({n['NodeID'][:8]})"
            if ref not in ready:
                bad.append(f"{where}: no answer in {PROBE_TIMEOUT_S:.0f} s")
                continue
            node, err = ray.get(ref)
            mine = os.path.join(tmp, f".ray-probe-{node}")
            if err is None and not os.path.exists(mine):
                err = "its file is not seen by the driver"
            if err is not None:
                bad.append(f"{where}: {err}")
        for name in os.listdir(tmp):
            if name.startswith(".ray-probe"):
                os.remove(os.path.join(tmp, name))
        if bad:
            raise InputError(
                f"the build directory {tmp} is not on a filesystem every Ray node sees ({'; '.join(bad)}): "
                f"put the output on a shared filesystem (NFS, Lustre, ...)"
            )

    def constructor(self, *args: Any, **kw: Any) -> "_RayConstructor":
        return _RayConstructor(self, *args, **kw)


class _RayConstructor:
    """:class:`.construct._Constructor`'s interface (submit / finish /
    cancel), each shard's job a Ray task."""

    def __init__(self, session: RaySession, shards: List[Tuple[Any, Dict[str, Any]]], width: int, backend: str,
                 sa_sample: int, isa_sample: int, wt_block_bits: int, workers: int, progress: bool,
                 budget: "_ooc.MemoryBudget", sa_part_size: Optional[int]) -> None:
        self.session, self.ray = session, session.ray
        self.shards, self.width, self.backend = shards, width, backend
        self.sa_sample, self.isa_sample, self.wt_block_bits = int(sa_sample), int(isa_sample), int(wt_block_bits)
        self.workers = max(1, workers)
        self.budget, self.sa_part_size, self.progress = budget, sa_part_size, progress
        self.refs: Dict[Any, int] = {}
        self.bar: Any = None
        self.fail_once = os.environ.get(FAIL_ONCE_ENV) or None

    def submit(self, i: int) -> None:
        w = self.shards[i][0]
        if self.bar is None:
            self.bar = _tqdm(self.progress, total=0, unit="tok", unit_scale=True,
                             desc="FM-indexes (Ray)" if self.backend == "fm" else "suffix arrays (Ray)")
        self.bar.total = (self.bar.total or 0) + w.n_positions
        self.bar.refresh()
        threads = max(1, self.workers // (len(self.refs) + 1))  # as the local pool gives its first shards
        job = ShardJob(w.dir, dict(w.paths), w.n_positions, self.width, self.backend, self.sa_sample,
                       self.isa_sample, self.wt_block_bits, threads, self.workers, self.sa_part_size,
                       sum_inputs=True, drop_tokens=False)
        ref = self.session.task.remote(job, self.budget.max_memory, self.budget.baseline, self.fail_once)
        self.refs[ref] = i

    def finish(self) -> None:
        files: Dict[str, Dict[str, Any]] = {}
        pending = list(self.refs)
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            i = self.refs[done[0]]
            res = self.ray.get(done[0])  # a task's exception is raised here
            w, entry = self.shards[i]
            entry.update(n_docs=w.n_docs, n_tokens=w.n_positions - w.n_docs,
                         n_positions=w.n_positions, ptr_width=res["ptr_width"])
            files.update(res["files"])
            if self.backend == "fm":  # the task leaves it, so that a rerun finds its input
                os.remove(w.paths["tokens"])
            w.paths = res["paths"]
            if self.bar is not None:
                self.bar.update(w.n_positions)
        if self.bar is not None:
            self.bar.close()
        for w, entry in self.shards:
            entry["files"] = {os.path.basename(p): files[p] for p in w.paths.values()}
            _fsync_path(w.dir)

    def cancel(self) -> None:
        """Cancels the tasks (running ones killed) and waits until they end,
        so that none writes into the temp dir after it is removed."""
        refs = list(self.refs)
        for ref in refs:
            try:
                self.ray.cancel(ref, force=True)
            except Exception:  # noqa: BLE001 - finished already
                pass
        if refs:
            try:
                self.ray.wait(refs, num_returns=len(refs), timeout=60)
            except Exception:  # noqa: BLE001
                pass
        if self.bar is not None:
            self.bar.close()

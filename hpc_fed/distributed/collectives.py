"""The one owner of hpc_fed's collectives: every torch.distributed collective hpc_fed issues is here.

A `Comm` is one process group (the world, or this rank's client group) plus the device its
backend moves tensors on: the rank's GPU under nccl (which refuses CPU tensors), the CPU under
gloo. Callers hand tensors from wherever they live; each method copies them to that device,
runs the collective, and returns the result on the caller's device, so no caller ever needs to
know the backend. Collectives always run, in a world of one too: a one-GPU run takes the same
device path as a cluster run (callers never test the world size to skip one).

`blocked_in` tells the rank monitor's watchdog whether a stalled thread is inside a collective
(waiting for a peer) or not (hpc_fed/runtime/watchdog.py).

`LocalComm` is the same interface with no process group (a library call outside any run, e.g.
`evaluate` in a notebook): every collective is the identity on a group of one.

Strict mode (`HPC_FED_STRICT_COLLECTIVES=1`, set by the test suite; also a debugging aid) wraps
torch.distributed's collectives in this process (in torch.distributed.distributed_c10d, which
torch.distributed re-exports, so every spelling of a call reaches the same check), and refuses,
with the caller's file and line:
  * a collective called from code that is neither this module nor a library (DeepSpeed,
    transformers, ...): it bypasses the placement below, the bug that made every multi-GPU run
    fail at its first aggregation while gloo tests passed;
  * a tensor handed to torch.distributed by this module on a device other than its Comm's;
  * under nccl, a library collective on a tensor that is not on a GPU.
It also counts the collectives it saw (hpc_fed's in order, the libraries' per op and device),
so a test can check a run really went through it. It must be installed before DeepSpeed builds
its communication backend, which keeps references to torch's gather and reduce-scatter
(`install_strict_guard` rebinds them when DeepSpeed came first).
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FunctionType

import torch
import torch.distributed as dist

from hpc_fed.errors import HpcFedError

log = logging.getLogger(__name__)

STRICT_ENV = "HPC_FED_STRICT_COLLECTIVES"

# Every torch.distributed function that communicates (tests/test_collectives.py refuses a call
# to any of them outside this module), the deprecated and private spellings included.
COLLECTIVES = (
    "all_reduce", "broadcast", "all_gather", "all_gather_into_tensor", "all_gather_single", "reduce",
    "reduce_scatter", "reduce_scatter_tensor", "reduce_scatter_single", "gather", "scatter",
    "all_to_all", "all_to_all_single", "barrier", "monitored_barrier", "broadcast_object_list",
    "all_gather_object", "gather_object", "scatter_object_list", "send", "recv", "isend", "irecv",
    "batch_isend_irecv", "send_object_list", "recv_object_list", "all_reduce_coalesced",
    "all_gather_coalesced", "_all_gather_base", "_reduce_scatter_base",
)

_OPS = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX, "min": dist.ReduceOp.MIN}


class PeerLostError(HpcFedError, RuntimeError):
    """A collective failed in transport (a peer died or timed out); shown as one line per rank."""

    exit_code = 1  # a failure of the run, not of what the user typed


class StrictCollectiveError(RuntimeError):
    """A collective that would fail (or hang) on a GPU backend, caught on any backend."""


class Comm:
    """Collectives over one process group, with tensors placed on the backend's device."""

    def __init__(self, group, device: torch.device, name: str):
        self.group, self.device, self.name = group, torch.device(device), name
        self.rank = dist.get_rank(group)
        self.size = dist.get_world_size(group)

    def __repr__(self) -> str:
        return f"Comm({self.name}: rank {self.rank} of {self.size}, {self.device})"

    def _place(self, tensor: torch.Tensor) -> torch.Tensor:
        """A copy of `tensor` on this group's device (the caller's tensor is never modified)."""
        return tensor.detach().to(self.device, copy=True)

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """The element-wise reduction (sum | max | min) over the group, on `tensor`'s device."""
        x = self._place(tensor)
        dist.all_reduce(x, op=_OPS[op], group=self.group)
        return x.to(tensor.device)

    def broadcast(self, tensor: torch.Tensor, src: int) -> torch.Tensor:
        """Global rank `src`'s `tensor` on every rank of the group, on `tensor`'s device."""
        x = self._place(tensor)
        dist.broadcast(x, src=src, group=self.group)
        return x.to(tensor.device)

    def broadcast_object(self, obj, src: int = 0):
        """Global rank `src`'s picklable `obj` on every rank of the group."""
        box = [obj]
        dist.broadcast_object_list(box, src=src, group=self.group, device=self.device)
        return box[0]

    def all_gather_object(self, obj) -> list:
        """Every rank's picklable `obj`, in group rank order."""
        out = [None] * self.size
        # torch serialises objects through tensors on the current CUDA device under nccl;
        # init_distributed set it to this rank's GPU.
        dist.all_gather_object(out, obj, group=self.group)
        return out

    def barrier(self) -> None:
        ids = [self.device.index] if self.device.type == "cuda" else None
        dist.barrier(group=self.group, device_ids=ids)


class LocalComm:
    """The Comm interface with no process group: a group of one where every collective is the
    identity. For library use outside a run; a run always has real Comms (hpc_fed.distributed)."""

    rank, size, name = 0, 1, "local"

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        return tensor.detach().clone()

    def broadcast(self, tensor: torch.Tensor, src: int) -> torch.Tensor:
        return tensor.detach().clone()

    def broadcast_object(self, obj, src: int = 0):
        return obj

    def all_gather_object(self, obj) -> list:
        return [obj]

    def barrier(self) -> None:
        return None


# --- strict mode ------------------------------------------------------------------------------

_OWNER = Path(__file__).resolve()
_PACKAGE = _OWNER.parent.parent  # hpc_fed/
_TORCH = Path(torch.__file__).resolve().parent


def strict_requested() -> bool:
    return os.environ.get(STRICT_ENV, "") not in ("", "0", "false", "no")


@dataclass
class StrictGuard:
    """Checks every torch.distributed collective of this process (see the module docstring)."""

    backend: str
    # (op, "world" | "client") of every collective issued through a Comm, in order
    owner_calls: list[tuple[str, str]] = field(default_factory=list)
    # (op, device type of its first tensor, "-" without one) -> library calls seen
    library_calls: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def check(self, op: str, frame, args: tuple, kwargs: dict) -> None:
        """`frame`: the caller of torch.distributed.<op>."""
        while frame is not None and _origin(frame.f_code.co_filename) == "torch":
            frame = frame.f_back  # torch calling itself (e.g. object collectives)
        filename = frame.f_code.co_filename if frame is not None else "<unknown>"
        where = f"{filename}:{frame.f_lineno if frame is not None else 0}"
        origin = _origin(filename)
        tensors = list(_tensors_in(args, kwargs))
        if origin == "owner":
            comm = getattr(_current, "comm", None)
            bad = [t.device for t in tensors if comm is not None and t.device != comm.device]
            if bad:
                raise StrictCollectiveError(
                    f"torch.distributed.{op} got a tensor on {bad[0]} from {where}, but its Comm "
                    f"({comm.name}) moves tensors on {comm.device}")
            scope = "world" if comm is None or comm.group is None else "client"
            with self._lock:
                self.owner_calls.append((op, scope))
            return
        if origin == "library":
            bad = [t.device for t in tensors if self.backend == "nccl" and t.device.type != "cuda"]
            if bad:
                raise StrictCollectiveError(f"torch.distributed.{op} from {where} got a tensor on "
                                            f"{bad[0]}; nccl needs CUDA tensors")
            with self._lock:
                self.library_calls[(op, tensors[0].device.type if tensors else "-")] += 1
            return
        raise StrictCollectiveError(
            f"torch.distributed.{op} called directly from {where}: collectives go through "
            "hpc_fed.distributed.collectives (a Comm places tensors on the backend's device; "
            "under nccl a CPU tensor fails with 'No backend type associated with device type cpu')")

    def library_ops(self) -> Counter:
        """op -> library calls seen, whatever their device."""
        ops: Counter = Counter()
        for (op, _), n in self.library_calls.items():
            ops[op] += n
        return ops

    def summary(self) -> str:
        ops = ", ".join(f"{op} {n}" for op, n in self.library_ops().most_common())
        return (f"strict collectives: {len(self.owner_calls)} hpc_fed collectives and "
                f"{sum(self.library_calls.values())} library collectives checked ({self.backend})"
                + (f"; library: {ops}" if ops else ""))


_guard: StrictGuard | None = None
# per thread: the Comm whose method is running (its device is the expected one), and whether a
# guarded collective is running (the collectives it calls are torch's business)
_current = threading.local()
_GUARDED: dict = {}  # torch's collective -> its guarded replacement


@functools.lru_cache(maxsize=4096)
def _origin(filename: str) -> str:
    """torch | owner (this module) | library (installed third-party code: DeepSpeed,
    transformers, ...) | other (hpc_fed elsewhere, tests, scripts)."""
    try:
        path = Path(filename).resolve()
    except OSError:
        return "other"
    if path == _OWNER:
        return "owner"
    if path.is_relative_to(_TORCH):
        return "torch"
    if {"site-packages", "dist-packages"} & set(path.parts) and not path.is_relative_to(_PACKAGE):
        return "library"
    return "other"


def _tensors_in(args: tuple, kwargs: dict):
    for value in (*args, *kwargs.values()):
        if isinstance(value, torch.Tensor):
            yield value
        elif isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, torch.Tensor))


def _tracked(method):
    """Record which Comm is issuing the call, so the guard can check its device."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        previous = getattr(_current, "comm", None)
        _current.comm = self
        try:
            return method(self, *args, **kwargs)
        except (StrictCollectiveError, PeerLostError):
            raise
        except RuntimeError as exc:  # gloo/NCCL transport errors, timeouts: a peer is gone or stuck
            if not dist.is_initialized():
                raise
            text = str(exc).strip()
            first = text.splitlines()[0][:300] if text else type(exc).__name__
            raise PeerLostError(
                f"rank {dist.get_rank()}: {method.__name__} over {self.size} rank(s) failed: {first}. "
                "Another rank died, was killed or stopped answering: its own output says why "
                "(torchrun --max-restarts / hpc-fed launch --max-restarts restarts the run from "
                "the last checkpoint)") from exc
        finally:
            _current.comm = previous

    return wrapper


for _name in ("all_reduce", "broadcast", "broadcast_object", "all_gather_object", "barrier"):
    setattr(Comm, _name, _tracked(getattr(Comm, _name)))


def _guarded(op: str, original):
    @functools.wraps(original)
    def guarded(*args, **kwargs):
        if getattr(_current, "inside", False):  # torch's own collective calling another
            return original(*args, **kwargs)
        _guard.check(op, sys._getframe(1), args, kwargs)
        _current.inside = True
        try:
            return original(*args, **kwargs)
        finally:
            _current.inside = False

    return guarded


def _rebind_library_references(originals: dict) -> None:
    """DeepSpeed's communication backend (built by deepspeed.init_distributed) keeps references
    to torch.distributed functions taken then (`all_gather_function`, `reduce_scatter_function`,
    the ZeRO-3 traffic): point any that predate the guard at the guarded ones."""
    comm = sys.modules.get("deepspeed.comm.comm")
    backend = getattr(comm, "cdb", None)
    if backend is None:
        return
    for attr, value in list(vars(backend).items()):
        if isinstance(value, FunctionType) and value in originals:
            setattr(backend, attr, originals[value])


def install_strict_guard(backend: str) -> StrictGuard:
    """Wrap torch.distributed's collectives in this process (idempotent); returns the guard.

    Each collective is replaced in torch.distributed.distributed_c10d, where torch's own
    functions look it up, and in torch.distributed, which re-exports it, by one guarded function,
    so `dist.all_reduce`, `dist.distributed_c10d.all_reduce` and a name imported from either
    after this point are the same checked call."""
    global _guard
    if _guard is None:
        _guard = StrictGuard(backend)
        modules = (dist.distributed_c10d, dist)
        for name in COLLECTIVES:
            original = next((getattr(m, name) for m in modules if hasattr(m, name)), None)
            if original is None:
                continue
            guarded = _guarded(name, original)
            _GUARDED[original] = guarded
            for module in modules:
                if getattr(module, name, None) is original:
                    setattr(module, name, guarded)
    _guard.backend = backend
    _rebind_library_references(_GUARDED)
    return _guard


_C10D = Path(dist.distributed_c10d.__file__).resolve()


def blocked_in(frame) -> str | None:
    """The collective a thread whose innermost frame is `frame` is inside, or None.

    The innermost torch.distributed function on its stack (its collectives wait for their work
    before returning, on gloo), or a `wait` of DeepSpeed's (ZeRO-3 starts its gathers
    asynchronously and waits on their handles later). Under nccl the host does not wait for the
    GPU's collective, so a rank waiting for a peer may sit at its next synchronisation instead,
    which this cannot tell from computing."""
    while frame is not None:
        code = frame.f_code
        if _is_c10d(code.co_filename):
            return code.co_name
        if code.co_name == "wait" and "deepspeed" in Path(code.co_filename).parts:
            return "wait on DeepSpeed's collective"
        frame = frame.f_back
    return None


@functools.lru_cache(maxsize=1024)
def _is_c10d(filename: str) -> bool:
    try:
        return Path(filename).resolve() == _C10D
    except OSError:
        return False


def strict_guard() -> StrictGuard | None:
    """The installed guard, or None outside strict mode."""
    return _guard

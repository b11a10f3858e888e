"""CPU threads per rank: the one rule every launcher applies to the processes it starts.

Processes that share this node's cores get `cores // ranks` torch threads each (at least one),
where `cores` are the CPUs this process may run on (affinity, cgroup cpusets) and `ranks` the
processes of that launch running at once. An OMP_NUM_THREADS the user set is respected as is,
for every launch alike.

The rule is applied to each child's environment, never to the launching process's own: a
command that starts several runs one after another (`hpc-fed bench` with its variants, a
sweep) gives each the threads of its own rank count. torchrun's agent runs inside
`hpc-fed launch` and hands its own os.environ to the workers (and sets OMP_NUM_THREADS=1 there
itself when unset), so `scoped_environ` holds the child's values only while it runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from hpc_fed.errors import HpcFedError

THREADS_ENV = "OMP_NUM_THREADS"


def usable_cpus() -> int:
    """CPUs this process may run on (affinity / cgroup cpusets), not the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def user_threads(environ: Mapping[str, str] | None = None) -> int | None:
    """The threads OMP_NUM_THREADS asks for (its first level when it lists nested ones), or None
    when it is unset; a value that is not a positive integer is an HpcFedError."""
    environ = os.environ if environ is None else environ
    raw = environ.get(THREADS_ENV)
    if raw is None or not raw.strip():
        return None
    first = raw.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise HpcFedError(f"{THREADS_ENV}={raw!r} is not a positive number of threads: unset it (each "
                          f"rank then gets cores / ranks threads) or set e.g. {THREADS_ENV}=1")
    return int(first)


def threads_per_rank(ranks: int, *, cores: int | None = None,
                     environ: Mapping[str, str] | None = None) -> int:
    """Torch threads for each of `ranks` processes sharing `cores` (default: usable_cpus())."""
    user = user_threads(environ)
    if user is not None:
        return user
    return max(1, (cores or usable_cpus()) // max(1, ranks))


def thread_env(ranks: int, *, cores: int | None = None,
               environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment entries that give a child its threads_per_rank."""
    return {THREADS_ENV: str(threads_per_rank(ranks, cores=cores, environ=environ))}


def thread_source(environ: Mapping[str, str] | None = None) -> str:
    """Where the threads come from, for a report: the user's OMP_NUM_THREADS or the rule."""
    environ = os.environ if environ is None else environ
    if user_threads(environ) is not None:
        return f"{THREADS_ENV}={environ[THREADS_ENV]} set by the user, for every run alike"
    return "cores / ranks of each run"


@contextmanager
def scoped_environ(values: Mapping[str, str]) -> Iterator[None]:
    """os.environ with `values` while the block runs; afterwards exactly as before, including
    whatever the block itself set or removed."""
    saved = dict(os.environ)
    os.environ.update(values)
    try:
        yield
    finally:
        for key in [k for k in os.environ if k not in saved]:
            del os.environ[key]
        for key, value in saved.items():
            if os.environ.get(key) != value:
                os.environ[key] = value

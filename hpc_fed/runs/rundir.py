"""The run directory: the files that reports, sweeps and users' scripts read.

  config.yaml     the resolved config
  partition.json  per client: number of samples and label histogram
  skipped.jsonl   samples left out for an unreadable image (data.on_error=skip), one per line
  metrics.jsonl   one JSON object per round (see docs/failures.md, "The run directory")
  results.json    {"initial": metrics or null, "final": metrics, ...}; written last: the run is done
  stopped.json    instead of results.json when the run was asked to stop early (hpc_fed/runtime/stop.py)
  checkpoints/    round checkpoints of an unfinished run (hpc_fed/runtime/checkpoint.py)
  adapter/        the final global adapter, saved by peft (adapter_model.safetensors)
  tensorboard/, wandb/, mlflow/, trackio/
                  what output.report_to's trackers write (hpc_fed/runtime/tracking.py)
  hpc_fed.json    the marker: hpc_fed wrote this directory, for output.kind (hpc_fed/runtime/owned.py)

Only rank 0 writes. Opening a directory writes nothing: rank 0 decides what it holds (nothing,
an unfinished run to continue, a finished run, which is refused unless output.overwrite) and
tells every rank; `start` writes only once the run's model, data and engine are built, so a run
that fails at startup leaves the directory as it was. A directory hpc_fed did not write for the
run's output.kind (a user's folder, a training run under hpc-fed eval) is refused whatever
output.overwrite says, and a run removes only the files above, each through owned.remove_owned.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from hpc_fed.config import RunConfig, to_container, to_yaml
from hpc_fed.errors import ConfigError
from hpc_fed.runtime import checkpoint
from hpc_fed.runtime.owned import claim, claim_problem, remove_owned
from hpc_fed.runtime.tracking import RUN_DIR_FOLDERS

# what a fresh run removes (nothing else): its own results and the trackers' folders
REPLACED = ("results.json", "adapter", "checkpoints", *RUN_DIR_FOLDERS)


def split_output_dir(overrides: list[str], kind: str) -> tuple[Path, list[str]]:
    """For commands that place their own runs (`hpc-fed bench`, `hpc-fed eval`): the folder an
    `output.dir=` override names (the last one), or runs/<kind>-<timestamp>, and the overrides
    without it."""
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("output.dir=")]
    rest = [o for o in overrides if not o.startswith("output.dir=")]
    return (Path(given[-1]) if given else Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}",
            rest)


def run_dir_name(cfg: RunConfig) -> str:
    """output.dir, or runs/run-<timestamp> (decided on rank 0: RunDir.open shares it)."""
    return cfg.output.dir or f"runs/run-{time.strftime('%Y%m%d-%H%M%S')}"


class RunDir:
    def __init__(self, path: Path, is_main: bool, resume_from: Path | None = None):
        self.path = path
        self.is_main = is_main
        self.resume_from = resume_from  # the checkpoint to continue from (known to every rank)
        self.trackers = None  # output.report_to, opened by start() on rank 0

    @classmethod
    def open(cls, cfg: RunConfig, comm) -> "RunDir":
        """Resolve the directory and decide on rank 0 what to do with what it holds (a collective
        over `comm`, the world); a ConfigError on every rank when it must not be used."""
        decided = None
        if comm.rank == 0:
            name = run_dir_name(cfg)
            decided = (name, *inspect(Path(name), cfg))
        name, error, resume = comm.broadcast_object(decided, src=0)
        if error:
            raise ConfigError(error)
        return cls(Path(name), comm.rank == 0, Path(resume) if resume else None)

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def adapter_dir(self) -> Path:
        return self.path / "adapter"

    def start(self, cfg: RunConfig, resumed_round: int | None) -> None:
        """Once startup succeeded: mark the directory (hpc_fed.json) and write config.yaml; a
        fresh run removes what an earlier one left (REPLACED, nothing else), a resumed run keeps
        the metrics of the rounds before `resumed_round`."""
        if not self.is_main:
            return
        claim(self.path, cfg.output.kind, what="output.dir")  # as open() found it, now marked
        for name in ("stopped.json", "skipped.jsonl", *(REPLACED if resumed_round is None else ())):
            remove_owned(self.path / name, owner=self.path)
        metrics = self.path / "metrics.jsonl"
        if resumed_round is None:
            metrics.write_text("")
        else:
            rows = [line for line in (metrics.read_text().splitlines() if metrics.is_file() else [])
                    if _round_of(line) < resumed_round]
            metrics.write_text("".join(line + "\n" for line in rows))
        (self.path / "config.yaml").write_text(to_yaml(cfg))
        if cfg.output.report_to:
            from hpc_fed.runtime.tracking import Trackers

            self.trackers = Trackers(cfg.output.report_to, self.path, to_container(cfg), to_yaml(cfg))

    def finish(self) -> None:
        """The run is done (results.json written): its checkpoints are not needed any more."""
        if self.is_main:
            remove_owned(self.checkpoints, owner=self.path)
        self.close()

    def close(self) -> None:
        """Close the trackers (the run ended, finished or not)."""
        if self.trackers is not None:
            self.trackers.close()
            self.trackers = None

    def _write(self, name: str, text: str) -> None:
        """Rank 0 writes `name` atomically (a temporary file, then a rename)."""
        if self.is_main:
            tmp = self.path / f".{name}.tmp"
            tmp.write_text(text)
            tmp.replace(self.path / name)

    def write_json(self, name: str, obj) -> None:
        self._write(name, json.dumps(obj, indent=2) + "\n")

    def write_jsonl(self, name: str, rows: list[dict]) -> None:
        self._write(name, "".join(json.dumps(r) + "\n" for r in rows))

    def append_metrics(self, row: dict) -> None:
        if self.is_main:
            with open(self.path / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
            if self.trackers is not None:
                self.trackers.log(row)


def _round_of(line: str) -> float:
    """A metrics.jsonl row's round; a line cut short by a crash counts as after any round."""
    try:
        return json.loads(line)["round"]
    except (ValueError, KeyError, TypeError):
        return float("inf")


def inspect(path: Path, cfg: RunConfig) -> tuple[str | None, str | None]:
    """(error, checkpoint to resume from) for a run about to use `path`."""
    foreign = claim_problem(path, cfg.output.kind, what="output.dir")
    if foreign:
        return foreign, None
    if cfg.output.overwrite:
        return None, None
    newest = checkpoint.latest(path / "checkpoints")
    if (path / "results.json").is_file():
        return (f"output.dir {path} holds a finished run (results.json); choose another output.dir, "
                "or set output.overwrite=true to replace it"), None
    if newest is not None and not cfg.checkpoint.resume:
        return (f"output.dir {path} holds an unfinished run (checkpoint {newest.name}); run it again "
                "with checkpoint.resume=true (the default) to continue it, or set "
                "output.overwrite=true to start over"), None
    return None, str(newest) if newest is not None else None


def resume_mismatch(meta: dict, cfg: RunConfig, world_size: int, path: Path) -> str | None:
    """Why a run with `cfg` on `world_size` ranks cannot continue the checkpoint whose state.json
    is `meta` (config keys or world that differ), or None."""
    allowed = tuple(cfg.checkpoint.allow_changes)
    saved = {**meta.get("config", {}), "world_size": meta.get("world_size")}
    now = {**to_container(cfg), "world_size": world_size}
    changed = checkpoint.config_changes(saved, now, ("output", "checkpoint", "distributed.timeout_s",
                                                     "distributed.heartbeat_s", "distributed.watchdog_s",
                                                     *allowed))
    if not changed:
        return None
    shown = ", ".join(f"{k} ({checkpoint.flat_get(saved, k)!r} -> {checkpoint.flat_get(now, k)!r})"
                      for k in changed[:5])
    return (f"{path} holds a checkpoint of a run with another setting: {shown}; run the same command "
            f"as before to continue it, allow the change with checkpoint.allow_changes="
            f"[{','.join(changed)}], or start over with output.overwrite=true")


def preflight(cfg: RunConfig, world_size: int) -> str | None:
    """Before any process starts (hpc-fed launch, prepare, eval, bench): the problem a run with
    `cfg` would meet in output.dir (a folder hpc_fed did not write for output.kind, a finished
    run, a checkpoint it cannot continue), or None: the same check as RunDir.open's."""
    if not cfg.output.dir:
        return None  # a new timestamped directory
    path = Path(cfg.output.dir)
    error, resume = inspect(path, cfg)
    if error or not resume:
        return error
    try:
        meta = json.loads((Path(resume) / "state.json").read_text())
    except (OSError, ValueError) as exc:
        return (f"checkpoint {resume} cannot be read ({exc}); remove that folder to resume from the "
                "one before it, or start over with output.overwrite=true")
    return resume_mismatch(meta, cfg, world_size, path)

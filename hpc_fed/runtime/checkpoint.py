"""Round checkpoints: the federated state, written atomically by rank 0 and read back on resume.

    <run dir>/checkpoints/round-000004/   the state after 4 rounds (round 4 runs next)
        adapter.safetensors               the global adapter (fp32)
        method.safetensors                the method's tensors: buffers/<buffer>/<param> and
                                          clients/<client>/<name>/<param> (SCAFFOLD's c, c_i, ...)
        state.json                        round, format, method, world layout, the config that
                                          produced it, the initial and latest evaluation, seconds

A checkpoint is written into a temporary sibling folder and renamed, so a `round-*` folder is
complete or absent; a crash mid-write leaves a `.tmp-*` folder that is ignored and cleaned up.
Checkpoints are removed (pruned, replaced) only inside a run directory that hpc_fed marked as
its own (hpc_fed/runtime/owned.py): `root` is always `<run dir>/checkpoints`.
Only safetensors and JSON are written: nothing is read back with pickle. Every random draw of a
run (client sampling, partitions, data order, dropout) is keyed by (seed, round, ...), so the
round index is the whole RNG position: a resumed run is the uninterrupted run, bit for bit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from hpc_fed.errors import ConfigError
from hpc_fed.runtime.owned import remove_owned

FORMAT = 1
_NAME = re.compile(r"^round-(\d{6})$")
State = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    round: int  # rounds done: the next round to run
    adapter: State
    method_state: dict  # Method.state_dict()
    meta: dict  # the state.json object


def folder_name(round_idx: int) -> str:
    return f"round-{round_idx:06d}"


def method_tensors(state: dict) -> dict[str, torch.Tensor]:
    """A method's state_dict as flat named tensors (its name goes to state.json)."""
    out = {}
    for buf, tensors in state.get("buffers", {}).items():
        out.update({f"buffers/{buf}/{k}": t for k, t in tensors.items()})
    for client, named in state.get("clients", {}).items():
        for buf, tensors in named.items():
            out.update({f"clients/{client}/{buf}/{k}": t for k, t in tensors.items()})
    return out


def method_state(name: str, tensors: dict[str, torch.Tensor]) -> dict:
    """The inverse of method_tensors."""
    state: dict = {"name": name, "buffers": {}, "clients": {}}
    for key, t in tensors.items():
        kind, rest = key.split("/", 1)
        if kind == "buffers":
            buf, param = rest.split("/", 1)
            state["buffers"].setdefault(buf, {})[param] = t
        else:
            client, buf, param = rest.split("/", 2)
            state["clients"].setdefault(int(client), {}).setdefault(buf, {})[param] = t
    return state


def save(root: Path, ckpt: Checkpoint, keep: int) -> Path:
    """Write `ckpt` under root/round-NNNNNN atomically; keep the newest `keep` checkpoints."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / folder_name(ckpt.round)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=root))
    try:
        save_file({k: v.detach().to("cpu", torch.float32).contiguous() for k, v in ckpt.adapter.items()},
                  str(tmp / "adapter.safetensors"))
        save_file({k: v.detach().cpu().contiguous() for k, v in method_tensors(ckpt.method_state).items()},
                  str(tmp / "method.safetensors"))
        meta = {**ckpt.meta, "format": FORMAT, "round": ckpt.round, "method": ckpt.method_state["name"]}
        (tmp / "state.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():  # the same round saved again (a resumed stop): replace it
            remove_owned(final, owner=root.parent)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # made by this call, above
        raise
    prune(root, keep)
    return final


def round_of(path: Path) -> int:
    """The rounds done in the checkpoint folder `path` (round-NNNNNN)."""
    return int(_NAME.match(path.name).group(1))


def complete(root: Path) -> list[Path]:
    """The complete checkpoints under root, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)
             and (p / "state.json").is_file()]
    return sorted(found, key=round_of)


def latest(root: Path) -> Path | None:
    done = complete(root)
    return done[-1] if done else None


def prune(root: Path, keep: int) -> None:
    """Remove all but the newest `keep` checkpoints and any half-written folder (root is
    `<run dir>/checkpoints`; a ConfigError when that run directory has no hpc_fed marker)."""
    for path in [*(complete(root)[:-keep] if keep > 0 else complete(root)), *root.glob(".tmp-*")]:
        remove_owned(path, owner=root.parent)


def load(path: Path) -> Checkpoint:
    """Read a checkpoint folder; a ConfigError naming the folder when it is unreadable."""
    try:
        meta = json.loads((path / "state.json").read_text())
        if meta.get("format") != FORMAT:
            raise ConfigError(f"checkpoint {path} has format {meta.get('format')}, this hpc_fed "
                              f"reads format {FORMAT}; resume with the hpc_fed that wrote it or start "
                              "over with output.overwrite=true")
        adapter = load_file(str(path / "adapter.safetensors"))
        tensors = load_file(str(path / "method.safetensors"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint {path} cannot be read ({exc}); remove that folder to resume "
                          "from the one before it, or start over with output.overwrite=true") from None
    return Checkpoint(round=int(meta["round"]), adapter=adapter,
                      method_state=method_state(meta["method"], tensors), meta=meta)


def config_changes(saved: dict, now: dict, ignored: tuple[str, ...] = ()) -> list[str]:
    """Dotted keys whose values differ between two config dicts (sections in `ignored` and
    keys under them left out)."""
    def flat(node, prefix=""):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                out.update(flat(v, f"{prefix}{k}."))
            return out
        return {prefix[:-1]: node}

    a, b = flat(saved), flat(now)
    keys = sorted(set(a) | set(b))
    return [k for k in keys if a.get(k) != b.get(k)
            and not any(k == i or k.startswith(i + ".") for i in ignored)]


def flat_get(node: dict, key: str):
    """The value at dotted `key` of nested dicts (None when absent)."""
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node

"""A clean stop between rounds: by file or signal, agreed by every rank, leaving stopped.json."""

from __future__ import annotations

import json
import os

from cli_helpers import QUICK, TINY, cli

from hpc_fed.distributed.collectives import LocalComm
from hpc_fed.runtime.stop import StopRequest


def test_stop_request_by_file_and_by_signal(tmp_path):
    import signal

    stop_file = tmp_path / "stop"
    req = StopRequest(str(stop_file))
    assert not req.requested() and not req.agreed(LocalComm())
    stop_file.touch()
    assert req.requested() and req.agreed(LocalComm())
    previous = signal.getsignal(signal.SIGUSR2)
    try:
        req2 = StopRequest("")
        os.kill(os.getpid(), signal.SIGUSR2)
        assert req2.requested()
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_a_run_asked_to_stop_leaves_stopped_json_not_results(tiny_model_dir, tmp_path):
    stop_file, out = tmp_path / "stop", tmp_path / "run"
    stop_file.touch()
    proc = cli("train", "--config", QUICK, f"model.path={tiny_model_dir}", *TINY, "fed.rounds=3",
                f"output.dir={out}", env={"HPC_FED_STOP_FILE": str(stop_file)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stopped cleanly after round 1 of 3" in proc.stderr
    assert not (out / "results.json").exists()
    assert json.loads((out / "stopped.json").read_text())["stopped_after_round"] == 1
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1

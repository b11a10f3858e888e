"""Wall-clock timing of the named phases of a round."""

from __future__ import annotations

import time
from contextlib import contextmanager


class PhaseTimer:
    def __init__(self, on_phase=None):
        self.seconds: dict[str, float] = {}
        self.on_phase = on_phase  # called with each phase's name as it starts

    @contextmanager
    def phase(self, name: str):
        if self.on_phase is not None:
            self.on_phase(name)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def rounded(self) -> dict[str, float]:
        return {k: round(v, 3) for k, v in self.seconds.items()}

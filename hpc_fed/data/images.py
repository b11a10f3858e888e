"""Every image a run will use is checked when the data is loaded, not when training reaches it.

A file that PIL cannot identify or whose structure is broken (garbage bytes, a truncated PNG, a
text file named .jpg) stops the run before any training with one line naming the file and the
record, or, with `data.on_error=skip`, is dropped from the client (or the test set) that holds
it, counted per client in partition.json and listed in the run directory's skipped.jsonl.

`Image.verify()` reads the headers and, for PNG, checks every chunk's CRC without decoding
pixels: about 0.1 ms per easy-VQA image, so a 100 k-image dataset costs seconds, on a few threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Iterable

from PIL import Image

from hpc_fed.data.records import Record


def image_error(path: str) -> str | None:
    """Why `path` is not a readable image, or None."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # PIL raises many kinds (OSError, SyntaxError, struct.error, ...)
        text = str(exc).strip().splitlines()
        return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__
    return None


def bad_images(records: Iterable[Record], threads: int = 8) -> dict[str, str]:
    """path -> error for every distinct image of `records` that does not read."""
    paths = sorted({r.image for r in records if r.image is not None})
    with ThreadPoolExecutor(max_workers=threads) as pool:
        errors = pool.map(image_error, paths)
    return {p: e for p, e in zip(paths, errors) if e is not None}

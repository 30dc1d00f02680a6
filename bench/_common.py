"""Helpers the benchmark scripts share: where the machine is described and how results are
written (atomically, so an interrupted benchmark never leaves half a JSON file)."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import torch


def save_json(out: str | os.PathLike, record: dict[str, Any]) -> None:
    """Write ``record`` to ``out`` as indented JSON through a temporary file."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(out)
    print(f"results written to {out}")


def machine_info(threads: int) -> dict[str, Any]:
    """torch version, CPU count, torch threads and platform of the measuring machine."""
    return {"torch": torch.__version__, "cpus": os.cpu_count(), "threads": threads,
            "platform": platform.platform()}

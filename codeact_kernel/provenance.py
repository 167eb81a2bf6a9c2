"""`metadata.codeact`: how a notebook marks what CodeAct made (the Python side).

The JupyterLab extension (labextension/src/cells.ts) and the headless runner write
the same records, so a notebook reads the same whoever made it:

- the prompt cell: `{"version": 1, "role": "prompt", "request_id", "model", "status",
  "trajectory"}`, the trajectory being the request's record (trajectory.py);
- one cell per action: `{"version": 1, "prompt_cell_id", "request_id", "step", "model",
  "status", "error_name", "source_hash", "answer", "observed"}`;
- the final answer, when the request had actions: a Markdown cell
  `{"version": 1, "role": "answer", "prompt_cell_id", "request_id", "model"}`.
"""

from __future__ import annotations

METADATA_KEY = "codeact"
VERSION = 1
RAISES_EXCEPTION = "raises-exception"


def source_hash(source: str) -> str:
    """FNV-1a (32 bit) over the UTF-16 code units, as cells.ts computes it: a cell whose
    source no longer has its recorded hash was edited by the user."""
    value = 0x811C9DC5
    data = source.encode("utf-16-le", "surrogatepass")
    for index in range(0, len(data), 2):
        value ^= data[index] | (data[index + 1] << 8)
        value = (value * 0x01000193) & 0xFFFFFFFF
    return f"fnv1a32:{value:08x}"

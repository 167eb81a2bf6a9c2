"""`codeact bench`: code actions against JSON and text actions, on the user's own endpoint.

Only the `codeact bench` command imports this package; the kernel never does
(DESIGN.md §9). The tasks and tool sets are in `tasks.py` and `toolsets/`, the json and
text modes in `episode.py`, code mode in `code_mode.py`, the runner in `runner.py`.
"""

"""The benchmark's offline tool sets: plain, deterministic functions, one module a set.

Each module lists its tools in `__all__`; nothing else in it is a tool. The functions
carry no decorator: code mode marks them with `codeact_kernel.tool` in the kernel
(`bench.tasks.toolset_code`), json and text modes call them directly.
"""

"""`python -m codeact_kernel install [...]` installs the kernelspec; otherwise launch the kernel."""

from __future__ import annotations

import sys


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "install":
        from .install import main as install_main

        install_main(sys.argv[2:])
        return
    from ipykernel.kernelapp import IPKernelApp

    from .kernel import CodeActKernel

    IPKernelApp.launch_instance(kernel_class=CodeActKernel)


if __name__ == "__main__":
    main()

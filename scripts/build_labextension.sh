#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/) into codeact_kernel/labextension/, from
# where setup.cfg installs it as a prebuilt extension, so pip users never need Node.
#
#   scripts/build_labextension.sh            npm ci (exactly the lock file), compile, bundle
#   scripts/build_labextension.sh --test     the same, then the TypeScript unit tests
#   scripts/build_labextension.sh --develop  the same, then link the build into the Python
#                                            environment (for `pip install -e .`, which does
#                                            not install data files); JupyterLab picks up
#                                            later rebuilds on reload
#
# Needs Node >= 18 with npm, and a Python with JupyterLab 4 (PYTHON, default: the repo's
# .venv if there is one, else python3) for the bundler's knowledge of JupyterLab's core.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
run_tests=0
develop=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    --develop) develop=1 ;;
    *) echo "usage: $0 [--test] [--develop]" >&2; exit 2 ;;
  esac
done

cd "$root/labextension"
started=$SECONDS
npm ci --no-audit --no-fund --loglevel=error
npx tsc -b
# JupyterLab >= 4.6 builds extensions with jupyter_builder; older ones with `jupyter labextension`.
if "$PYTHON" -c "import jupyter_builder" 2>/dev/null; then
  "$PYTHON" -m jupyter_builder.main build .
else
  "$PYTHON" -m jupyter labextension build .
fi
# Tells `jupyter labextension list` that pip installed it (setup.cfg's data_files).
cp install.json "$root/codeact_kernel/labextension/install.json"
echo "built codeact_kernel/labextension in $((SECONDS - started)) s"

if [[ $run_tests == 1 ]]; then
  npm test --silent
fi

if [[ $develop == 1 ]]; then
  prefix="${JUPYTER_PREFIX:-$("$PYTHON" -c 'import sys; print(sys.prefix)')}"
  target="$prefix/share/jupyter/labextensions/codeact-kernel-lab"
  mkdir -p "$(dirname "$target")"
  if [[ -e "$target" && ! -L "$target" ]]; then
    echo "$target exists and is not a link (installed by pip?); leaving it alone" >&2
    exit 1
  fi
  ln -sfn "$root/codeact_kernel/labextension" "$target"
  echo "linked $target"
fi

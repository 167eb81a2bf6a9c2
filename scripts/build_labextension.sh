#!/usr/bin/env bash
# Build the JupyterLab extension (labextension/) into codeact_kernel/labextension/, from
# where setup.cfg installs it as a prebuilt extension, so pip users never need Node.
#
#   scripts/build_labextension.sh            build, unless nothing that goes into the build
#                                            changed since the last one
#   scripts/build_labextension.sh --force    build even so
#   scripts/build_labextension.sh --test     then the TypeScript unit tests
#   scripts/build_labextension.sh --develop  then link the build into the Python environment
#                                            (for `pip install -e .`, which does not install
#                                            data files); JupyterLab picks up later rebuilds
#                                            on reload
#
# What goes into the build, hashed into codeact_kernel/labextension/.build-hash: the
# sources (src/, style/), package.json, package-lock.json, tsconfig.json, install.json,
# this script, and the Node, JupyterLab and jupyter_builder versions. `npm ci` (exactly
# the lock file) runs only when node_modules was installed from another package.json or
# lock file (node_modules/.codeact-lock-hash), or is missing.
#
# Needs Node >= 18 with npm, and a Python with JupyterLab 4 (PYTHON, default: the repo's
# .venv if there is one, else python3) for the bundler's knowledge of JupyterLab's core.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ -z "${PYTHON:-}" ]]; then
  if [[ -x "$root/.venv/bin/python" ]]; then PYTHON="$root/.venv/bin/python"; else PYTHON=python3; fi
fi
force=0
run_tests=0
develop=0
for arg in "$@"; do
  case "$arg" in
    --force) force=1 ;;
    --test) run_tests=1 ;;
    --develop) develop=1 ;;
    *) echo "usage: $0 [--force] [--test] [--develop]" >&2; exit 2 ;;
  esac
done

cd "$root/labextension"
out="$root/codeact_kernel/labextension"

# Relative paths, so that the hashes do not depend on where the checkout is.
lock_hash="$({ node --version; sha256sum package.json package-lock.json; } | sha256sum | cut -d' ' -f1)"
build_hash="$({
  echo "$lock_hash"
  "$PYTHON" -c '
import importlib.metadata as m
for name in ("jupyterlab", "jupyter_builder"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "-")'
  find src style -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  sha256sum tsconfig.json install.json ../scripts/build_labextension.sh
} | sha256sum | cut -d' ' -f1)"

npm_ci() {
  if [[ $force == 1 || "$(cat node_modules/.codeact-lock-hash 2>/dev/null)" != "$lock_hash" ]]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_hash" > node_modules/.codeact-lock-hash
  fi
}

if [[ $force == 0 && -f "$out/package.json" && "$(cat "$out/.build-hash" 2>/dev/null)" == "$build_hash" ]]; then
  echo "codeact_kernel/labextension is up to date"
else
  started=$SECONDS
  # A failed build must not leave a hash that vouches for what is there.
  rm -f "$out/.build-hash"
  npm_ci
  npx tsc -b
  # JupyterLab >= 4.6 builds extensions with jupyter_builder; older ones with `jupyter labextension`.
  if "$PYTHON" -c "import jupyter_builder" 2>/dev/null; then
    "$PYTHON" -m jupyter_builder.main build .
  else
    "$PYTHON" -m jupyter labextension build .
  fi
  # Tells `jupyter labextension list` that pip installed it (setup.cfg's data_files).
  cp install.json "$out/install.json"
  echo "$build_hash" > "$out/.build-hash"
  echo "built codeact_kernel/labextension in $((SECONDS - started)) s"
fi

if [[ $run_tests == 1 ]]; then
  npm_ci
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
  if [[ "$(readlink "$target" 2>/dev/null)" != "$out" ]]; then
    ln -sfn "$out" "$target"
    echo "linked $target"
  fi
fi

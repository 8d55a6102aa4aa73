#!/usr/bin/env bash
# AlexNet in the browser: build, serve and test.
#
#   ./build.sh serve   build the wasm and serve www/ on http://127.0.0.1:$PORT (default 8080)
#   ./build.sh test    install what the tests need (apt, Rust targets, pinned CLIs, Python venv,
#                      npm dev tools) and run every test: Rust unit/integration tests, reference
#                      checks against onnxruntime, the wasm tests in headless Chromium, and the
#                      Playwright tests of the web app
#   ./build.sh wasm    only build the wasm package into www/pkg
#   ./build.sh setup   only install the tools
#
# Every install step checks first and is skipped when the right version is already there, so a
# second run reuses what the first installed.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)

WASM_BINDGEN_VERSION=0.2.130 # must equal the =0.2.130 pin in Cargo.toml
WASM_PACK_VERSION=0.15.1
APT_PACKAGES=(chromium chromium-driver mesa-vulkan-drivers dataset-fashion-mnist)
CACHE_DIR=${ALEXNET_CACHE:-$HOME/.cache/alexnet-web}
export PATH="$HOME/.cargo/bin:$PATH"
# wasm SIMD for every wasm build (Chromium has it).
WASM_RUSTFLAGS="-C target-feature=+simd128"

log() { printf '\n==> %s\n' "$*"; }
die() {
  printf 'build.sh: %s\n' "$*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    die "need root to run: $* (install it by hand or run as root)"
  fi
}

ensure_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

ensure_rust() {
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup first"
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    log "rustup: adding wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
}

ensure_wasm_tools() {
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
    log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION"
    # not --locked: its lock file pins a crate version the registry mirror lacks
    cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
  fi
  if [ "$(wasm-pack --version 2>/dev/null)" != "wasm-pack $WASM_PACK_VERSION" ]; then
    log "cargo install wasm-pack $WASM_PACK_VERSION"
    cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked
  fi
}

ensure_venv() {
  local stamp=.venv/.requirements.sha
  local want
  want=$(sha256sum tools/requirements.txt | cut -d' ' -f1)
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "python venv: installing tools/requirements.txt"
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r tools/requirements.txt
    echo "$want" >"$stamp"
  fi
}

ensure_npm() {
  local stamp=node_modules/.lock.sha
  local want
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "npm ci (dev tools: playwright-core, driving Debian's chromium)"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" >"$stamp"
  fi
}

setup() {
  ensure_apt
  ensure_rust
  ensure_wasm_tools
  ensure_venv
  ensure_npm
}

build_wasm() {
  log "wasm-pack build (release, simd128) -> www/pkg"
  RUSTFLAGS="$WASM_RUSTFLAGS" wasm-pack build --target web --release --no-typescript \
    --no-pack --out-dir www/pkg --out-name alexnet
}

# Full-size reference models (244 MB each) and their onnxruntime outputs: generated once per
# generator version into $HOME/.cache/alexnet-web/refs-<hash> and reused after that.
gen_refs() {
  log "reference models and onnxruntime outputs (tools/refs.sh)"
  ALEXNET_REFS=$(tools/refs.sh | tail -n1)
  export ALEXNET_REFS
}

check_fixtures() {
  log "committed ONNX fixtures are what tools/gen_fixtures.py makes"
  local tmp
  tmp=$(mktemp -d)
  .venv/bin/python tools/gen_fixtures.py --out "$tmp" >/dev/null
  diff -r "$tmp" fixtures/onnx || die "fixtures/onnx differs from tools/gen_fixtures.py's output"
  rm -rf "$tmp"
}

run_tests() {
  setup
  export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-$(mktemp -d)}
  chmod 700 "$XDG_RUNTIME_DIR"

  log "cargo fmt --check"
  cargo fmt --all -- --check
  log "cargo clippy -D warnings (native and wasm32)"
  cargo clippy --all-targets -- -D warnings
  RUSTFLAGS="$WASM_RUSTFLAGS" cargo clippy --lib --tests --target wasm32-unknown-unknown -- -D warnings

  check_fixtures
  gen_refs
  log "cargo test (native; ALEXNET_REFS=$ALEXNET_REFS)"
  cargo test --all-targets

  log "our exports in Python: ONNX through onnxruntime, safetensors with safetensors (tools/check_export.py)"
  local exp
  exp=$(mktemp -d)
  ALEXNET_EXPORT_DIR=$exp cargo test -q --test onnx_import
  target/debug/alexnet export --model www/models/mini-fashion.safetensors --out "$exp/mini-fashion.safetensors"
  target/debug/alexnet export --model www/models/mini-fashion.safetensors --f16 --out "$exp/mini-fashion-f16.safetensors"
  target/debug/alexnet export --model torchvision --seed 1 --out "$exp/torchvision.safetensors"
  .venv/bin/python tools/check_export.py "$exp"
  rm -rf "$exp"

  log "wasm tests in headless Chromium (wasm-pack test)"
  # the timeout bounds the whole run (wasm-bindgen-test has no per-test limit): ~2.5 min on
  # an idle 2-core machine, ~4 under load, mostly the full-size networks on SwiftShader
  RUSTFLAGS="$WASM_RUSTFLAGS" WASM_BINDGEN_TEST_TIMEOUT=900 \
    wasm-pack test --headless --chrome --release -- --test web

  build_wasm
  log "the web app in Chromium (playwright-core + /usr/bin/chromium)"
  node tests/browser/app.mjs
  node tests/browser/weights.mjs
  node tests/browser/train.mjs
  node tests/browser/finetune.mjs
  log "all tests passed"
}

serve() {
  ensure_rust
  ensure_wasm_tools
  build_wasm
  local port=${PORT:-8080}
  log "serving www/ at http://127.0.0.1:$port/  (Ctrl-C to stop)"
  exec python3 tools/serve.py --dir www --port "$port"
}

case "${1:-}" in
  serve) serve ;;
  test) run_tests ;;
  wasm)
    ensure_rust
    ensure_wasm_tools
    build_wasm
    ;;
  setup) setup ;;
  refs)
    ensure_venv
    gen_refs
    echo "$ALEXNET_REFS"
    ;;
  *)
    sed -n '2,12p' "$0"
    exit 2
    ;;
esac

#!/usr/bin/env bash
# Makes the app's embedded default, www/models/mini-fashion.{safetensors,json}, from a model
# written by `alexnet train` (its record OUT.json beside it) and adds the test accuracy that
# `alexnet eval` measures on the 10,000 Fashion-MNIST test images (centred, and the paper's
# ten views averaged).
#
#   tools/embed-model.sh OUT.safetensors
#
# A snapshot of a run still under way: `alexnet train ... --resume --max-steps 0 --checkpoint
# COPY_OF_CKPT --out OUT.safetensors` writes the model so far and its record (finished: false).
# COMMAND="alexnet train ..." sets the record's command where the checkpoint predates it.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$1
rec=${src%.safetensors}.json
[ -f "$rec" ] || { echo "no training record $rec beside $src" >&2; exit 1; }
mkdir -p www/models
cargo build --release --quiet
# Half precision halves the file (5.7 MB, not 11.4); the accuracy below is measured on the
# f16 file itself, so it is the shipped model's.
target/release/alexnet export --model "$src" --f16 --out www/models/mini-fashion.safetensors
python3 - "$rec" www/models/mini-fashion.json <<'PY'
import json, os, sys
rec = json.load(open(sys.argv[1]))
if not rec.get("command") and os.environ.get("COMMAND"):
    rec["command"] = os.environ["COMMAND"]
json.dump(rec, open(sys.argv[2], "w"), indent=1)
PY
target/release/alexnet eval --model www/models/mini-fashion.safetensors --dataset fashion-mnist \
  --backend cpu --ten-crop --json www/models/mini-fashion.json

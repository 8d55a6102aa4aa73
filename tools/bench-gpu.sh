#!/usr/bin/env bash
# The native benchmark set on one machine: forward per layer (bvlc, torchvision, mini at batch
# 1 and 32, bvlc at 128), training steps per layer, tiled vs naive kernels, and the fast CPU
# backend for comparison. Numbers are printed, never asserted.
#   tools/bench-gpu.sh [path/to/alexnet] > bench.txt
B=${1:-target/release/alexnet}
run() { echo; echo "\$ alexnet $*"; "$B" "$@" 2>&1; }
command -v nvidia-smi >/dev/null && nvidia-smi -L
nproc
run adapters
for m in bvlc torchvision mini; do
  for b in 1 32; do run bench --model $m --seed 1 --backend gpu --batch $b --runs 5; done
done
run bench --model bvlc --seed 1 --backend gpu --batch 128 --runs 5
run bench --model bvlc --seed 1 --backend gpu --batch 32 --runs 5 --kernels naive
run bench --model mini --seed 1 --backend gpu --batch 128 --runs 5 --train
run bench --model mini --seed 1 --backend gpu --batch 128 --runs 5 --train --kernels naive
run bench --model bvlc --seed 1 --backend gpu --batch 128 --runs 5 --train
run bench --model bvlc --seed 1 --backend gpu --batch 128 --runs 5 --train --kernels naive
for b in 1 32; do run bench --model bvlc --seed 1 --backend cpu --batch $b --runs 5 --total-only; done
run bench --model mini --seed 1 --backend cpu --batch 128 --runs 5 --train

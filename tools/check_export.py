#!/usr/bin/env python3
"""Runs ONNX files written by our exporter through onnxruntime and compares with our own
forward output (see tests/onnx_import.rs `dump_export`):

    ALEXNET_EXPORT_DIR=/tmp/exp cargo test --test onnx_import
    .venv/bin/python tools/check_export.py /tmp/exp

Checks that onnx.checker accepts each file and that ORT's output matches ours within 1e-4
of the output's max-abs (the REF_RTOL of tests/reference.rs). Every `*.safetensors` in DIR
(written by `alexnet export`) must open with Python's safetensors, carry the architecture
as JSON in its metadata, and hold the finite f32 tensors that architecture names (f16 where
the file name ends in -f16.safetensors, as `alexnet export --f16` writes).
"""
import json

import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import alexnet_onnx as ax  # noqa: E402


def main():
    d = Path(sys.argv[1])
    bad = 0
    for f in sorted(d.glob("*.onnx")):
        m = onnx.load(str(f))
        onnx.checker.check_model(m, full_check=True)
        x = np.load(d / f"{f.stem}-input.npy")
        ours = np.load(d / f"{f.stem}-output.npy")
        ref = ax.run_ort(m, {"input": x}, ["output"])["output"]
        err = np.abs(ours - ref)
        i = np.unravel_index(np.argmax(err), err.shape)
        rel = err.max() / np.abs(ref).max()
        ok = rel <= 1e-4
        bad += not ok
        print(f"{f.name}: worst |ours - ORT| {err.max():.3e} at {tuple(int(v) for v in i)}, relative {rel:.2e}"
              f" {'ok' if ok else 'FAIL'}")
    for f in sorted(d.glob("*.safetensors")):
        from safetensors import safe_open
        with safe_open(str(f), framework="numpy") as st:
            arch = json.loads(st.metadata()["alexnet.arch"])
            names = set(st.keys())
            want = {f"{l['name']}.{p}" for l in arch["layers"] if l["op"] in ("conv", "linear") for p in ("weight", "bias")}
            tensors = [st.get_tensor(k) for k in sorted(names)]
        dtype = np.float16 if f.name.endswith("-f16.safetensors") else np.float32
        ok = names == want and all(t.dtype == dtype and np.isfinite(t).all() for t in tensors)
        bad += not ok
        print(f"{f.name}: {len(names)} {np.dtype(dtype).name} tensors, {sum(t.size for t in tensors):,} values, architecture {arch['family']}"
              f" {'ok' if ok else f'FAIL (want {sorted(want)})'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

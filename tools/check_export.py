#!/usr/bin/env python3
"""Runs ONNX files written by our exporter through onnxruntime and compares with our own
forward output (see tests/onnx_import.rs `dump_export`):

    ALEXNET_EXPORT_DIR=/tmp/exp cargo test --test onnx_import
    .venv/bin/python tools/check_export.py /tmp/exp

Checks that onnx.checker accepts each file and that ORT's output matches ours within 1e-4
of the output's max-abs (the REF_RTOL of tests/reference.rs).
"""

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
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()

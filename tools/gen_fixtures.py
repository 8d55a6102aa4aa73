#!/usr/bin/env python3
"""Generates the small committed ONNX fixtures under fixtures/onnx/ (run from anywhere):

    .venv/bin/python tools/gen_fixtures.py [--out fixtures/onnx]

- mini-bvlc.onnx: the ONNX-zoo bvlcalexnet op sequence (grouped Conv, LRN, ceil MaxPool,
  pool5 with explicit pads [0,0,1,1], Reshape via a Constant node, Gemm with transB 0/1 and
  alpha/beta, Dropout, Softmax) with tiny channels and a 36x36 input; LRN alpha/k are large
  so LRN visibly changes the values.
- mini-tv.onnx: what torch.onnx.export writes for a torchvision-style AlexNet (floor MaxPool,
  AveragePool k=s=2 for AdaptiveAvgPool2d, Flatten, Gemm transB=1, no Dropout/Softmax), 48x48.
- mini-misc.onnx: the other supported ops: Conv without bias, Identity, GlobalAveragePool,
  MatMul + Add, MatMul without bias, Dropout with ratio as an input (opset 13), Softmax -1.
- mini-fp16.onnx: mini-tv with float16 weights (raw_data and int32_data encodings); import only.
- light_bvlc_alexnet.onnx: copied from the onnx wheel (the zoo's exact bvlcalexnet graph,
  weights as ConstantOfShape 0.02); import only.
- bad-*.onnx: files that must fail with a named error (see manifest.json "bad").
Each runnable model gets `{name}-input.npy` (batch 2) and `{name}-{layer}.npy` references
from onnxruntime. manifest.json lists everything.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import alexnet_onnx as ax  # noqa: E402

SEED = 20121203  # NIPS 2012


def mini_bvlc(rng):
    return ax.bvlc_style(rng, input_name="data_0", batch="N", hw=36, ch=(8, 16, 24, 24, 16), k1=5, s1=2,
                         hidden=32, classes=10, lrn=(5, 0.5, 0.75, 2.0), opset=11, input_std=73.9,
                         pool5_pads=(0, 0, 1, 1), fc7_trans_b=0, fc8_alpha_beta=(0.5, 2.0),
                         fc8_scale=8.0)


def mini_tv(rng):
    return ax.torchvision_style(rng, hw=48, ch=(8, 12, 16, 16, 16), k1=5, s1=2, p1=2, avg_out=1,
                                hidden=32, classes=10, opset=17)


def mini_misc(rng):
    c = ax.Chain("x", ["N", 3, 16, 16], opset=13)
    w1 = ax.he_normal(rng, (6, 3, 3, 3), 27)
    c.node("Conv", "c1", [c.init("c1.w", w1)], layer="conv1", kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    c.node("Relu", "r1", layer="relu1")
    c.node("Identity", "id")
    c.node("MaxPool", "p1", layer="pool1", kernel_shape=[2, 2], strides=[2, 2])
    c.node("GlobalAveragePool", "gap", layer="avgpool")
    c.node("Flatten", "flat", layer="flatten", axis=1)
    m1 = ax.he_normal(rng, (6, 8), 6)  # (in, out) as MatMul wants it
    c.node("MatMul", "mm2", [c.init("mm2.w", m1)])
    c.node("Add", "add2", [c.init("add2.b", ax.small_bias(rng, 8))], layer="fc2")
    c.node("Relu", "r2", layer="relu2")
    c.node("Dropout", "d2", [c.init("d2.ratio", np.array(0.3, dtype=np.float32))])
    c.node("MatMul", "mm3", [c.init("mm3.w", ax.he_normal(rng, (8, 5), 8))], layer="fc3")
    c.node("Softmax", "sm", layer="prob", axis=-1)
    return c.model("y", ["N", 5]), c.layer_outputs


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    new = []
    for i, t in enumerate(m.graph.initializer):
        a = numpy_helper.to_array(t)
        if a.dtype == np.float32:
            h = a.astype(np.float16)
            if i == 0:  # one tensor in int32_data (bit patterns), the rest in raw_data
                nt = helper.make_tensor(t.name, TensorProto.FLOAT16, h.shape, h.flatten().tolist(), raw=False)
            else:
                nt = numpy_helper.from_array(h, t.name)
            new.append(nt)
        else:
            new.append(t)
    del m.graph.initializer[:]
    m.graph.initializer.extend(new)
    for v in list(m.graph.input) + list(m.graph.output):
        v.type.tensor_type.elem_type = TensorProto.FLOAT16
    return m


def bad_models(rng):
    """(file name, model bytes, expected error) for the error tests."""
    out = []

    def base(op_mutator, name):
        c = ax.Chain("x", ["N", 3, 8, 8], opset=13)
        w = ax.he_normal(rng, (4, 3, 3, 3), 27)
        op_mutator(c, w)
        c.node("Flatten", "flat", axis=1)
        c.node("Gemm", "fc", [c.init("fc.w", ax.he_normal(rng, (2, c_flat[0]), c_flat[0])),
                              c.init("fc.b", ax.small_bias(rng, 2))], transB=1)
        return c.model("y", ["N", 2])

    c_flat = [4 * 6 * 6]

    def sigmoid(c, w):
        c.node("Conv", "conv_a", [c.init("w", w)], kernel_shape=[3, 3])
        # unnamed node: the error must name it by its first output
        c.nodes.append(helper.make_node("Sigmoid", [c.cur], ["sigmoid_out"]))
        c.cur = "sigmoid_out"

    out.append(("bad-sigmoid.onnx", base(sigmoid, "sig"),
                {"error": "OnnxNode", "node": "sigmoid_out", "op": "Sigmoid", "contains": "not supported"}))

    def dilated(c, w):
        c.node("Conv", "conv_dilated", [c.init("w", ax.he_normal(rng, (4, 3, 2, 2), 12))],
               kernel_shape=[2, 2], dilations=[2, 2])

    out.append(("bad-dilation.onnx", base(dilated, "dil"),
                {"error": "OnnxNode", "node": "conv_dilated", "op": "Conv", "contains": "dilations"}))

    def same(c, w):
        c.node("Conv", "conv_same", [c.init("w", w)], kernel_shape=[3, 3], auto_pad="SAME_UPPER", strides=[1, 1])
        c.node("MaxPool", "shrink", kernel_shape=[3, 3], strides=[1, 1])

    out.append(("bad-autopad.onnx", base(same, "same"),
                {"error": "OnnxNode", "node": "conv_same", "op": "Conv", "contains": "SAME_UPPER"}))

    def double(c, w):
        c.node("Conv", "conv_f64", [c.init("w_double", w.astype(np.float64))], kernel_shape=[3, 3])

    m = base(double, "f64")  # not valid for ORT (mixed types) but must not crash us
    out.append(("bad-dtype.onnx", m,
                {"error": "OnnxNode", "node": "conv_f64", "op": "Conv", "contains": "w_double"}))

    # a branch: y = relu(conv(x)) + conv(x)  (not a chain)
    c = ax.Chain("x", ["N", 3, 8, 8], opset=13)
    conv_out = c.node("Conv", "conv_a", [c.init("w", ax.he_normal(rng, (4, 3, 3, 3), 27))], kernel_shape=[3, 3])
    c.node("Relu", "relu_a")
    c.nodes.append(helper.make_node("Add", [c.cur, conv_out], ["sum"], name="skip_add"))
    c.cur = "sum"
    c.node("Flatten", "flat", axis=1)
    c.node("Gemm", "fc", [c.init("fc.w", ax.he_normal(rng, (2, 144), 144)), c.init("fc.b", ax.small_bias(rng, 2))],
           transB=1)
    out.append(("bad-branch.onnx", c.model("y", ["N", 2]),
                {"error": "OnnxNode", "node": "skip_add", "op": "Add", "contains": "MatMul"}))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "fixtures" / "onnx"))
    args = ap.parse_args()
    out = Path(args.out)
    if out.exists():
        for p in out.iterdir():  # regenerate from scratch: no stale files
            p.unlink()
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    manifest = {"generator": "tools/gen_fixtures.py", "version": ax.generator_version("gen_fixtures.py"),
                "seed": SEED, "models": {}, "bad": {}, "import_only": {}}

    # Which layers get a reference file (a few hundred KB in all).
    keep = {
        "mini-bvlc": ["conv1", "norm1", "pool1", "conv2", "norm2", "pool2", "conv5", "pool5", "fc6", "fc7",
                      "fc8", "prob"],
        "mini-tv": ["conv1", "pool1", "pool2", "conv5", "pool5", "avgpool", "fc7", "fc8"],
        "mini-misc": ["conv1", "pool1", "avgpool", "fc2", "fc3", "prob"],
    }
    runs = []
    m, lo, _ = mini_bvlc(rng)
    x = rng.uniform(-128, 128, size=(2, 3, 36, 36)).astype(np.float32)
    runs.append(("mini-bvlc", m, lo, x, "data_0", "prob"))
    m_tv, lo, _ = mini_tv(rng)
    x = rng.standard_normal(size=(2, 3, 48, 48), dtype=np.float32)
    runs.append(("mini-tv", m_tv, lo, x, "input", "fc8"))
    m, lo = mini_misc(rng)
    x = rng.standard_normal(size=(2, 3, 16, 16), dtype=np.float32)
    runs.append(("mini-misc", m, lo, x, "x", "prob"))

    for name, model, layer_outputs, x, in_name, final in runs:
        layer_outputs = {k: v for k, v in layer_outputs.items() if k in keep[name]}
        onnx.save(model, out / f"{name}.onnx")
        res = ax.run_ort(model, {in_name: x}, list(layer_outputs.values()))
        np.save(out / f"{name}-input.npy", x)
        files = ax.save_refs(out, name, layer_outputs, res)
        manifest["models"][name] = {
            "onnx": f"{name}.onnx", "input": f"{name}-input.npy", "input_shape": list(x.shape),
            "final": final, "layers": files,
            "stats": {k: ax.stats(res[v]) for k, v in layer_outputs.items()},
        }
        print(f"{name}: final {final} {ax.stats(res[layer_outputs[final]])}")

    onnx.save(to_fp16(m_tv), out / "mini-fp16.onnx")
    manifest["import_only"]["mini-fp16"] = {"onnx": "mini-fp16.onnx", "same_weights_as": "mini-tv"}
    light = Path(onnx.__file__).parent / "backend/test/data/light/light_bvlc_alexnet.onnx"
    shutil.copyfile(light, out / "light_bvlc_alexnet.onnx")
    manifest["import_only"]["light_bvlc_alexnet"] = {
        "onnx": "light_bvlc_alexnet.onnx",
        "source": f"onnx {onnx.__version__} wheel, onnx/backend/test/data/light (Apache-2.0)"}

    for fname, model, expect in bad_models(rng):
        onnx.save(model, out / fname)
        manifest["bad"][fname] = expect
    good = (out / "mini-misc.onnx").read_bytes()
    (out / "bad-truncated.onnx").write_bytes(good[: len(good) * 3 // 5])
    manifest["bad"]["bad-truncated.onnx"] = {"error": "Onnx", "contains": "truncated"}
    ax.write_json(out / "manifest.json", manifest)
    total = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()

"""Shared helpers for the reference generators (gen_refs.py, gen_fixtures.py).

Builds AlexNet-family ONNX graphs with onnx.helper, fills them with seeded random weights
and runs them through onnxruntime (CPU EP, graph optimisations disabled) to produce the
reference outputs our Rust implementation is checked against.

Everything is deterministic for a given seed: numpy's PCG64 generator, fixed op order.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TOOLS = Path(__file__).resolve().parent


def generator_version(*scripts: str) -> str:
    """sha256 (16 hex) of the generator scripts plus the pinned requirements: any change
    to how references are made gives a new version (and a new cache directory)."""
    h = hashlib.sha256()
    for name in sorted(set(scripts) | {"alexnet_onnx.py", "requirements.txt"}):
        h.update(name.encode())
        h.update((TOOLS / name).read_bytes())
    return h.hexdigest()[:16]


def he_normal(rng: np.random.Generator, shape, fan_in: int, scale: float = 1.0) -> np.ndarray:
    std = scale * np.sqrt(2.0 / fan_in)
    return (rng.standard_normal(size=shape, dtype=np.float32) * np.float32(std)).astype(np.float32)


def small_bias(rng: np.random.Generator, n: int, lim: float = 0.1) -> np.ndarray:
    return rng.uniform(-lim, lim, size=(n,)).astype(np.float32)


class Chain:
    """A chain graph under construction. `layer_outputs` maps our Rust layer names
    (conv1, relu1, norm1, pool1, ..., fc8, prob) to ONNX tensor names, so intermediate
    references can be requested by layer name."""

    def __init__(self, input_name: str, input_shape, opset: int, ir_version: int = 8):
        self.input_name = input_name
        self.input_shape = list(input_shape)
        self.opset = opset
        self.ir_version = ir_version
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.cur = input_name
        self.layer_outputs: dict[str, str] = {}

    def init(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, name: str, extra_inputs=(), layer: str | None = None, out: str | None = None,
             n_outputs: int = 1, **attrs) -> str:
        out = out or f"{name}_output_0"
        outputs = [out] + [f"{name}_output_{i}" for i in range(1, n_outputs)]
        self.nodes.append(helper.make_node(op, [self.cur, *extra_inputs], outputs, name=name, **attrs))
        self.cur = out
        if layer:
            self.layer_outputs[layer] = out
        return out

    def model(self, output_name: str, out_dims, metadata: dict | None = None) -> onnx.ModelProto:
        # rename the last tensor to the output name
        last = self.nodes[-1]
        old = last.output[0]
        last.output[0] = output_name
        for k, v in self.layer_outputs.items():
            if v == old:
                self.layer_outputs[k] = output_name
        self.cur = output_name
        inp = helper.make_tensor_value_info(self.input_name, TensorProto.FLOAT, self.input_shape)
        outp = helper.make_tensor_value_info(output_name, TensorProto.FLOAT, list(out_dims))
        g = helper.make_graph(self.nodes, "alexnet", [inp], [outp], initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="alexnet-web tools")
        m.ir_version = self.ir_version
        for k, v in (metadata or {}).items():
            m.metadata_props.append(onnx.StringStringEntryProto(key=k, value=v))
        onnx.checker.check_model(m)
        return m


def with_outputs(model: onnx.ModelProto, names) -> onnx.ModelProto:
    """A copy of `model` with extra graph outputs (intermediate tensors) for ORT."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for n in names:
        if n not in have:
            m.graph.output.append(helper.make_empty_tensor_value_info(n))
            m.graph.output[-1].type.tensor_type.elem_type = TensorProto.FLOAT
    return m


def run_ort(model: onnx.ModelProto, feeds: dict, names) -> dict:
    """Runs `model` on ORT's CPU EP with all graph optimisations off (no fusions that would
    change rounding) and returns the requested tensors by name."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = min(2, os.cpu_count() or 1)
    m = with_outputs(model, names)
    sess = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
    outs = sess.run(list(names), feeds)
    return dict(zip(names, outs))


def save_refs(out_dir: Path, prefix: str, chain_outputs: dict, results: dict) -> dict:
    """Saves `{prefix}-{layer}.npy` for each layer; returns {layer: file name}."""
    files = {}
    for layer, tensor_name in chain_outputs.items():
        fname = f"{prefix}-{layer}.npy"
        np.save(out_dir / fname, np.ascontiguousarray(results[tensor_name].astype(np.float32)))
        files[layer] = fname
    return files


def stats(a: np.ndarray) -> dict:
    return {"shape": list(a.shape), "max_abs": float(np.abs(a).max()), "std": float(a.std())}


# ---------------------------------------------------------------------------------------
# graph builders

def bvlc_style(rng, *, input_name="data_0", batch="N", hw=224, ch=(96, 256, 384, 384, 256),
               k1=11, s1=4, hidden=4096, classes=1000, lrn=(5, 1e-4, 0.75, 1.0), opset=11,
               input_std=73.9, pool_ceil=True, pool5_pads=(0, 0, 1, 1), dropout=True,
               fc7_trans_b=1, fc8_alpha_beta=(1.0, 1.0), reshape_const_node=True, fc8_scale=0.5):
    """A Caffe/zoo-style AlexNet: grouped convs, LRN, 3/2 max pools, Reshape, Gemm, Dropout,
    Softmax. Returns (model, layer_outputs, weights)."""
    c = Chain(input_name, [batch, 3, hw, hw], opset)
    w = {}
    cin = 3
    size, alpha, beta, bias = lrn
    convs = [(k1, s1, 0, 1), (5, 1, 2, 2), (3, 1, 1, 1), (3, 1, 1, 2), (3, 1, 1, 2)]
    h = hw
    for i, ((k, s, p, g), cout) in enumerate(zip(convs, ch), start=1):
        fan_in = cin // g * k * k
        wt = he_normal(rng, (cout, cin // g, k, k), fan_in, 1.0 / input_std if i == 1 else 1.0)
        b = small_bias(rng, cout)
        w[f"conv{i}_w_0"], w[f"conv{i}_b_0"] = wt, b
        c.node("Conv", f"conv{i}", [c.init(f"conv{i}_w_0", wt), c.init(f"conv{i}_b_0", b)], layer=f"conv{i}",
               kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], group=g)
        h = (h + 2 * p - k) // s + 1
        c.node("Relu", f"relu{i}", layer=f"relu{i}")
        if i <= 2:
            c.node("LRN", f"norm{i}", layer=f"norm{i}", size=size, alpha=alpha, beta=beta, bias=bias)
        if i in (1, 2, 5):
            attrs = dict(kernel_shape=[3, 3], strides=[2, 2])
            if i == 5 and pool5_pads is not None:
                attrs["pads"] = list(pool5_pads)
                h = (h + pool5_pads[2] - 3) // 2 + 1
            elif pool_ceil:
                attrs["ceil_mode"] = 1
                h = -(-(h - 3) // 2) + 1
            else:
                h = (h - 3) // 2 + 1
            c.node("MaxPool", f"pool{i}", layer=f"pool{i}", **attrs)
        cin = cout
    flat = cin * h * h
    shape = np.array([0, -1], dtype=np.int64)
    if reshape_const_node:
        c.nodes.append(helper.make_node("Constant", [], ["flat_shape"], name="flat_shape",
                                        value=numpy_helper.from_array(shape, "flat_shape")))
        c.node("Reshape", "flatten", ["flat_shape"], layer="flatten")
    else:
        c.node("Reshape", "flatten", [c.init("flat_shape", shape)], layer="flatten")
    fin = flat
    for j, fout in enumerate([hidden, hidden, classes], start=6):
        last = fout == classes and j == 8
        scale = fc8_scale if last else 1.0
        wt = he_normal(rng, (fout, fin), fin, scale)
        b = small_bias(rng, fout)
        w[f"fc{j}_w_0"], w[f"fc{j}_b_0"] = wt, b
        attrs = {"transB": 1}
        stored_w, stored_b = wt, b
        if j == 7 and fc7_trans_b == 0:
            attrs["transB"] = 0
            stored_w = np.ascontiguousarray(wt.T)
        if j == 8 and fc8_alpha_beta != (1.0, 1.0):
            a, bb = fc8_alpha_beta
            attrs["alpha"], attrs["beta"] = a, bb
            stored_w = (wt / np.float32(a)).astype(np.float32)
            stored_b = (b / np.float32(bb)).astype(np.float32).reshape(1, -1)
        c.node("Gemm", f"fc{j}", [c.init(f"fc{j}_w_0", stored_w), c.init(f"fc{j}_b_0", stored_b)],
               layer=f"fc{j}", **attrs)
        if not last:
            c.node("Relu", f"relu{j}", layer=f"relu{j}")
            if dropout:
                c.node("Dropout", f"drop{j}", n_outputs=1, ratio=0.5)
        fin = fout
    c.node("Softmax", "prob", layer="prob", axis=1)
    return c.model("prob_1", [batch, classes]), c.layer_outputs, w


TV_KEYS = {"conv1": "features.0", "conv2": "features.3", "conv3": "features.6", "conv4": "features.8",
           "conv5": "features.10", "fc6": "classifier.1", "fc7": "classifier.4", "fc8": "classifier.6"}


def torchvision_style(rng, *, hw=224, ch=(64, 192, 384, 256, 256), k1=11, s1=4, p1=2, avg_out=6,
                      hidden=4096, classes=1000, opset=17, batch="batch_size"):
    """The graph torch.onnx.export (TorchScript exporter, eval mode) writes for
    torchvision.models.alexnet(): Conv/Relu/MaxPool (floor), AveragePool with kernel = stride
    = in/out for AdaptiveAvgPool2d (kernel 1 when the size already is 6x6), Flatten, Gemm
    transB=1, no Dropout (eval), no Softmax. Initializers keep torchvision's parameter names.
    Returns (model, layer_outputs, safetensors dict keyed like torchvision)."""
    c = Chain("input", [batch, 3, hw, hw], opset)
    st = {}
    convs = [(k1, s1, p1), (5, 1, 2), (3, 1, 1), (3, 1, 1), (3, 1, 1)]
    cin = 3
    h = hw
    for i, ((k, s, p), cout) in enumerate(zip(convs, ch), start=1):
        key = TV_KEYS[f"conv{i}"]
        idx = key.split(".")[1]
        wt = he_normal(rng, (cout, cin, k, k), cin * k * k)
        b = small_bias(rng, cout)
        st[f"{key}.weight"], st[f"{key}.bias"] = wt, b
        c.node("Conv", f"/features/features.{idx}/Conv", [c.init(f"{key}.weight", wt), c.init(f"{key}.bias", b)],
               layer=f"conv{i}", dilations=[1, 1], group=1, kernel_shape=[k, k], pads=[p, p, p, p], strides=[s, s])
        h = (h + 2 * p - k) // s + 1
        c.node("Relu", f"/features/features.{int(idx) + 1}/Relu", layer=f"relu{i}")
        if i in (1, 2, 5):
            c.node("MaxPool", f"/features/features.{int(idx) + 2}/MaxPool", layer=f"pool{i}",
                   ceil_mode=0, dilations=[1, 1], kernel_shape=[3, 3], pads=[0, 0, 0, 0], strides=[2, 2])
            h = (h - 3) // 2 + 1
        cin = cout
    assert h % avg_out == 0, (h, avg_out)
    k = h // avg_out
    c.node("AveragePool", "/avgpool/AveragePool", layer="avgpool", ceil_mode=0, count_include_pad=0,
           kernel_shape=[k, k], pads=[0, 0, 0, 0], strides=[k, k])
    c.node("Flatten", "/Flatten", layer="flatten", axis=1)
    fin = cin * avg_out * avg_out
    for j, fout in enumerate([hidden, hidden, classes], start=6):
        key = TV_KEYS[f"fc{j}"]
        idx = key.split(".")[1]
        wt = he_normal(rng, (fout, fin), fin, 0.5 if j == 8 else 1.0)
        b = small_bias(rng, fout)
        st[f"{key}.weight"], st[f"{key}.bias"] = wt, b
        c.node("Gemm", f"/classifier/classifier.{idx}/Gemm", [c.init(f"{key}.weight", wt), c.init(f"{key}.bias", b)],
               layer=f"fc{j}", alpha=1.0, beta=1.0, transB=1)
        if j < 8:
            c.node("Relu", f"/classifier/classifier.{int(idx) + 1}/Relu", layer=f"relu{j}")
        fin = fout
    return c.model("output", [batch, classes]), c.layer_outputs, st


def manifest_entry(model_file, input_file, x, refs, files, final, **extra):
    e = {
        "onnx": model_file,
        "input": input_file,
        "input_shape": list(x.shape),
        "final": final,
        "layers": files,
        "stats": {k: stats(v) for k, v in refs.items()},
    }
    e.update(extra)
    return e


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")

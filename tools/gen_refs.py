#!/usr/bin/env python3
"""Full-size reference models and onnxruntime outputs for tests/reference.rs.

    .venv/bin/python tools/gen_refs.py --out DIR     # generate into DIR (skips if current)
    .venv/bin/python tools/gen_refs.py --version     # print the generator version
    .venv/bin/python tools/gen_refs.py --default-dir # print $HOME/.cache/alexnet-web/refs-<version>

DIR gets (about 760 MB):
- bvlcalexnet-random.onnx: the ONNX model zoo's bvlcalexnet graph, taken from the onnx wheel
  (onnx/backend/test/data/light/light_bvlc_alexnet.onnx: zoo topology, IR 3 / opset 9, weights
  made by ConstantOfShape nodes) with every weight replaced by a seeded random initializer
  (He-normal sqrt(2 / fan_in), conv1 also divided by the input's std 73.9 so activations stay
  O(1); fc8 at half scale so the softmax is not one-hot; biases uniform in [-0.1, 0.1]).
  Its input data_0 is fixed at batch 1 (the zoo's Reshape target is [1, 9216]).
- torchvision-random.onnx / torchvision-random.safetensors: the graph torch.onnx.export writes
  for torchvision.models.alexnet() in eval mode (built with onnx.helper, see
  alexnet_onnx.torchvision_style) and the same weights under torchvision's key names.
  Input (2, 3, 224, 224) ~ N(0, 1).
- {bvlc,torchvision}-input.npy and {bvlc,torchvision}-{layer}.npy: onnxruntime 1.32 (CPU EP,
  ORT_DISABLE_ALL) outputs of the final layer and of intermediate layers, keyed by our layer
  names.
- manifest.json (written last): generator version, seed, files, shapes, value statistics.

The output is written to DIR.partial and renamed, so an interrupted run never leaves a DIR
with a manifest. If DIR/manifest.json already has this generator version nothing is done.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
import alexnet_onnx as ax  # noqa: E402

SEED = 20120930  # ILSVRC-2012 results day
VERSION = ax.generator_version("gen_refs.py")
LIGHT = Path(onnx.__file__).parent / "backend/test/data/light/light_bvlc_alexnet.onnx"

# zoo tensor name -> our layer name
BVLC_LAYERS = {"r0": "conv1", "r2": "norm1", "r3": "pool1", "r7": "pool2", "r12": "conv5", "r14": "pool5",
               "r16": "fc6", "r20": "fc7", "r24": "fc8", "prob_1": "prob"}
TV_LAYERS = ["conv1", "pool1", "pool2", "conv5", "pool5", "avgpool", "fc6", "fc7", "fc8"]


def bvlc_random(rng) -> onnx.ModelProto:
    """The zoo graph with ConstantOfShape weights replaced by random initializers."""
    light = onnx.load(str(LIGHT))
    g = light.graph
    shapes = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    weights = {}
    for node in g.node:
        if node.op_type != "ConstantOfShape":
            continue
        name = node.output[0]
        shape = tuple(int(d) for d in shapes[node.input[0]])
        if name.endswith("_w_0"):
            fan_in = int(np.prod(shape[1:]))
            scale = 1.0
            if name == "conv1_w_0":
                scale = 1.0 / 73.9  # std of U(-128, 128)
            elif name == "fc8_w_0":
                scale = 0.5
            weights[name] = ax.he_normal(rng, shape, fan_in, scale)
        else:
            weights[name] = ax.small_bias(rng, shape[0])
    nodes = [n for n in g.node if n.op_type != "ConstantOfShape"]
    keep_inits = [t for t in g.initializer if not t.name.endswith("__SHAPE")]
    inits = keep_inits + [numpy_helper.from_array(w, n) for n, w in weights.items()]
    # IR 3 lists initializers among the graph inputs; keep doing so, as the zoo file does.
    inputs = [i for i in g.input if not i.name.endswith("__SHAPE")]
    have = {i.name for i in inputs}
    for n, w in weights.items():
        if n not in have:
            inputs.append(helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, list(w.shape)))
    graph = helper.make_graph(nodes, g.name or "bvlcalexnet", inputs, list(g.output), initializer=inits)
    m = helper.make_model(graph, opset_imports=list(light.opset_import), producer_name=light.producer_name)
    m.ir_version = light.ir_version
    onnx.checker.check_model(m)
    return m


def generate(out: Path) -> dict:
    rng = np.random.default_rng(SEED)
    manifest = {"generator": "tools/gen_refs.py", "version": VERSION, "seed": SEED,
                "onnx": onnx.__version__, "models": {}}
    timings = {}

    t0 = time.time()
    m = bvlc_random(rng)
    batch = m.graph.input[0].type.tensor_type.shape.dim[0].dim_value or 2
    x = rng.uniform(-128, 128, size=(batch, 3, 224, 224)).astype(np.float32)
    onnx.save(m, out / "bvlcalexnet-random.onnx")
    res = ax.run_ort(m, {"data_0": x}, list(BVLC_LAYERS))
    np.save(out / "bvlc-input.npy", x)
    lo = {layer: tname for tname, layer in BVLC_LAYERS.items()}
    files = ax.save_refs(out, "bvlc", lo, res)
    manifest["models"]["bvlc"] = {
        "onnx": "bvlcalexnet-random.onnx", "input": "bvlc-input.npy", "input_shape": list(x.shape),
        "final": "prob", "family": "bvlc", "layers": files,
        "stats": {k: ax.stats(res[v]) for k, v in lo.items()},
    }
    timings["bvlc_s"] = round(time.time() - t0, 1)

    t0 = time.time()
    m, lo, st = ax.torchvision_style(rng)
    x = rng.standard_normal(size=(2, 3, 224, 224), dtype=np.float32)
    onnx.save(m, out / "torchvision-random.onnx")
    from safetensors.numpy import save_file

    save_file(st, str(out / "torchvision-random.safetensors"))
    lo = {k: v for k, v in lo.items() if k in TV_LAYERS}
    res = ax.run_ort(m, {"input": x}, list(lo.values()))
    np.save(out / "torchvision-input.npy", x)
    files = ax.save_refs(out, "torchvision", lo, res)
    manifest["models"]["torchvision"] = {
        "onnx": "torchvision-random.onnx", "safetensors": "torchvision-random.safetensors",
        "input": "torchvision-input.npy", "input_shape": list(x.shape), "final": "fc8",
        "family": "torchvision", "layers": files,
        "stats": {k: ax.stats(res[v]) for k, v in lo.items()},
    }
    timings["torchvision_s"] = round(time.time() - t0, 1)
    manifest["timings"] = timings
    return manifest


def current(out: Path) -> bool:
    try:
        return json.loads((out / "manifest.json").read_text()).get("version") == VERSION
    except (OSError, ValueError):
        return False


def default_dir() -> Path:
    return Path(os.environ.get("HOME", ".")) / ".cache" / "alexnet-web" / f"refs-{VERSION}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="output directory (default: --default-dir)")
    ap.add_argument("--version", action="store_true", help="print the generator version and exit")
    ap.add_argument("--default-dir", action="store_true", help="print the default output directory and exit")
    ap.add_argument("--force", action="store_true", help="regenerate even if DIR is current")
    args = ap.parse_args()
    if args.version:
        print(VERSION)
        return
    out = Path(args.out) if args.out else default_dir()
    if args.default_dir:
        print(out)
        return
    if current(out) and not args.force:
        print(f"references are current: {out}", file=sys.stderr)
        print(out)
        return
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    t0 = time.time()
    manifest = generate(tmp)
    manifest["timings"]["total_s"] = round(time.time() - t0, 1)
    ax.write_json(tmp / "manifest.json", manifest)
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    size = sum(p.stat().st_size for p in out.iterdir())
    print(f"wrote {out} ({size / 2**20:.0f} MiB) in {manifest['timings']['total_s']} s", file=sys.stderr)
    for name, e in manifest["models"].items():
        s = e["stats"][e["final"]]
        print(f"  {name}: {e['final']} {s}", file=sys.stderr)
    print(out)


if __name__ == "__main__":
    main()

#!/usr/bin/python3
"""PyTorch golden values (forward AND backward) for the CPU reference layers in src/cpu and
for the whole `mini` network; tests/torch_goldens.rs compares against them.

Run from the repository root with Debian's interpreter and torch (CI has no torch: the
outputs in fixtures/torch/ are committed):

    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-torch   # Debian 12: 1.13.1
    /usr/bin/python3 tools/gen_torch_goldens.py

Conventions
- Every random input is drawn from numpy's `default_rng` with a fixed seed per case, as
  float32; that float32 array is what is saved and what Rust reads.
- torch computes in float64 from those float32 values (`torch.float64`, CPU, one thread,
  deterministic algorithms), so the goldens are (much) more accurate than our f32 results;
  outputs and gradients are then rounded to float32 once and saved.
- Each case has an upstream gradient `dy` (random, seeded): `y.backward(dy)` gives `dx`,
  `dw`, `db`.
- File names: fixtures/torch/<case>/<tensor>.npy, C order, little-endian; manifest.json
  records the command, versions, seeds and every case's parameters.

The mini network (src/model/configs.rs `mini()`, 3.45 M parameters) is too big to store (its
weights and gradients would be ~28 MB against a ~400 KB budget for this folder), so:
- its weights are NOT stored: they are `Model::random(mini(), MINI_SEED)` in Rust, and this
  script regenerates exactly the same f32 values by reimplementing `tensor::Rng`
  (SplitMix64, Box-Muller in f64 with the C library's log/cos, He-normal weights with
  std = sqrt(2 / fan_in) in f32, biases uniform in [-0.1, 0.1] in f32); manifest.json holds
  each tensor's f64 sum, sum of squares and first values so the test detects any drift;
- the input batch (2, 3, 32, 32), labels, logits and loss are stored in full;
- parameter gradients are stored in full for tensors of at most FULL_MAX elements, and at
  SAMPLE seeded random indices (`<name>.idx.npy`, int32 flat indices, plus
  `<name>.grad.npy`) for the larger ones, together with full-tensor f64 sums in the
  manifest (sum, sum of |g|, sum of g^2).
"""

import json
import math
import os
import platform
import sys

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "torch")
OUT = os.path.normpath(OUT)
COMMAND = "/usr/bin/python3 tools/gen_torch_goldens.py"
MINI_SEED = 20120  # Model::random(mini(), MINI_SEED)
FULL_MAX = 8192
SAMPLE = 1024

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)
torch.set_default_dtype(torch.float64)

manifest = {
    "command": COMMAND,
    "generator": "tools/gen_torch_goldens.py",
    "torch": torch.__version__,
    "torch_debian_package": None,
    "numpy": np.__version__,
    "python": platform.python_version(),
    "reference_dtype": "float64 (inputs float32, outputs/grads rounded to float32)",
    "cases": {},
}
try:
    import subprocess

    manifest["torch_debian_package"] = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "python3-torch"],
        capture_output=True, text=True, check=True).stdout.strip()
except Exception:  # not Debian: the torch version above still says which torch it was
    pass


def save(case, name, arr, dtype=np.float32):
    d = os.path.join(OUT, case)
    os.makedirs(d, exist_ok=True)
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    np.save(os.path.join(d, name + ".npy"), np.ascontiguousarray(np.asarray(arr, dtype=dtype)))


def rand(rng, shape, scale=1.0):
    """Standard normal times `scale`, rounded to float32 (the values both sides use)."""
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def t64(a, grad=False):
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


# ---------------------------------------------------------------- conv2d

def conv_case(name, seed, n, cin, h, w, cout, k, stride, pads, groups):
    """pads = (top, left, bottom, right) as in our `Pads`; torch gets F.pad then a conv."""
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, cin, h, w))
    wt = rand(rng, (cout, cin // groups, k, k), 1.0 / math.sqrt(cin // groups * k * k))
    b = rand(rng, (cout,), 0.1)
    tx, tw, tb = t64(x, True), t64(wt, True), t64(b, True)
    top, left, bottom, right = pads
    y = F.conv2d(F.pad(tx, (left, right, top, bottom)), tw, tb, stride=stride, groups=groups)
    dy = rand(rng, tuple(y.shape))
    y.backward(t64(dy))
    for k_, v in [("x", x), ("w", wt), ("b", b), ("dy", dy), ("y", y), ("dx", tx.grad),
                  ("dw", tw.grad), ("db", tb.grad)]:
        save(name, k_, v)
    manifest["cases"][name] = dict(op="conv2d", seed=seed, n=n, c_in=cin, h=h, w=w, c_out=cout,
                                   kernel=k, stride=stride, pads_tlbr=list(pads), groups=groups,
                                   out_shape=list(y.shape))


conv_case("conv_s4_p2_g2", 101, 3, 4, 13, 11, 6, 5, 4, (2, 2, 2, 2), 2)
conv_case("conv_asym_pad_g2", 102, 1, 4, 6, 5, 4, 3, 1, (1, 1, 2, 2), 2)
conv_case("conv_11x11_s4", 103, 1, 3, 29, 29, 4, 11, 4, (2, 2, 2, 2), 1)

# ---------------------------------------------------------------- LRN


def lrn_onnx_window(x, size, alpha_eff, beta, k):
    """ONNX's definition, written out: window c-(n-1)/2 ..= c+n/2 (floor divisions)."""
    n_, c_, h_, w_ = x.shape
    out = np.empty_like(x)
    for c in range(c_):
        lo, hi = max(0, c - (size - 1) // 2), min(c_ - 1, c + size // 2)
        s = (x[:, lo:hi + 1] ** 2).sum(axis=1)
        out[:, c] = x[:, c] * (k + alpha_eff * s) ** (-beta)
    return out


def lrn_case(name, seed, size, alpha, beta, k, convention):
    """convention "over_n": torch's alpha (divided by n inside torch, as Caffe/ONNX);
    "raw": the paper's (alpha not divided by n), obtained by giving torch alpha * n."""
    rng = np.random.default_rng(seed)
    shape = (2, 7, 3, 4)
    x = rand(rng, shape, 3.0)
    torch_alpha = alpha if convention == "over_n" else alpha * size
    tx = t64(x, True)
    y = F.local_response_norm(tx, size, alpha=torch_alpha, beta=beta, k=k)
    # torch pads the channel axis by (size//2 front, (size-1)//2 back): for odd sizes that is
    # ONNX's window; check it against the formula written out.
    ref = lrn_onnx_window(x.astype(np.float64), size, torch_alpha / size, beta, k)
    assert np.allclose(y.detach().numpy(), ref, rtol=1e-12, atol=0), name
    dy = rand(rng, shape)
    y.backward(t64(dy))
    for k_, v in [("x", x), ("dy", dy), ("y", y), ("dx", tx.grad)]:
        save(name, k_, v)
    manifest["cases"][name] = dict(op="lrn", seed=seed, shape=list(shape), size=size, alpha=alpha,
                                   beta=beta, k=k, alpha_mode=convention,
                                   torch_alpha=torch_alpha)


lrn_case("lrn_n5_a1e-4_k2", 201, 5, 1e-4, 0.75, 2.0, "over_n")
lrn_case("lrn_n5_a1e-1_k2", 202, 5, 1e-1, 0.75, 2.0, "over_n")
lrn_case("lrn_n5_a1e-1_k1", 203, 5, 1e-1, 0.75, 1.0, "over_n")
lrn_case("lrn_n3_a1e-1_k1", 204, 3, 1e-1, 0.75, 1.0, "over_n")
lrn_case("lrn_paper_n5_a1e-1_k2", 205, 5, 1e-1, 0.75, 2.0, "raw")
lrn_case("lrn_paper_n3_a1e-1_k1", 206, 3, 1e-1, 0.75, 1.0, "raw")

# Even sizes: torch's window is c - n/2 ..= c + n/2 - 1, ONNX's (and ours) c - (n/2 - 1) ..=
# c + n/2: they differ, so no even-size golden is made. Recorded here so nobody adds one.
_x = rand(np.random.default_rng(299), (1, 6, 1, 1), 3.0)
_t = F.local_response_norm(t64(_x), 4, alpha=1.0, beta=0.75, k=1.0).numpy()
_o = lrn_onnx_window(_x.astype(np.float64), 4, 1.0 / 4, 0.75, 1.0)
manifest["lrn_even_size_note"] = (
    "torch's local_response_norm window for even n is c-n/2..=c+n/2-1, ONNX's c-(n/2-1)..=c+n/2; "
    f"n=4 max |torch - onnx| = {float(np.abs(_t - _o).max()):.3g} on a test input, so only odd n "
    "are compared")

# ---------------------------------------------------------------- max pool


def maxpool_case(name, seed, n, c, h, w, pad, ceil):
    rng = np.random.default_rng(seed)
    count = n * c * h * w
    # distinct values (a permutation of a grid, plus nothing random that could tie)
    x = ((rng.permutation(count).astype(np.float64) - count / 2) / 16.0).astype(np.float32)
    x = x.reshape(n, c, h, w)
    assert len(np.unique(x)) == count
    tx = t64(x, True)
    y = F.max_pool2d(tx, 3, 2, padding=pad, ceil_mode=ceil)
    dy = rand(rng, tuple(y.shape))
    y.backward(t64(dy))
    for k_, v in [("x", x), ("dy", dy), ("y", y), ("dx", tx.grad)]:
        save(name, k_, v)
    manifest["cases"][name] = dict(op="maxpool", seed=seed, shape=[n, c, h, w], kernel=3, stride=2,
                                   pad=pad, ceil_mode=ceil, out_shape=list(y.shape))


maxpool_case("maxpool_floor", 301, 2, 3, 8, 9, 0, False)
maxpool_case("maxpool_ceil", 302, 2, 3, 8, 9, 0, True)
maxpool_case("maxpool_floor_pad1", 303, 2, 3, 8, 9, 1, False)
maxpool_case("maxpool_ceil_pad1", 304, 2, 3, 8, 9, 1, True)

# ---------------------------------------------------------------- adaptive avg pool


def avgpool_case(name, seed, n, c, h, w, oh, ow):
    rng = np.random.default_rng(seed)
    x = rand(rng, (n, c, h, w))
    tx = t64(x, True)
    y = F.adaptive_avg_pool2d(tx, (oh, ow))
    dy = rand(rng, tuple(y.shape))
    y.backward(t64(dy))
    for k_, v in [("x", x), ("dy", dy), ("y", y), ("dx", tx.grad)]:
        save(name, k_, v)
    manifest["cases"][name] = dict(op="adaptive_avgpool", seed=seed, shape=[n, c, h, w],
                                   out=[oh, ow])


avgpool_case("avgpool_13x13_to_6x6", 401, 2, 3, 13, 13, 6, 6)
avgpool_case("avgpool_5x7_to_3x3", 402, 2, 3, 5, 7, 3, 3)

# ---------------------------------------------------------------- linear

rng = np.random.default_rng(501)
x, wt, b = rand(rng, (3, 7)), rand(rng, (5, 7), 1 / math.sqrt(7)), rand(rng, (5,), 0.1)
tx, tw, tb = t64(x, True), t64(wt, True), t64(b, True)
y = F.linear(tx, tw, tb)
dy = rand(rng, (3, 5))
y.backward(t64(dy))
for k_, v in [("x", x), ("w", wt), ("b", b), ("dy", dy), ("y", y), ("dx", tx.grad),
              ("dw", tw.grad), ("db", tb.grad)]:
    save("linear", k_, v)
manifest["cases"]["linear"] = dict(op="linear", seed=501, n=3, in_features=7, out_features=5)

# ---------------------------------------------------------------- softmax and cross-entropy

rng = np.random.default_rng(601)
logits = rand(rng, (4, 10), 3.0)
labels = np.array([3, 0, 9, 3], dtype=np.int64)
tz = t64(logits, True)
loss = F.cross_entropy(tz, torch.tensor(labels), reduction="mean")
loss.backward()
losses = F.cross_entropy(tz.detach(), torch.tensor(labels), reduction="none")
save("softmax_xent", "logits", logits)
save("softmax_xent", "labels", labels, np.int64)
save("softmax_xent", "probs", torch.softmax(tz.detach(), dim=1))
save("softmax_xent", "losses", losses)
save("softmax_xent", "loss", loss.detach().reshape(1))
save("softmax_xent", "dlogits", tz.grad)
manifest["cases"]["softmax_xent"] = dict(op="softmax_cross_entropy", seed=601, n=4, k=10,
                                         reduction="mean", labels=labels.tolist())

rng = np.random.default_rng(602)
x, dy = rand(rng, (3, 8), 2.0), rand(rng, (3, 8))
tx = t64(x, True)
y = torch.softmax(tx, dim=1)
y.backward(t64(dy))
for k_, v in [("x", x), ("dy", dy), ("y", y), ("dx", tx.grad)]:
    save("softmax", k_, v)
manifest["cases"]["softmax"] = dict(op="softmax", seed=602, n=3, k=8)

# ---------------------------------------------------------------- the mini network

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def splitmix64(z):
    """src/tensor.rs `splitmix64`, vectorised over uint64 (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class RustRng:
    """src/tensor.rs `Rng`: state += GOLDEN, output splitmix64(state)."""

    def __init__(self, seed):
        self.state = seed & M64

    def next_u64s(self, count):
        k = np.arange(1, count + 1, dtype=np.uint64)
        with np.errstate(over="ignore"):
            states = np.uint64(self.state) + k * np.uint64(GOLDEN)
            out = splitmix64(states)
        self.state = (self.state + count * GOLDEN) & M64
        return out

    def fill_normal(self, count, std):
        """`normal() * std` per element: Box-Muller in f64 with libm's log and cos (the
        C library Rust's f64::ln / f64::cos call), rounded to f32, times an f32 std."""
        u = self.next_u64s(2 * count) >> np.uint64(11)
        u1 = (u[0::2].astype(np.float64) + 0.5) / float(1 << 53)
        u2 = u[1::2].astype(np.float64) / float(1 << 53)
        two_pi = 2.0 * math.pi
        z = np.array([math.sqrt(-2.0 * math.log(a)) * math.cos(two_pi * b)
                      for a, b in zip(u1.tolist(), u2.tolist())], dtype=np.float64)
        return z.astype(np.float32) * np.float32(std)

    def fill_uniform(self, count, lo, hi):
        u = (self.next_u64s(count) >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)
        lo, hi = np.float32(lo), np.float32(hi)
        return lo + (hi - lo) * u


# (name, kind, args): the layers of src/model/configs.rs `mini()`, in order.
MINI = [
    ("conv1", "conv", dict(cin=3, cout=64, k=5, stride=1, pad=2, groups=1)),
    ("relu1", "relu", {}),
    ("norm1", "lrn", dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),  # alpha / n, as torch
    ("pool1", "maxpool", {}),
    ("conv2", "conv", dict(cin=64, cout=160, k=5, stride=1, pad=2, groups=2)),
    ("relu2", "relu", {}),
    ("norm2", "lrn", dict(size=5, alpha=1e-4, beta=0.75, k=2.0)),
    ("pool2", "maxpool", {}),
    ("conv3", "conv", dict(cin=160, cout=240, k=3, stride=1, pad=1, groups=1)),
    ("relu3", "relu", {}),
    ("conv4", "conv", dict(cin=240, cout=240, k=3, stride=1, pad=1, groups=2)),
    ("relu4", "relu", {}),
    ("conv5", "conv", dict(cin=240, cout=160, k=3, stride=1, pad=1, groups=2)),
    ("relu5", "relu", {}),
    ("pool5", "maxpool", {}),
    ("flatten", "flatten", {}),
    ("fc6", "fc", dict(i=1440, o=1024)),
    ("relu6", "relu", {}),
    ("drop6", "dropout", {}),  # eval mode: identity (p = 0 in the Rust test)
    ("fc7", "fc", dict(i=1024, o=1024)),
    ("relu7", "relu", {}),
    ("drop7", "dropout", {}),
    ("fc8", "fc", dict(i=1024, o=10)),
]

# Model::random: per parameter in Arch::param_shapes order (layer order, weight then bias):
# weight N(0, 1) * sqrt(2 / fan_in) (f32), bias uniform [-0.1, 0.1) (f32), one Rng throughout.
rust_rng = RustRng(MINI_SEED)
params = {}
for lname, kind, a in MINI:
    if kind == "conv":
        wshape = (a["cout"], a["cin"] // a["groups"], a["k"], a["k"])
        bshape = (a["cout"],)
    elif kind == "fc":
        wshape, bshape = (a["o"], a["i"]), (a["o"],)
    else:
        continue
    fan_in = int(np.prod(wshape[1:]))
    std = np.sqrt(np.float32(2.0) / np.float32(fan_in), dtype=np.float32)
    params[lname + ".weight"] = rust_rng.fill_normal(int(np.prod(wshape)), std).reshape(wshape)
    params[lname + ".bias"] = rust_rng.fill_uniform(int(np.prod(bshape)), -0.1, 0.1).reshape(bshape)

tp = {k: t64(v, True) for k, v in params.items()}


def mini_forward(x):
    h = x
    for lname, kind, a in MINI:
        if kind == "conv":
            h = F.conv2d(h, tp[lname + ".weight"], tp[lname + ".bias"], stride=a["stride"],
                         padding=a["pad"], groups=a["groups"])
        elif kind == "relu":
            h = F.relu(h)
        elif kind == "lrn":
            h = F.local_response_norm(h, a["size"], alpha=a["alpha"], beta=a["beta"], k=a["k"])
        elif kind == "maxpool":
            h = F.max_pool2d(h, 3, 2, ceil_mode=False)
        elif kind == "flatten":
            h = torch.flatten(h, 1)
        elif kind == "fc":
            h = F.linear(h, tp[lname + ".weight"], tp[lname + ".bias"])
        elif kind == "dropout":
            pass
    return h


rng = np.random.default_rng(701)
mx = rand(rng, (2, 3, 32, 32))
mlabels = np.array([3, 7], dtype=np.int64)
mlogits = mini_forward(t64(mx))
mloss = F.cross_entropy(mlogits, torch.tensor(mlabels), reduction="mean")
mloss.backward()
save("mini", "x", mx)
save("mini", "labels", mlabels, np.int64)
save("mini", "logits", mlogits)
save("mini", "loss", mloss.detach().reshape(1))
ptab = {}
srng = np.random.default_rng(702)
for name, v in params.items():
    g = tp[name].grad.numpy()
    w64, g64 = v.astype(np.float64), g.astype(np.float64)
    entry = dict(shape=list(v.shape),
                 weight_sum=float(w64.sum()), weight_sum_sq=float((w64 ** 2).sum()),
                 weight_first=[float(t) for t in v.reshape(-1)[:4]],
                 grad_sum=float(g64.sum()), grad_sum_abs=float(np.abs(g64).sum()),
                 grad_sum_sq=float((g64 ** 2).sum()))
    if v.size <= FULL_MAX:
        save("mini", name + ".grad", g)
        entry["stored"] = "full"
    else:
        idx = np.sort(srng.choice(v.size, SAMPLE, replace=False)).astype(np.int32)
        save("mini", name + ".idx", idx, np.int32)
        save("mini", name + ".grad", g.reshape(-1)[idx])
        entry["stored"] = f"{SAMPLE} sampled flat indices"
    ptab[name] = entry
manifest["cases"]["mini"] = dict(
    op="network", arch="mini (src/model.rs), eval mode: dropout identity (p = 0 in Rust)",
    weights=f"Model::random(mini(), {MINI_SEED}) regenerated in Python (not stored)",
    weights_seed=MINI_SEED,
    input_seed=701, sample_seed=702, batch=[2, 3, 32, 32], labels=mlabels.tolist(),
    loss=float(mloss), full_max=FULL_MAX, sample=SAMPLE, params=ptab)

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
    f.write("\n")

total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(OUT) for fn in fns)
print(f"wrote {OUT} ({total} bytes), torch {torch.__version__}, numpy {np.__version__}",
      file=sys.stderr)

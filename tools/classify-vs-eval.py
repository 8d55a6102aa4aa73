#!/usr/bin/env python3
"""Does a user who saves Fashion-MNIST test images as PNG files and classifies them get the
embedded model's measured accuracy? Writes the first N test images as 28x28 grey PNGs and as
an IDX subset, then scores the same images twice: `alexnet classify` one file at a time (the
path the page runs: decode, preprocess) and `alexnet eval` on the IDX (the trainer's input).

    tools/classify-vs-eval.py [--n 1000] [--model www/models/mini-fashion.safetensors]
        [--data-dir /usr/share/datasets/fashion-mnist] [--alexnet target/release/alexnet]

Prints both accuracies and how many images the two disagree on. Standard library only.
"""
import argparse, gzip, os, re, struct, subprocess, sys, tempfile, zlib


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4:4 + 4 * dims])
    return shape, data[4 + 4 * dims:]


def png_grey(w, h, pixels):
    raw = b"".join(b"\0" + pixels[y * w:(y + 1) * w] for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--model", default="www/models/mini-fashion.safetensors")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--alexnet", default="target/release/alexnet")
    a = ap.parse_args()
    (count, h, w), pixels = read_idx(os.path.join(a.data_dir, "t10k-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(a.data_dir, "t10k-labels-idx1-ubyte.gz"))
    n = min(a.n, count)
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i in range(n):
            path = os.path.join(tmp, f"{i:05}.png")
            with open(path, "wb") as f:
                f.write(png_grey(w, h, pixels[i * h * w:(i + 1) * h * w]))
            files.append(path)
        sub = os.path.join(tmp, "idx")
        os.mkdir(sub)
        with gzip.open(os.path.join(sub, "t10k-images-idx3-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">IIII", 0x803, n, h, w) + pixels[:n * h * w])
        with gzip.open(os.path.join(sub, "t10k-labels-idx1-ubyte.gz"), "wb") as f:
            f.write(struct.pack(">II", 0x801, n) + labels[:n])
        out = subprocess.run([a.alexnet, "classify", "--model", a.model, "--backend", "cpu",
                              "--top", "1", *files], check=True, capture_output=True, text=True).stdout
        ev = subprocess.run([a.alexnet, "eval", "--model", a.model, "--backend", "cpu",
                             "--dataset", "fashion-mnist", "--data-dir", sub],
                            check=True, capture_output=True, text=True).stdout
    preds = [int(m.group(1)) for m in re.finditer(r"^\s+[\d.]+%\s+(\d+)\s", out, re.M)]
    if len(preds) != n:
        sys.exit(f"classify printed {len(preds)} predictions for {n} images")
    right = sum(p == labels[i] for i, p in enumerate(preds))
    m = re.search(r"accuracy ([\d.]+)%", ev)
    if not m:
        sys.exit(f"no accuracy in eval's output: {ev}")
    acc_c, acc_e = 100 * right / n, float(m.group(1))
    print(f"{n} Fashion-MNIST test images ({args_str(a)}):")
    print(f"  alexnet classify, one PNG at a time: {acc_c:.2f}% top-1")
    print(f"  alexnet eval on the same images:     {acc_e:.2f}% top-1")
    print(f"  difference: {abs(acc_c - acc_e):.2f} points")


def args_str(a):
    return f"model {a.model}, backend cpu"


if __name__ == "__main__":
    main()

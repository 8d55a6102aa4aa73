#!/usr/bin/env python3
"""Writes the small Fashion-MNIST subset the page trains on (www/data/fashion-mnist/):
the first N training and M test images of each class, as gzipped IDX files like the
originals, with the dataset's MIT licence beside them. Deterministic: the same input files
give byte-identical output (gzip mtime 0).

    python3 tools/fashion_subset.py [--src /usr/share/datasets/fashion-mnist] [--train 200] [--test 50]
"""
import argparse
import gzip
import os
import struct

LICENCE = """Fashion-MNIST subset (the first {train} training and {test} test images of each class)
from https://github.com/zalandoresearch/fashion-mnist, as shipped by Debian's
dataset-fashion-mnist package; made by tools/fashion_subset.py.

The MIT License (MIT)

Copyright (c) 2017 Zalando SE, https://tech.zalando.com

Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software
without restriction, including without limitation the rights to use, copy, modify, merge,
publish, distribute, sublicense, and/or sell copies of the Software, and to permit persons
to whom the Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED,
INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR
PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE
FOR ANY CLAIM, DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR
OTHERWISE, ARISING FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER
DEALINGS IN THE SOFTWARE.
"""


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, kind, ndims = struct.unpack(">HBB", data[:4])
    assert zero == 0 and kind == 8, path
    dims = struct.unpack(">" + "I" * ndims, data[4 : 4 + 4 * ndims])
    return dims, data[4 + 4 * ndims :]


def write_idx(path, dims, values):
    header = struct.pack(">HBB", 0, 8, len(dims)) + struct.pack(">" + "I" * len(dims), *dims)
    with open(path, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
            f.write(header + bytes(values))


def subset(src, prefix, per_class, out, out_prefix):
    dims, pixels = read_idx(os.path.join(src, f"{prefix}-images-idx3-ubyte.gz"))
    _, labels = read_idx(os.path.join(src, f"{prefix}-labels-idx1-ubyte.gz"))
    n, h, w = dims
    taken = {c: 0 for c in range(10)}
    keep = []
    for i, c in enumerate(labels):
        if taken[c] < per_class:
            taken[c] += 1
            keep.append(i)
    img = bytearray()
    for i in keep:
        img += pixels[i * h * w : (i + 1) * h * w]
    write_idx(os.path.join(out, f"{out_prefix}-images-idx3-ubyte.gz"), (len(keep), h, w), img)
    write_idx(os.path.join(out, f"{out_prefix}-labels-idx1-ubyte.gz"), (len(keep),), [labels[i] for i in keep])
    return len(keep)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--src", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "www", "data", "fashion-mnist"))
    ap.add_argument("--train", type=int, default=200)
    ap.add_argument("--test", type=int, default=50)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    n_train = subset(a.src, "train", a.train, a.out, "train")
    n_test = subset(a.src, "t10k", a.test, a.out, "t10k")
    with open(os.path.join(a.out, "LICENSE"), "w") as f:
        f.write(LICENCE.format(train=a.train, test=a.test))
    print(f"wrote {n_train} training and {n_test} test images to {a.out}")


if __name__ == "__main__":
    main()

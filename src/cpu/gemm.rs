//! The two matrix kernels everything heavy runs on, and the thread split around them.
//!
//! - [`gemm`]: `C (m, n) = A (m, k) · B (k, n)` for strided matrices, on `matrixmultiply`'s
//!   packed, cache-blocked sgemm (runtime AVX/FMA/AVX-512 natively; its portable 8x4
//!   micro-kernel, which LLVM turns into SIMD128 with `+simd128`, on wasm). `C` is
//!   overwritten or, with [`Write::Add`], added to (weight gradients summed over images).
//!   Natively the larger of `m` and `n` is cut into one block per thread; every element of
//!   `C` sums its `k` terms in the same order whatever the split, so the thread count does
//!   not change the result.
//! - [`gemv_rows`]: `y[r, o] = dot(W[o, :], x[r, :])` for a few rows `x` (batch <= 4), each
//!   weight row read once and dotted with every `x` row while it is in L1: the batch-1
//!   fully connected layers are bound by reading the weights (fc6: 151 MB), so this streams
//!   them once, split by output rows across threads.

use std::thread;

/// A read-only strided matrix: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy)]
pub(crate) struct Mat<'a> {
    pub data: &'a [f32],
    pub rs: usize,
    pub cs: usize,
}

impl<'a> Mat<'a> {
    /// `data` as a row-major matrix with `cols` columns.
    pub fn rows(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: cols,
            cs: 1,
        }
    }

    /// The transpose of `data` read as a row-major matrix with `cols` columns (a strided
    /// view: nothing is copied).
    pub fn transposed(data: &'a [f32], cols: usize) -> Self {
        Mat {
            data,
            rs: 1,
            cs: cols,
        }
    }
}

/// What a GEMM does with `C`.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Write {
    /// `C = A · B` (`C` need not be initialised: it is never read).
    Set,
    /// `C += A · B`.
    Add,
}

/// A raw pointer that may cross into a scoped thread. Each thread writes a disjoint block of
/// `C` (rows `m0..m1` or columns `n0..n1`), so no two threads touch the same element.
#[derive(Clone, Copy)]
struct SendPtr(*mut f32);
// SAFETY: used only to write disjoint blocks of one `&mut [f32]` from scoped threads that end
// before the borrow does.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

/// Work (multiply-adds) below which a GEMM is not worth splitting across threads.
const MIN_PARALLEL_MACS: usize = 1 << 20;
/// Blocks handed to threads are multiples of this (a multiple of every micro-kernel's MR/NR).
const SPLIT_ALIGN: usize = 16;

/// Largest index `(rows-1)*rs + (cols-1)*cs` of a non-empty strided matrix.
fn last_index(rows: usize, cols: usize, rs: usize, cs: usize) -> usize {
    (rows - 1) * rs + (cols - 1) * cs
}

/// `C (m, n) = A (m, k) · B (k, n)`, or `C +=` with [`Write::Add`]; `C` is dense
/// row-major. Uses up to `threads` threads (1 on wasm).
///
/// # Panics
/// If a matrix does not fit its slice (callers check shapes first; this guards the unsafe
/// call).
pub(crate) fn gemm(
    threads: usize,
    (m, k, n): (usize, usize, usize),
    a: Mat,
    b: Mat,
    c: &mut [f32],
    write: Write,
) {
    let (rsc, csc) = (n, 1);
    let beta = if write == Write::Add { 1.0 } else { 0.0 };
    if m == 0 || n == 0 {
        return;
    }
    assert!(
        last_index(m, n, rsc, csc) < c.len(),
        "gemm: C out of bounds"
    );
    if k == 0 {
        if beta == 0.0 {
            for i in 0..m {
                for j in 0..n {
                    c[i * rsc + j * csc] = 0.0;
                }
            }
        }
        return;
    }
    assert!(
        last_index(m, k, a.rs, a.cs) < a.data.len(),
        "gemm: A out of bounds"
    );
    assert!(
        last_index(k, n, b.rs, b.cs) < b.data.len(),
        "gemm: B out of bounds"
    );
    let cp = SendPtr(c.as_mut_ptr());
    // One block: rows m0..m1, columns n0..n1 of C.
    let block = move |m0: usize, m1: usize, n0: usize, n1: usize| {
        // SAFETY: the asserts above bound every index of A, B and C; the offsets below stay
        // inside those matrices; blocks of C given to different threads are disjoint.
        unsafe {
            matrixmultiply::sgemm(
                m1 - m0,
                k,
                n1 - n0,
                1.0,
                a.data.as_ptr().add(m0 * a.rs),
                a.rs as isize,
                a.cs as isize,
                b.data.as_ptr().add(n0 * b.cs),
                b.rs as isize,
                b.cs as isize,
                beta,
                { cp }.0.add(m0 * rsc + n0 * csc),
                rsc as isize,
                csc as isize,
            );
        }
    };
    let threads = if m * n * k < MIN_PARALLEL_MACS {
        1
    } else {
        threads
    };
    let split_m = m >= n;
    let dim = if split_m { m } else { n };
    let chunk = dim.div_ceil(threads.max(1)).next_multiple_of(SPLIT_ALIGN);
    if threads <= 1 || chunk >= dim {
        block(0, m, 0, n);
        return;
    }
    thread::scope(|s| {
        let mut start = chunk;
        while start < dim {
            let end = (start + chunk).min(dim);
            if split_m {
                s.spawn(move || block(start, end, 0, n));
            } else {
                s.spawn(move || block(0, m, start, end));
            }
            start = end;
        }
        if split_m {
            block(0, chunk, 0, n);
        } else {
            block(0, m, 0, chunk);
        }
    });
}

/// Lanes of the accumulators of [`dot`] and [`sum`].
const L: usize = 16;

/// The sum of `L` accumulators, halved pairwise (lane `l` gets lane `l + width`) down to one.
#[inline]
fn fold_pairwise(mut acc: [f32; L]) -> f32 {
    let mut width = L;
    while width > 1 {
        width /= 2;
        for l in 0..width {
            acc[l] += acc[l + width];
        }
    }
    acc[0]
}

/// `dot(a, b)` with 16 independent f32 accumulators (so LLVM vectorises it: 4 SSE / 2 AVX /
/// 4 SIMD128 registers), combined pairwise at the end.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let (a, b) = (&a[..len], &b[..len]);
    let mut acc = [0.0f32; L];
    let (ac, ar) = a.as_chunks::<L>();
    let (bc, br) = b.as_chunks::<L>();
    for (x, y) in ac.iter().zip(bc) {
        for l in 0..L {
            acc[l] += x[l] * y[l];
        }
    }
    let mut tail = 0.0f32;
    for (x, y) in ar.iter().zip(br) {
        tail += x * y;
    }
    fold_pairwise(acc) + tail
}

/// `sum(a)` with 16 independent f32 accumulators (vectorised like [`dot`]), combined
/// pairwise: a row of `OH*OW` gradients for a bias gradient.
#[inline]
pub(crate) fn sum(a: &[f32]) -> f32 {
    let mut acc = [0.0f32; L];
    let (ac, ar) = a.as_chunks::<L>();
    for x in ac {
        for l in 0..L {
            acc[l] += x[l];
        }
    }
    let tail: f32 = ar.iter().sum();
    fold_pairwise(acc) + tail
}

/// `y[r, o] = bias[o] + dot(w[o, :], x[r, :])`, then ReLU if `relu`, for `x (rows, IN)`,
/// `w (OUT, IN)`, `y (rows, OUT)`. Output rows `o` are split across `threads`.
///
/// # Panics
/// If the slices do not match `rows`, `IN = x.len() / rows` and `OUT = bias.len()` (callers
/// check shapes first).
pub(crate) fn gemv_rows(
    threads: usize,
    rows: usize,
    x: &[f32],
    w: &[f32],
    bias: &[f32],
    y: &mut [f32],
    relu: bool,
) {
    let outs = bias.len();
    if rows == 0 || outs == 0 {
        return;
    }
    let ins = x.len() / rows;
    assert!(x.len() == rows * ins && w.len() == outs * ins && y.len() == rows * outs);
    // Output rows o0..o1 into `part`, laid out as ys[r][o - o0] via the full y stride.
    let run = |o0: usize, o1: usize, yp: SendPtr| {
        for o in o0..o1 {
            let wr = &w[o * ins..(o + 1) * ins];
            for r in 0..rows {
                let mut v = bias[o] + dot(wr, &x[r * ins..(r + 1) * ins]);
                if relu && v < 0.0 {
                    v = 0.0;
                }
                // SAFETY: r < rows, o < outs: inside y (asserted above); threads own disjoint o.
                unsafe { *{ yp }.0.add(r * outs + o) = v };
            }
        }
    };
    let yp = SendPtr(y.as_mut_ptr());
    let threads = if rows * outs * ins < MIN_PARALLEL_MACS {
        1
    } else {
        threads.max(1)
    };
    let chunk = outs.div_ceil(threads);
    if threads == 1 {
        run(0, outs, yp);
        return;
    }
    thread::scope(|s| {
        let mut start = chunk;
        while start < outs {
            let end = (start + chunk).min(outs);
            let run = &run;
            s.spawn(move || run(start, end, yp));
            start = end;
        }
        run(0, chunk.min(outs), yp);
    });
}

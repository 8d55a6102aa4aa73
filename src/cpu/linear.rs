//! Fully connected layer: `y (N, OUT) = x (N, IN) · W^T + b` with `W (OUT, IN)` (PyTorch's
//! layout, as `reference::linear`).
//!
//! - `N <= GEMV_MAX_ROWS`: `gemv_rows`, which reads each weight row once (the layer is bound
//!   by the weight stream: fc6 is 151 MB against 38 M multiply-adds per image), split by
//!   output rows across threads;
//! - larger batches: one GEMM with `B = W^T` as a strided view (no transpose copy), split by
//!   output features across threads, then `+ b` (and ReLU when fused).
//!
//! Backward (as `reference::linear`), all strided views of the row-major buffers, no copies:
//!   `dx (N, IN) = dy (N, OUT) · W (OUT, IN)`            (optional: not needed below fc1),
//!   `dW (OUT, IN) = dy^T (OUT, N) · x (N, IN)`          (`dy^T`: strides `(1, OUT)`),
//!   `db[o] = sum_n dy[n, o]`                             (f64, N*OUT adds: negligible).
//! Both GEMMs are split across threads along their larger output side.

use super::gemm::{gemm, gemv_rows, Mat, Write};
use super::Workspace;
use crate::error::Result;
use crate::model::LinearGeom;
use crate::tensor::check_lens;

/// Largest batch that takes the weight-streaming path.
pub const GEMV_MAX_ROWS: usize = 4;

/// `y = x W^T + b` (then ReLU if `relu`). Shapes in the module doc.
pub fn linear_forward(
    ws: &Workspace,
    g: &LinearGeom,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    y: &mut [f32],
    relu: bool,
) -> Result<()> {
    let (n, ni, no) = (g.n, g.in_features, g.out_features);
    check_lens(
        "fast linear_forward",
        &[
            ("x (N, IN)", x.len(), n * ni),
            ("weight (OUT, IN)", weight.len(), no * ni),
            ("bias (OUT)", bias.len(), no),
            ("y (N, OUT)", y.len(), n * no),
        ],
    )?;
    if n == 0 || no == 0 {
        return Ok(());
    }
    if n <= GEMV_MAX_ROWS || ni == 0 {
        gemv_rows(ws.threads, n, x, weight, bias, y, relu);
        return Ok(());
    }
    gemm(
        ws.threads,
        (n, ni, no),
        Mat::rows(x, ni),
        Mat::transposed(weight, ni),
        y,
        Write::Set,
    );
    for row in y.chunks_exact_mut(no) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = if relu { (*v + b).max(0.0) } else { *v + b };
        }
    }
    Ok(())
}

/// Gradients of `linear_forward` from `dy (N, OUT)` and the forward's `x (N, IN)` and
/// `weight (OUT, IN)`: writes (overwrites) `dweight (OUT, IN)`, `dbias (OUT)` and, when
/// given, `dx (N, IN)`.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    ws: &Workspace,
    g: &LinearGeom,
    dy: &[f32],
    x: &[f32],
    weight: &[f32],
    dx: Option<&mut [f32]>,
    dweight: &mut [f32],
    dbias: &mut [f32],
) -> Result<()> {
    let (n, ni, no) = (g.n, g.in_features, g.out_features);
    let dx_len = dx.as_ref().map_or(n * ni, |d| d.len());
    check_lens(
        "fast linear_backward",
        &[
            ("dy (N, OUT)", dy.len(), n * no),
            ("x (N, IN)", x.len(), n * ni),
            ("weight (OUT, IN)", weight.len(), no * ni),
            ("dx (N, IN)", dx_len, n * ni),
            ("dweight (OUT, IN)", dweight.len(), no * ni),
            ("dbias (OUT)", dbias.len(), no),
        ],
    )?;
    let threads = ws.threads;
    if let Some(dx) = dx {
        gemm(
            threads,
            (n, no, ni),
            Mat::rows(dy, no),
            Mat::rows(weight, ni),
            dx,
            Write::Set,
        );
    }
    gemm(
        threads,
        (no, n, ni),
        Mat::transposed(dy, no),
        Mat::rows(x, ni),
        dweight,
        Write::Set,
    );
    let mut acc = vec![0.0f64; no];
    for row in dy.chunks_exact(no.max(1)) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v as f64;
        }
    }
    for (d, a) in dbias.iter_mut().zip(acc) {
        *d = a as f32;
    }
    Ok(())
}

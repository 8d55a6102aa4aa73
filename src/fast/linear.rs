//! Fully connected layer: `y (N, OUT) = x (N, IN) · W^T + b` with `W (OUT, IN)` (PyTorch's
//! layout, as `cpu::linear`).
//!
//! - `N <= GEMV_MAX_ROWS`: `gemv_rows`, which reads each weight row once (the layer is bound
//!   by the weight stream: fc6 is 151 MB against 38 M multiply-adds per image), split by
//!   output rows across threads;
//! - larger batches: one GEMM with `B = W^T` as a strided view (no transpose copy), split by
//!   output features across threads, then `+ b` (and ReLU when fused).

use super::gemm::{gemm, gemv_rows, Mat};
use super::Workspace;
use crate::cpu::LinearGeom;
use crate::error::{Error, Result};

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
    for (what, len, want) in [
        ("x (N, IN)", x.len(), n * ni),
        ("weight (OUT, IN)", weight.len(), no * ni),
        ("bias (OUT)", bias.len(), no),
        ("y (N, OUT)", y.len(), n * no),
    ] {
        if len != want {
            return Err(Error::Other(format!(
                "fast linear_forward: {what} has {len} values, needs {want}"
            )));
        }
    }
    if n == 0 || no == 0 {
        return Ok(());
    }
    if n <= GEMV_MAX_ROWS || ni == 0 {
        gemv_rows(ws.threads, n, x, weight, bias, y, relu);
        return Ok(());
    }
    gemm(
        ws.threads,
        n,
        ni,
        no,
        Mat {
            data: x,
            rs: ni,
            cs: 1,
        },
        Mat {
            data: weight,
            rs: 1,
            cs: ni,
        },
        y,
        no,
        1,
    );
    for row in y.chunks_exact_mut(no) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = if relu { (*v + b).max(0.0) } else { *v + b };
        }
    }
    Ok(())
}

//! Fully connected layer, PyTorch layout (ONNX Gemm with transB = 1).
//!
//! Shapes: `x (N, IN)`, `weight (OUT, IN)`, `bias (OUT)`, `y (N, OUT)`.
//! Forward:  `y[n,o] = bias[o] + sum_i x[n,i] * weight[o,i]`        (`y = x W^T + b`)
//! Backward: `dx[n,i] = sum_o dy[n,o] * weight[o,i]`                  (`dx = dy W`)
//!           `dweight[o,i] = sum_n dy[n,o] * x[n,i]`                   (`dW = dy^T x`)
//!           `dbias[o] = sum_n dy[n,o]`
//! Accumulation: **f64**, in ascending index order, rounded to f32 once per element.

use crate::error::Result;
use crate::model::LinearGeom;
use crate::tensor::check_len;

/// `y = x W^T + b`.
pub fn linear_forward(
    g: &LinearGeom,
    x: &[f32],
    weight: &[f32],
    bias: &[f32],
    y: &mut [f32],
) -> Result<()> {
    let (ni, no) = (g.in_features, g.out_features);
    check_len("linear_forward: x (N, IN)", x.len(), &[g.n, ni])?;
    check_len("linear_forward: weight (OUT, IN)", weight.len(), &[no, ni])?;
    check_len("linear_forward: bias (OUT)", bias.len(), &[no])?;
    check_len("linear_forward: y (N, OUT)", y.len(), &[g.n, no])?;
    for n in 0..g.n {
        let xr = &x[n * ni..(n + 1) * ni];
        for o in 0..no {
            let wr = &weight[o * ni..(o + 1) * ni];
            let mut acc = bias[o] as f64;
            for i in 0..ni {
                acc += xr[i] as f64 * wr[i] as f64;
            }
            y[n * no + o] = acc as f32;
        }
    }
    Ok(())
}

/// Gradients of `linear_forward`; all three outputs are overwritten.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward(
    g: &LinearGeom,
    dy: &[f32],
    x: &[f32],
    weight: &[f32],
    dx: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
) -> Result<()> {
    let (ni, no) = (g.in_features, g.out_features);
    check_len("linear_backward: dy (N, OUT)", dy.len(), &[g.n, no])?;
    check_len("linear_backward: x (N, IN)", x.len(), &[g.n, ni])?;
    check_len("linear_backward: weight (OUT, IN)", weight.len(), &[no, ni])?;
    check_len("linear_backward: dx (N, IN)", dx.len(), &[g.n, ni])?;
    check_len(
        "linear_backward: dweight (OUT, IN)",
        dweight.len(),
        &[no, ni],
    )?;
    check_len("linear_backward: dbias (OUT)", dbias.len(), &[no])?;
    for n in 0..g.n {
        for i in 0..ni {
            let mut acc = 0.0f64;
            for o in 0..no {
                acc += dy[n * no + o] as f64 * weight[o * ni + i] as f64;
            }
            dx[n * ni + i] = acc as f32;
        }
    }
    for o in 0..no {
        for i in 0..ni {
            let mut acc = 0.0f64;
            for n in 0..g.n {
                acc += dy[n * no + o] as f64 * x[n * ni + i] as f64;
            }
            dweight[o * ni + i] = acc as f32;
        }
        let mut acc = 0.0f64;
        for n in 0..g.n {
            acc += dy[n * no + o] as f64;
        }
        dbias[o] = acc as f32;
    }
    Ok(())
}

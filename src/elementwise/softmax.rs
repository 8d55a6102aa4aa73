//! Softmax over the features of each example, and softmax fused with cross-entropy.
//!
//! Shapes: `x`, `y`, `probs`, `dlogits`: `(N, K)`; `labels (N)`; `losses (N)`.
//! For a `(N, C, H, W)` input, `K = C*H*W` (ONNX's opset < 13 Softmax with axis 1).
//!
//! Softmax forward (stable): `m = max_k x_k`, `y_k = exp(x_k - m) / sum_j exp(x_j - m)`.
//! Softmax backward (Jacobian-vector product, `dy_k/dx_j = y_k (delta_kj - y_j)`):
//!   `dx_j = y_j * (dout_j - sum_k dout_k y_k)`.
//!
//! Cross-entropy with integer labels, on logits `z`:
//!   `loss_n = -log softmax(z_n)[label_n] = logsumexp(z_n) - z_n[label_n]`,
//!   `mean = (1/N) sum_n loss_n`;
//!   gradient of the mean: `dz[n,k] = (probs[n,k] - [k == label_n]) / N`.
//! Sums are in f64 (cheap here, and the loss is compared across platforms).

use crate::error::{Error, Result};
use crate::tensor::check_len;
use crate::tensor::Tensor;

/// Row-wise softmax of `x (N, K)` into `y (N, K)`.
pub fn softmax_forward(n: usize, k: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_len("softmax_forward: x (N, K)", x.len(), &[n, k])?;
    check_len("softmax_forward: y (N, K)", y.len(), &[n, k])?;
    for r in 0..n {
        let xr = &x[r * k..(r + 1) * k];
        let yr = &mut y[r * k..(r + 1) * k];
        let m = xr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0f64;
        for (yv, &xv) in yr.iter_mut().zip(xr) {
            let e = ((xv - m) as f64).exp();
            *yv = e as f32;
            sum += e;
        }
        for (yv, &xv) in yr.iter_mut().zip(xr) {
            *yv = (((xv - m) as f64).exp() / sum) as f32;
        }
    }
    Ok(())
}

/// Softmax backward: `dx = y * (dout - <dout, y>)` row by row; `y` is the forward output.
pub fn softmax_backward(n: usize, k: usize, dout: &[f32], y: &[f32], dx: &mut [f32]) -> Result<()> {
    check_len("softmax_backward: dout (N, K)", dout.len(), &[n, k])?;
    check_len("softmax_backward: y (N, K)", y.len(), &[n, k])?;
    check_len("softmax_backward: dx (N, K)", dx.len(), &[n, k])?;
    for r in 0..n {
        let s = r * k..(r + 1) * k;
        let dot: f64 = dout[s.clone()]
            .iter()
            .zip(&y[s.clone()])
            .map(|(&d, &p)| d as f64 * p as f64)
            .sum();
        for j in s {
            dx[j] = (y[j] as f64 * (dout[j] as f64 - dot)) as f32;
        }
    }
    Ok(())
}

fn check_labels(k: usize, labels: &[usize]) -> Result<()> {
    if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l >= k) {
        return Err(Error::Label {
            label: l,
            index: i,
            classes: k,
        });
    }
    Ok(())
}

/// Fused softmax + cross-entropy forward on `logits (N, K)`: writes `probs (N, K)` and the
/// per-example `losses (N)`, returns the mean loss.
pub fn softmax_xent_forward(
    n: usize,
    k: usize,
    logits: &[f32],
    labels: &[usize],
    probs: &mut [f32],
    losses: &mut [f32],
) -> Result<f32> {
    check_len("softmax_xent_forward: logits (N, K)", logits.len(), &[n, k])?;
    check_len("softmax_xent_forward: labels (N)", labels.len(), &[n])?;
    check_len("softmax_xent_forward: probs (N, K)", probs.len(), &[n, k])?;
    check_len("softmax_xent_forward: losses (N)", losses.len(), &[n])?;
    check_labels(k, labels)?;
    if n == 0 {
        return Ok(0.0);
    }
    let mut total = 0.0f64;
    for r in 0..n {
        let zr = &logits[r * k..(r + 1) * k];
        let m = zr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
        let sum: f64 = zr.iter().map(|&z| (z as f64 - m).exp()).sum();
        let lse = m + sum.ln();
        for (pv, &z) in probs[r * k..(r + 1) * k].iter_mut().zip(zr) {
            *pv = ((z as f64 - m).exp() / sum) as f32;
        }
        let loss = lse - zr[labels[r]] as f64;
        losses[r] = loss as f32;
        total += loss;
    }
    Ok((total / n as f64) as f32)
}

/// Gradient of the mean cross-entropy: `dlogits = (probs - onehot(labels)) / N`.
pub fn softmax_xent_backward(
    n: usize,
    k: usize,
    probs: &[f32],
    labels: &[usize],
    dlogits: &mut [f32],
) -> Result<()> {
    check_len("softmax_xent_backward: probs (N, K)", probs.len(), &[n, k])?;
    check_len("softmax_xent_backward: labels (N)", labels.len(), &[n])?;
    check_len(
        "softmax_xent_backward: dlogits (N, K)",
        dlogits.len(),
        &[n, k],
    )?;
    check_labels(k, labels)?;
    let inv_n = 1.0 / n as f32;
    for r in 0..n {
        for j in 0..k {
            let onehot = if j == labels[r] { 1.0 } else { 0.0 };
            dlogits[r * k + j] = (probs[r * k + j] - onehot) * inv_n;
        }
    }
    Ok(())
}

/// The mean softmax cross-entropy of `(N, K)` logits for `labels`, and its gradient
/// `dL/dlogits = (softmax - onehot) / N`, `(N, K)`.
pub fn softmax_xent(logits: &Tensor, labels: &[usize]) -> Result<(f32, Tensor)> {
    let (n, k) = match logits.shape.as_slice() {
        [n, k] => (*n, *k),
        s => {
            return Err(Error::Shape {
                what: "loss: the logits (N, K)".into(),
                expected: vec![s.first().copied().unwrap_or(0), 0],
                got: s.to_vec(),
            })
        }
    };
    let mut probs = vec![0.0; n * k];
    let mut losses = vec![0.0; n];
    let loss = softmax_xent_forward(n, k, &logits.data, labels, &mut probs, &mut losses)?;
    let mut dlogits = Tensor::zeros(&[n, k]);
    softmax_xent_backward(n, k, &probs, labels, &mut dlogits.data)?;
    Ok((loss, dlogits))
}

//! Max pooling and adaptive average pooling, plane by plane (`(H, W)` -> `(OH, OW)` for
//! each of the `N*C` planes), planes split across threads natively.
//! Definitions (windows, clipping, ceil mode, adaptive ranges) are `cpu::pool`'s; the window
//! bounds come from the same `PoolGeom::rows` / `cols` and `shape::adaptive_range`. Max pool
//! saves no argmax here (inference only); the maximum itself is the same value the
//! reference picks, so results are bit-identical. Average pool sums in the same order as
//! the reference, so it is bit-identical too.

use super::{par_planes, Workspace};
use crate::cpu::{AvgPoolGeom, PoolGeom};
use crate::error::{Error, Result};
use crate::shape::adaptive_range;

fn check(what: &str, inp: usize, out: usize, want_in: usize, want_out: usize) -> Result<()> {
    if inp != want_in || out != want_out {
        return Err(Error::Other(format!(
            "fast {what}: inp {inp} / out {out} values, needs {want_in} / {want_out}"
        )));
    }
    Ok(())
}

/// Max pool forward on `inp (N, C, H, W)` into `out (N, C, OH, OW)`.
pub fn maxpool_forward(ws: &Workspace, g: &PoolGeom, inp: &[f32], out: &mut [f32]) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    check(
        "maxpool_forward",
        inp.len(),
        out.len(),
        g.n * g.c * pin,
        g.n * g.c * pout,
    )?;
    let rows: Vec<_> = (0..g.oh).map(|oh| g.rows(oh)).collect();
    let cols: Vec<_> = (0..g.ow).map(|ow| g.cols(ow)).collect();
    if rows.iter().chain(&cols).any(|(a, b)| a >= b) {
        return Err(Error::Other(
            "fast maxpool_forward: a window is empty".into(),
        ));
    }
    par_planes(ws.threads, inp, pin, out, pout, |x, y| {
        for (oh, &(h0, h1)) in rows.iter().enumerate() {
            for (ow, &(w0, w1)) in cols.iter().enumerate() {
                let mut best = x[h0 * g.w + w0];
                for h in h0..h1 {
                    for &v in &x[h * g.w + w0..h * g.w + w1] {
                        if v > best {
                            best = v;
                        }
                    }
                }
                y[oh * g.ow + ow] = best;
            }
        }
    });
    Ok(())
}

/// Adaptive average pool forward on `inp (N, C, H, W)` into `out (N, C, OH, OW)`.
pub fn adaptive_avgpool_forward(
    ws: &Workspace,
    g: &AvgPoolGeom,
    inp: &[f32],
    out: &mut [f32],
) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    check(
        "adaptive_avgpool_forward",
        inp.len(),
        out.len(),
        g.n * g.c * pin,
        g.n * g.c * pout,
    )?;
    par_planes(ws.threads, inp, pin, out, pout, |x, y| {
        for oh in 0..g.oh {
            let (h0, h1) = adaptive_range(oh, g.h, g.oh);
            for ow in 0..g.ow {
                let (w0, w1) = adaptive_range(ow, g.w, g.ow);
                let mut sum = 0.0f32;
                for h in h0..h1 {
                    for &v in &x[h * g.w + w0..h * g.w + w1] {
                        sum += v;
                    }
                }
                y[oh * g.ow + ow] = sum / ((h1 - h0) * (w1 - w0)) as f32;
            }
        }
    });
    Ok(())
}

/// Row-wise softmax of `x (N, K)` into `y (N, K)`: `y = exp(x - max) / sum exp(x - max)`,
/// the sum in f64 as the reference does (K is at most a few thousand: negligible cost).
pub fn softmax_forward(n: usize, k: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check("softmax_forward", x.len(), y.len(), n * k, n * k)?;
    for (xr, yr) in x.chunks_exact(k.max(1)).zip(y.chunks_exact_mut(k.max(1))) {
        let m = xr.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        let mut sum = 0.0f64;
        for (yv, &xv) in yr.iter_mut().zip(xr) {
            let e = (xv - m).exp();
            *yv = e;
            sum += e as f64;
        }
        let inv = (1.0 / sum) as f32;
        for yv in yr.iter_mut() {
            *yv *= inv;
        }
    }
    Ok(())
}

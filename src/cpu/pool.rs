//! Max pooling and adaptive average pooling, plane by plane (`(H, W)` -> `(OH, OW)` for
//! each of the `N*C` planes), planes split across threads natively.
//! Definitions (windows, clipping, ceil mode, adaptive ranges) are `reference::pool`'s; the window
//! bounds come from the same `PoolGeom::rows` / `cols` and `AvgPoolGeom::regions`. Max pool
//! saves no argmax here (inference only); the maximum itself is the same value the
//! reference picks, so results are bit-identical. Average pool sums in the same order as
//! the reference, so it is bit-identical too.
//!
//! Training: `maxpool_forward_train` saves the argmax as `reference::maxpool_forward` does (flat
//! index into the whole `inp`, the window scanned in row-major order from its first
//! element, a later element winning only if strictly greater), then gathers `out` from it.
//! Backward passes are scatters, plane by plane (no plane reads another's gradient):
//! max pool adds `dout[o]` at `argmax[o]`, average pool adds `dout[o] / |R(o)|` over
//! `R(o)`. Each input element receives its terms in ascending output order starting from
//! zero, the order of the reference's gathers, so both are bit-identical to it.

use super::{par_planes, par_units, Workspace};
use crate::error::{Error, Result};
use crate::model::{AvgPoolGeom, PoolGeom};
use crate::tensor::check_lens;

/// Max pool forward on `inp (N, C, H, W)` into `out (N, C, OH, OW)`.
pub fn maxpool_forward(ws: &Workspace, g: &PoolGeom, inp: &[f32], out: &mut [f32]) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    check_lens(
        "fast maxpool_forward",
        &[
            ("inp (N, C, H, W)", inp.len(), g.n * g.c * pin),
            ("out (N, C, OH, OW)", out.len(), g.n * g.c * pout),
        ],
    )?;
    let (rows, cols) = windows(g, "maxpool_forward")?;
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

/// Each output row's `[h0, h1)` and column's `[w0, w1)` input window; an empty one (a
/// geometry `PoolGeom` should have refused) is an error.
type Windows = (Vec<(usize, usize)>, Vec<(usize, usize)>);
fn windows(g: &PoolGeom, func: &str) -> Result<Windows> {
    let rows: Vec<_> = (0..g.oh).map(|oh| g.rows(oh)).collect();
    let cols: Vec<_> = (0..g.ow).map(|ow| g.cols(ow)).collect();
    if rows.iter().chain(&cols).any(|(a, b)| a >= b) {
        return Err(Error::Internal(format!("fast {func}: a window is empty")));
    }
    Ok((rows, cols))
}

/// Whether a plane-by-plane pass over `len` input floats is worth threads.
fn worth_threads(len: usize) -> bool {
    len >= 1 << 16
}

/// Training-mode max pool on `inp (N, C, H, W)`: `out (N, C, OH, OW)` and `argmax
/// (N, C, OH, OW)`, the flat index into `inp` of each output's maximum (tie rule in the
/// module doc).
pub fn maxpool_forward_train(
    ws: &Workspace,
    g: &PoolGeom,
    inp: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    let func = "maxpool_forward_train";
    check_lens(
        "fast maxpool_forward_train",
        &[
            ("inp (N, C, H, W)", inp.len(), g.n * g.c * pin),
            ("out (N, C, OH, OW)", out.len(), g.n * g.c * pout),
            ("argmax (N, C, OH, OW)", argmax.len(), g.n * g.c * pout),
        ],
    )?;
    if inp.len() > u32::MAX as usize {
        return Err(Error::TooLarge(format!("fast {func}'s input")));
    }
    let (rows, cols) = windows(g, func)?;
    if pout == 0 {
        return Ok(());
    }
    par_units(
        ws.threads,
        argmax,
        pout,
        worth_threads(inp.len()),
        |first, run| {
            for (j, am) in run.chunks_exact_mut(pout).enumerate() {
                let base = (first + j) * pin;
                let x = &inp[base..base + pin];
                for (oh, &(h0, h1)) in rows.iter().enumerate() {
                    for (ow, &(w0, w1)) in cols.iter().enumerate() {
                        let mut best_i = h0 * g.w + w0;
                        let mut best = x[best_i];
                        for h in h0..h1 {
                            for (i, &v) in x[h * g.w + w0..h * g.w + w1].iter().enumerate() {
                                if v > best {
                                    best = v;
                                    best_i = h * g.w + w0 + i;
                                }
                            }
                        }
                        // fits: inp.len() <= u32::MAX was checked above
                        am[oh * g.ow + ow] = (base + best_i) as u32;
                    }
                }
            }
        },
    );
    for (y, &i) in out.iter_mut().zip(argmax.iter()) {
        *y = inp[i as usize];
    }
    Ok(())
}

/// Max pool backward: `dinp (N, C, H, W)` (overwritten) gets each `dout (N, C, OH, OW)`
/// added at its saved `argmax (N, C, OH, OW)`. An argmax outside its output's window (a
/// corrupt trace) is an error.
pub fn maxpool_backward(
    ws: &Workspace,
    g: &PoolGeom,
    dout: &[f32],
    argmax: &[u32],
    dinp: &mut [f32],
) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    let func = "maxpool_backward";
    check_lens(
        "fast maxpool_backward",
        &[
            ("dinp (N, C, H, W)", dinp.len(), g.n * g.c * pin),
            ("dout (N, C, OH, OW)", dout.len(), g.n * g.c * pout),
            ("argmax (N, C, OH, OW)", argmax.len(), g.n * g.c * pout),
        ],
    )?;
    if pin == 0 {
        return Ok(());
    }
    // Validated up front so the scatter below cannot write out of its plane.
    for (o, &i) in argmax.iter().enumerate() {
        let (nc, rest) = (o / pout.max(1), o % pout.max(1));
        let (oh, ow) = (rest / g.ow, rest % g.ow);
        let i = i as usize;
        let (h, w) = ((i % pin) / g.w, i % g.w);
        let ((h0, h1), (w0, w1)) = (g.rows(oh), g.cols(ow));
        if i / pin != nc || !(h0..h1).contains(&h) || !(w0..w1).contains(&w) {
            return Err(Error::Internal(format!(
                "fast {func}: argmax {i} of output {o} is outside its window"
            )));
        }
    }
    par_units(
        ws.threads,
        dinp,
        pin,
        worth_threads(dinp.len()),
        |first, run| {
            run.fill(0.0);
            let base = first * pin;
            let outs = first * pout..(first * pout + run.len() / pin * pout);
            for (&i, &d) in argmax[outs.clone()].iter().zip(&dout[outs]) {
                run[i as usize - base] += d;
            }
        },
    );
    Ok(())
}

/// Adaptive average pool backward: `dinp (N, C, H, W)` (overwritten) gets
/// `dout[o] / |R(o)|` added over each output's region `R(o)`; `dout (N, C, OH, OW)`.
pub fn adaptive_avgpool_backward(
    ws: &Workspace,
    g: &AvgPoolGeom,
    dout: &[f32],
    dinp: &mut [f32],
) -> Result<()> {
    let (pin, pout) = (g.h * g.w, g.oh * g.ow);
    check_lens(
        "fast adaptive_avgpool_backward",
        &[
            ("dout (N, C, OH, OW)", dout.len(), g.n * g.c * pout),
            ("dinp (N, C, H, W)", dinp.len(), g.n * g.c * pin),
        ],
    )?;
    par_units(
        ws.threads,
        dinp,
        pin,
        worth_threads(dinp.len()),
        |first, run| {
            for (j, dx) in run.chunks_exact_mut(pin).enumerate() {
                let dy = &dout[(first + j) * pout..(first + j + 1) * pout];
                dx.fill(0.0);
                for (o, rows, cols) in g.regions() {
                    let v = dy[o] / (rows.len() * cols.len()) as f32;
                    for h in rows {
                        for d in &mut dx[h * g.w + cols.start..h * g.w + cols.end] {
                            *d += v;
                        }
                    }
                }
            }
        },
    );
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
    check_lens(
        "fast adaptive_avgpool_forward",
        &[
            ("inp (N, C, H, W)", inp.len(), g.n * g.c * pin),
            ("out (N, C, OH, OW)", out.len(), g.n * g.c * pout),
        ],
    )?;
    par_planes(ws.threads, inp, pin, out, pout, |x, y| {
        for (o, rows, cols) in g.regions() {
            let area = (rows.len() * cols.len()) as f32;
            let mut sum = 0.0f32;
            for h in rows {
                for &v in &x[h * g.w + cols.start..h * g.w + cols.end] {
                    sum += v;
                }
            }
            y[o] = sum / area;
        }
    });
    Ok(())
}

/// Row-wise softmax of `x (N, K)` into `y (N, K)`: `y = exp(x - max) / sum exp(x - max)`,
/// the sum in f64 as the reference does (K is at most a few thousand: negligible cost).
pub fn softmax_forward(n: usize, k: usize, x: &[f32], y: &mut [f32]) -> Result<()> {
    check_lens(
        "fast softmax_forward",
        &[("x (N, K)", x.len(), n * k), ("y (N, K)", y.len(), n * k)],
    )?;
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

//! Max pooling (with padding and floor/ceil rounding) and adaptive average pooling.
//!
//! # Max pool
//! Shapes: `inp (N, C, H, W)`, `out` and `argmax (N, C, OH, OW)`, `OH = shape::pool_out(..)`.
//! Window of output `(oh, ow)` in input coordinates: rows
//! `oh*SH - pad_top .. oh*SH - pad_top + KH`, clipped to `0..H` (likewise columns). Padding
//! acts as `-inf`, so clipping the window is the same as reading it; a ceil-mode window that
//! hangs over the end is clipped the same way. No window is empty (`shape::pool_out` never
//! starts a window in the trailing pad and the pads are smaller than the kernel).
//!
//! Forward: `out = max over the clipped window`, `argmax = flat index into inp`
//! (`((n*C + c)*H + h)*W + w`, as u32, the way a GPU kernel stores it). The running max
//! starts at the window's first element; a later element wins only if strictly greater,
//! so ties go to the first element in row-major order (no magic "-99999" start value).
//!
//! Backward: `dinp[i] = sum_{outputs o whose window contains i and argmax[o] = i} dout[o]`,
//! written as a gather over the outputs whose window can contain `i`: for row `h`,
//! `oh*SH - pad_top <= h < oh*SH - pad_top + KH`, i.e.
//! `ceil((h + pad_top + 1 - KH) / SH) <= oh <= floor((h + pad_top) / SH)`.
//!
//! # Adaptive average pool (PyTorch's `AdaptiveAvgPool2d`)
//! Shapes: `inp (N, C, H, W)`, `out (N, C, OH, OW)`. Output `(oh, ow)` averages rows
//! `shape::adaptive_range(oh, H, OH)` x columns `shape::adaptive_range(ow, W, OW)`; windows
//! overlap when `H` is not a multiple of `OH` (13 -> 6).
//! Forward: `out[o] = (1 / |R(o)|) sum_{i in R(o)} inp[i]`.
//! Backward: `dinp[i] = sum_{o : i in R(o)} dout[o] / |R(o)|` (a gather over all outputs).

use crate::error::{Error, Result};
use crate::model::{AvgPoolGeom, PoolGeom};
use crate::tensor::check_len;

/// Max pool forward; saves the flat input index of each maximum in `argmax`.
pub fn maxpool_forward(
    g: &PoolGeom,
    inp: &[f32],
    out: &mut [f32],
    argmax: &mut [u32],
) -> Result<()> {
    check_len(
        "maxpool_forward: inp (N, C, H, W)",
        inp.len(),
        &g.inp_shape(),
    )?;
    check_len(
        "maxpool_forward: out (N, C, OH, OW)",
        out.len(),
        &g.out_shape(),
    )?;
    check_len(
        "maxpool_forward: argmax (N, C, OH, OW)",
        argmax.len(),
        &g.out_shape(),
    )?;
    if inp.len() > u32::MAX as usize {
        return Err(Error::TooLarge("maxpool_forward's input".into()));
    }
    for nc in 0..g.n * g.c {
        for oh in 0..g.oh {
            let (h0, h1) = g.rows(oh);
            for ow in 0..g.ow {
                let (w0, w1) = g.cols(ow);
                if h0 >= h1 || w0 >= w1 {
                    return Err(Error::Internal(format!(
                        "maxpool_forward: output ({oh}, {ow}) has an empty window"
                    )));
                }
                let mut best_i = (nc * g.h + h0) * g.w + w0;
                let mut best = inp[best_i];
                for h in h0..h1 {
                    for w in w0..w1 {
                        let i = (nc * g.h + h) * g.w + w;
                        if inp[i] > best {
                            best = inp[i];
                            best_i = i;
                        }
                    }
                }
                let o = (nc * g.oh + oh) * g.ow + ow;
                out[o] = best;
                argmax[o] = best_i as u32;
            }
        }
    }
    Ok(())
}

/// Max pool backward: routes each `dout` to its argmax, as a gather per input element.
pub fn maxpool_backward(
    g: &PoolGeom,
    dout: &[f32],
    argmax: &[u32],
    dinp: &mut [f32],
) -> Result<()> {
    check_len(
        "maxpool_backward: dout (N, C, OH, OW)",
        dout.len(),
        &g.out_shape(),
    )?;
    check_len(
        "maxpool_backward: argmax (N, C, OH, OW)",
        argmax.len(),
        &g.out_shape(),
    )?;
    check_len(
        "maxpool_backward: dinp (N, C, H, W)",
        dinp.len(),
        &g.inp_shape(),
    )?;
    // Output rows whose window contains input row `h`: ceil((h+pad+1-k)/s) ..= (h+pad)/s.
    let range = |x: usize, pad: usize, k: usize, s: usize, outs: usize| -> (usize, usize) {
        let t = x + pad;
        let lo = if t + 1 >= k {
            (t + 1 - k).div_ceil(s)
        } else {
            0
        };
        let hi = (t / s + 1).min(outs);
        (lo, hi.max(lo))
    };
    for nc in 0..g.n * g.c {
        for h in 0..g.h {
            let (oh0, oh1) = range(h, g.pad_top, g.kh, g.sh, g.oh);
            for w in 0..g.w {
                let (ow0, ow1) = range(w, g.pad_left, g.kw, g.sw, g.ow);
                let i = (nc * g.h + h) * g.w + w;
                let mut acc = 0.0f32;
                for oh in oh0..oh1 {
                    for ow in ow0..ow1 {
                        let o = (nc * g.oh + oh) * g.ow + ow;
                        if argmax[o] as usize == i {
                            acc += dout[o];
                        }
                    }
                }
                dinp[i] = acc;
            }
        }
    }
    Ok(())
}

/// Adaptive average pool forward (f32 sums, row-major order).
pub fn adaptive_avgpool_forward(g: &AvgPoolGeom, inp: &[f32], out: &mut [f32]) -> Result<()> {
    check_len(
        "adaptive_avgpool_forward: inp (N, C, H, W)",
        inp.len(),
        &g.inp_shape(),
    )?;
    check_len(
        "adaptive_avgpool_forward: out (N, C, OH, OW)",
        out.len(),
        &g.out_shape(),
    )?;
    for nc in 0..g.n * g.c {
        for (o, rows, cols) in g.regions() {
            let area = (rows.len() * cols.len()) as f32;
            let mut sum = 0.0f32;
            for h in rows {
                for w in cols.clone() {
                    sum += inp[(nc * g.h + h) * g.w + w];
                }
            }
            out[nc * g.oh * g.ow + o] = sum / area;
        }
    }
    Ok(())
}

/// Adaptive average pool backward, a gather over the outputs whose region holds each input.
pub fn adaptive_avgpool_backward(g: &AvgPoolGeom, dout: &[f32], dinp: &mut [f32]) -> Result<()> {
    check_len(
        "adaptive_avgpool_backward: dout (N, C, OH, OW)",
        dout.len(),
        &g.out_shape(),
    )?;
    check_len(
        "adaptive_avgpool_backward: dinp (N, C, H, W)",
        dinp.len(),
        &g.inp_shape(),
    )?;
    for nc in 0..g.n * g.c {
        for h in 0..g.h {
            for w in 0..g.w {
                let mut acc = 0.0f32;
                for (o, rows, cols) in g.regions() {
                    if rows.contains(&h) && cols.contains(&w) {
                        let count = (rows.len() * cols.len()) as f32;
                        acc += dout[nc * g.oh * g.ow + o] / count;
                    }
                }
                dinp[(nc * g.h + h) * g.w + w] = acc;
            }
        }
    }
    Ok(())
}

//! Convolution as im2col + GEMM, one GEMM per (image, group) on that group's slices.
//!
//! Shapes as in `cpu::conv`: `inp (N, C_in, H, W)`, `weight (C_out, C_in/G, KH, KW)`,
//! `bias (C_out)`, `out (N, C_out, OH, OW)`. With `K = C_in/G * KH * KW` and `P = OH * OW`,
//! for image `n` and group `g`:
//!   `col (K, P)`: `col[(c*KH + kh)*KW + kw, oh*OW + ow] = inp[n, g*C_in/G + c, oh*SH + kh - pad_top, ow*SW + kw - pad_left]`
//!   (zero where that lands in the padding), then
//!   `out[n, g*C_out/G .. , :] (C_out/G, P) = weight[g*C_out/G .., :] (C_out/G, K) · col (K, P)`,
//! written straight into the output's rows of that group (no split or concat copies), then
//! `+ bias` (and ReLU when fused) in one pass over those rows.
//! A 1x1, stride-1, unpadded convolution uses the input as `col` directly.
//!
//! Threads (native): with `N >= 2` each thread takes a run of images with its own `col`
//! buffer; with `N = 1` the GEMM itself is split (see `gemm`).

use super::gemm::{gemm, Mat};
use super::Workspace;
use crate::cpu::ConvGeom;
use crate::error::{Error, Result};
use std::thread;

/// Floats of one `col (K, P)` buffer for `g`.
pub(crate) fn col_len(g: &ConvGeom) -> usize {
    g.cin_g() * g.kh * g.kw * g.oh * g.ow
}

fn is_direct(g: &ConvGeom) -> bool {
    g.kh == 1
        && g.kw == 1
        && g.sh == 1
        && g.sw == 1
        && g.pads.top + g.pads.left + g.pads.bottom + g.pads.right == 0
}

/// Output positions `o` in `0..outs` whose tap `k` lands inside `0..len` along one axis:
/// `0 <= o*s + k - pad < len`.
fn valid_outs(k: usize, s: usize, pad: usize, len: usize, outs: usize) -> (usize, usize) {
    let lo = pad.saturating_sub(k).div_ceil(s);
    let hi = (len + pad).saturating_sub(k).div_ceil(s);
    let hi = hi.min(outs);
    (lo.min(hi), hi)
}

/// `col (K, P)` of one group's input `x (C_in/G, H, W)` (formula in the module doc).
fn im2col(g: &ConvGeom, x: &[f32], col: &mut [f32]) {
    let p = g.oh * g.ow;
    let (pt, pl) = (g.pads.top, g.pads.left);
    for c in 0..g.cin_g() {
        let plane = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for kh in 0..g.kh {
            let (oh0, oh1) = valid_outs(kh, g.sh, pt, g.h, g.oh);
            for kw in 0..g.kw {
                let (ow0, ow1) = valid_outs(kw, g.sw, pl, g.w, g.ow);
                let r = (c * g.kh + kh) * g.kw + kw;
                let row = &mut col[r * p..(r + 1) * p];
                row[..oh0 * g.ow].fill(0.0);
                row[oh1 * g.ow..].fill(0.0);
                for oh in oh0..oh1 {
                    let ih = oh * g.sh + kh - pt;
                    let src = &plane[ih * g.w..(ih + 1) * g.w];
                    let dst = &mut row[oh * g.ow..(oh + 1) * g.ow];
                    dst[..ow0].fill(0.0);
                    dst[ow1..].fill(0.0);
                    if ow0 < ow1 {
                        let iw0 = ow0 * g.sw + kw - pl;
                        if g.sw == 1 {
                            dst[ow0..ow1].copy_from_slice(&src[iw0..iw0 + (ow1 - ow0)]);
                        } else {
                            for (d, s) in dst[ow0..ow1]
                                .iter_mut()
                                .zip(src[iw0..].iter().step_by(g.sw))
                            {
                                *d = *s;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `rows (R, P) += bias[r]`, then ReLU if `relu`.
pub(crate) fn bias_relu(rows: &mut [f32], p: usize, bias: &[f32], relu: bool) {
    for (row, &b) in rows.chunks_exact_mut(p.max(1)).zip(bias) {
        if relu {
            for v in row {
                *v = (*v + b).max(0.0);
            }
        } else {
            for v in row {
                *v += b;
            }
        }
    }
}

/// One image: `inp (C_in, H, W)` -> `out (C_out, OH, OW)`; `col` holds at least `col_len`.
#[allow(clippy::too_many_arguments)]
fn conv_image(
    g: &ConvGeom,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32],
    col: &mut [f32],
    relu: bool,
    threads: usize,
) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (k, p) = (cin_g * g.kh * g.kw, g.oh * g.ow);
    let direct = is_direct(g);
    for grp in 0..g.groups {
        let x = &inp[grp * cin_g * g.h * g.w..(grp + 1) * cin_g * g.h * g.w];
        let b: &[f32] = if direct {
            x
        } else {
            im2col(g, x, &mut col[..k * p]);
            &col[..k * p]
        };
        let a = &weight[grp * cout_g * k..(grp + 1) * cout_g * k];
        let c = &mut out[grp * cout_g * p..(grp + 1) * cout_g * p];
        gemm(
            threads,
            cout_g,
            k,
            p,
            Mat {
                data: a,
                rs: k,
                cs: 1,
            },
            Mat {
                data: b,
                rs: p,
                cs: 1,
            },
            c,
            p,
            1,
        );
        bias_relu(c, p, &bias[grp * cout_g..(grp + 1) * cout_g], relu);
    }
}

fn check(what: &str, len: usize, want: usize) -> Result<()> {
    if len != want {
        return Err(Error::Other(format!(
            "fast conv2d_forward: {what} has {len} values, needs {want}"
        )));
    }
    Ok(())
}

/// `out = conv(inp, weight) + bias` (then ReLU if `relu`). Shapes in the module doc.
pub fn conv2d_forward(
    ws: &mut Workspace,
    g: &ConvGeom,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32],
    relu: bool,
) -> Result<()> {
    if g.groups == 0
        || !g.c_in.is_multiple_of(g.groups)
        || !g.c_out.is_multiple_of(g.groups)
        || g.sh == 0
        || g.sw == 0
    {
        return Err(Error::Arch(format!(
            "fast conv: groups {} must divide {} and {} channels, strides must be >= 1",
            g.groups, g.c_in, g.c_out
        )));
    }
    let img_in = g.c_in * g.h * g.w;
    let img_out = g.c_out * g.oh * g.ow;
    check("inp (N, C_in, H, W)", inp.len(), g.n * img_in)?;
    check(
        "weight (C_out, C_in/G, KH, KW)",
        weight.len(),
        g.weight_shape().iter().product(),
    )?;
    check("bias (C_out)", bias.len(), g.c_out)?;
    check("out (N, C_out, OH, OW)", out.len(), g.n * img_out)?;
    if g.n == 0 || img_out == 0 {
        return Ok(());
    }
    let need = if is_direct(g) { 0 } else { col_len(g) };
    let threads = ws.threads;
    if threads > 1 && g.n >= 2 {
        // Images split across threads, one col buffer each; the GEMMs run single-threaded.
        let nt = threads.min(g.n);
        let per = g.n.div_ceil(nt);
        let cols = ws.cols(g.n.div_ceil(per), need);
        thread::scope(|s| {
            for (t, (outs, col)) in out
                .chunks_mut(per * img_out)
                .zip(cols.iter_mut())
                .enumerate()
            {
                let n0 = t * per;
                s.spawn(move || {
                    for (j, o) in outs.chunks_mut(img_out).enumerate() {
                        let x = &inp[(n0 + j) * img_in..(n0 + j + 1) * img_in];
                        conv_image(g, x, weight, bias, o, col, relu, 1);
                    }
                });
            }
        });
    } else {
        let col = &mut ws.cols(1, need)[0];
        for (x, o) in inp.chunks_exact(img_in).zip(out.chunks_exact_mut(img_out)) {
            conv_image(g, x, weight, bias, o, col, relu, threads);
        }
    }
    Ok(())
}

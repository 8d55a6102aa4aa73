//! Convolution as im2col + GEMM, one GEMM per (image, group) on that group's slices.
//!
//! Shapes as in `reference::conv`: `inp (N, C_in, H, W)`, `weight (C_out, C_in/G, KH, KW)`,
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
//!
//! # Backward
//! Given `dout (N, C_out, OH, OW)`, per (image, group), with `dY = dout[n, g*C_out/G ..]`
//! viewed as `(C_out/G, P)` and `col` rebuilt from the saved input (im2col is cheaper to
//! redo than to keep: K*P floats per image and group):
//!   `dweight[g] (C_out/G, K) += dY · col^T`   (`col^T` a strided view, summed over images),
//!   `dbias[o] = sum_{n, p} dout[n, o, p]`      (16-lane f32 row sums, added up in f64),
//!   `dcol (K, P) = weight[g]^T · dY`,  `dinp[n, group g] = col2im(dcol)`,
//! where col2im adds each `dcol` entry back onto the input position im2col read it from
//! (padding taps are dropped). `dinp` is optional: the network input's gradient is not
//! needed for training, and for conv1 it is the most expensive of the three products.
//! The 1x1 / stride 1 / unpadded case skips im2col and col2im (`col` is the input).
//! Threads: with `N >= 2` each thread takes a run of images and sums its own
//! `dweight` / `dbias` partials, which are then added in thread order (deterministic for a
//! given thread count); with `N = 1` the GEMMs themselves are split.

use super::gemm::{gemm, sum, Mat, Write};
use super::{opt_chunks, Workspace};
use crate::error::{Error, Result};
use crate::model::ConvGeom;
use crate::tensor::check_lens;
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
            (cout_g, k, p),
            Mat::rows(a, k),
            Mat::rows(b, p),
            c,
            Write::Set,
        );
        bias_relu(c, p, &bias[grp * cout_g..(grp + 1) * cout_g], relu);
    }
}

/// Checks the groups and strides of `g`, and the lengths of `inp (N, C_in, H, W)`,
/// `weight (C_out, C_in/G, KH, KW)`, a `(C_out)` vector and an `(N, C_out, OH, OW)` one:
/// bias and output, or with `d = "d"` their gradients.
fn check_conv(
    func: &str,
    d: &str,
    g: &ConvGeom,
    inp: usize,
    weight: usize,
    bias: usize,
    out: usize,
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
    check_lens(
        &format!("fast {func}"),
        &[
            ("inp (N, C_in, H, W)", inp, g.n * g.c_in * g.h * g.w),
            (
                "weight (C_out, C_in/G, KH, KW)",
                weight,
                g.weight_shape().iter().product(),
            ),
            (&format!("{d}bias (C_out)"), bias, g.c_out),
            (
                &format!("{d}out (N, C_out, OH, OW)"),
                out,
                g.n * g.c_out * g.oh * g.ow,
            ),
        ],
    )
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
    let func = "conv2d_forward";
    check_conv(func, "", g, inp.len(), weight.len(), bias.len(), out.len())?;
    let img_in = g.c_in * g.h * g.w;
    let img_out = g.c_out * g.oh * g.ow;
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

/// `dx (C_in/G, H, W) = col2im(dcol (K, P))`: each `dcol` entry is added onto the input
/// position im2col read it from; entries of padding taps are dropped. `dx` is overwritten.
fn col2im(g: &ConvGeom, dcol: &[f32], dx: &mut [f32]) {
    let p = g.oh * g.ow;
    let (pt, pl) = (g.pads.top, g.pads.left);
    dx.fill(0.0);
    for c in 0..g.cin_g() {
        let plane = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for kh in 0..g.kh {
            let (oh0, oh1) = valid_outs(kh, g.sh, pt, g.h, g.oh);
            for kw in 0..g.kw {
                let (ow0, ow1) = valid_outs(kw, g.sw, pl, g.w, g.ow);
                if ow0 >= ow1 {
                    continue;
                }
                let r = (c * g.kh + kh) * g.kw + kw;
                let row = &dcol[r * p..(r + 1) * p];
                let iw0 = ow0 * g.sw + kw - pl;
                for oh in oh0..oh1 {
                    let ih = oh * g.sh + kh - pt;
                    let src = &row[oh * g.ow + ow0..oh * g.ow + ow1];
                    let dst = &mut plane[ih * g.w + iw0..(ih + 1) * g.w];
                    if g.sw == 1 {
                        for (d, s) in dst.iter_mut().zip(src) {
                            *d += s;
                        }
                    } else {
                        for (d, s) in dst.iter_mut().step_by(g.sw).zip(src) {
                            *d += s;
                        }
                    }
                }
            }
        }
    }
}

/// One image's gradients: `dout (C_out, OH, OW)`, `inp (C_in, H, W)` -> `dinp (C_in, H, W)`
/// (overwritten, when wanted), `dweight (C_out, C_in/G, KH, KW)` and `dbias (C_out)`
/// (added to). `col` and `dcol` hold at least `col_len` floats each.
#[allow(clippy::too_many_arguments)]
fn conv_image_backward(
    g: &ConvGeom,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    mut dinp: Option<&mut [f32]>,
    dweight: &mut [f32],
    dbias: &mut [f64],
    col: &mut [f32],
    dcol: &mut [f32],
    threads: usize,
) {
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (k, p) = (cin_g * g.kh * g.kw, g.oh * g.ow);
    let img_g = cin_g * g.h * g.w;
    let direct = is_direct(g);
    for grp in 0..g.groups {
        let x = &inp[grp * img_g..(grp + 1) * img_g];
        let dy = &dout[grp * cout_g * p..(grp + 1) * cout_g * p];
        let dy_mat = Mat::rows(dy, p);
        let cols: &[f32] = if direct {
            x
        } else {
            im2col(g, x, &mut col[..k * p]);
            &col[..k * p]
        };
        // dweight[g] (C_out/G, K) += dY (C_out/G, P) · col^T (P, K)
        gemm(
            threads,
            (cout_g, p, k),
            dy_mat,
            Mat::transposed(cols, p),
            &mut dweight[grp * cout_g * k..(grp + 1) * cout_g * k],
            Write::Add,
        );
        for (db, row) in dbias[grp * cout_g..(grp + 1) * cout_g]
            .iter_mut()
            .zip(dy.chunks_exact(p.max(1)))
        {
            *db += sum(row) as f64;
        }
        if let Some(dx) = dinp.as_deref_mut() {
            let dx = &mut dx[grp * img_g..(grp + 1) * img_g];
            // dcol (K, P) = weight[g]^T (K, C_out/G) · dY (C_out/G, P); a direct conv's
            // dcol is the input gradient itself.
            let wt = Mat::transposed(&weight[grp * cout_g * k..(grp + 1) * cout_g * k], k);
            if direct {
                gemm(threads, (k, cout_g, p), wt, dy_mat, dx, Write::Set);
            } else {
                gemm(
                    threads,
                    (k, cout_g, p),
                    wt,
                    dy_mat,
                    &mut dcol[..k * p],
                    Write::Set,
                );
                col2im(g, &dcol[..k * p], dx);
            }
        }
    }
}

/// Gradients of `conv2d_forward` (module doc, `# Backward`) from `dout (N, C_out, OH, OW)`
/// and the forward's `inp (N, C_in, H, W)` and `weight (C_out, C_in/G, KH, KW)`: writes
/// (overwrites) `dweight (C_out, C_in/G, KH, KW)`, `dbias (C_out)` and, when given,
/// `dinp (N, C_in, H, W)`. Pass `dinp = None` when nobody needs the input gradient.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    ws: &mut Workspace,
    g: &ConvGeom,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    dinp: Option<&mut [f32]>,
    dweight: &mut [f32],
    dbias: &mut [f32],
) -> Result<()> {
    let func = "conv2d_backward";
    check_conv(
        func,
        "d",
        g,
        inp.len(),
        weight.len(),
        dbias.len(),
        dout.len(),
    )?;
    check_lens(
        "fast conv2d_backward",
        &[
            (
                "dweight (C_out, C_in/G, KH, KW)",
                dweight.len(),
                weight.len(),
            ),
            (
                "dinp (N, C_in, H, W)",
                dinp.as_ref().map_or(inp.len(), |d| d.len()),
                inp.len(),
            ),
        ],
    )?;
    let img_in = g.c_in * g.h * g.w;
    let img_out = g.c_out * g.oh * g.ow;
    dweight.fill(0.0);
    dbias.fill(0.0);
    if g.n == 0 || img_out == 0 || img_in == 0 {
        if let Some(d) = dinp {
            d.fill(0.0);
        }
        return Ok(());
    }
    let need = if is_direct(g) { 0 } else { col_len(g) };
    let threads = ws.threads;
    let mut db = vec![0.0f64; g.c_out];
    if threads > 1 && g.n >= 2 {
        // Images split across threads; each has its own col / dcol and sums its own
        // dweight / dbias partial, added up below in thread order.
        let per = g.n.div_ceil(threads.min(g.n));
        let nt = g.n.div_ceil(per);
        let (cols, partials) = ws.cols_and_partials(2 * nt, need, nt, dweight.len());
        let (cols, dcols) = cols.split_at_mut(nt);
        let mut dbs = vec![vec![0.0f64; g.c_out]; nt];
        thread::scope(|s| {
            for (((((dys, xs), mut dxs), (col, dcol)), dw), db) in dout
                .chunks(per * img_out)
                .zip(inp.chunks(per * img_in))
                .zip(opt_chunks(dinp, per * img_in, nt))
                .zip(cols.iter_mut().zip(dcols.iter_mut()))
                .zip(partials.iter_mut())
                .zip(dbs.iter_mut())
            {
                s.spawn(move || {
                    let dw = &mut dw[..weight.len()];
                    dw.fill(0.0);
                    for (j, (dy, x)) in dys
                        .chunks_exact(img_out)
                        .zip(xs.chunks_exact(img_in))
                        .enumerate()
                    {
                        let dx = dxs
                            .as_deref_mut()
                            .map(|d| &mut d[j * img_in..(j + 1) * img_in]);
                        conv_image_backward(g, dy, x, weight, dx, dw, db, col, dcol, 1);
                    }
                });
            }
        });
        for part in &partials[..nt] {
            for (d, &p) in dweight.iter_mut().zip(part) {
                *d += p;
            }
        }
        for part in &dbs {
            for (d, &p) in db.iter_mut().zip(part) {
                *d += p;
            }
        }
    } else {
        let (col, dcol) = ws.cols(2, need).split_at_mut(1);
        let (col, dcol) = (&mut col[0], &mut dcol[0]);
        let mut dinp = dinp;
        for (j, (dy, x)) in dout
            .chunks_exact(img_out)
            .zip(inp.chunks_exact(img_in))
            .enumerate()
        {
            let dx = dinp
                .as_deref_mut()
                .map(|d| &mut d[j * img_in..(j + 1) * img_in]);
            conv_image_backward(g, dy, x, weight, dx, dweight, &mut db, col, dcol, threads);
        }
    }
    for (d, &v) in dbias.iter_mut().zip(&db) {
        *d = v as f32;
    }
    Ok(())
}

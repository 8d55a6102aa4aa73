//! 2-D convolution with groups, stride and asymmetric padding (cross-correlation, as in every
//! framework).
//!
//! Shapes: `inp (N, C_in, H, W)`, `weight (C_out, C_in/G, KH, KW)`, `bias (C_out)`,
//! `out (N, C_out, OH, OW)` with `OH = floor((H + pad_top + pad_bottom - KH) / SH) + 1`
//! (and likewise OW; see `shape::conv_out`). Group `g` maps input channels
//! `g*C_in/G .. (g+1)*C_in/G` to output channels `g*C_out/G .. (g+1)*C_out/G`.
//! Let `ci(o, c) = group(o) * C_in/G + c` and `ih(oh, kh) = oh*SH + kh - pad_top` (likewise
//! `iw`); coordinates outside `0..H` / `0..W` read zero padding.
//!
//! Forward:
//!   `out[n,o,oh,ow] = bias[o] + sum_{c,kh,kw} weight[o,c,kh,kw] * inp[n, ci(o,c), ih(oh,kh), iw(ow,kw)]`
//!
//! Backward, given `dout = dL/dout`:
//!   `dbias[o]          = sum_{n,oh,ow} dout[n,o,oh,ow]`
//!   `dweight[o,c,kh,kw] = sum_{n,oh,ow} dout[n,o,oh,ow] * inp[n, ci(o,c), ih(oh,kh), iw(ow,kw)]`
//!   `dinp[n,i,h,w]     = sum_{o in group(i), kh, kw} dout[n,o,oh,ow] * weight[o, i - group*C_in/G, kh, kw]`
//!   over the `(oh, ow)` with `oh*SH + kh - pad_top = h` and `ow*SW + kw - pad_left = w`,
//!   i.e. `oh = (h + pad_top - kh) / SH` when that division is exact and `0 <= oh < OH`.
//! All three are gathers: one accumulation per gradient element, no scatter.
//!
//! Accumulation: every dot product is accumulated in **f64** in a fixed loop order and rounded
//! to f32 once, so these results are a better oracle than any f32 GPU kernel.
//! Padded coordinates are computed as `isize` (never unsigned, which would wrap): each loop
//! first clips its range of kernel taps or outputs to the ones that touch the input, so the
//! innermost loops read no padding and need no bounds tests.

use crate::error::Result;
use crate::model::ConvGeom;
use crate::tensor::check_len;

/// `floor(a / b)` for `b > 0`.
fn floor_div(a: isize, b: isize) -> isize {
    a.div_euclid(b)
}

/// `ceil(a / b)` for `b > 0`.
fn ceil_div(a: isize, b: isize) -> isize {
    -(-a).div_euclid(b)
}

/// Clips `[lo, hi)` to `[0, max)` and returns it as usize (empty when `hi <= lo`).
fn clip(lo: isize, hi: isize, max: usize) -> (usize, usize) {
    let lo = lo.max(0);
    let hi = hi.min(max as isize).max(lo);
    (lo as usize, hi as usize)
}

/// Kernel taps `k` that land inside the input for output position `o` along one axis:
/// `0 <= o*s + k - pad < len`  =>  `k in [pad - o*s, len + pad - o*s) ∩ [0, K)`.
fn taps(o: usize, s: usize, pad: usize, kernel: usize, len: usize) -> (usize, usize) {
    let start = (o * s) as isize - pad as isize;
    clip(-start, len as isize - start, kernel)
}

/// Outputs `o` whose tap `k` lands inside the input along one axis:
/// `0 <= o*s + k - pad < len`  =>  `o in [ceil((pad - k)/s), ceil((len + pad - k)/s)) ∩ [0, outs)`.
fn outs_for_tap(k: usize, s: usize, pad: usize, len: usize, outs: usize) -> (usize, usize) {
    let (s, d) = (s as isize, pad as isize - k as isize);
    clip(ceil_div(d, s), ceil_div(len as isize + d, s), outs)
}

/// Outputs `o` that read input position `i` through some tap `k = i + pad - o*s` in `[0, K)`:
/// `o in [ceil((i + pad - K + 1)/s), floor((i + pad)/s) + 1) ∩ [0, outs)`.
fn outs_for_input(i: usize, s: usize, pad: usize, kernel: usize, outs: usize) -> (usize, usize) {
    let (s, t) = (s as isize, (i + pad) as isize);
    clip(
        ceil_div(t - kernel as isize + 1, s),
        floor_div(t, s) + 1,
        outs,
    )
}

/// `out = conv(inp, weight) + bias`. Shapes in the module doc.
pub fn conv2d_forward(
    g: &ConvGeom,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    out: &mut [f32],
) -> Result<()> {
    g.check_groups()?;
    check_len(
        "conv2d_forward: inp (N, C_in, H, W)",
        inp.len(),
        &g.inp_shape(),
    )?;
    check_len(
        "conv2d_forward: weight (C_out, C_in/G, KH, KW)",
        weight.len(),
        &g.weight_shape(),
    )?;
    check_len("conv2d_forward: bias (C_out)", bias.len(), &[g.c_out])?;
    check_len(
        "conv2d_forward: out (N, C_out, OH, OW)",
        out.len(),
        &g.out_shape(),
    )?;
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (pt, pl) = (g.pads.top, g.pads.left);
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for oh in 0..g.oh {
                // taps inside the input; the others read zero padding and are skipped
                let (kh0, kh1) = taps(oh, g.sh, pt, g.kh, g.h);
                for ow in 0..g.ow {
                    let (kw0, kw1) = taps(ow, g.sw, pl, g.kw, g.w);
                    let mut acc = bias[o] as f64;
                    for c in 0..cin_g {
                        let ci = grp * cin_g + c;
                        for kh in kh0..kh1 {
                            let ih = oh * g.sh + kh - pt; // >= 0 because kh >= kh0
                            for kw in kw0..kw1 {
                                let iw = ow * g.sw + kw - pl;
                                let x = inp[((n * g.c_in + ci) * g.h + ih) * g.w + iw];
                                let wt = weight[((o * cin_g + c) * g.kh + kh) * g.kw + kw];
                                acc += x as f64 * wt as f64;
                            }
                        }
                    }
                    out[((n * g.c_out + o) * g.oh + oh) * g.ow + ow] = acc as f32;
                }
            }
        }
    }
    Ok(())
}

/// Gradients of `conv2d_forward`: writes `dinp`, `dweight` and `dbias` (overwritten, not
/// accumulated). `inp` and `weight` are the forward's inputs.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_backward(
    g: &ConvGeom,
    dout: &[f32],
    inp: &[f32],
    weight: &[f32],
    dinp: &mut [f32],
    dweight: &mut [f32],
    dbias: &mut [f32],
) -> Result<()> {
    g.check_groups()?;
    check_len(
        "conv2d_backward: dout (N, C_out, OH, OW)",
        dout.len(),
        &g.out_shape(),
    )?;
    check_len(
        "conv2d_backward: inp (N, C_in, H, W)",
        inp.len(),
        &g.inp_shape(),
    )?;
    check_len(
        "conv2d_backward: weight (C_out, C_in/G, KH, KW)",
        weight.len(),
        &g.weight_shape(),
    )?;
    check_len(
        "conv2d_backward: dinp (N, C_in, H, W)",
        dinp.len(),
        &g.inp_shape(),
    )?;
    check_len(
        "conv2d_backward: dweight (C_out, C_in/G, KH, KW)",
        dweight.len(),
        &g.weight_shape(),
    )?;
    check_len("conv2d_backward: dbias (C_out)", dbias.len(), &[g.c_out])?;
    let (cin_g, cout_g) = (g.cin_g(), g.cout_g());
    let (pt, pl) = (g.pads.top, g.pads.left);
    let dout_at = |n: usize, o: usize, oh: usize, ow: usize| {
        dout[((n * g.c_out + o) * g.oh + oh) * g.ow + ow]
    };

    // dbias[o] = sum over n, oh, ow of dout
    for (o, db) in dbias.iter_mut().enumerate() {
        let mut acc = 0.0f64;
        for n in 0..g.n {
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    acc += dout_at(n, o, oh, ow) as f64;
                }
            }
        }
        *db = acc as f32;
    }

    // dweight[o, c, kh, kw] = sum over n and the (oh, ow) whose tap (kh, kw) is inside the
    // input of dout * the input it multiplied
    for o in 0..g.c_out {
        let grp = o / cout_g;
        for c in 0..cin_g {
            let ci = grp * cin_g + c;
            for kh in 0..g.kh {
                let (oh0, oh1) = outs_for_tap(kh, g.sh, pt, g.h, g.oh);
                for kw in 0..g.kw {
                    let (ow0, ow1) = outs_for_tap(kw, g.sw, pl, g.w, g.ow);
                    let mut acc = 0.0f64;
                    for n in 0..g.n {
                        for oh in oh0..oh1 {
                            let ih = oh * g.sh + kh - pt;
                            for ow in ow0..ow1 {
                                let iw = ow * g.sw + kw - pl;
                                let x = inp[((n * g.c_in + ci) * g.h + ih) * g.w + iw];
                                acc += dout_at(n, o, oh, ow) as f64 * x as f64;
                            }
                        }
                    }
                    dweight[((o * cin_g + c) * g.kh + kh) * g.kw + kw] = acc as f32;
                }
            }
        }
    }

    // dinp[n, i, y, x] = sum over the outputs (oh, ow) of i's group that read (y, x), each
    // through tap kh = y + pad_top - oh*SH, kw = x + pad_left - ow*SW
    for n in 0..g.n {
        for i in 0..g.c_in {
            let grp = i / cin_g;
            let c = i - grp * cin_g;
            for y in 0..g.h {
                let (oh0, oh1) = outs_for_input(y, g.sh, pt, g.kh, g.oh);
                for x in 0..g.w {
                    let (ow0, ow1) = outs_for_input(x, g.sw, pl, g.kw, g.ow);
                    let mut acc = 0.0f64;
                    for o in grp * cout_g..(grp + 1) * cout_g {
                        for oh in oh0..oh1 {
                            let kh = y + pt - oh * g.sh; // in 0..KH by the range above
                            for ow in ow0..ow1 {
                                let kw = x + pl - ow * g.sw;
                                let wt = weight[((o * cin_g + c) * g.kh + kh) * g.kw + kw];
                                acc += dout_at(n, o, oh, ow) as f64 * wt as f64;
                            }
                        }
                    }
                    dinp[((n * g.c_in + i) * g.h + y) * g.w + x] = acc as f32;
                }
            }
        }
    }
    Ok(())
}

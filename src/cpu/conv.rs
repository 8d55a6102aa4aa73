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
//! Padded coordinates are computed as `isize` (never unsigned, which would wrap).

use super::check_len;
use crate::error::{Error, Result};
use crate::model::{ConvSpec, Layer, Pads};

/// Everything a convolution's loops need, checked once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    pub n: usize,
    pub c_in: usize,
    pub h: usize,
    pub w: usize,
    pub c_out: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pads: Pads,
    pub groups: usize,
}

impl ConvGeom {
    /// Geometry of `spec` applied to a batch of `n` images of `(spec.in_channels, h, w)`.
    /// The output size comes from `Layer::output_shape` (the one place for shape rules).
    pub fn new(spec: &ConvSpec, n: usize, h: usize, w: usize) -> Result<ConvGeom> {
        let out = Layer::Conv(spec.clone()).output_shape(&[spec.in_channels, h, w])?;
        Ok(ConvGeom {
            n,
            c_in: spec.in_channels,
            h,
            w,
            c_out: spec.out_channels,
            oh: out[1],
            ow: out[2],
            kh: spec.kernel[0],
            kw: spec.kernel[1],
            sh: spec.stride[0],
            sw: spec.stride[1],
            pads: spec.pads,
            groups: spec.groups,
        })
    }

    /// Input channels per group.
    pub fn cin_g(&self) -> usize {
        self.c_in / self.groups
    }

    /// Output channels per group.
    pub fn cout_g(&self) -> usize {
        self.c_out / self.groups
    }

    pub fn inp_shape(&self) -> [usize; 4] {
        [self.n, self.c_in, self.h, self.w]
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c_out, self.oh, self.ow]
    }

    pub fn weight_shape(&self) -> [usize; 4] {
        [self.c_out, self.cin_g(), self.kh, self.kw]
    }

    fn check_groups(&self) -> Result<()> {
        if self.groups == 0
            || !self.c_in.is_multiple_of(self.groups)
            || !self.c_out.is_multiple_of(self.groups)
        {
            return Err(Error::Arch(format!(
                "conv: groups {} must divide {} input and {} output channels",
                self.groups, self.c_in, self.c_out
            )));
        }
        if self.sh == 0 || self.sw == 0 {
            return Err(Error::Arch("conv: stride must be at least 1".into()));
        }
        Ok(())
    }
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
    let (h, w) = (g.h as isize, g.w as isize);
    for n in 0..g.n {
        for o in 0..g.c_out {
            let grp = o / cout_g;
            for oh in 0..g.oh {
                for ow in 0..g.ow {
                    let mut acc = bias[o] as f64;
                    for c in 0..cin_g {
                        let ci = grp * cin_g + c;
                        for kh in 0..g.kh {
                            let ih = (oh * g.sh + kh) as isize - g.pads.top as isize;
                            if ih < 0 || ih >= h {
                                continue; // zero padding
                            }
                            for kw in 0..g.kw {
                                let iw = (ow * g.sw + kw) as isize - g.pads.left as isize;
                                if iw < 0 || iw >= w {
                                    continue;
                                }
                                let x = inp
                                    [((n * g.c_in + ci) * g.h + ih as usize) * g.w + iw as usize];
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
    let (h, w) = (g.h as isize, g.w as isize);
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

    // dweight[o, c, kh, kw] = sum over n, oh, ow of dout * the input it multiplied
    for o in 0..g.c_out {
        let grp = o / cout_g;
        for c in 0..cin_g {
            let ci = grp * cin_g + c;
            for kh in 0..g.kh {
                for kw in 0..g.kw {
                    let mut acc = 0.0f64;
                    for n in 0..g.n {
                        for oh in 0..g.oh {
                            let ih = (oh * g.sh + kh) as isize - g.pads.top as isize;
                            if ih < 0 || ih >= h {
                                continue;
                            }
                            for ow in 0..g.ow {
                                let iw = (ow * g.sw + kw) as isize - g.pads.left as isize;
                                if iw < 0 || iw >= w {
                                    continue;
                                }
                                let x = inp
                                    [((n * g.c_in + ci) * g.h + ih as usize) * g.w + iw as usize];
                                acc += dout_at(n, o, oh, ow) as f64 * x as f64;
                            }
                        }
                    }
                    dweight[((o * cin_g + c) * g.kh + kh) * g.kw + kw] = acc as f32;
                }
            }
        }
    }

    // dinp[n, i, y, x] = sum over the outputs that read (y, x) through kernel tap (kh, kw):
    // oh*SH + kh - pad_top = y  =>  oh = (y + pad_top - kh) / SH when exact and in range.
    for n in 0..g.n {
        for i in 0..g.c_in {
            let grp = i / cin_g;
            let c = i - grp * cin_g;
            for y in 0..g.h {
                for x in 0..g.w {
                    let mut acc = 0.0f64;
                    for o in grp * cout_g..(grp + 1) * cout_g {
                        for kh in 0..g.kh {
                            let t = (y + g.pads.top) as isize - kh as isize;
                            if t < 0 || !t.unsigned_abs().is_multiple_of(g.sh) {
                                continue;
                            }
                            let oh = (t / g.sh as isize) as usize;
                            if oh >= g.oh {
                                continue;
                            }
                            for kw in 0..g.kw {
                                let u = (x + g.pads.left) as isize - kw as isize;
                                if u < 0 || !u.unsigned_abs().is_multiple_of(g.sw) {
                                    continue;
                                }
                                let ow = (u / g.sw as isize) as usize;
                                if ow >= g.ow {
                                    continue;
                                }
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

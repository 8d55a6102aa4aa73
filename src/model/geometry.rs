//! Each layer's geometry at a batch size: everything the loops of every backend (the
//! reference, the fast CPU backend, the GPU kernels' parameters) need, derived once from
//! the layer's spec and its input with `Layer::output_shape` (the one place for the shape
//! rules). Shapes are `(N, C, H, W)` unless a field says otherwise.

use super::layer::{AvgPoolSpec, ConvSpec, Layer, LinearSpec, LrnSpec, Pads, PoolSpec};
use crate::error::{Error, Result};
use crate::shape::adaptive_range;
use std::ops::Range;

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

    pub(crate) fn check_groups(&self) -> Result<()> {
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

/// Geometry of a max pool over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub kh: usize,
    pub kw: usize,
    pub sh: usize,
    pub sw: usize,
    pub pad_top: usize,
    pub pad_left: usize,
}

impl PoolGeom {
    /// Output size from `Layer::output_shape` (which uses `shape::pool_out` and checks that
    /// the pads are smaller than the kernel).
    pub fn new(spec: &PoolSpec, n: usize, c: usize, h: usize, w: usize) -> Result<PoolGeom> {
        let out = Layer::MaxPool(spec.clone()).output_shape(&[c, h, w])?;
        Ok(PoolGeom {
            n,
            c,
            h,
            w,
            oh: out[1],
            ow: out[2],
            kh: spec.kernel[0],
            kw: spec.kernel[1],
            sh: spec.stride[0],
            sw: spec.stride[1],
            pad_top: spec.pads.top,
            pad_left: spec.pads.left,
        })
    }

    pub fn inp_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// Clipped input rows `[start, end)` of output row `oh`.
    pub fn rows(&self, oh: usize) -> (usize, usize) {
        clip(oh * self.sh, self.pad_top, self.kh, self.h)
    }

    /// Clipped input columns `[start, end)` of output column `ow`.
    pub fn cols(&self, ow: usize) -> (usize, usize) {
        clip(ow * self.sw, self.pad_left, self.kw, self.w)
    }
}

/// Window `[start - pad, start - pad + k)` clipped to `[0, len)`.
fn clip(start: usize, pad: usize, k: usize, len: usize) -> (usize, usize) {
    let lo = start as isize - pad as isize;
    let hi = (lo + k as isize).min(len as isize);
    let lo = lo.max(0);
    (lo as usize, hi.max(lo) as usize)
}

/// Geometry of an adaptive average pool over a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AvgPoolGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
}

impl AvgPoolGeom {
    pub fn new(spec: &AvgPoolSpec, n: usize, c: usize, h: usize, w: usize) -> Result<AvgPoolGeom> {
        let out = Layer::AdaptiveAvgPool(spec.clone()).output_shape(&[c, h, w])?;
        if h == 0 || w == 0 {
            return Err(Error::Arch(format!(
                "avgpool {:?}: empty input {h}x{w}",
                spec.name
            )));
        }
        Ok(AvgPoolGeom {
            n,
            c,
            h,
            w,
            oh: out[1],
            ow: out[2],
        })
    }

    pub fn inp_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.h, self.w]
    }

    pub fn out_shape(&self) -> [usize; 4] {
        [self.n, self.c, self.oh, self.ow]
    }

    /// Each output of a plane, in row-major order: its index `oh * OW + ow`, and its region
    /// `[h0, h1) x [w0, w1)` of the input plane (`shape::adaptive_range`'s definition).
    pub fn regions(&self) -> impl Iterator<Item = (usize, Range<usize>, Range<usize>)> + '_ {
        (0..self.oh).flat_map(move |oh| {
            let (h0, h1) = adaptive_range(oh, self.h, self.oh);
            (0..self.ow).map(move |ow| {
                let (w0, w1) = adaptive_range(ow, self.w, self.ow);
                (oh * self.ow + ow, h0..h1, w0..w1)
            })
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrnGeom {
    pub n: usize,
    pub c: usize,
    /// `H * W`: LRN never mixes spatial positions.
    pub hw: usize,
    /// Window size (number of channels).
    pub size: usize,
    /// Coefficient of the sum of squares, after the alpha convention is applied.
    pub alpha_eff: f32,
    pub beta: f32,
    pub k: f32,
}

impl LrnGeom {
    pub fn new(spec: &LrnSpec, n: usize, c: usize, h: usize, w: usize) -> Result<LrnGeom> {
        if spec.size == 0 {
            return Err(Error::Arch(format!(
                "lrn {:?}: size must be >= 1",
                spec.name
            )));
        }
        Ok(LrnGeom {
            n,
            c,
            hw: h * w,
            size: spec.size,
            alpha_eff: spec.effective_alpha(),
            beta: spec.beta,
            k: spec.k,
        })
    }

    pub fn len(&self) -> [usize; 3] {
        [self.n, self.c, self.hw]
    }

    /// `W(c)`: the channels whose squares enter `scale_c`, as an inclusive range.
    pub fn window(&self, c: usize) -> (usize, usize) {
        let lo = c.saturating_sub((self.size - 1) / 2);
        let hi = (c + self.size / 2).min(self.c - 1);
        (lo, hi)
    }

    /// The channels `j` with `c in W(j)`, inclusive.
    pub fn reverse_window(&self, c: usize) -> (usize, usize) {
        let lo = c.saturating_sub(self.size / 2);
        let hi = (c + (self.size - 1) / 2).min(self.c - 1);
        (lo, hi)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearGeom {
    pub n: usize,
    pub in_features: usize,
    pub out_features: usize,
}

impl LinearGeom {
    pub fn new(spec: &LinearSpec, n: usize) -> LinearGeom {
        LinearGeom {
            n,
            in_features: spec.in_features,
            out_features: spec.out_features,
        }
    }
}

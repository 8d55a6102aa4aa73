//! Local response normalisation across channels (the paper's section 3.3; ONNX's `LRN`).
//!
//! Shapes: `inp`, `out`, `scale`: `(N, C, H, W)`.
//! Window of channel `c` (ONNX): `W(c) = max(0, c - (n-1)/2) ..= min(C-1, c + n/2)`.
//! `alpha_eff = LrnSpec::effective_alpha()`: `alpha` for the paper's convention
//! (`LrnAlpha::Raw`), `alpha / n` for Caffe / ONNX / PyTorch (`LrnAlpha::OverN`).
//!
//! Forward (per `n, h, w`):
//!   `scale_c = k + alpha_eff * sum_{j in W(c)} a_j^2`,   `b_c = a_c * scale_c^(-beta)`.
//! `scale` is saved for backward.
//!
//! Backward: `b_j` depends on `a_i` directly (when `i = j`) and through `scale_j` when
//! `i in W(j)`, with `d scale_j / d a_i = 2 alpha_eff a_i`, so
//!   `da_i = dout_i * scale_i^(-beta)
//!          - 2 alpha_eff beta a_i * sum_{j : i in W(j)} dout_j * b_j / scale_j`.
//! `i in W(j)` iff `j - (n-1)/2 <= i <= j + n/2` iff `i - n/2 <= j <= i + (n-1)/2` (clipped to
//! `0..C`): the reverse window, which differs from `W(i)` when `n` is even.
//! Sums are accumulated in f32 in ascending channel order (windows are 5 wide).

use super::check_len;
use crate::error::{Error, Result};
use crate::model::LrnSpec;

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

    fn len(&self) -> [usize; 3] {
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

/// `out = inp * scale^-beta`, and `scale` saved. Shapes `(N, C, H*W)`.
pub fn lrn_forward(g: &LrnGeom, inp: &[f32], out: &mut [f32], scale: &mut [f32]) -> Result<()> {
    check_len("lrn_forward: inp (N, C, H, W)", inp.len(), &g.len())?;
    check_len("lrn_forward: out (N, C, H, W)", out.len(), &g.len())?;
    check_len("lrn_forward: scale (N, C, H, W)", scale.len(), &g.len())?;
    let at = |n: usize, c: usize, p: usize| (n * g.c + c) * g.hw + p;
    for n in 0..g.n {
        for c in 0..g.c {
            let (lo, hi) = g.window(c);
            for p in 0..g.hw {
                let mut sum = 0.0f32;
                for j in lo..=hi {
                    let a = inp[at(n, j, p)];
                    sum += a * a;
                }
                let s = g.k + g.alpha_eff * sum;
                scale[at(n, c, p)] = s;
                out[at(n, c, p)] = inp[at(n, c, p)] * s.powf(-g.beta);
            }
        }
    }
    Ok(())
}

/// Gradient of `lrn_forward` (formula in the module doc), a gather over the reverse window.
pub fn lrn_backward(
    g: &LrnGeom,
    dout: &[f32],
    inp: &[f32],
    out: &[f32],
    scale: &[f32],
    dinp: &mut [f32],
) -> Result<()> {
    check_len("lrn_backward: dout (N, C, H, W)", dout.len(), &g.len())?;
    check_len("lrn_backward: inp (N, C, H, W)", inp.len(), &g.len())?;
    check_len("lrn_backward: out (N, C, H, W)", out.len(), &g.len())?;
    check_len("lrn_backward: scale (N, C, H, W)", scale.len(), &g.len())?;
    check_len("lrn_backward: dinp (N, C, H, W)", dinp.len(), &g.len())?;
    let at = |n: usize, c: usize, p: usize| (n * g.c + c) * g.hw + p;
    for n in 0..g.n {
        for i in 0..g.c {
            let (lo, hi) = g.reverse_window(i);
            for p in 0..g.hw {
                let mut sum = 0.0f32;
                for j in lo..=hi {
                    sum += dout[at(n, j, p)] * out[at(n, j, p)] / scale[at(n, j, p)];
                }
                let k = at(n, i, p);
                dinp[k] =
                    dout[k] * scale[k].powf(-g.beta) - 2.0 * g.alpha_eff * g.beta * inp[k] * sum;
            }
        }
    }
    Ok(())
}

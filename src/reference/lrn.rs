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

use crate::error::Result;
use crate::model::LrnGeom;
use crate::tensor::check_len;

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

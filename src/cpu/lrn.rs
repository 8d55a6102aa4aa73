//! Local response normalisation with a sliding window over channels.
//!
//! Same definition as `reference::lrn` (window `W(c) = c - (n-1)/2 ..= c + n/2`, clipped):
//!   `s_c = k + alpha_eff * S_c`, `S_c = sum_{j in W(c)} a_j^2`, `b_c = a_c * s_c^(-beta)`.
//! `S` is kept as one running row of `H*W` sums per image: moving from `c - 1` to `c` adds
//! the square of channel `c + n/2` and subtracts that of `c - 1 - (n-1)/2`, so each element
//! costs O(1) whatever the window size (the reference re-sums the window: O(n)). Rows are
//! contiguous, so every step is a vectorisable pass over `H*W` floats.
//! Rounding: the running f32 sum drifts by a few ulps of the largest window sum it has held;
//! it is clamped at 0 so cancellation can never make `s_c < k`.
//! `beta = 0.75` (every AlexNet) uses `1 / (sqrt(s) * sqrt(sqrt(s)))`, which vectorises;
//! other betas call `powf`.
//!
//! Training (`lrn_forward_train`) also saves `scale = s_c = k + alpha_eff * S_c`, exactly the
//! values the output was computed from (so they differ from `reference::lrn`'s by the running
//! sum's rounding only).
//!
//! Backward (formula of `reference::lrn`):
//!   `da_i = dout_i * s_i^(-beta) - 2 alpha_eff beta a_i * T_i`,
//!   `T_i = sum_{j in R(i)} dout_j * b_j / s_j`, `R(i) = i - n/2 ..= i + (n-1)/2` (clipped),
//! the reverse window. `T` is a running row of `H*W` sums like `S`: from `i - 1` to `i` it
//! adds the term of channel `i + (n-1)/2` and subtracts that of `i - 1 - n/2`, each term
//! recomputed from the same three values, so O(1) per element. The terms are signed, so
//! the running sum is not clamped; its error stays a few ulps of the largest partial sum.

use super::{opt_chunks, Workspace};
use crate::error::{Error, Result};
use crate::model::LrnGeom;
use std::thread;

/// `out = inp * (k + alpha_eff * S)^-beta` for one image `(C, H*W)`, and
/// `scale = k + alpha_eff * S` when given; `sum` holds `H*W`.
fn lrn_image(
    g: &LrnGeom,
    x: &[f32],
    out: &mut [f32],
    mut scale: Option<&mut [f32]>,
    sum: &mut [f32],
) {
    let hw = g.hw;
    let plane = |c: usize| &x[c * hw..(c + 1) * hw];
    sum.fill(0.0);
    for j in 0..=(g.size / 2).min(g.c - 1) {
        for (s, &a) in sum.iter_mut().zip(plane(j)) {
            *s += a * a;
        }
    }
    let (lo_off, hi_off) = ((g.size - 1) / 2, g.size / 2);
    for c in 0..g.c {
        if c > 0 {
            let add = c + hi_off;
            if add < g.c {
                for (s, &a) in sum.iter_mut().zip(plane(add)) {
                    *s += a * a;
                }
            }
            if c > lo_off {
                for (s, &a) in sum.iter_mut().zip(plane(c - 1 - lo_off)) {
                    *s = (*s - a * a).max(0.0);
                }
            }
        }
        let o = &mut out[c * hw..(c + 1) * hw];
        let (k, alpha) = (g.k, g.alpha_eff);
        if let Some(sc) = scale.as_deref_mut() {
            for (t, &s) in sc[c * hw..(c + 1) * hw].iter_mut().zip(sum.iter()) {
                *t = k + alpha * s;
            }
        }
        if g.beta == 0.75 {
            for ((y, &a), &s) in o.iter_mut().zip(plane(c)).zip(sum.iter()) {
                let t = k + alpha * s;
                let r = t.sqrt();
                *y = a / (r * r.sqrt());
            }
        } else {
            for ((y, &a), &s) in o.iter_mut().zip(plane(c)).zip(sum.iter()) {
                *y = a * (k + alpha * s).powf(-g.beta);
            }
        }
    }
}

/// LRN forward on `inp`, `out`: `(N, C, H, W)`; images split across threads natively.
pub fn lrn_forward(ws: &Workspace, g: &LrnGeom, inp: &[f32], out: &mut [f32]) -> Result<()> {
    lrn_run(ws, g, inp, out, None)
}

/// Training-mode LRN forward: `out` as `lrn_forward`, and `scale = k + alpha_eff * S`
/// saved for `lrn_backward`. All three `(N, C, H, W)`.
pub fn lrn_forward_train(
    ws: &Workspace,
    g: &LrnGeom,
    inp: &[f32],
    out: &mut [f32],
    scale: &mut [f32],
) -> Result<()> {
    check_len("lrn_forward_train", "scale (N, C, H, W)", scale.len(), g)?;
    lrn_run(ws, g, inp, out, Some(scale))
}

fn check_len(func: &str, what: &str, len: usize, g: &LrnGeom) -> Result<()> {
    if len != g.n * g.c * g.hw || g.size == 0 {
        return Err(Error::Length {
            what: format!(
                "fast {func}: {what} for (N, C, H*W) = ({}, {}, {}), size {}",
                g.n, g.c, g.hw, g.size
            ),
            len,
            want: g.n * g.c * g.hw,
        });
    }
    Ok(())
}

/// The forward, images split across threads, `scale` written when given.
fn lrn_run(
    ws: &Workspace,
    g: &LrnGeom,
    inp: &[f32],
    out: &mut [f32],
    scale: Option<&mut [f32]>,
) -> Result<()> {
    check_len("lrn_forward", "inp (N, C, H, W)", inp.len(), g)?;
    check_len("lrn_forward", "out (N, C, H, W)", out.len(), g)?;
    let img = g.c * g.hw;
    if img == 0 {
        return Ok(());
    }
    let nt = ws.threads.min(g.n).max(1);
    let per = g.n.div_ceil(nt);
    let run = |xs: &[f32], ys: &mut [f32], mut ss: Option<&mut [f32]>| {
        let mut sum = vec![0.0; g.hw];
        for (j, (x, y)) in xs
            .chunks_exact(img)
            .zip(ys.chunks_exact_mut(img))
            .enumerate()
        {
            let s = ss.as_deref_mut().map(|s| &mut s[j * img..(j + 1) * img]);
            lrn_image(g, x, y, s, &mut sum);
        }
    };
    if nt == 1 {
        run(inp, out, scale);
        return Ok(());
    }
    let scales = opt_chunks(scale, per * img, g.n.div_ceil(per));
    thread::scope(|s| {
        for ((xs, ys), ss) in inp
            .chunks(per * img)
            .zip(out.chunks_mut(per * img))
            .zip(scales)
        {
            let run = &run;
            s.spawn(move || run(xs, ys, ss));
        }
    });
    Ok(())
}

/// `x^-beta`, with the vectorisable form for AlexNet's `beta = 0.75` (module doc).
#[inline]
fn pow_neg_beta(x: f32, beta: f32) -> f32 {
    if beta == 0.75 {
        let r = x.sqrt();
        1.0 / (r * r.sqrt())
    } else {
        x.powf(-beta)
    }
}

/// One image of `lrn_backward`, all `(C, H*W)`; `acc` holds `H*W`.
fn lrn_image_backward(
    g: &LrnGeom,
    dout: &[f32],
    x: &[f32],
    out: &[f32],
    scale: &[f32],
    dinp: &mut [f32],
    acc: &mut [f32],
) {
    let hw = g.hw;
    let row = |c: usize| c * hw..(c + 1) * hw;
    // acc += sign * dout_j * b_j / s_j over channel j's row
    let add_term = |acc: &mut [f32], j: usize, subtract: bool| {
        let r = row(j);
        let terms = dout[r.clone()]
            .iter()
            .zip(&out[r.clone()])
            .zip(&scale[r])
            .map(|((&d, &b), &s)| d * b / s);
        if subtract {
            acc.iter_mut().zip(terms).for_each(|(a, t)| *a -= t);
        } else {
            acc.iter_mut().zip(terms).for_each(|(a, t)| *a += t);
        }
    };
    let (lo_off, hi_off) = (g.size / 2, (g.size - 1) / 2);
    acc.fill(0.0);
    for j in 0..=hi_off.min(g.c - 1) {
        add_term(acc, j, false);
    }
    let coef = 2.0 * g.alpha_eff * g.beta;
    for i in 0..g.c {
        if i > 0 {
            if i + hi_off < g.c {
                add_term(acc, i + hi_off, false);
            }
            if i > lo_off {
                add_term(acc, i - 1 - lo_off, true);
            }
        }
        let r = row(i);
        for ((((d, &dy), &a), &s), &t) in dinp[r.clone()]
            .iter_mut()
            .zip(&dout[r.clone()])
            .zip(&x[r.clone()])
            .zip(&scale[r])
            .zip(acc.iter())
        {
            *d = dy * pow_neg_beta(s, g.beta) - coef * a * t;
        }
    }
}

/// Gradient of LRN (module doc) from `dout` and the forward's `inp`, `out` and saved
/// `scale`, into `dinp` (overwritten); all `(N, C, H, W)`, images split across threads.
pub fn lrn_backward(
    ws: &Workspace,
    g: &LrnGeom,
    dout: &[f32],
    inp: &[f32],
    out: &[f32],
    scale: &[f32],
    dinp: &mut [f32],
) -> Result<()> {
    let func = "lrn_backward";
    check_len(func, "dout (N, C, H, W)", dout.len(), g)?;
    check_len(func, "inp (N, C, H, W)", inp.len(), g)?;
    check_len(func, "out (N, C, H, W)", out.len(), g)?;
    check_len(func, "scale (N, C, H, W)", scale.len(), g)?;
    check_len(func, "dinp (N, C, H, W)", dinp.len(), g)?;
    let img = g.c * g.hw;
    if img == 0 {
        return Ok(());
    }
    let nt = ws.threads.min(g.n).max(1);
    let run = |first: usize, dxs: &mut [f32]| {
        let mut acc = vec![0.0; g.hw];
        for (j, dx) in dxs.chunks_exact_mut(img).enumerate() {
            let r = (first + j) * img..(first + j + 1) * img;
            let (dy, x, y, s) = (
                &dout[r.clone()],
                &inp[r.clone()],
                &out[r.clone()],
                &scale[r],
            );
            lrn_image_backward(g, dy, x, y, s, dx, &mut acc);
        }
    };
    super::par_units(nt, dinp, img, true, run);
    Ok(())
}

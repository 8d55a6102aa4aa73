//! Local response normalisation with a sliding window over channels.
//!
//! Same definition as `cpu::lrn` (window `W(c) = c - (n-1)/2 ..= c + n/2`, clipped):
//!   `s_c = k + alpha_eff * S_c`, `S_c = sum_{j in W(c)} a_j^2`, `b_c = a_c * s_c^(-beta)`.
//! `S` is kept as one running row of `H*W` sums per image: moving from `c - 1` to `c` adds
//! the square of channel `c + n/2` and subtracts that of `c - 1 - (n-1)/2`, so each element
//! costs O(1) whatever the window size (the reference re-sums the window: O(n)). Rows are
//! contiguous, so every step is a vectorisable pass over `H*W` floats.
//! Rounding: the running f32 sum drifts by a few ulps of the largest window sum it has held;
//! it is clamped at 0 so cancellation can never make `s_c < k`.
//! `beta = 0.75` (every AlexNet) uses `1 / (sqrt(s) * sqrt(sqrt(s)))`, which vectorises;
//! other betas call `powf`.

use super::Workspace;
use crate::cpu::LrnGeom;
use crate::error::{Error, Result};
use std::thread;

/// `out = inp * (k + alpha_eff * S)^-beta` for one image `(C, H*W)`; `sum` holds `H*W`.
fn lrn_image(g: &LrnGeom, x: &[f32], out: &mut [f32], sum: &mut [f32]) {
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
    let img = g.c * g.hw;
    if inp.len() != g.n * img || out.len() != g.n * img || g.size == 0 {
        return Err(Error::Other(format!(
            "fast lrn_forward: inp {} / out {} values for (N, C, H*W) = ({}, {}, {}), size {}",
            inp.len(),
            out.len(),
            g.n,
            g.c,
            g.hw,
            g.size
        )));
    }
    if img == 0 {
        return Ok(());
    }
    let nt = ws.threads.min(g.n).max(1);
    let per = g.n.div_ceil(nt);
    if nt == 1 {
        let mut sum = vec![0.0; g.hw];
        for (x, y) in inp.chunks_exact(img).zip(out.chunks_exact_mut(img)) {
            lrn_image(g, x, y, &mut sum);
        }
        return Ok(());
    }
    thread::scope(|s| {
        for (xs, ys) in inp.chunks(per * img).zip(out.chunks_mut(per * img)) {
            s.spawn(move || {
                let mut sum = vec![0.0; g.hw];
                for (x, y) in xs.chunks_exact(img).zip(ys.chunks_exact_mut(img)) {
                    lrn_image(g, x, y, &mut sum);
                }
            });
        }
    });
    Ok(())
}

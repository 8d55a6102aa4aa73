//! The CPU reference, layer by layer: hand-computed cases, then central-difference gradient
//! checks of every input, weight and bias gradient on odd shapes (stride 4, pad 2, groups 2,
//! asymmetric pads, ceil pooling, batch 1 and 3).
//!
//! Gradient checks: the loss is `L = sum(out * R)` for a fixed random `R`, evaluated in f64
//! from the f32 forward; the analytic gradient is backward with `dout = R`. The numerical
//! derivative is `(L(x + e) - L(x - e)) / ((x + e) - (x - e))`, dividing by the step that
//! f32 actually took.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{assert_close, avgpool_spec, conv_spec, linear_spec, lrn_spec, pads, randn};

use alexnet::error::Error;
use alexnet::model::{
    AvgPoolGeom, ConvGeom, ConvSpec, LinearGeom, LrnAlpha, LrnGeom, LrnSpec, Pads, PoolGeom,
    PoolSpec,
};
use alexnet::reference::*;
use alexnet::shape::Rounding;
use alexnet::tensor::Rng;

/// Hand-computed values: only the f32 rounding of a few operations separates them.
const EXACT_RTOL: f32 = 1e-6;
const EXACT_ATOL: f32 = 1e-6;
/// Finite-difference step: large enough that f32 rounding of the outputs (relative ~1e-7
/// for the f64-accumulated conv/linear, ~1e-6 for LRN) stays small after dividing by 2e-2,
/// small enough that the eps^2 truncation error of the smooth layers (LRN, softmax) is ~1e-5.
const EPS: f32 = 1e-2;
/// Numerical-vs-analytic gradients: the loss sums <= ~2e3 outputs of size ~1-10, each with
/// f32 rounding ~1e-6 relative, so L is noisy by ~1e-5 and the derivative by ~5e-4.
const GRAD_ATOL: f32 = 2e-3;
/// Relative part of the gradient tolerance (gradients reach ~50 in the conv checks).
const GRAD_RTOL: f32 = 1e-3;

fn dot64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// Central differences of `loss` with respect to every element of `x`.
fn numgrad(x: &[f32], loss: impl Fn(&[f32]) -> f64) -> Vec<f32> {
    let mut xv = x.to_vec();
    let mut g = vec![0.0; x.len()];
    for i in 0..x.len() {
        let x0 = xv[i];
        let (xp, xm) = (x0 + EPS, x0 - EPS);
        xv[i] = xp;
        let lp = loss(&xv);
        xv[i] = xm;
        let lm = loss(&xv);
        xv[i] = x0;
        g[i] = ((lp - lm) / (xp as f64 - xm as f64)) as f32;
    }
    g
}

fn check_grad(name: &str, analytic: &[f32], x: &[f32], loss: impl Fn(&[f32]) -> f64) {
    let num = numgrad(x, loss);
    assert_close(name, analytic, &num, GRAD_RTOL, GRAD_ATOL);
}

// ---------------------------------------------------------------- conv

#[test]
fn conv_one_channel_known_numbers() {
    let x: Vec<f32> = (1..=9).map(|v| v as f32).collect(); // 3x3: 1..9
    let w = vec![1.0, 2.0, 3.0, 4.0]; // 2x2
    #[rustfmt::skip]
    let cases = [
        // no padding, stride 1, bias 1: each output is 1*a + 2*b + 3*c + 4*d + 1
        ("conv 3x3 * 2x2", 1, Pads::default(), 1.0, [38.0, 48.0, 68.0, 78.0]),
        // pads top 1, left 1 (none bottom/right), stride 2: OH = (3 + 1 - 2) / 2 + 1 = 2;
        // (0,0): only x(0,0)=1 under w(1,1)=4; (0,1): 2*3 + 3*4; (1,0): 4*2 + 7*4;
        // (1,1): 5+12+24+36
        ("conv padded stride 2", 2, pads(1, 1, 0, 0), 0.0, [4.0, 18.0, 36.0, 77.0]),
    ];
    for (what, s, pads, bias, want) in cases {
        let g = ConvGeom::new(&conv_spec(1, 1, [2, 2], [s, s], pads, 1), 1, 3, 3).unwrap();
        assert_eq!((g.oh, g.ow), (2, 2), "{what}");
        let mut out = vec![0.0; 4];
        conv2d_forward(&g, &x, &w, &[bias], &mut out).unwrap();
        assert_close(what, &out, &want, EXACT_RTOL, EXACT_ATOL);
    }
}

#[test]
fn conv_rejects_bad_sizes() {
    let g = ConvGeom::new(
        &conv_spec(1, 1, [2, 2], [1, 1], Pads::default(), 1),
        1,
        3,
        3,
    )
    .unwrap();
    let mut out = vec![0.0; 4];
    let r = conv2d_forward(&g, &[0.0; 8], &[0.0; 4], &[0.0], &mut out);
    assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
    let r = conv2d_forward(&g, &[0.0; 9], &[0.0; 4], &[0.0], &mut out[..3]);
    assert!(matches!(r, Err(Error::Shape { .. })), "{r:?}");
}

fn conv_gradcheck(name: &str, spec: &ConvSpec, n: usize, h: usize, w: usize, seed: u64) {
    let g = ConvGeom::new(spec, n, h, w).unwrap();
    let mut rng = Rng::new(seed);
    let x = randn(&mut rng, g.inp_shape().iter().product(), 1.0);
    let wt = randn(&mut rng, g.weight_shape().iter().product(), 0.5);
    let b = randn(&mut rng, g.c_out, 0.5);
    let r = randn(&mut rng, g.out_shape().iter().product(), 1.0);
    let fwd = |x: &[f32], wt: &[f32], b: &[f32]| -> f64 {
        let mut out = vec![0.0; r.len()];
        conv2d_forward(&g, x, wt, b, &mut out).unwrap();
        dot64(&out, &r)
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; wt.len()], vec![0.0; b.len()]);
    conv2d_backward(&g, &r, &x, &wt, &mut dx, &mut dw, &mut db).unwrap();
    check_grad(&format!("{name} dinp"), &dx, &x, |x| fwd(x, &wt, &b));
    check_grad(&format!("{name} dweight"), &dw, &wt, |wt| fwd(&x, wt, &b));
    check_grad(&format!("{name} dbias"), &db, &b, |b| fwd(&x, &wt, b));
}

#[test]
fn conv_grad_stride4_pad2_groups2_batch3() {
    // 13x11 input, 5x5 kernel, stride 4, pad 2: OH = (13+4-5)/4+1 = 4, OW = (11+4-5)/4+1 = 3
    let spec = conv_spec(4, 6, [5, 5], [4, 4], Pads::same(2), 2);
    conv_gradcheck("conv s4 p2 g2 N3", &spec, 3, 13, 11, 1);
}

#[test]
fn conv_grad_asymmetric_pads_batch1() {
    // the paper's conv1 trick: pads 1 (top/left) and 2 (bottom/right); here also a 3x2
    // kernel and stride (2, 1)
    let spec = conv_spec(3, 4, [3, 2], [2, 1], pads(1, 1, 2, 2), 1);
    conv_gradcheck("conv asym pads N1", &spec, 1, 7, 6, 2);
    let spec = conv_spec(4, 2, [3, 3], [3, 2], pads(2, 0, 1, 2), 2);
    conv_gradcheck("conv asym pads g2 N3", &spec, 3, 8, 9, 3);
}

// ---------------------------------------------------------------- relu

#[test]
fn relu_forward_backward() {
    let x = [-2.0, -0.0, 0.0, 0.5, 3.0];
    let mut y = [9.0; 5];
    relu_forward(&x, &mut y).unwrap();
    assert_close("relu fwd", &y, &[0.0, 0.0, 0.0, 0.5, 3.0], 0.0, 0.0);
    let mut dx = [9.0; 5];
    relu_backward(&[1.0, 2.0, 3.0, 4.0, 5.0], &x, &mut dx).unwrap();
    assert_close("relu bwd", &dx, &[0.0, 0.0, 0.0, 4.0, 5.0], 0.0, 0.0);
    // gradient check away from the kink
    let mut rng = Rng::new(4);
    let x: Vec<f32> = randn(&mut rng, 50, 1.0)
        .into_iter()
        .map(|v| if v.abs() < 0.05 { v + 0.1 } else { v })
        .collect();
    let r = randn(&mut rng, 50, 1.0);
    let mut dx = vec![0.0; 50];
    relu_backward(&r, &x, &mut dx).unwrap();
    check_grad("relu dinp", &dx, &x, |x| {
        let mut y = vec![0.0; 50];
        relu_forward(x, &mut y).unwrap();
        dot64(&y, &r)
    });
    assert!(matches!(
        relu_forward(&x, &mut [0.0; 3]),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------- LRN

#[test]
fn lrn_hand_computed_both_conventions() {
    // input (1, 5, 1, 1) = [1, 2, 3, 4, 5], window 3 (c-1 ..= c+1), k 1, beta 1:
    // sums of squares 5, 14, 29, 50, 41.
    let a = [1.0, 2.0, 3.0, 4.0, 5.0];
    let run = |spec: &LrnSpec| {
        let g = LrnGeom::new(spec, 1, 5, 1, 1).unwrap();
        let (mut b, mut s) = ([0.0; 5], [0.0; 5]);
        lrn_forward(&g, &a, &mut b, &mut s).unwrap();
        (b, s)
    };
    // Paper (Raw) alpha 0.1: scale = 1 + 0.1 * sumsq = 1.5, 2.4, 3.9, 6, 5.1
    let (b, s) = run(&lrn_spec(3, 0.1, 1.0, 1.0, LrnAlpha::Raw));
    assert_close(
        "lrn raw scale",
        &s,
        &[1.5, 2.4, 3.9, 6.0, 5.1],
        EXACT_RTOL,
        EXACT_ATOL,
    );
    let want = [1.0 / 1.5, 2.0 / 2.4, 3.0 / 3.9, 4.0 / 6.0, 5.0 / 5.1];
    assert_close("lrn raw alpha 0.1", &b, &want, EXACT_RTOL, EXACT_ATOL);
    // Caffe (OverN) alpha 0.3 over n = 3 is the same 0.1
    let (b, _) = run(&lrn_spec(3, 0.3, 1.0, 1.0, LrnAlpha::OverN));
    assert_close("lrn over-n alpha 0.3", &b, &want, EXACT_RTOL, EXACT_ATOL);
    // ... and Raw alpha 0.3 is not: scale = 1 + 0.3 * sumsq = 2.5, 5.2, 9.7, 16, 13.3
    let (b, _) = run(&lrn_spec(3, 0.3, 1.0, 1.0, LrnAlpha::Raw));
    let want = [1.0 / 2.5, 2.0 / 5.2, 3.0 / 9.7, 4.0 / 16.0, 5.0 / 13.3];
    assert_close("lrn raw alpha 0.3", &b, &want, EXACT_RTOL, EXACT_ATOL);
    // beta 0.5, k 2, Raw alpha 0.2, window 5 (c-2 ..= c+2): sumsq 14, 30, 55, 54, 50
    let (b, _) = run(&lrn_spec(5, 0.2, 0.5, 2.0, LrnAlpha::Raw));
    let want: Vec<f32> = [
        (1.0, 14.0),
        (2.0, 30.0),
        (3.0, 55.0),
        (4.0, 54.0),
        (5.0, 50.0),
    ]
    .iter()
    .map(|&(a, s): &(f32, f32)| a / (2.0 + 0.2 * s).sqrt())
    .collect();
    assert_close(
        "lrn raw beta 0.5 window 5",
        &b,
        &want,
        EXACT_RTOL,
        EXACT_ATOL,
    );
}

fn lrn_gradcheck(name: &str, spec: &LrnSpec) {
    let (n, c, h, w) = (2, 7, 3, 2);
    let g = LrnGeom::new(spec, n, c, h, w).unwrap();
    let mut rng = Rng::new(5);
    let x = randn(&mut rng, n * c * h * w, 1.5);
    let r = randn(&mut rng, x.len(), 1.0);
    let (mut y, mut s) = (vec![0.0; x.len()], vec![0.0; x.len()]);
    lrn_forward(&g, &x, &mut y, &mut s).unwrap();
    let mut dx = vec![0.0; x.len()];
    lrn_backward(&g, &r, &x, &y, &s, &mut dx).unwrap();
    check_grad(name, &dx, &x, |x| {
        let (mut y, mut s) = (vec![0.0; x.len()], vec![0.0; x.len()]);
        lrn_forward(&g, x, &mut y, &mut s).unwrap();
        dot64(&y, &r)
    });
}

#[test]
fn lrn_grad_both_conventions_and_even_window() {
    // alpha large enough that the cross-channel term of the gradient matters
    lrn_gradcheck("lrn raw n5", &lrn_spec(5, 0.3, 0.75, 2.0, LrnAlpha::Raw));
    lrn_gradcheck(
        "lrn over-n n5",
        &lrn_spec(5, 1.5, 0.75, 1.0, LrnAlpha::OverN),
    );
    // even window: W(c) = c-1 ..= c+2, so the reverse window differs
    lrn_gradcheck("lrn raw n4", &lrn_spec(4, 0.3, 0.75, 2.0, LrnAlpha::Raw));
    // the paper's own constants
    lrn_gradcheck("lrn paper", &lrn_spec(5, 1e-4, 0.75, 2.0, LrnAlpha::Raw));
}

// ---------------------------------------------------------------- max pool

/// A square `k`x`k` max pool of stride `s`.
fn pool_spec(k: usize, s: usize, pads: Pads, rounding: Rounding) -> PoolSpec {
    common::pool_spec([k, k], [s, s], pads, rounding)
}

#[test]
fn maxpool_ceil_5x5_clipped_last_window() {
    // 5x5 input, a permutation of 0..25: v(h, w) = 7 * (5h + w) mod 25
    let x: Vec<f32> = (0..25).map(|i| ((7 * i) % 25) as f32).collect();
    let g = PoolGeom::new(
        &pool_spec(2, 2, Pads::default(), Rounding::Ceil),
        1,
        1,
        5,
        5,
    )
    .unwrap();
    assert_eq!(
        (g.oh, g.ow),
        (3, 3),
        "ceil: 3 windows, the last one holds only row/col 4"
    );
    let (mut y, mut am) = (vec![0.0; 9], vec![0u32; 9]);
    maxpool_forward(&g, &x, &mut y, &mut am).unwrap();
    // rows: [0 7 14 21 3] [10 17 24 6 13] [20 2 9 16 23] [5 12 19 1 8] [15 22 4 11 18]
    assert_close(
        "maxpool ceil",
        &y,
        &[17.0, 24.0, 13.0, 20.0, 19.0, 23.0, 22.0, 11.0, 18.0],
        0.0,
        0.0,
    );
    assert_eq!(am, vec![6, 7, 9, 10, 17, 14, 21, 23, 24]);
    let dout: Vec<f32> = (1..=9).map(|v| v as f32).collect();
    let mut dx = vec![9.0; 25];
    maxpool_backward(&g, &dout, &am, &mut dx).unwrap();
    let mut want = vec![0.0; 25];
    for (o, &i) in am.iter().enumerate() {
        want[i as usize] += dout[o];
    }
    assert_close("maxpool ceil backward", &dx, &want, 0.0, 0.0);
    // floor drops the partial windows
    let g = PoolGeom::new(
        &pool_spec(2, 2, Pads::default(), Rounding::Floor),
        1,
        1,
        5,
        5,
    )
    .unwrap();
    assert_eq!((g.oh, g.ow), (2, 2));
}

#[test]
fn maxpool_all_negative_and_overlapping_ties() {
    // All values far below any "magic" start value; overlapping 3/2 windows share elements.
    let x: Vec<f32> = (0..25).map(|i| -1e6 - i as f32).collect();
    let g = PoolGeom::new(&pool_spec(3, 2, Pads::same(1), Rounding::Floor), 1, 1, 5, 5).unwrap();
    let (mut y, mut am) = (vec![0.0; g.oh * g.ow], vec![0u32; g.oh * g.ow]);
    maxpool_forward(&g, &x, &mut y, &mut am).unwrap();
    // window (0,0) covers rows/cols -1..=1: max at (0,0); window (1,1) rows/cols 1..=3: (1,1)
    assert_eq!(y[0], -1e6);
    assert_eq!(am[0], 0);
    assert_eq!(am[g.ow + 1], 6);
    assert!(y.iter().all(|v| v.is_finite()));
}

fn maxpool_gradcheck(name: &str, spec: &PoolSpec, n: usize, c: usize, h: usize, w: usize) {
    let g = PoolGeom::new(spec, n, c, h, w).unwrap();
    let len = n * c * h * w;
    // distinct values 0.1 apart (a shuffled ramp): a 1e-2 step never changes an argmax
    let mut rng = Rng::new(6);
    let mut x: Vec<f32> = (0..len)
        .map(|i| i as f32 * 0.1 - len as f32 * 0.05)
        .collect();
    for i in (1..len).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        x.swap(i, j);
    }
    let olen: usize = g.out_shape().iter().product();
    let r = randn(&mut rng, olen, 1.0);
    let (mut y, mut am) = (vec![0.0; olen], vec![0u32; olen]);
    maxpool_forward(&g, &x, &mut y, &mut am).unwrap();
    let mut dx = vec![0.0; len];
    maxpool_backward(&g, &r, &am, &mut dx).unwrap();
    check_grad(name, &dx, &x, |x| {
        let (mut y, mut am) = (vec![0.0; olen], vec![0u32; olen]);
        maxpool_forward(&g, x, &mut y, &mut am).unwrap();
        dot64(&y, &r)
    });
}

#[test]
fn maxpool_grad_ceil_and_floor_with_pads() {
    let pads = pads(1, 0, 0, 1);
    let ceil = pool_spec(3, 2, pads, Rounding::Ceil);
    let g = PoolGeom::new(&ceil, 1, 1, 8, 9).unwrap();
    // rows: (8+1-3)/2 = 3 exactly, ceil = 4 with the last window clipped
    assert_eq!((g.oh, g.ow), (4, 5));
    maxpool_gradcheck("maxpool ceil pads N2", &ceil, 2, 3, 8, 9);
    maxpool_gradcheck(
        "maxpool floor pad1 N3",
        &pool_spec(3, 2, Pads::same(1), Rounding::Floor),
        3,
        2,
        7,
        6,
    );
    maxpool_gradcheck(
        "maxpool ceil 13 N1",
        &pool_spec(3, 2, Pads::default(), Rounding::Ceil),
        1,
        2,
        12,
        13,
    );
}

// ---------------------------------------------------------------- adaptive avg pool

#[test]
fn adaptive_avgpool_13_to_6() {
    let spec = avgpool_spec([6, 6]);
    let (n, c) = (2, 3);
    let g = AvgPoolGeom::new(&spec, n, c, 13, 13).unwrap();
    let mut rng = Rng::new(7);
    let x = randn(&mut rng, n * c * 169, 1.0);
    let mut y = vec![0.0; n * c * 36];
    adaptive_avgpool_forward(&g, &x, &mut y).unwrap();
    // output (0, 0) of the first plane averages rows 0..3 x cols 0..3
    let want00: f32 = (0..3)
        .flat_map(|h| (0..3).map(move |w| (h, w)))
        .map(|(h, w)| x[h * 13 + w])
        .sum::<f32>()
        / 9.0;
    assert_close("avgpool (0,0)", &y[..1], &[want00], 1e-6, 1e-6);
    // 6 -> 6 is the identity
    let gi = AvgPoolGeom::new(&spec, 1, 1, 6, 6).unwrap();
    let mut yi = vec![0.0; 36];
    adaptive_avgpool_forward(&gi, &x[..36], &mut yi).unwrap();
    assert_close("avgpool identity", &yi, &x[..36], 0.0, 0.0);
    let r = randn(&mut rng, y.len(), 1.0);
    let mut dx = vec![0.0; x.len()];
    adaptive_avgpool_backward(&g, &r, &mut dx).unwrap();
    check_grad("avgpool 13->6 dinp", &dx, &x, |x| {
        let mut y = vec![0.0; r.len()];
        adaptive_avgpool_forward(&g, x, &mut y).unwrap();
        dot64(&y, &r)
    });
    // a non-square case: 5x7 -> 3x4
    let g = AvgPoolGeom::new(&avgpool_spec([3, 4]), 1, 2, 5, 7).unwrap();
    let x = randn(&mut rng, 70, 1.0);
    let r = randn(&mut rng, 24, 1.0);
    let mut dx = vec![0.0; 70];
    adaptive_avgpool_backward(&g, &r, &mut dx).unwrap();
    check_grad("avgpool 5x7->3x4 dinp", &dx, &x, |x| {
        let mut y = vec![0.0; 24];
        adaptive_avgpool_forward(&g, x, &mut y).unwrap();
        dot64(&y, &r)
    });
}

// ---------------------------------------------------------------- linear

#[test]
fn linear_known_and_grad() {
    let g = LinearGeom::new(&linear_spec(3, 2), 1);
    let mut y = [0.0; 2];
    linear_forward(
        &g,
        &[1.0, 2.0, 3.0],
        &[1.0, 0.0, -1.0, 0.5, 0.5, 0.5],
        &[10.0, 20.0],
        &mut y,
    )
    .unwrap();
    assert_close("linear known", &y, &[8.0, 23.0], EXACT_RTOL, EXACT_ATOL);

    let g = LinearGeom::new(&linear_spec(7, 5), 3);
    let mut rng = Rng::new(8);
    let x = randn(&mut rng, 21, 1.0);
    let w = randn(&mut rng, 35, 0.5);
    let b = randn(&mut rng, 5, 0.5);
    let r = randn(&mut rng, 15, 1.0);
    let fwd = |x: &[f32], w: &[f32], b: &[f32]| {
        let mut y = vec![0.0; 15];
        linear_forward(&g, x, w, b, &mut y).unwrap();
        dot64(&y, &r)
    };
    let (mut dx, mut dw, mut db) = (vec![0.0; 21], vec![0.0; 35], vec![0.0; 5]);
    linear_backward(&g, &r, &x, &w, &mut dx, &mut dw, &mut db).unwrap();
    check_grad("linear dx", &dx, &x, |x| fwd(x, &w, &b));
    check_grad("linear dweight", &dw, &w, |w| fwd(&x, w, &b));
    check_grad("linear dbias", &db, &b, |b| fwd(&x, &w, b));
    assert!(matches!(
        linear_forward(&g, &x[..20], &w, &b, &mut [0.0; 15]),
        Err(Error::Shape { .. })
    ));
}

// ---------------------------------------------------------------- dropout

#[test]
fn dropout_hash_golden_values() {
    // Computed independently (Python, u32 wrapping arithmetic) for WGSL to reproduce.
    assert_eq!(pcg_hash(0), 129_708_002);
    assert_eq!(pcg_hash(1), 2_831_084_092);
    assert_eq!(pcg_hash(12345), 4_099_845_390);
    assert_eq!(pcg_hash(u32::MAX), 3_861_530_882);
    // seed 7, indices 0..4: pcg_hash(i ^ pcg_hash(7)) = 2158420637, 2809854175, 3686869381,
    // 925619080; >> 8 * 2^-24 = 0.5025, 0.6542, 0.8584, 0.2155
    let keep: Vec<bool> = (0..4).map(|i| dropout_keep(7, i, 0.5)).collect();
    assert_eq!(keep, vec![true, true, true, false]);
}

#[test]
fn dropout_statistics_and_seeds() {
    let len = 100_000;
    let x = vec![1.0f32; len];
    for p in [0.5f32, 0.2] {
        let mut y = vec![0.0; len];
        dropout_forward(p, 42, &x, &mut y).unwrap();
        let kept = y.iter().filter(|&&v| v != 0.0).count() as f32 / len as f32;
        let mean = y.iter().map(|&v| v as f64).sum::<f64>() as f32 / len as f32;
        // binomial std of the kept fraction is sqrt(p(1-p)/len) ~ 1.6e-3: 1% is > 6 sigma
        assert!((kept - (1.0 - p)).abs() < 0.01, "p {p}: kept {kept}");
        assert!(
            (mean - 1.0).abs() < 0.02,
            "p {p}: mean {mean} (inverted dropout keeps it ~1)"
        );
        assert!(y
            .iter()
            .all(|&v| v == 0.0 || (v - 1.0 / (1.0 - p)).abs() < 1e-6));
    }
    let mask = |seed: u32| -> Vec<bool> {
        (0..len as u32)
            .map(|i| dropout_keep(seed, i, 0.5))
            .collect()
    };
    assert_eq!(mask(3), mask(3), "same seed, same mask");
    let differ = mask(3)
        .iter()
        .zip(mask(4))
        .filter(|(a, b)| **a != *b)
        .count();
    // independent masks differ in 2 p (1 - p) = 50% of places
    assert!(
        (differ as f32 / len as f32 - 0.5).abs() < 0.02,
        "seeds 3 and 4 differ in {differ}"
    );
    assert_ne!(dropout_layer_seed(1, 18), dropout_layer_seed(1, 21));
    assert_ne!(dropout_layer_seed(1, 18), dropout_layer_seed(2, 18));
}

#[test]
fn dropout_grad_fixed_mask() {
    let mut rng = Rng::new(9);
    let x = randn(&mut rng, 60, 1.0);
    let r = randn(&mut rng, 60, 1.0);
    let (p, seed) = (0.3, 1234);
    let mut dx = vec![0.0; 60];
    dropout_backward(p, seed, &r, &mut dx).unwrap();
    check_grad("dropout dinp", &dx, &x, |x| {
        let mut y = vec![0.0; 60];
        dropout_forward(p, seed, x, &mut y).unwrap();
        dot64(&y, &r)
    });
    assert_err!(
        dropout_forward(1.0, 0, &x, &mut vec![0.0; 60]),
        Error::Arch(_)
    );
}

// ---------------------------------------------------------------- softmax, cross-entropy

#[test]
fn softmax_known_values_and_stability() {
    let ln2 = std::f32::consts::LN_2;
    let mut y = [0.0; 4];
    // 1000 + ln2 rounds in f32 (ulp 6e-5): the exact expectation uses the stored difference
    let big = 1000.0f32 + ln2;
    let e = ((big - 1000.0) as f64).exp();
    softmax_forward(2, 2, &[0.0, ln2, 1000.0, big], &mut y).unwrap();
    let want = [
        1.0 / 3.0,
        2.0 / 3.0,
        (1.0 / (1.0 + e)) as f32,
        (e / (1.0 + e)) as f32,
    ];
    assert_close(
        "softmax [0, ln2] and shifted by 1000",
        &y,
        &want,
        1e-6,
        1e-7,
    );
    softmax_forward(1, 4, &[-1e30, 0.0, 0.0, f32::MIN], &mut y).unwrap();
    assert_close("softmax extreme", &y, &[0.0, 0.5, 0.5, 0.0], 0.0, 1e-7);

    let (mut probs, mut losses) = ([0.0; 4], [0.0; 2]);
    let mean = softmax_xent_forward(
        2,
        2,
        &[0.0, ln2, 0.0, ln2],
        &[0, 1],
        &mut probs,
        &mut losses,
    )
    .unwrap();
    // -ln(1/3) = ln 3; -ln(2/3) = ln 1.5
    assert_close(
        "xent losses",
        &losses,
        &[3f32.ln(), 1.5f32.ln()],
        1e-6,
        1e-6,
    );
    assert_close(
        "xent mean",
        &[mean],
        &[(3f32.ln() + 1.5f32.ln()) / 2.0],
        1e-6,
        1e-6,
    );
    let mut d = [0.0; 4];
    softmax_xent_backward(2, 2, &probs, &[0, 1], &mut d).unwrap();
    assert_close(
        "xent grad",
        &d,
        &[
            (1.0 / 3.0 - 1.0) / 2.0,
            1.0 / 3.0,
            1.0 / 6.0,
            (2.0 / 3.0 - 1.0) / 2.0,
        ],
        1e-6,
        1e-6,
    );
    assert_err!(
        softmax_xent_forward(2, 2, &[0.0; 4], &[0, 2], &mut probs, &mut losses),
        Error::Label { label: 2, .. },
        "label out of range"
    );
}

#[test]
fn softmax_and_xent_grads() {
    let (n, k) = (3, 5);
    let mut rng = Rng::new(10);
    let x = randn(&mut rng, n * k, 2.0);
    let r = randn(&mut rng, n * k, 1.0);
    let mut y = vec![0.0; n * k];
    softmax_forward(n, k, &x, &mut y).unwrap();
    let mut dx = vec![0.0; n * k];
    softmax_backward(n, k, &r, &y, &mut dx).unwrap();
    check_grad("softmax dinp (JVP)", &dx, &x, |x| {
        let mut y = vec![0.0; n * k];
        softmax_forward(n, k, x, &mut y).unwrap();
        dot64(&y, &r)
    });
    let labels = [4, 0, 2];
    let (mut probs, mut losses) = (vec![0.0; n * k], vec![0.0; n]);
    softmax_xent_forward(n, k, &x, &labels, &mut probs, &mut losses).unwrap();
    let mut dl = vec![0.0; n * k];
    softmax_xent_backward(n, k, &probs, &labels, &mut dl).unwrap();
    check_grad("softmax+xent dlogits", &dl, &x, |x| {
        let (mut probs, mut losses) = (vec![0.0; n * k], vec![0.0; n]);
        softmax_xent_forward(n, k, x, &labels, &mut probs, &mut losses).unwrap();
        losses.iter().map(|&l| l as f64).sum::<f64>() / n as f64
    });
}

/// One SGD step in the paper's form against the same formula in f64, three steps so the
/// momentum term matters; a wrong sign or a dropped term is off by ~lr * |g| >> 1e-6.
#[test]
fn sgd_update_follows_the_papers_rule() {
    let opt = Sgd {
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 0.01,
    };
    let n = 37;
    let mut rng = Rng::new(1);
    let mut w = randn(&mut rng, n, 1.0);
    let mut v = vec![0.0f32; n];
    let (mut w64, mut v64): (Vec<f64>, Vec<f64>) =
        (w.iter().map(|&x| x as f64).collect(), vec![0.0; n]);
    for _ in 0..3 {
        let g = randn(&mut rng, n, 1.0);
        sgd_update(&opt, &mut w, &mut v, &g).unwrap();
        let (lr, mu, wd) = (opt.lr as f64, opt.momentum as f64, opt.weight_decay as f64);
        for i in 0..n {
            v64[i] = mu * v64[i] - wd * lr * w64[i] - lr * g[i] as f64;
            w64[i] += v64[i];
        }
    }
    let want: Vec<f32> = w64.iter().map(|&x| x as f32).collect();
    let wantv: Vec<f32> = v64.iter().map(|&x| x as f32).collect();
    // a few f32 roundings of O(1) values per step
    assert_close("sgd w", &w, &want, 1e-6, 1e-6);
    assert_close("sgd v", &v, &wantv, 1e-6, 1e-6);
    assert!(matches!(
        sgd_update(&opt, &mut w, &mut v, &[0.0; 3]),
        Err(Error::Shape { .. })
    ));
}

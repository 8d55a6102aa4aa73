//! The portable half of the test helpers: comparisons that print the worst element, seeded
//! random data and layer specs. Compiled for every target, the browser's wasm32 included
//! (tests/web.rs and the shared GPU cases in tests/gpu_cases use it there): nothing here
//! touches files, the environment, threads or clocks.

use alexnet::model::Params;
use alexnet::model::{self, AvgPoolSpec, ConvSpec, LinearSpec, LrnAlpha, LrnSpec, Pads, PoolSpec};
use alexnet::reference;
use alexnet::shape::Rounding;
use alexnet::tensor::{Rng, Tensor};

// ---------------------------------------------------------------- comparisons

/// Largest magnitude of `v` (0 for an empty slice).
pub fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0f32, |m, x| m.max(x.abs()))
}

/// The element violating `|got - want| <= atol + rtol * |want|` by the most, and how many
/// violate it. A non-finite value passes only when it equals its counterpart, and NaN
/// against NaN only when `nan_matches_nan`.
fn worst_violation(
    got: &[f32],
    want: &[f32],
    rtol: f32,
    atol: f32,
    nan_matches_nan: bool,
) -> (Option<usize>, usize) {
    let mut worst: Option<(usize, f32)> = None;
    let mut bad = 0usize;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let excess = if g.is_finite() && w.is_finite() {
            (g - w).abs() - atol - rtol * w.abs()
        } else if g == w || (nan_matches_nan && g.is_nan() && w.is_nan()) {
            -1.0
        } else {
            f32::INFINITY
        };
        if excess > 0.0 {
            bad += 1;
            if worst.is_none_or(|(_, e)| excess > e) {
                worst = Some((i, excess));
            }
        }
    }
    (worst.map(|(i, _)| i), bad)
}

fn check_close(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32, nan_matches_nan: bool) {
    assert_eq!(got.len(), want.len(), "{name}: lengths differ");
    let (worst, bad) = worst_violation(got, want, rtol, atol, nan_matches_nan);
    if let Some(i) = worst {
        let k = got.len().min(6);
        panic!(
            "{name}: {bad} of {} elements out of tolerance; worst element {i}: got {} want {} \
             (|diff| {:e}, rtol {rtol:e}, atol {atol:e})\n  first got  {:?}\n  first want {:?}",
            got.len(),
            got[i],
            want[i],
            (got[i] - want[i]).abs(),
            &got[..k],
            &want[..k]
        );
    }
}

/// `|got - want| <= atol + rtol * |want|` elementwise; a NaN on either side fails. On
/// failure prints the worst element (by excess over the tolerance), its index, both values,
/// the number of violations and the first values of each side.
pub fn assert_close(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    check_close(name, got, want, rtol, atol, false);
}

/// `assert_close`, except that NaN in both `got` and `want` at the same index passes
/// (the GPU kernels are checked to reproduce the CPU reference, NaNs included).
pub fn assert_close_nan_eq(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) {
    check_close(name, got, want, rtol, atol, true);
}

/// `assert_close` with no relative part and an absolute tolerance of `tol_of_max` times
/// the largest magnitude of `want`.
pub fn assert_close_of_max(name: &str, got: &[f32], want: &[f32], tol_of_max: f32) {
    assert_close(name, got, want, 0.0, tol_of_max * max_abs(want));
}

/// Prints the largest absolute difference of two equal-length slices, where it is, and the
/// largest magnitude of `want` (a diagnostic, never a check). Returns that difference.
pub fn print_max_diff(name: &str, got: &[f32], want: &[f32]) -> f32 {
    let (mut max_diff, mut max_i) = (0.0f32, 0usize);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        if g.is_finite() && w.is_finite() && (g - w).abs() > max_diff {
            (max_diff, max_i) = ((g - w).abs(), i);
        }
    }
    if !got.is_empty() {
        eprintln!(
            "{name}: max |diff| {max_diff:.3e} at {max_i} (got {} want {}, max |want| {:.3e})",
            got[max_i],
            want[max_i],
            max_abs(want)
        );
    }
    max_diff
}

/// Every tensor of `got` against `want` (the same names, in the same order, and shapes): each
/// within `atol_of_max` of its largest magnitude plus `rtol` of each element, a NaN failing;
/// prints each tensor's largest difference (a diagnostic) as it goes.
pub fn assert_params_close(what: &str, got: &Params, want: &Params, rtol: f32, atol_of_max: f32) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: tensor names"
    );
    for (name, w) in want {
        let g = &got[name];
        assert_eq!(g.shape, w.shape, "{what}: {name} shape");
        let name = format!("{what}: {name}");
        assert_close(
            &name,
            &g.data,
            &w.data,
            rtol,
            atol_of_max * max_abs(&w.data),
        );
        print_max_diff(&name, &g.data, &w.data);
    }
}

/// Multi-index of flat (C-order) index `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for (d, &n) in shape.iter().enumerate().rev() {
        idx[d] = i % n.max(1);
        i /= n.max(1);
    }
    idx
}

// ---------------------------------------------------------------- random data

/// `n` values drawn from N(0, std^2), continuing `rng`'s stream.
pub fn randn(rng: &mut Rng, n: usize, std: f32) -> Vec<f32> {
    let mut v = vec![0.0; n];
    rng.fill_normal(&mut v, std);
    v
}

/// `len` values drawn from N(0, std^2) by a fresh `Rng::new(seed)`.
pub fn random(len: usize, seed: u64, std: f32) -> Vec<f32> {
    randn(&mut Rng::new(seed), len, std)
}

/// A standard-normal `(n, C, H, W)` input for `arch`, from `Rng::new(seed)`.
pub fn random_input(arch: &model::Arch, n: usize, seed: u64) -> Tensor {
    let [c, h, w] = arch.input;
    Tensor::new(&[n, c, h, w], random(n * c * h * w, seed, 1.0)).unwrap()
}

// ---------------------------------------------------------------- the loss

/// `(N, K)` gradient of the mean cross-entropy of `labels` at `logits`, as the reference
/// computes it (softmax + cross-entropy forward, then its backward).
pub fn dlogits(logits: &Tensor, labels: &[usize]) -> Tensor {
    let (n, k) = (logits.shape[0], logits.shape[1]);
    let (mut probs, mut losses) = (vec![0.0; n * k], vec![0.0; n]);
    reference::softmax_xent_forward(n, k, &logits.data, labels, &mut probs, &mut losses).unwrap();
    let mut d = Tensor::zeros(&[n, k]);
    reference::softmax_xent_backward(n, k, &probs, labels, &mut d.data).unwrap();
    d
}

// ---------------------------------------------------------------- layer specs

/// `model::mini()` ending in a softmax layer `prob` (as `bvlc` and `paper` do).
pub fn mini_with_softmax() -> model::Arch {
    let mut arch = model::mini();
    let name = "prob".into();
    arch.layers.push(model::Layer::Softmax { name });
    arch
}

/// `Pads` in ONNX order: top, left, bottom, right.
pub fn pads(top: usize, left: usize, bottom: usize, right: usize) -> Pads {
    Pads {
        top,
        left,
        bottom,
        right,
    }
}

pub fn linear_spec(in_features: usize, out_features: usize) -> LinearSpec {
    let name = "fc".into();
    LinearSpec {
        name,
        in_features,
        out_features,
    }
}

pub fn lrn_spec(size: usize, alpha: f32, beta: f32, k: f32, alpha_mode: LrnAlpha) -> LrnSpec {
    let name = "lrn".into();
    LrnSpec {
        name,
        size,
        alpha,
        beta,
        k,
        alpha_mode,
    }
}

pub fn pool_spec(
    kernel: [usize; 2],
    stride: [usize; 2],
    pads: Pads,
    rounding: Rounding,
) -> PoolSpec {
    let name = "pool".into();
    PoolSpec {
        name,
        kernel,
        stride,
        pads,
        rounding,
    }
}

pub fn avgpool_spec(out: [usize; 2]) -> AvgPoolSpec {
    let name = "avgpool".into();
    AvgPoolSpec { name, out }
}

pub fn conv_spec(
    cin: usize,
    cout: usize,
    k: [usize; 2],
    s: [usize; 2],
    pads: Pads,
    groups: usize,
) -> ConvSpec {
    ConvSpec {
        name: "conv".into(),
        in_channels: cin,
        out_channels: cout,
        kernel: k,
        stride: s,
        pads,
        groups,
    }
}

/// Asserts that `$r` failed with an error matching `$pat` (an `alexnet::Error` pattern),
/// printing the error it got otherwise; `$msg` says what was wrong with the input.
#[macro_export]
macro_rules! assert_err {
    ($r:expr, $pat:pat) => {
        $crate::assert_err!($r, $pat, "")
    };
    ($r:expr, $pat:pat, $msg:expr) => {
        match $r {
            Err(e) => assert!(matches!(e, $pat), "{}: wrong error: {e:?}", $msg),
            Ok(_) => panic!("{}: expected an error", $msg),
        }
    };
}

//! Helpers shared by the native integration tests (`mod common;` in each test file).
//!
//! Only mechanics live here: every tolerance stays in the test file that uses it, next to
//! its justification. Each test crate uses a subset of these helpers, hence the
//! `dead_code` allowance.
#![cfg(not(target_arch = "wasm32"))]
#![allow(dead_code)]

use alexnet::gpu::GpuContext;
use alexnet::model::{self, ConvSpec, Pads};
use alexnet::tensor::{Rng, Tensor};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

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

// ---------------------------------------------------------------- layer specs

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

// ---------------------------------------------------------------- files

/// A float32 `.npy` file (C order) as a tensor; panics naming the file on any problem.
pub fn read_npy(path: &Path) -> Tensor {
    let fail = |e: &dyn std::fmt::Display| -> ! { panic!("{}: {e}", path.display()) };
    let bytes = std::fs::read(path).unwrap_or_else(|e| fail(&e));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| fail(&e));
    if npy.order() != npyz::Order::C {
        fail(&"Fortran-order array");
    }
    let shape: Vec<usize> = npy.shape().iter().map(|d| *d as usize).collect();
    let data: Vec<f32> = npy.into_vec().unwrap_or_else(|e| fail(&e));
    Tensor::new(&shape, data).unwrap_or_else(|e| fail(&e))
}

/// An integer `.npy` file (int64 or int32), as usize.
pub fn read_npy_ints(path: &Path) -> Vec<usize> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let descr = npy.dtype().descr();
    match descr.trim_matches('\'') {
        "<i8" => npy
            .into_vec::<i64>()
            .unwrap()
            .into_iter()
            .map(|v| v as usize)
            .collect(),
        "<i4" => npy
            .into_vec::<i32>()
            .unwrap()
            .into_iter()
            .map(|v| v as usize)
            .collect(),
        other => panic!("{}: dtype {other}, want int64 or int32", path.display()),
    }
}

// ---------------------------------------------------------------- GPU

static CTX: OnceLock<Option<GpuContext>> = OnceLock::new();

/// The shared GPU context, or `None` (with a loud message) when this machine has no adapter.
/// With `CI=true` a missing adapter is a failure: CI must not pass by skipping.
pub fn gpu() -> Option<&'static GpuContext> {
    CTX.get_or_init(|| {
        if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
            // lavapipe complains loudly without one; a private 0700 dir silences it
            let dir = std::env::temp_dir().join(format!("alexnet-xdg-{}", std::process::id()));
            if std::fs::create_dir_all(&dir).is_ok() {
                #[cfg(unix)]
                {
                    use std::os::unix::fs::PermissionsExt;
                    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));
                }
                std::env::set_var("XDG_RUNTIME_DIR", &dir);
            }
        }
        let t = Instant::now();
        match pollster::block_on(GpuContext::new()) {
            Ok(ctx) => {
                eprintln!(
                    "gpu: {:?}, max storage binding {} MiB, {:.2} s to create the device and \
                     compile all kernels",
                    ctx.report(),
                    ctx.limits.max_storage_buffer_binding_size >> 20,
                    t.elapsed().as_secs_f64()
                );
                Some(ctx)
            }
            Err(e) => {
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("CI=true and no usable GPU adapter: {e}");
                }
                eprintln!(
                    "\n!!!!!!!! SKIPPED: no usable GPU adapter ({e}).\n!!!!!!!! The WebGPU \
                     tests of {} did NOT run. Install mesa-vulkan-drivers (lavapipe); CI=true \
                     makes this a failure.\n",
                    env!("CARGO_CRATE_NAME")
                );
                None
            }
        }
    })
    .as_ref()
}

pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    pollster::block_on(f)
}

//! The native half of the test helpers: `.npy` files, the shared GPU context with its
//! `CI=true` rule, and `block_on`. Not compiled on wasm32 (no files, no environment, no
//! blocking there; tests/web.rs has its own context).

use alexnet::gpu::GpuContext;
use alexnet::tensor::Tensor;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Instant;

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
    let ints = |v: Vec<i64>| v.into_iter().map(|v| v as usize).collect();
    match descr.trim_matches('\'') {
        "<i8" => ints(npy.into_vec::<i64>().unwrap()),
        "<i4" => ints(
            npy.into_vec::<i32>()
                .unwrap()
                .into_iter()
                .map(i64::from)
                .collect(),
        ),
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

// ---------------------------------------------------------------- timing

/// Wall times of `runs` calls of `f`, in milliseconds.
fn wall_ms(runs: usize, mut f: impl FnMut()) -> Vec<f64> {
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e3
    };
    (0..runs).map(|_| time(&mut f)).collect()
}

/// Median wall time of `runs` calls of `f`, in milliseconds.
pub fn median_ms(runs: usize, f: impl FnMut()) -> f64 {
    let mut ms = wall_ms(runs, f);
    ms.sort_by(f64::total_cmp);
    ms[ms.len() / 2]
}

/// Wall time of the fastest of `runs` calls of `f`, in milliseconds.
pub fn best_ms(runs: usize, f: impl FnMut()) -> f64 {
    wall_ms(runs, f).into_iter().fold(f64::INFINITY, f64::min)
}

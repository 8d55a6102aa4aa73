//! Runs in headless Chromium (`wasm-pack test --headless --chrome -- --test web`): the same
//! core compiled to wasm32 gives the same answers as natively, and every GPU case of
//! tests/gpu_cases (forward and backward, also run natively by tests/gpu_forward.rs and
//! tests/gpu_backward.rs) passes on the browser's WebGPU (SwiftShader in headless Chromium).
//!
//! No adapter here is a failure, never a skip: the Chromium these tests are for always has
//! WebGPU (`--enable-unsafe-webgpu` in webdriver.json).
#![cfg(target_arch = "wasm32")]

mod common;
mod gpu_cases;

use common::{assert_close, assert_close_of_max, max_abs, random_input};

use alexnet::gpu::GpuContext;
use alexnet::model;
use alexnet::model::Model;
use alexnet::tensor::Tensor;
use std::cell::OnceCell;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

thread_local! {
    /// The one device every GPU test shares (created by the first; wasm is single-threaded
    /// and wasm-bindgen-test runs one test at a time). Leaked: it lives as long as the page.
    static WEBGPU: OnceCell<&'static GpuContext> = const { OnceCell::new() };
}

/// The shared WebGPU context; panics (fails the test) when the browser offers no adapter.
async fn webgpu() -> &'static GpuContext {
    if let Some(ctx) = WEBGPU.with(|c| c.get().copied()) {
        return ctx;
    }
    let t = js_sys::Date::now();
    let ctx = GpuContext::new().await.unwrap_or_else(|e| {
        panic!(
            "no usable WebGPU adapter in this browser ({e}): the GPU tests need Chromium \
             with --enable-unsafe-webgpu (webdriver.json); they never pass by skipping"
        )
    });
    console_log!(
        "webgpu: {:?}, max storage binding {} MiB, {:.2} s to create the device and compile \
         all kernels",
        ctx.report(),
        ctx.limits.max_storage_buffer_binding_size >> 20,
        (js_sys::Date::now() - t) / 1e3
    );
    let ctx: &'static GpuContext = Box::leak(Box::new(ctx));
    WEBGPU.with(|c| *c.get_or_init(|| ctx))
}

/// The browser wrapper of the shared GPU cases: `mod $module { #[wasm_bindgen_test] async fn
/// case() }` running `gpu_cases::$module::case` on the shared context, logging its wall time
/// when it passes (shown with `--nocapture`).
macro_rules! browser_tests {
    ($module:ident; $($case:ident),* $(,)?) => {
        mod $module {
            use wasm_bindgen_test::*;
            $(
                #[wasm_bindgen_test]
                async fn $case() {
                    let ctx = crate::webgpu().await;
                    let t = js_sys::Date::now();
                    crate::gpu_cases::$module::$case(ctx).await;
                    console_log!(
                        "{}::{}: {:.2} s",
                        stringify!($module),
                        stringify!($case),
                        (js_sys::Date::now() - t) / 1e3
                    );
                }
            )*
        }
    };
}

gpu_cases::forward_cases!(browser_tests);
gpu_cases::backward_cases!(browser_tests);

#[wasm_bindgen_test]
fn mini_forward_in_the_browser() {
    let m = Model::random(model::mini(), 7).unwrap();
    let x = random_input(&m.arch, 2, 3);
    let y = m.forward(&x).unwrap();
    assert_eq!(y.shape, vec![2, 10]);
    assert!(y.data.iter().all(|v| v.is_finite()));
    let fc7 = m.forward_to(&x, "fc7").unwrap();
    assert_eq!(fc7.shape, vec![2, 1024]);
}

#[wasm_bindgen_test]
fn photo_classifies_in_the_browser() {
    let m = Model::random(model::mini(), 7).unwrap();
    let photo = include_bytes!("../fixtures/photos/chelsea.png");
    let top = alexnet::classify::classify_bytes(&m, photo, 5, true).unwrap();
    assert_eq!(top.len(), 5);
    let sum: f32 = top.iter().map(|p| p.probability).sum();
    assert!(
        sum > 0.0 && sum <= 1.0 + 1e-5,
        "top-5 probabilities sum to {sum}"
    );
    assert_err!(
        alexnet::classify::classify_bytes(&m, b"not an image", 5, false),
        alexnet::Error::Image(_)
    );
}

fn npy(bytes: &[u8]) -> Tensor {
    let f = npyz::NpyFile::new(bytes).unwrap();
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    Tensor::new(&shape, f.into_vec::<f32>().unwrap()).unwrap()
}

/// Same tolerance and reasoning as `REF_RTOL` in tests/reference.rs: rounding-order
/// differences only, relative to the reference's largest magnitude.
const REF_RTOL: f32 = 1e-4;

/// `got` against onnxruntime's `want`: the same shape, and every element within `REF_RTOL` of
/// the largest magnitude of `want`.
fn assert_matches_ort(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert_close_of_max(what, &got.data, &want.data, REF_RTOL);
}

/// The committed mini bvlc-topology ONNX model (grouped conv, LRN, ceil pooling, Gemm,
/// softmax) imported and run in wasm equals onnxruntime's output, layer by layer.
#[wasm_bindgen_test]
fn onnx_fixture_matches_onnxruntime_in_the_browser() {
    let m = alexnet::io::load_bytes(include_bytes!("../fixtures/onnx/mini-bvlc.onnx")).unwrap();
    let x = npy(include_bytes!("../fixtures/onnx/mini-bvlc-input.npy"));
    assert_matches_ort(
        "prob",
        &m.forward(&x).unwrap(),
        &npy(include_bytes!("../fixtures/onnx/mini-bvlc-prob.npy")),
    );
    assert_matches_ort(
        "norm2",
        &m.forward_to(&x, "norm2").unwrap(),
        &npy(include_bytes!("../fixtures/onnx/mini-bvlc-norm2.npy")),
    );
    assert_matches_ort(
        "fc7",
        &m.forward_to(&x, "fc7").unwrap(),
        &npy(include_bytes!("../fixtures/onnx/mini-bvlc-fc7.npy")),
    );
    // and through our own safetensors writer and reader
    let again = alexnet::io::load_bytes(&alexnet::io::safetensors::save(&m).unwrap()).unwrap();
    assert_eq!(again.params, m.params);
}

/// WebGPU in the browser (SwiftShader under headless Chromium): the whole `mini` network's
/// every layer on the GPU equals the CPU reference. Tolerance as for whole networks in
/// tests/gpu_forward.rs (f32 sums in another order through eight layers).
#[wasm_bindgen_test]
async fn webgpu_forward_matches_reference_in_the_browser() {
    const NET_RTOL: f32 = 1e-3;
    let ctx = webgpu().await;
    let m = Model::random(model::mini(), 5).unwrap();
    let x = random_input(&m.arch, 3, 9);
    let plan = alexnet::gpu::GpuPlan::new(ctx, &m, 3).await.unwrap();
    let got = plan
        .forward_all(ctx, &x, alexnet::model::Mode::Eval)
        .await
        .unwrap();
    let want = m.forward_all(&x, alexnet::model::Mode::Eval).unwrap();
    assert_eq!(got.len(), want.len(), "number of layers");
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let what = format!("layer {i} ({})", m.arch.layers[i].name());
        assert_eq!(g.shape, w.shape, "{what}: shape");
        let atol = NET_RTOL * max_abs(&w.data).max(1e-6);
        assert_close(&what, &g.data, &w.data, 0.0, atol);
    }
}

//! Runs in headless Chromium (`wasm-pack test --headless --chrome -- --test web`): the same
//! core compiled to wasm32 gives the same answers as natively.
#![cfg(target_arch = "wasm32")]

use alexnet::model;
use alexnet::net::Model;
use alexnet::tensor::Tensor;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn mini_forward_in_the_browser() {
    let m = Model::random(model::mini(), 7).unwrap();
    let mut x = Tensor::zeros(&[2, 3, 32, 32]);
    alexnet::tensor::Rng::new(3).fill_normal(&mut x.data, 1.0);
    let y = m.forward(&x).unwrap();
    assert_eq!(y.shape, vec![2, 10]);
    assert!(y.data.iter().all(|v| v.is_finite()));
    let fc7 = m.forward_to(&x, "fc7").unwrap();
    assert_eq!(fc7.shape, vec![2, 512]);
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
    assert!(alexnet::classify::classify_bytes(&m, b"not an image", 5, false).is_err());
}

fn npy(bytes: &[u8]) -> Tensor {
    let f = npyz::NpyFile::new(bytes).unwrap();
    let shape: Vec<usize> = f.shape().iter().map(|&d| d as usize).collect();
    Tensor::new(&shape, f.into_vec::<f32>().unwrap()).unwrap()
}

/// Same tolerance and reasoning as `REF_RTOL` in tests/reference.rs: rounding-order
/// differences only, relative to the reference's largest magnitude.
const REF_RTOL: f32 = 1e-4;

fn assert_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    let max_abs = want.data.iter().fold(0f32, |m, v| m.max(v.abs()));
    let (mut worst, mut at) = (0f32, 0);
    for (i, (g, w)) in got.data.iter().zip(&want.data).enumerate() {
        let e = if (g - w).is_nan() {
            f32::INFINITY
        } else {
            (g - w).abs()
        };
        if e > worst {
            worst = e;
            at = i;
        }
    }
    assert!(
        worst <= REF_RTOL * max_abs,
        "{what}: worst |ours - ORT| = {worst:e} at flat index {at} (ours {}, ORT {}), max|ORT| {max_abs}",
        got.data[at],
        want.data[at]
    );
}

/// The committed mini bvlc-topology ONNX model (grouped conv, LRN, ceil pooling, Gemm,
/// softmax) imported and run in wasm equals onnxruntime's output, layer by layer.
#[wasm_bindgen_test]
fn onnx_fixture_matches_onnxruntime_in_the_browser() {
    let m = alexnet::io::load_bytes(include_bytes!("../fixtures/onnx/mini-bvlc.onnx")).unwrap();
    let x = npy(include_bytes!("../fixtures/onnx/mini-bvlc-input.npy"));
    assert_close(
        "prob",
        &m.forward(&x).unwrap(),
        &npy(include_bytes!("../fixtures/onnx/mini-bvlc-prob.npy")),
    );
    assert_close(
        "norm2",
        &m.forward_to(&x, "norm2").unwrap(),
        &npy(include_bytes!("../fixtures/onnx/mini-bvlc-norm2.npy")),
    );
    assert_close(
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
    let ctx = alexnet::gpu::GpuContext::new()
        .await
        .expect("headless Chromium with --enable-unsafe-webgpu offers an adapter");
    let m = Model::random(model::mini(), 5).unwrap();
    let mut x = Tensor::zeros(&[3, 3, 32, 32]);
    alexnet::tensor::Rng::new(9).fill_normal(&mut x.data, 1.0);
    let plan = alexnet::gpu::GpuModel::new(&ctx, &m, 3).await.unwrap();
    let got = plan
        .forward_all(&ctx, &x, alexnet::net::Mode::Eval)
        .await
        .unwrap();
    let want = m.forward_all(&x, alexnet::net::Mode::Eval).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        let max_abs = w.data.iter().fold(0f32, |a, v| a.max(v.abs()));
        let (mut worst, mut at) = (0f32, 0);
        for (j, (a, b)) in g.data.iter().zip(&w.data).enumerate() {
            let e = if (a - b).is_nan() {
                f32::INFINITY
            } else {
                (a - b).abs()
            };
            if e > worst {
                worst = e;
                at = j;
            }
        }
        assert!(
            g.shape == w.shape && worst <= NET_RTOL * max_abs.max(1e-6),
            "layer {} ({}): worst {worst:e} at {at}, max|ref| {max_abs}",
            i,
            m.arch.layers[i].name()
        );
    }
}

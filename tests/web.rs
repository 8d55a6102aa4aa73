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

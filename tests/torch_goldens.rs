//! Forward AND backward of every CPU reference layer, and of the whole `mini` network,
//! against PyTorch: an oracle from outside this code base for the backward passes, which
//! are otherwise only checked by central differences.
//!
//! The goldens (fixtures/torch/, ~250 KB) are made by `tools/gen_torch_goldens.py`
//! (`/usr/bin/python3 tools/gen_torch_goldens.py` with Debian 12's python3-torch 1.13.1;
//! fixtures/torch/manifest.json records the versions, seeds and every case's parameters).
//! torch computed them in float64 from the same float32 inputs we read, then rounded them to
//! float32 once. Each case holds the inputs, parameters, a random upstream gradient `dy`, and
//! torch's `y`, `dx`, `dw`, `db`.
//!
//! Every comparison reports the worst element (index, ours, torch) and the error relative to
//! the golden tensor's largest magnitude; run with `--nocapture` to see them all.
#![cfg(not(target_arch = "wasm32"))]

mod common;
use alexnet::model::{AvgPoolGeom, ConvGeom, LinearGeom, LrnGeom, PoolGeom};
use common::{avgpool_spec, conv_spec, linear_spec, lrn_spec, pads, pool_spec};
use common::{read_npy, read_npy_ints, unravel};

use alexnet::model::{self, Layer, LrnAlpha, Pads};
use alexnet::reference;
use alexnet::shape::Rounding;
use alexnet::{Model, Tensor};
use std::path::PathBuf;

/// Conv and linear: ours accumulates every dot product in f64 from the same f32 inputs and
/// rounds once, torch computes in f64 and the golden is rounded once, so both are the exact
/// result within one or two f32 roundings: at most 2^-24 of an element, i.e. <= 6e-8 of
/// max-abs (measured: 0 to 6e-8; run with --nocapture). 1e-5 leaves 100x for other
/// platforms' rounding while a wrong tap, pad, group or transposition moves values by 1e-1
/// of max-abs or more.
const TOL_F64_ACCUM: f64 = 1e-5;

/// Max pool (gradients routed exactly, summed in f32 over at most four overlapping windows),
/// adaptive average pool (f32 sums of at most 3x3 values), softmax (f64 sums): a few f32
/// roundings (measured: <= 1e-7 of max-abs). Same margin as above.
const TOL_POOL_SOFTMAX: f64 = 1e-5;

/// LRN sums its window's squares in f32 and uses f32 `powf` (libm's, which may differ by
/// an ulp between platforms), forward and backward, so a few f32 roundings per element,
/// amplified a little by `scale^-beta` and the backward's difference of two terms
/// (measured: <= 1.5e-7 of max-abs). 1e-5 leaves >50x; with alpha 1e-1 the alpha
/// convention (a factor n) or a shifted window change values by 1e-2 of max-abs or more.
const TOL_LRN: f64 = 1e-5;

/// The whole mini network: f32 activations through 8 conv/fc layers, two f32 LRNs and
/// ReLU gates, compared with a float64 torch; each layer's rounding (~1e-7) compounds and
/// is amplified a little by the layers after it (measured: <= 2.4e-7 of max-abs for the
/// logits, the loss and every gradient). 1e-4 leaves room for a ReLU or a max whose input
/// is within rounding of a tie flipping on another platform, while a miswired layer, a
/// wrong flatten order or a dropped gradient path is O(1).
const TOL_NET: f64 = 1e-4;

/// Full-tensor f64 sums of the network's gradients (to catch errors outside the sampled
/// indices): |sum(ours) - sum(torch)| and |sum|ours| - sum|torch|| relative to sum|torch|,
/// and sum of squares relative to itself. Rounding gives <= 1e-7 (measured).
const TOL_NET_SUMS: f64 = 1e-4;

fn dir(case: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/torch")
        .join(case)
}

/// A float32 golden.
fn load(case: &str, name: &str) -> Tensor {
    read_npy(&dir(case).join(format!("{name}.npy")))
}

/// An integer golden (labels: int64, sampled indices: int32), as usize.
fn load_ints(case: &str, name: &str) -> Vec<usize> {
    read_npy_ints(&dir(case).join(format!("{name}.npy")))
}

fn manifest() -> serde_json::Value {
    let path = dir("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// Compares `ours` with the golden `want`: the largest |ours - want| relative to max|want|
/// must be at most `tol`. Prints the error either way and panics with the worst element.
/// Returns the relative error.
fn check(what: &str, ours: &[f32], want: &Tensor, tol: f64) -> f64 {
    check_located(what, ours, want, tol, |i| {
        format!("{:?} (flat {i})", unravel(i, &want.shape))
    })
}

/// `check`, with `locate` naming element `i` of `want` in the failure message (sampled
/// gradients: the index in the whole tensor).
fn check_located(
    what: &str,
    ours: &[f32],
    want: &Tensor,
    tol: f64,
    locate: impl Fn(usize) -> String,
) -> f64 {
    assert_eq!(
        ours.len(),
        want.data.len(),
        "{what}: {} values, golden {:?}",
        ours.len(),
        want.shape
    );
    let max_abs = want.data.iter().fold(0f64, |m, &v| m.max((v as f64).abs()));
    let (mut worst, mut at) = (0f64, 0usize);
    for (i, (&o, &w)) in ours.iter().zip(&want.data).enumerate() {
        let e = (o as f64 - w as f64).abs();
        // NaN anywhere must fail
        if e > worst || e.is_nan() {
            worst = if e.is_nan() { f64::INFINITY } else { e };
            at = i;
        }
    }
    let rel = worst / max_abs.max(f64::MIN_POSITIVE);
    eprintln!(
        "{what:<40} rel err {rel:.2e} (abs {worst:.2e}, max-abs {max_abs:.3e}, tol {tol:.0e})"
    );
    assert!(
        rel <= tol,
        "{what}: error {rel:.3e} of max-abs {max_abs:.4e} exceeds {tol:.0e}; worst element \
         at {}: ours {:.8e}, torch {:.8e}",
        locate(at),
        ours[at],
        want.data[at]
    );
    rel
}

/// `check` of `ours` against the golden `name` of `case`.
fn check_golden(case: &str, name: &str, ours: &[f32], tol: f64) -> f64 {
    check(&format!("{case} {name}"), ours, &load(case, name), tol)
}

fn shape4(t: &Tensor) -> [usize; 4] {
    match t.shape.as_slice() {
        &[n, c, h, w] => [n, c, h, w],
        s => panic!("expected a 4-D golden, got {s:?}"),
    }
}

/// One `#[test] fn name() { case(args) }` per `name: case(args);` line (doc comments go with
/// the test below them).
macro_rules! golden_tests {
    ($($(#[$doc:meta])* $name:ident: $case:ident($($arg:expr),* $(,)?);)*) => {$(
        $(#[$doc])*
        #[test]
        fn $name() {
            $case($($arg),*);
        }
    )*};
}

// ---------------------------------------------------------------- conv2d

fn conv_case(case: &str, stride: usize, pads: Pads, groups: usize) {
    let (x, w, b, dy) = (
        load(case, "x"),
        load(case, "w"),
        load(case, "b"),
        load(case, "dy"),
    );
    let [n, c_in, h, wd] = shape4(&x);
    let [c_out, _, kh, kw] = shape4(&w);
    let spec = conv_spec(c_in, c_out, [kh, kw], [stride, stride], pads, groups);
    let g = ConvGeom::new(&spec, n, h, wd).unwrap();
    let y_want = load(case, "y");
    assert_eq!(g.out_shape().to_vec(), y_want.shape, "{case}: output shape");
    let mut y = vec![0.0; y_want.len()];
    reference::conv2d_forward(&g, &x.data, &w.data, &b.data, &mut y).unwrap();
    check(&format!("{case} y"), &y, &y_want, TOL_F64_ACCUM);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    reference::conv2d_backward(&g, &dy.data, &x.data, &w.data, &mut dx, &mut dw, &mut db).unwrap();
    check_golden(case, "dx", &dx, TOL_F64_ACCUM);
    check_golden(case, "dw", &dw, TOL_F64_ACCUM);
    check_golden(case, "db", &db, TOL_F64_ACCUM);
}

golden_tests! {
    /// N=3, 4 -> 6 channels, 13x11, 5x5 stride 4 pad 2, groups 2 (OW rounds down).
    conv_stride4_pad2_groups2: conv_case("conv_s4_p2_g2", 4, Pads::same(2), 2);
    /// N=1, 3x3 stride 1 groups 2, pads top/left 1, bottom/right 2 (torch: F.pad then conv).
    conv_asymmetric_pads_groups2: conv_case("conv_asym_pad_g2", 1, pads(1, 1, 2, 2), 2);
    /// conv1-like: 11x11 stride 4 pad 2 on 29x29 (rounds down).
    conv_11x11_stride4: conv_case("conv_11x11_s4", 4, Pads::same(2), 1);
}

// ---------------------------------------------------------------- LRN

fn lrn_case(case: &str, size: usize, alpha: f32, k: f32, alpha_mode: LrnAlpha) {
    let (x, dy) = (load(case, "x"), load(case, "dy"));
    let [n, c, h, w] = shape4(&x);
    let g = LrnGeom::new(&lrn_spec(size, alpha, 0.75, k, alpha_mode), n, c, h, w).unwrap();
    let (mut y, mut scale, mut dx) = (vec![0.0; x.len()], vec![0.0; x.len()], vec![0.0; x.len()]);
    reference::lrn_forward(&g, &x.data, &mut y, &mut scale).unwrap();
    check_golden(case, "y", &y, TOL_LRN);
    reference::lrn_backward(&g, &dy.data, &x.data, &y, &scale, &mut dx).unwrap();
    check_golden(case, "dx", &dx, TOL_LRN);
}

golden_tests! {
    /// AlexNet's own constants (alpha 1e-4 / n, k 2): the normalisation barely matters here.
    lrn_n5_alpha1e4_k2_over_n: lrn_case("lrn_n5_a1e-4_k2", 5, 1e-4, 2.0, LrnAlpha::OverN);
    lrn_n5_alpha1e1_k2_over_n: lrn_case("lrn_n5_a1e-1_k2", 5, 1e-1, 2.0, LrnAlpha::OverN);
    lrn_n5_alpha1e1_k1_over_n: lrn_case("lrn_n5_a1e-1_k1", 5, 1e-1, 1.0, LrnAlpha::OverN);
    lrn_n3_alpha1e1_k1_over_n: lrn_case("lrn_n3_a1e-1_k1", 3, 1e-1, 1.0, LrnAlpha::OverN);
    /// The paper's convention (alpha not divided by n): torch was given alpha * n.
    lrn_paper_n5_alpha1e1_k2_raw: lrn_case("lrn_paper_n5_a1e-1_k2", 5, 1e-1, 2.0, LrnAlpha::Raw);
    lrn_paper_n3_alpha1e1_k1_raw: lrn_case("lrn_paper_n3_a1e-1_k1", 3, 1e-1, 1.0, LrnAlpha::Raw);
}

// ---------------------------------------------------------------- max pool

fn maxpool_case(case: &str, pad: usize, rounding: Rounding) {
    let (x, dy) = (load(case, "x"), load(case, "dy"));
    let [n, c, h, w] = shape4(&x);
    let spec = pool_spec([3, 3], [2, 2], Pads::same(pad), rounding);
    let g = PoolGeom::new(&spec, n, c, h, w).unwrap();
    let y_want = load(case, "y");
    assert_eq!(g.out_shape().to_vec(), y_want.shape, "{case}: output shape");
    let (mut y, mut argmax, mut dx) = (
        vec![0.0; y_want.len()],
        vec![0u32; y_want.len()],
        vec![0.0; x.len()],
    );
    reference::maxpool_forward(&g, &x.data, &mut y, &mut argmax).unwrap();
    check(&format!("{case} y"), &y, &y_want, TOL_POOL_SOFTMAX);
    reference::maxpool_backward(&g, &dy.data, &argmax, &mut dx).unwrap();
    check_golden(case, "dx", &dx, TOL_POOL_SOFTMAX);
}

golden_tests! {
    /// 8x9 -> 3x4 (floor) and 4x4 (ceil); with padding 1: 4x4 and 5x5.
    maxpool_3_2_floor: maxpool_case("maxpool_floor", 0, Rounding::Floor);
    maxpool_3_2_ceil: maxpool_case("maxpool_ceil", 0, Rounding::Ceil);
    maxpool_3_2_floor_pad1: maxpool_case("maxpool_floor_pad1", 1, Rounding::Floor);
    maxpool_3_2_ceil_pad1: maxpool_case("maxpool_ceil_pad1", 1, Rounding::Ceil);
}

// ---------------------------------------------------------------- adaptive average pool

fn avgpool_case(case: &str) {
    let (x, dy, y_want) = (load(case, "x"), load(case, "dy"), load(case, "y"));
    let [n, c, h, w] = shape4(&x);
    let [_, _, oh, ow] = shape4(&y_want);
    let g = AvgPoolGeom::new(&avgpool_spec([oh, ow]), n, c, h, w).unwrap();
    let (mut y, mut dx) = (vec![0.0; y_want.len()], vec![0.0; x.len()]);
    reference::adaptive_avgpool_forward(&g, &x.data, &mut y).unwrap();
    check(&format!("{case} y"), &y, &y_want, TOL_POOL_SOFTMAX);
    reference::adaptive_avgpool_backward(&g, &dy.data, &mut dx).unwrap();
    check_golden(case, "dx", &dx, TOL_POOL_SOFTMAX);
}

golden_tests! {
    /// Overlapping windows (13 is not a multiple of 6).
    adaptive_avgpool_13x13_to_6x6: avgpool_case("avgpool_13x13_to_6x6");
    adaptive_avgpool_5x7_to_3x3: avgpool_case("avgpool_5x7_to_3x3");
}

// ---------------------------------------------------------------- linear

/// N=3, 7 -> 5.
#[test]
fn linear_3x7_to_5() {
    let case = "linear";
    let (x, w, b, dy) = (
        load(case, "x"),
        load(case, "w"),
        load(case, "b"),
        load(case, "dy"),
    );
    let g = LinearGeom::new(&linear_spec(x.shape[1], w.shape[0]), x.shape[0]);
    let mut y = vec![0.0; g.n * g.out_features];
    reference::linear_forward(&g, &x.data, &w.data, &b.data, &mut y).unwrap();
    check("linear y", &y, &load(case, "y"), TOL_F64_ACCUM);
    let (mut dx, mut dw, mut db) = (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; b.len()]);
    reference::linear_backward(&g, &dy.data, &x.data, &w.data, &mut dx, &mut dw, &mut db).unwrap();
    check("linear dx", &dx, &load(case, "dx"), TOL_F64_ACCUM);
    check("linear dw", &dw, &load(case, "dw"), TOL_F64_ACCUM);
    check("linear db", &db, &load(case, "db"), TOL_F64_ACCUM);
}

// ---------------------------------------------------------------- softmax, cross-entropy

/// Mean cross-entropy over N=4 of 10 classes: probabilities, per-example losses, the mean
/// and `dlogits` (torch's gradient of the mean).
#[test]
fn softmax_cross_entropy() {
    let case = "softmax_xent";
    let logits = load(case, "logits");
    let labels = load_ints(case, "labels");
    let (n, k) = (logits.shape[0], logits.shape[1]);
    let (mut probs, mut losses, mut dz) = (vec![0.0; n * k], vec![0.0; n], vec![0.0; n * k]);
    let loss =
        reference::softmax_xent_forward(n, k, &logits.data, &labels, &mut probs, &mut losses)
            .unwrap();
    check(
        "softmax_xent probs",
        &probs,
        &load(case, "probs"),
        TOL_POOL_SOFTMAX,
    );
    check(
        "softmax_xent losses",
        &losses,
        &load(case, "losses"),
        TOL_POOL_SOFTMAX,
    );
    check(
        "softmax_xent loss",
        &[loss],
        &load(case, "loss"),
        TOL_POOL_SOFTMAX,
    );
    reference::softmax_xent_backward(n, k, &probs, &labels, &mut dz).unwrap();
    check(
        "softmax_xent dlogits",
        &dz,
        &load(case, "dlogits"),
        TOL_POOL_SOFTMAX,
    );
}

/// Plain softmax and its Jacobian-vector product.
#[test]
fn softmax_forward_backward() {
    let case = "softmax";
    let (x, dy) = (load(case, "x"), load(case, "dy"));
    let (n, k) = (x.shape[0], x.shape[1]);
    let (mut y, mut dx) = (vec![0.0; n * k], vec![0.0; n * k]);
    reference::softmax_forward(n, k, &x.data, &mut y).unwrap();
    check("softmax y", &y, &load(case, "y"), TOL_POOL_SOFTMAX);
    reference::softmax_backward(n, k, &dy.data, &y, &mut dx).unwrap();
    check("softmax dx", &dx, &load(case, "dx"), TOL_POOL_SOFTMAX);
}

// ---------------------------------------------------------------- the mini network

/// `mini()` with both dropout layers' p set to 0: in training mode the mask keeps every
/// element and the scale is 1/(1-0) = 1, so `loss_and_grads` is the eval-mode network
/// torch differentiated (src/reference/dropout.rs: keep iff u >= p, u in [0, 1)).
fn mini_without_dropout() -> model::Arch {
    let mut arch = model::mini();
    let mut dropouts = 0;
    for layer in &mut arch.layers {
        if let Layer::Dropout(d) = layer {
            d.p = 0.0;
            dropouts += 1;
        }
    }
    assert_eq!(dropouts, 2, "mini() should have two dropout layers");
    arch
}

/// The whole mini network (eval mode, He-normal random weights `Model::random(mini(), seed)`,
/// batch 2 of 3x32x32, fixed labels): logits, loss and the gradient of every parameter.
#[test]
fn mini_network_loss_and_gradients() {
    let case = "mini";
    let man = manifest();
    let m = &man["cases"]["mini"];
    let seed = m["weights_seed"]
        .as_u64()
        .expect("manifest: mini weights_seed");
    let model = Model::random(mini_without_dropout(), seed).unwrap();

    // The weights torch used were regenerated in Python from our Rng: check they are ours.
    let ptab = m["params"].as_object().expect("manifest: mini params");
    assert_eq!(ptab.len(), model.params.len(), "parameter count");
    for (name, t) in &model.params {
        let e = &ptab[name.as_str()];
        let shape: Vec<usize> = serde_json::from_value(e["shape"].clone()).unwrap();
        assert_eq!(t.shape, shape, "{name}: shape");
        let first: Vec<f32> = serde_json::from_value(e["weight_first"].clone()).unwrap();
        assert_eq!(
            &t.data[..first.len()],
            &first[..],
            "{name}: Model::random's values differ from the ones the goldens were made \
             with (has tensor::Rng or Model::random's init changed? then regenerate with \
             tools/gen_torch_goldens.py)"
        );
        let sum: f64 = t.data.iter().map(|&v| v as f64).sum();
        let sum_sq: f64 = t.data.iter().map(|&v| (v as f64).powi(2)).sum();
        let (want_sum, want_sq) = (
            e["weight_sum"].as_f64().unwrap(),
            e["weight_sum_sq"].as_f64().unwrap(),
        );
        assert!(
            (sum - want_sum).abs() <= 1e-9 * want_sq.sqrt() * (t.len() as f64).sqrt()
                && (sum_sq - want_sq).abs() <= 1e-12 * want_sq,
            "{name}: weight sums {sum} / {sum_sq}, goldens made with {want_sum} / {want_sq}"
        );
    }

    let x = load(case, "x");
    let labels = load_ints(case, "labels");
    let logits = model.forward(&x).unwrap();
    check("mini logits", &logits.data, &load(case, "logits"), TOL_NET);

    // p = 0: the seed does not matter
    let (loss, grads) = model.loss_and_grads(&x, &labels, 7).unwrap();
    check("mini loss", &[loss], &load(case, "loss"), TOL_NET);
    assert_eq!(grads.len(), model.params.len(), "a gradient per parameter");
    for (name, g) in &grads {
        let e = &ptab[name.as_str()];
        let want = load(case, &format!("{name}.grad"));
        if e["stored"] == "full" {
            assert_eq!(g.shape, want.shape, "{name}: gradient shape");
            check(&format!("mini d{name}"), &g.data, &want, TOL_NET);
        } else {
            let idx = load_ints(case, &format!("{name}.idx"));
            let ours: Vec<f32> = idx.iter().map(|&i| g.data[i]).collect();
            let shape = &g.shape;
            check_located(
                &format!("mini d{name} (sampled)"),
                &ours,
                &want,
                TOL_NET,
                |i| format!("{:?} (flat {}, sample {i})", unravel(idx[i], shape), idx[i]),
            );
        }
        // the whole tensor, through its sums
        let sum: f64 = g.data.iter().map(|&v| v as f64).sum();
        let sum_abs: f64 = g.data.iter().map(|&v| (v as f64).abs()).sum();
        let sum_sq: f64 = g.data.iter().map(|&v| (v as f64).powi(2)).sum();
        let (ws, wa, wq) = (
            e["grad_sum"].as_f64().unwrap(),
            e["grad_sum_abs"].as_f64().unwrap(),
            e["grad_sum_sq"].as_f64().unwrap(),
        );
        let errs = [
            (sum - ws).abs() / wa,
            (sum_abs - wa).abs() / wa,
            (sum_sq - wq).abs() / wq,
        ];
        let worst = errs.iter().fold(0f64, |m, &v| m.max(v));
        eprintln!(
            "{:<40} sums rel err {worst:.2e} (tol {TOL_NET_SUMS:.0e})",
            format!("mini d{name}")
        );
        assert!(
            worst <= TOL_NET_SUMS,
            "{name}: gradient sums (sum, sum|g|, sum g^2) ours {sum:.8e} {sum_abs:.8e} \
             {sum_sq:.8e}, torch {ws:.8e} {wa:.8e} {wq:.8e}"
        );
    }
}

//! The WebGPU forward path against the CPU reference (`alexnet::cpu`, `Model::forward*`):
//! every kernel on seeded random inputs with odd shapes (stride 4, pad 2, asymmetric pads,
//! groups 2, sizes that are not multiples of the workgroup or tile size, batch 1 and 3),
//! every conv and fc kernel (each against the CPU and against the naive conv), the fc weight
//! split, and whole networks (`mini` at batch 1 and 3 with every kernel choice, `bvlc` and
//! `torchvision` at batch 1, whose fc6 is split on a 128 MiB-binding device).

use super::{avgpool_geoms, conv_cases, lrn_input, option_variants, pool_geoms, run_read};
use super::{dropout_cases, RowBlocks};
use super::{AVGPOOL_ATOL, AVGPOOL_RTOL, DOT_ATOL_OF_MAX, DOT_RTOL, EXACT};
use super::{CONV_ALGOS, LINEAR_ALGOS, LRN_ALGOS, LRN_CASES, NET_ATOL_OF_MAX, NET_RTOL};
use crate::common::{assert_close_nan_eq, linear_spec, max_abs, random, random_input};
use alexnet::model::{ConvGeom, LinearGeom};

use alexnet::gpu::ops::{self, ConvAlgo};
use alexnet::gpu::plan::GpuOptions;
use alexnet::gpu::{GpuContext, GpuPlan};
use alexnet::model;
use alexnet::model::{Mode, Model};
use alexnet::reference;
use alexnet::tensor::Tensor;

// ---- tolerances (and EXACT, AVGPOOL_*, DOT_*, NET_* in gpu_cases/mod.rs) ----

/// LRN: the sum of 5 squares matches, but WGSL's `pow` (exp2(log2) with a few ulp of error)
/// differs from Rust's `powf`.
pub const LRN_RTOL: f32 = 1e-5;
pub const LRN_ATOL: f32 = 1e-6;
/// Softmax: f32 exp and sums on the GPU, f64 on the CPU; K up to 1000 terms.
pub const SOFTMAX_RTOL: f32 = 1e-5;
pub const SOFTMAX_ATOL: f32 = 1e-7;

// ---- convolution ----

/// Runs one conv on the GPU with `algo` and returns its output.
#[allow(clippy::too_many_arguments)]
async fn gpu_conv(
    ctx: &GpuContext,
    g: &ConvGeom,
    algo: ConvAlgo,
    relu: bool,
    x: &[f32],
    w: &[f32],
    b: &[f32],
) -> Vec<f32> {
    let out_len: usize = g.out_shape().iter().product();
    let xb = ctx.upload("x", x).unwrap();
    let wb = ctx.upload("w", w).unwrap();
    let bb = ctx.upload("b", b).unwrap();
    let ob = ctx.storage("out", out_len).unwrap();
    let d = ops::conv2d(ctx, g, algo, relu, &xb, &wb, &bb, &ob).unwrap();
    run_read(ctx, &[&d], &ob, out_len).await
}

/// Every conv kernel, with and without the fused ReLU, against the CPU; and each against the
/// first of `CONV_ALGOS` (the naive kernel, the GPU's own oracle).
pub async fn conv_every_algo_matches_cpu_on_odd_shapes(ctx: &GpuContext) {
    let cases = conv_cases();
    for (i, (what, spec, n, h, w)) in cases.into_iter().enumerate() {
        let g = ConvGeom::new(&spec, n, h, w).unwrap();
        let x = random(g.inp_shape().iter().product(), 10 + i as u64, 1.0);
        let wt = random(g.weight_shape().iter().product(), 20 + i as u64, 0.2);
        let b = random(g.c_out, 30 + i as u64, 0.1);
        let mut want = vec![0.0; g.out_shape().iter().product()];
        reference::conv2d_forward(&g, &x, &wt, &b, &mut want).unwrap();
        let atol = DOT_ATOL_OF_MAX * max_abs(&want);
        // fused ReLU: the same values clamped at 0
        let relu_want: Vec<f32> = want.iter().map(|&v| v.max(0.0)).collect();
        let mut outputs = Vec::new();
        for algo in CONV_ALGOS {
            let got = gpu_conv(ctx, &g, algo, false, &x, &wt, &b).await;
            assert_close_nan_eq(
                &format!("conv {algo:?}: {what}"),
                &got,
                &want,
                DOT_RTOL,
                atol,
            );
            let fused = gpu_conv(ctx, &g, algo, true, &x, &wt, &b).await;
            assert_close_nan_eq(
                &format!("conv {algo:?} + relu: {what}"),
                &fused,
                &relu_want,
                DOT_RTOL,
                atol,
            );
            outputs.push((algo, got));
        }
        let (oracle, oracle_out) = &outputs[0];
        for (algo, got) in &outputs[1..] {
            assert_close_nan_eq(
                &format!("conv {algo:?} vs {oracle:?}: {what}"),
                got,
                oracle_out,
                DOT_RTOL,
                atol,
            );
        }
    }
}

// ---- fully connected ----

/// Every fc kernel, with and without ReLU, at batch 1, 3 and 70, with the weight whole and
/// in 37-row blocks (fc6's split on a small device).
pub async fn linear_every_algo_matches_cpu_with_and_without_split(ctx: &GpuContext) {
    let spec = linear_spec(301, 130);
    for n in [1, 3, 70] {
        let g = LinearGeom::new(&spec, n);
        let x = random(n * 301, 40 + n as u64, 1.0);
        let w = random(130 * 301, 41, 0.08);
        let b = random(130, 42, 0.1);
        let mut want = vec![0.0; n * 130];
        reference::linear_forward(&g, &x, &w, &b, &mut want).unwrap();
        let atol = DOT_ATOL_OF_MAX * max_abs(&want);
        let xb = ctx.upload("x", &x).unwrap();
        let bb = ctx.upload("b", &b).unwrap();
        let yb = ctx.storage("y", n * 130).unwrap();
        // whole matrix, and 37-row blocks (4 blocks, the last one short): fc6's split
        for max_bytes in [u64::MAX, 37 * 301 * 4] {
            let w_blocks = RowBlocks::upload(ctx, "w", &w, 301, max_bytes);
            let wb = w_blocks.weight_blocks();
            for algo in LINEAR_ALGOS {
                for relu in [false, true] {
                    let ds = ops::linear(ctx, &g, algo, relu, &xb, &wb, &bb, &yb).unwrap();
                    let refs: Vec<_> = ds.iter().collect();
                    let got = run_read(ctx, &refs, &yb, n * 130).await;
                    let want_r: Vec<f32> = if relu {
                        want.iter().map(|v| v.max(0.0)).collect()
                    } else {
                        want.clone()
                    };
                    assert_close_nan_eq(
                        &format!(
                            "linear {algo:?} batch {n}, {} blocks, relu {relu}",
                            wb.len()
                        ),
                        &got,
                        &want_r,
                        DOT_RTOL,
                        atol,
                    );
                }
            }
        }
    }
    assert_eq!(
        ops::row_blocks(4096, 9216, 128 << 20).unwrap(),
        vec![(0, 3640), (3640, 456)]
    );
}

// ---- elementwise and pooling ----

pub async fn relu_dropout_softmax_match_cpu(ctx: &GpuContext) {
    let len = 3 * 1000 + 17;
    let x = random(len, 50, 1.0);
    let xb = ctx.upload("x", &x).unwrap();
    let yb = ctx.storage("y", len).unwrap();

    let mut want = vec![0.0; len];
    reference::relu_forward(&x, &mut want).unwrap();
    let d = ops::relu(ctx, len, &xb, &yb).unwrap();
    let got = run_read(ctx, &[&d], &yb, len).await;
    assert_close_nan_eq("relu", &got, &want, EXACT, EXACT);

    for (p, seed) in dropout_cases() {
        reference::dropout_forward(p, seed, &x, &mut want).unwrap();
        let d = ops::dropout(ctx, len, p, seed, &xb, &yb).unwrap();
        let got = run_read(ctx, &[&d], &yb, len).await;
        let name = format!("dropout p {p} seed {seed}");
        assert_close_nan_eq(&name, &got, &want, EXACT, EXACT);
    }

    for (n, k) in [(3, 1000), (1, 5), (2, 1)] {
        let x = random(n * k, 51 + k as u64, 3.0);
        let xb = ctx.upload("x", &x).unwrap();
        let yb = ctx.storage("y", n * k).unwrap();
        let mut want = vec![0.0; n * k];
        reference::softmax_forward(n, k, &x, &mut want).unwrap();
        let d = ops::softmax(ctx, n, k, &xb, &yb).unwrap();
        let got = run_read(ctx, &[&d], &yb, n * k).await;
        assert_close_nan_eq(
            &format!("softmax {n}x{k}"),
            &got,
            &want,
            SOFTMAX_RTOL,
            SOFTMAX_ATOL,
        );
    }
}

pub async fn elementwise_grid_folds_past_65535_workgroups(ctx: &GpuContext) {
    // 65,535 * 256 + 1000 elements: one more row of workgroups than a 1-D dispatch allows.
    let len = 65_535 * 256 + 1000;
    let x: Vec<f32> = (0..len)
        .map(|i| if i % 3 == 0 { -(i as f32) } else { i as f32 })
        .collect();
    let xb = ctx.upload("x", &x).unwrap();
    let yb = ctx.storage("y", len).unwrap();
    let d = ops::relu(ctx, len, &xb, &yb).unwrap();
    assert_eq!(
        d.workgroups[1], 2,
        "expected a 2-D dispatch, got {:?}",
        d.workgroups
    );
    let got = run_read(ctx, &[&d], &yb, len).await;
    let want: Vec<f32> = x.iter().map(|&v| v.max(0.0)).collect();
    assert_close_nan_eq("relu over 65535 workgroups", &got, &want, EXACT, EXACT);
}

pub async fn lrn_matches_cpu_both_conventions(ctx: &GpuContext) {
    for case in LRN_CASES {
        let (g, x, what) = lrn_input(case);
        let len = x.len();
        let (mut want, mut want_scale) = (vec![0.0; len], vec![0.0; len]);
        reference::lrn_forward(&g, &x, &mut want, &mut want_scale).unwrap();
        let xb = ctx.upload("x", &x).unwrap();
        let ob = ctx.storage("out", len).unwrap();
        let sb = ctx.storage("scale", len).unwrap();
        for algo in LRN_ALGOS {
            let d = ops::lrn(ctx, &g, algo, &xb, &ob, &sb).unwrap();
            let got = ctx.run(&[&d], &[(&ob, len), (&sb, len)]).await.unwrap();
            for (part, got, want) in [("out", &got[0], &want), ("scale", &got[1], &want_scale)] {
                let name = format!("lrn {algo:?} {what} {part}");
                assert_close_nan_eq(&name, got, want, LRN_RTOL, LRN_ATOL);
            }
        }
    }
}

pub async fn maxpool_and_avgpool_match_cpu(ctx: &GpuContext) {
    for (what, g) in pool_geoms() {
        let x = random(g.n * g.c * g.h * g.w, 70, 1.0);
        let out_len: usize = g.out_shape().iter().product();
        let (mut want, mut want_arg) = (vec![0.0; out_len], vec![0u32; out_len]);
        reference::maxpool_forward(&g, &x, &mut want, &mut want_arg).unwrap();
        let xb = ctx.upload("x", &x).unwrap();
        let ob = ctx.storage("out", out_len).unwrap();
        let ab = ctx.storage("argmax", out_len).unwrap();
        let d = ops::maxpool(ctx, &g, &xb, &ob, &ab).unwrap();
        let got = run_read(ctx, &[&d], &ob, out_len).await;
        assert_close_nan_eq(&format!("maxpool {what}"), &got, &want, EXACT, EXACT);
        let arg = ctx.read_u32(&ab, out_len).await.unwrap();
        assert_eq!(arg, want_arg, "maxpool {what}: argmax");
    }
    for (what, g) in avgpool_geoms() {
        let x = random(g.n * g.c * g.h * g.w, 80, 1.0);
        let out_len: usize = g.out_shape().iter().product();
        let mut want = vec![0.0; out_len];
        reference::adaptive_avgpool_forward(&g, &x, &mut want).unwrap();
        let xb = ctx.upload("x", &x).unwrap();
        let ob = ctx.storage("out", out_len).unwrap();
        let d = ops::avgpool(ctx, &g, &xb, &ob).unwrap();
        let got = run_read(ctx, &[&d], &ob, out_len).await;
        let name = format!("avgpool {what}");
        assert_close_nan_eq(&name, &got, &want, AVGPOOL_RTOL, AVGPOOL_ATOL);
    }
}

// ---- whole networks ----

/// Every layer's output of `got` against `want` with the whole-network tolerance.
pub fn compare_layers(what: &str, model: &Model, got: &[Tensor], want: &[Tensor]) {
    assert_eq!(got.len(), want.len(), "{what}: number of layers");
    for ((l, g), w) in model.layers().iter().zip(got).zip(want) {
        assert_eq!(g.shape, w.shape, "{what}: {} shape", l.name());
        assert_close_nan_eq(
            &format!("{what}: layer {}", l.name()),
            &g.data,
            &w.data,
            NET_RTOL,
            NET_ATOL_OF_MAX * max_abs(&w.data),
        );
    }
}

/// `got` against `want` with the whole-network tolerance.
fn assert_net_close(what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.shape, want.shape, "{what}: shape");
    assert_close_nan_eq(
        what,
        &got.data,
        &want.data,
        NET_RTOL,
        NET_ATOL_OF_MAX * max_abs(&want.data),
    );
}

/// `mini` at batch 1 and 3 under every kernel choice (`option_variants`; fc6 in 3 blocks
/// for the split), every layer in eval and training mode, `forward` and `forward_to`.
pub async fn mini_network_matches_cpu_every_option_batch_1_and_3_eval_and_train(ctx: &GpuContext) {
    let model = Model::random(model::mini(), 5).unwrap();
    for n in [1, 3] {
        let x = random_input(&model.arch, n, 100 + n as u64);
        let train = Mode::Train { seed: 1234 };
        let want_eval = model.forward_all(&x, Mode::Eval).unwrap();
        let want_train = model.forward_all(&x, train).unwrap();
        let want_last = model.forward(&x).unwrap();
        let want_p2 = model.forward_to(&x, "pool2").unwrap();
        // mini's fc6 is 1024 x 1440 (5.9 MB): 1 MiB blocks split it in 6
        for (opt, opts) in option_variants(1 << 20) {
            let what = format!("mini batch {n} {opt}");
            let gm = GpuPlan::with_options(ctx, &model, n, &opts).await.unwrap();
            let got = gm.forward_all(ctx, &x, Mode::Eval).await.unwrap();
            compare_layers(&format!("{what} eval"), &model, &got, &want_eval);
            let got = gm.forward_all(ctx, &x, train).await.unwrap();
            compare_layers(&format!("{what} train"), &model, &got, &want_train);
            let last = gm.forward(ctx, &x).await.unwrap();
            assert_net_close(&format!("{what} forward"), &last, &want_last);
            let p2 = gm.forward_to(ctx, &x, "pool2").await.unwrap();
            assert_net_close(&format!("{what} forward_to pool2"), &p2, &want_p2);
        }
    }
    // the planned batch is enforced
    let gm = GpuPlan::new(ctx, &model, 2).await.unwrap();
    crate::assert_err!(
        gm.forward(ctx, &random_input(&model.arch, 3, 1)).await,
        alexnet::Error::Shape { .. } | alexnet::Error::Gpu(_)
    );
}

/// fc6's weight in bytes (4096 x 9216 f32) in `bvlc` and `torchvision`.
pub const FC6_BYTES: u64 = 4096 * 9216 * 4;

/// A big network at batch 1 with the default kernels: every layer against the CPU; fc6 must
/// be split where the device's storage binding is smaller than it. Returns the model and the
/// input (for a check of another plan).
async fn big_network_batch_1_matches_cpu(
    ctx: &GpuContext,
    name: &str,
    arch: model::Arch,
) -> (Model, Tensor, Vec<Tensor>) {
    let model = Model::random(arch, 7).unwrap();
    let x = random_input(&model.arch, 1, 200);
    let gm = GpuPlan::new(ctx, &model, 1).await.unwrap();
    let blocks = gm.weight_blocks("fc6").unwrap();
    if ctx.limits.max_storage_buffer_binding_size < FC6_BYTES {
        assert!(blocks >= 2, "{name}: fc6 must be split on this device");
    }
    let want = model.forward_all(&x, Mode::Eval).unwrap();
    let got = gm.forward_all(ctx, &x, Mode::Eval).await.unwrap();
    compare_layers(&format!("{name} batch 1"), &model, &got, &want);
    (model, x, want)
}

/// `bvlc` at batch 1 (default kernels), then with fc6 forced into 4 blocks.
pub async fn bvlc_batch_1_matches_cpu_with_fc6_split(ctx: &GpuContext) {
    let (model, x, want) = big_network_batch_1_matches_cpu(ctx, "bvlc", model::bvlc()).await;
    let opts = GpuOptions {
        max_weight_block: Some(FC6_BYTES / 4),
        ..Default::default()
    };
    let gm4 = GpuPlan::with_options(ctx, &model, 1, &opts).await.unwrap();
    assert_eq!(gm4.weight_blocks("fc6").unwrap(), 4);
    let y4 = gm4.forward(ctx, &x).await.unwrap();
    assert_net_close("bvlc, fc6 in 4 blocks", &y4, want.last().unwrap());
}

/// `torchvision` at batch 1 (default kernels; adaptive average pool, no LRN).
pub async fn torchvision_batch_1_matches_cpu_with_fc6_split(ctx: &GpuContext) {
    big_network_batch_1_matches_cpu(ctx, "torchvision", model::torchvision()).await;
}

/// The page's GPU session: the logits and fc7 read back together match the CPU, any layer of
/// any image of the last run reads back alone, and a destroyed device (as after a driver
/// reset) is re-created with the model re-uploaded, the run still giving the same answers.
/// It makes its own device (`_ctx` is the shared one, which it must not destroy).
pub async fn session_reads_layers_back_and_recovers_from_a_lost_device(_ctx: &GpuContext) {
    use alexnet::gpu::GpuSession;
    let model = Model::random(model::mini(), 9).unwrap();
    let x = random_input(&model.arch, 2, 77);
    let want = model.forward_all(&x, Mode::Eval).unwrap();
    let last = model.arch.layers.len() - 1;
    let fc7 = alexnet::inspect::feature_layer(&model.arch).unwrap();
    let conv2 = model.arch.layer_index("conv2").unwrap();
    let mut s = GpuSession::new().await.unwrap();
    crate::assert_err!(
        s.read_image(conv2, 0).await,
        alexnet::Error::Gpu(_),
        "nothing ran yet"
    );

    let out = s.forward_read(&model, &x, &[last, fc7]).await.unwrap();
    assert!(out.recovered.is_none());
    assert_net_close("session logits", &out.tensors[0], &want[last]);
    assert_net_close("session fc7", &out.tensors[1], &want[fc7]);
    // image 1's conv2 maps alone: the second half of the CPU's batch
    let one = s.read_image(conv2, 1).await.unwrap();
    let per = want[conv2].data.len() / 2;
    assert_eq!(one.shape[0], 1);
    assert_eq!(&one.shape[1..], &want[conv2].shape[1..]);
    let want1 = Tensor::new(&one.shape, want[conv2].data[per..].to_vec()).unwrap();
    assert_net_close("session conv2 of image 1", &one, &want1);
    crate::assert_err!(
        s.read_image(conv2, 2).await,
        alexnet::Error::OutOfRange {
            index: 2,
            len: 2,
            ..
        },
        "batch is 2"
    );
    crate::assert_err!(
        s.forward_read(&model, &x, &[last + 1]).await,
        alexnet::Error::OutOfRange { .. }
    );

    s.lose_device();
    let out = s.forward_read(&model, &x, &[last]).await.unwrap();
    let note = out
        .recovered
        .expect("the lost device must be reported as recovered");
    assert!(note.contains("re-created"), "{note}");
    assert_net_close("logits after recovery", &out.tensors[0], &want[last]);
    // and the device works on from there
    let out = s.forward_read(&model, &x, &[fc7]).await.unwrap();
    assert!(out.recovered.is_none());
    assert_net_close("fc7 after recovery", &out.tensors[0], &want[fc7]);
}

//! The WebGPU backward path and optimiser against the CPU reference (`alexnet::cpu`,
//! `Model::loss_and_grads`): every backward kernel on seeded random inputs with odd shapes
//! (stride 4, pad 2, groups 2, asymmetric pads, sizes that are not multiples of the workgroup
//! size, batch 1 and 3), the fused softmax + cross-entropy, the SGD update against an
//! independent f64 evaluation of the paper's formula, and (with `GpuTrainer`) whole training
//! steps on `mini` under every kernel choice.
//!
//! Each comparison prints its worst element natively (run with `--nocapture` to see them;
//! stderr goes nowhere on wasm32); a failure prints the worst element, the count of
//! violations and the first values.

use super::{avgpool_geoms, conv_cases, lrn_input, option_variants, pool_geoms, run_read};
use super::{dropout_cases, RowBlocks};
use super::{AVGPOOL_ATOL, AVGPOOL_RTOL, DOT_ATOL_OF_MAX, DOT_RTOL, EXACT};
use super::{CONV_ALGOS, LRN_ALGOS, LRN_CASES, NET_ATOL_OF_MAX, NET_RTOL};
use crate::common::{assert_close_nan_eq, assert_params_close, linear_spec, max_abs};
use crate::common::{print_max_diff, random, random_input};
use alexnet::model::{ConvGeom, LinearGeom, Params};

use std::sync::OnceLock;

use alexnet::gpu::ops::{self, Sgd};
use alexnet::gpu::{GpuContext, GpuTrainer};
use alexnet::model::{self, Layer};
use alexnet::model::{Model, Saved, Trace};
use alexnet::reference;
use alexnet::tensor::Tensor;

// ---- helpers ----
//
// Tolerances: EXACT, AVGPOOL_*, DOT_* and NET_* in gpu_cases/mod.rs, the others beside their
// cases.

/// `common::assert_close_nan_eq`, then prints the largest absolute difference, where it is
/// and the largest magnitude of `want` (the measurements quoted above come from these).
/// Returns the largest absolute difference.
fn assert_close(name: &str, got: &[f32], want: &[f32], rtol: f32, atol: f32) -> f32 {
    assert_close_nan_eq(name, got, want, rtol, atol);
    print_max_diff(name, got, want)
}

/// A u32 buffer (stored through f32 bit patterns, as `GpuContext::upload` takes f32).
fn upload_u32(ctx: &GpuContext, label: &str, v: &[u32]) -> wgpu::Buffer {
    let bits: Vec<f32> = v.iter().map(|&u| f32::from_bits(u)).collect();
    ctx.upload(label, &bits).unwrap()
}

// ---- convolution ----

pub async fn conv_backward_matches_cpu_on_odd_shapes(ctx: &GpuContext) {
    let cases = conv_cases();
    for (i, (what, spec, n, h, w)) in cases.into_iter().enumerate() {
        let g = ConvGeom::new(&spec, n, h, w).unwrap();
        let in_len: usize = g.inp_shape().iter().product();
        let w_len: usize = g.weight_shape().iter().product();
        let out_len: usize = g.out_shape().iter().product();
        let x = random(in_len, 10 + i as u64, 1.0);
        let wt = random(w_len, 20 + i as u64, 0.2);
        let dout = random(out_len, 30 + i as u64, 1.0);
        let (mut dx, mut dw, mut db) = (vec![0.0; in_len], vec![0.0; w_len], vec![0.0; g.c_out]);
        reference::conv2d_backward(&g, &dout, &x, &wt, &mut dx, &mut dw, &mut db).unwrap();

        let xb = ctx.upload("x", &x).unwrap();
        let wb = ctx.upload("w", &wt).unwrap();
        let db_ = ctx.upload("dout", &dout).unwrap();
        // garbage in the outputs: the kernels must overwrite, not accumulate
        let gdx = ctx.upload("dx", &vec![7.0; in_len]).unwrap();
        let gdw = ctx.upload("dw", &vec![7.0; w_len]).unwrap();
        let gdb = ctx.upload("db", &vec![7.0; g.c_out]).unwrap();
        for algo in CONV_ALGOS {
            let ds = ops::conv2d_backward(ctx, &g, algo, &db_, &xb, &wb, &gdx, &gdw, &gdb).unwrap();
            let refs: Vec<_> = ds.iter().collect();
            let got = ctx
                .run(&refs, &[(&gdx, in_len), (&gdw, w_len), (&gdb, g.c_out)])
                .await
                .unwrap();
            for (part, got, want) in [
                ("dx", &got[0], &dx),
                ("dw", &got[1], &dw),
                ("db", &got[2], &db),
            ] {
                assert_close(
                    &format!("conv backward {algo:?} {part}: {what}"),
                    got,
                    want,
                    DOT_RTOL,
                    DOT_ATOL_OF_MAX * max_abs(want),
                );
            }
            // the next algorithm must overwrite these too
            ctx.write(&gdx, &vec![7.0; in_len]);
            ctx.write(&gdw, &vec![7.0; w_len]);
        }
    }
}

// ---- fully connected ----

pub async fn linear_backward_matches_cpu_with_and_without_split(ctx: &GpuContext) {
    let spec = linear_spec(301, 130);
    for n in [1, 3] {
        let g = LinearGeom::new(&spec, n);
        let (ni, no) = (spec.in_features, spec.out_features);
        let x = random(n * ni, 40 + n as u64, 1.0);
        let wt = random(no * ni, 41, 0.1);
        let dy = random(n * no, 42 + n as u64, 1.0);
        let (mut dx, mut dw, mut db) = (vec![0.0; n * ni], vec![0.0; no * ni], vec![0.0; no]);
        reference::linear_backward(&g, &dy, &x, &wt, &mut dx, &mut dw, &mut db).unwrap();
        // one block, and blocks of 50 rows (50 + 50 + 30) as a small device would split it
        for max_bytes in [u64::MAX, 50 * ni as u64 * 4] {
            let w_blocks = RowBlocks::upload(ctx, "w", &wt, ni, max_bytes);
            let wb = w_blocks.weight_blocks();
            // garbage in the outputs: the kernels must overwrite, not accumulate
            let dw_blocks = RowBlocks::upload(ctx, "dw", &vec![7.0; no * ni], ni, max_bytes);
            let (dwbufs, blocks) = (&dw_blocks.bufs, &dw_blocks.blocks);
            let dwrefs: Vec<&wgpu::Buffer> = dwbufs.iter().collect();
            let xb = ctx.upload("x", &x).unwrap();
            let dyb = ctx.upload("dy", &dy).unwrap();
            let dxb = ctx.upload("dx", &vec![7.0; n * ni]).unwrap();
            let dbb = ctx.upload("db", &vec![7.0; no]).unwrap();
            let ds = ops::linear_backward(ctx, &g, &dyb, &xb, &wb, &dxb, &dwrefs, &dbb).unwrap();
            let refs: Vec<_> = ds.iter().collect();
            let mut outs = vec![(&dxb, n * ni), (&dbb, no)];
            outs.extend(
                dwbufs
                    .iter()
                    .zip(blocks)
                    .map(|(b, &(_, rows))| (b, rows * ni)),
            );
            let got = ctx.run(&refs, &outs).await.unwrap();
            let what = format!("linear backward batch {n}, {} block(s)", blocks.len());
            let got_dw: Vec<f32> = got[2..].concat();
            for (part, got, want) in [
                ("dx", &got[0], &dx),
                ("db", &got[1], &db),
                ("dw", &got_dw, &dw),
            ] {
                assert_close(
                    &format!("{what} {part}"),
                    got,
                    want,
                    DOT_RTOL,
                    DOT_ATOL_OF_MAX * max_abs(want),
                );
            }
        }
    }
}

// ---- elementwise ----

pub async fn relu_and_dropout_backward_match_cpu(ctx: &GpuContext) {
    let len = 3 * 1000 + 17;
    let x = random(len, 50, 1.0);
    let dout = random(len, 51, 1.0);
    let xb = ctx.upload("x", &x).unwrap();
    let db = ctx.upload("dout", &dout).unwrap();
    let mut want = vec![0.0; len];
    let dxb = ctx.upload("dx", &vec![7.0; len]).unwrap();
    reference::relu_backward(&dout, &x, &mut want).unwrap();
    let d = ops::relu_backward(ctx, len, &db, &xb, &dxb).unwrap();
    let got = run_read(ctx, &[&d], &dxb, len).await;
    assert_close("relu backward", &got, &want, EXACT, EXACT);

    for (p, seed) in dropout_cases() {
        ctx.write(&dxb, &vec![7.0; len]); // the kernel must overwrite the last one's output
        reference::dropout_backward(p, seed, &dout, &mut want).unwrap();
        let d = ops::dropout_backward(ctx, len, p, seed, &db, &dxb).unwrap();
        let got = run_read(ctx, &[&d], &dxb, len).await;
        let name = format!("dropout backward p {p} seed {seed}");
        assert_close(&name, &got, &want, EXACT, EXACT);
    }

    let d = ops::fill(ctx, len - 5, 0.0, &dxb).unwrap();
    let got = run_read(ctx, &[&d], &dxb, len).await;
    assert!(
        got[..len - 5].iter().all(|&v| v == 0.0),
        "fill: not all zero"
    );
    assert_eq!(got[len - 5..], want[len - 5..], "fill wrote past its count");
}

/// LRN backward: the same f32 sums as the CPU, but WGSL's `pow` (exp2(log2), a few ulp) and
/// division differ from Rust's, and the two terms of `dx` can cancel: 1e-5 relative plus 1e-5
/// of the gradient's largest magnitude.
pub const LRN_RTOL: f32 = 1e-5;
pub const LRN_ATOL_OF_MAX: f32 = 1e-5;
pub async fn lrn_backward_matches_cpu_both_conventions(ctx: &GpuContext) {
    for case in LRN_CASES {
        let (g, x, what) = lrn_input(case);
        let len = x.len();
        let dout = random(len, 61, 1.0);
        let (mut out, mut scale) = (vec![0.0; len], vec![0.0; len]);
        reference::lrn_forward(&g, &x, &mut out, &mut scale).unwrap();
        let mut want = vec![0.0; len];
        reference::lrn_backward(&g, &dout, &x, &out, &scale, &mut want).unwrap();
        let bufs: Vec<_> = [&dout, &x, &out, &scale, &vec![7.0; len]]
            .iter()
            .map(|v| ctx.upload("lrn", v).unwrap())
            .collect();
        for algo in LRN_ALGOS {
            let d = ops::lrn_backward(
                ctx, &g, algo, &bufs[0], &bufs[1], &bufs[2], &bufs[3], &bufs[4],
            )
            .unwrap();
            let got = run_read(ctx, &[&d], &bufs[4], len).await;
            assert_close(
                &format!("lrn backward {algo:?} {what}"),
                &got,
                &want,
                LRN_RTOL,
                LRN_ATOL_OF_MAX * max_abs(&want),
            );
            ctx.write(&bufs[4], &vec![7.0; len]);
        }
    }
}

// ---- pooling ----

pub async fn maxpool_and_avgpool_backward_match_cpu(ctx: &GpuContext) {
    for (i, (what, g)) in pool_geoms().into_iter().enumerate() {
        let in_len = g.n * g.c * g.h * g.w;
        // values rounded to a coarse grid: many ties, so the argmax tie rule matters
        let x: Vec<f32> = random(in_len, 70 + i as u64, 2.0)
            .iter()
            .map(|v| v.round())
            .collect();
        let out_len: usize = g.out_shape().iter().product();
        let (mut out, mut arg) = (vec![0.0; out_len], vec![0u32; out_len]);
        reference::maxpool_forward(&g, &x, &mut out, &mut arg).unwrap();
        let dout = random(out_len, 71 + i as u64, 1.0);
        let mut want = vec![0.0; in_len];
        reference::maxpool_backward(&g, &dout, &arg, &mut want).unwrap();
        // the GPU forward's own argmax feeds the GPU backward
        let xb = ctx.upload("x", &x).unwrap();
        let ob = ctx.storage("out", out_len).unwrap();
        let ab = ctx.storage("argmax", out_len).unwrap();
        let doutb = ctx.upload("dout", &dout).unwrap();
        let dxb = ctx.upload("dx", &vec![7.0; in_len]).unwrap();
        let fwd = ops::maxpool(ctx, &g, &xb, &ob, &ab).unwrap();
        let bwd = ops::maxpool_backward(ctx, &g, &doutb, &ab, &dxb).unwrap();
        let got = ctx
            .run(&[&fwd, &bwd], &[(&dxb, in_len)])
            .await
            .unwrap()
            .remove(0);
        assert_close(
            &format!("maxpool backward {what}"),
            &got,
            &want,
            EXACT,
            EXACT,
        );
        // and with the CPU's argmax uploaded
        let ab = upload_u32(ctx, "argmax", &arg);
        let bwd = ops::maxpool_backward(ctx, &g, &doutb, &ab, &dxb).unwrap();
        let got = run_read(ctx, &[&bwd], &dxb, in_len).await;
        assert_close(
            &format!("maxpool backward {what} (cpu argmax)"),
            &got,
            &want,
            EXACT,
            EXACT,
        );
    }
    for (what, g) in avgpool_geoms() {
        let in_len = g.n * g.c * g.h * g.w;
        let out_len: usize = g.out_shape().iter().product();
        let dout = random(out_len, 80, 1.0);
        let mut want = vec![0.0; in_len];
        reference::adaptive_avgpool_backward(&g, &dout, &mut want).unwrap();
        let doutb = ctx.upload("dout", &dout).unwrap();
        let dxb = ctx.upload("dx", &vec![7.0; in_len]).unwrap();
        let d = ops::avgpool_backward(ctx, &g, &doutb, &dxb).unwrap();
        let got = run_read(ctx, &[&d], &dxb, in_len).await;
        let name = format!("avgpool backward {what}");
        assert_close(&name, &got, &want, AVGPOOL_RTOL, AVGPOOL_ATOL);
    }
}

// ---- loss and optimiser ----

/// Softmax cross-entropy: f32 exp and workgroup-tree sums on the GPU, f64 on the CPU, K up to
/// 1000 terms.
pub const XENT_RTOL: f32 = 1e-5;
pub const XENT_ATOL: f32 = 1e-6;
pub async fn softmax_xent_matches_cpu(ctx: &GpuContext) {
    for (n, k) in [(3, 1000), (1, 10), (3, 7), (2, 1)] {
        let z = random(n * k, 90 + k as u64, 3.0);
        let labels: Vec<usize> = (0..n).map(|r| (r * 7 + 3) % k).collect();
        let (mut probs, mut losses, mut dz) = (vec![0.0; n * k], vec![0.0; n], vec![0.0; n * k]);
        reference::softmax_xent_forward(n, k, &z, &labels, &mut probs, &mut losses).unwrap();
        reference::softmax_xent_backward(n, k, &probs, &labels, &mut dz).unwrap();
        let zb = ctx.upload("z", &z).unwrap();
        let lb = ops::upload_labels(ctx, k, &labels).unwrap();
        let lossb = ctx.storage("losses", n).unwrap();
        let dzb = ctx.storage("dz", n * k).unwrap();
        let d = ops::softmax_xent(ctx, n, k, &zb, &lb, &lossb, &dzb).unwrap();
        let got = ctx.run(&[&d], &[(&lossb, n), (&dzb, n * k)]).await.unwrap();
        assert_close(
            &format!("xent {n}x{k} losses"),
            &got[0],
            &losses,
            XENT_RTOL,
            XENT_ATOL,
        );
        assert_close(
            &format!("xent {n}x{k} dlogits"),
            &got[1],
            &dz,
            XENT_RTOL,
            XENT_ATOL,
        );
    }
    crate::assert_err!(
        ops::upload_labels(ctx, 10, &[3, 10]),
        alexnet::Error::Label {
            label: 10,
            index: 1,
            classes: 10
        },
        "label 10 of 10 accepted"
    );
}

/// SGD: three f32 multiply-adds per step against f64: after 3 steps a few ulp of w and v
/// (measured: 2.4e-7 on |w| ~ 3, 3.7e-9 on |v| ~ 0.05).
pub const SGD_RTOL: f32 = 1e-6;
pub const SGD_ATOL: f32 = 1e-7;

pub async fn sgd_matches_the_papers_formula_in_f64(ctx: &GpuContext) {
    let len = 1000 + 37;
    let opt = Sgd {
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 0.0005,
    };
    let w0 = random(len, 100, 1.0);
    let grads: Vec<Vec<f32>> = (0..3).map(|s| random(len, 101 + s, 1.0)).collect();
    // the paper's update, in f64, independently of the kernel
    let (mut w, mut v): (Vec<f64>, Vec<f64>) =
        (w0.iter().map(|&x| x as f64).collect(), vec![0.0; len]);
    let (lr, mo, wd) = (opt.lr as f64, opt.momentum as f64, opt.weight_decay as f64);
    let wb = ctx.upload("w", &w0).unwrap();
    let vb = ctx.upload("v", &vec![123.0; len]).unwrap();
    let gb = ctx.storage("g", len).unwrap();
    let zero = ops::fill(ctx, len, 0.0, &vb).unwrap();
    let step = ops::sgd(ctx, &opt, len, &wb, &vb, &gb).unwrap();
    for (s, g) in grads.iter().enumerate() {
        for i in 0..len {
            v[i] = mo * v[i] - wd * lr * w[i] - lr * g[i] as f64;
            w[i] += v[i];
        }
        ctx.write(&gb, g);
        let ds: Vec<_> = if s == 0 {
            vec![&zero, &step]
        } else {
            vec![&step]
        };
        let got = ctx.run(&ds, &[(&wb, len), (&vb, len)]).await.unwrap();
        let (w32, v32): (Vec<f32>, Vec<f32>) = (
            w.iter().map(|&x| x as f32).collect(),
            v.iter().map(|&x| x as f32).collect(),
        );
        assert_close(
            &format!("sgd step {} w", s + 1),
            &got[0],
            &w32,
            SGD_RTOL,
            SGD_ATOL,
        );
        assert_close(
            &format!("sgd step {} v", s + 1),
            &got[1],
            &v32,
            SGD_RTOL,
            SGD_ATOL,
        );
    }
}

// ---- whole training steps ----

/// Where `tr`'s last training-mode forward took another branch than the CPU's `trace`: a
/// ReLU unit on the other side of 0, or a max-pool window whose maximum came from another
/// input. Each entry is `(layer, flat index)`.
///
/// The gradient is discontinuous at those switches: a pre-activation within rounding of 0
/// (the GPU's and the CPU's forwards differ by ~1e-6 of the largest value) may land on
/// either side, and the one flipped unit then moves every gradient below it by a whole
/// `dout` term, far past any rounding tolerance. Seen: the 1024-wide mini at input seed 77
/// with the tiled kernels flipped one conv3 unit and its conv1.bias gradient was 1.3% of the
/// largest value away from the CPU's. A margin around the switches does not help (at batch
/// 3 every input had ~20 ReLU inputs within 1e-5 of the largest magnitude of 0 and ~5
/// max-pool near-ties), so the cases compare the decisions themselves.
async fn switch_flips(
    ctx: &GpuContext,
    tr: &GpuTrainer,
    model: &Model,
    trace: &Trace,
) -> Vec<(String, usize)> {
    let gm = tr.model();
    let mut flips = Vec::new();
    for (idx, layer) in model.layers().iter().enumerate() {
        let name = layer.name();
        match (layer, &trace.saved[idx]) {
            (Layer::Relu { .. }, _) => {
                let want = &trace.acts[idx + 1].data;
                let buf = gm.output_buffer(idx).expect("relu output buffer");
                let got = ctx.read(buf, want.len()).await.unwrap();
                flips.extend(differing(name, &got, want, |g, w| (g > 0.0) == (w > 0.0)));
            }
            (Layer::MaxPool(_), Saved::Argmax(want)) => {
                let buf = gm.saved_buffer(idx).expect("max-pool argmax buffer");
                let got = ctx.read_u32(buf, want.len()).await.unwrap();
                flips.extend(differing(name, &got, want, |g, w| g == w));
            }
            _ => {}
        }
    }
    flips
}

/// `(layer, i)` for every index where `got[i]` and `want[i]` are not `same`.
fn differing<T: Copy>(
    layer: &str,
    got: &[T],
    want: &[T],
    same: impl Fn(T, T) -> bool,
) -> Vec<(String, usize)> {
    got.iter()
        .zip(want)
        .enumerate()
        .filter(|&(_, (&g, &w))| !same(g, w))
        .map(|(i, _)| (layer.to_string(), i))
        .collect()
}

/// `mini` at batch 3 with fixed labels and dropout seed: the model, the input drawn from
/// `input_seed` and the labels.
fn mini_batch_unchecked(input_seed: u64) -> (Model, Tensor, [usize; 3], u64) {
    let model = Model::random(model::mini(), 5).unwrap();
    let n = 3;
    let [c, h, w] = model.arch.input;
    let x = Tensor::new(&[n, c, h, w], random(n * c * h * w, input_seed, 1.0)).unwrap();
    (model, x, [1, 7, 3], 42)
}

/// `mini_batch_unchecked` for the cases that hold the GPU to the CPU: the input is the
/// first seeded random batch (from seed 77) on which the trainer under every kernel choice
/// (`option_variants`) takes every branch the CPU takes (`switch_flips`), so the gradients
/// of the two can be held to rounding. A kernel that computes a forward wrongly flips
/// branches on every input and fails here. The search runs once per process (the adapter is
/// the same for every case in it).
async fn mini_batch(ctx: &GpuContext) -> (Model, Tensor, [usize; 3], u64) {
    static AGREEING_SEED: OnceLock<u64> = OnceLock::new();
    if let Some(&input_seed) = AGREEING_SEED.get() {
        return mini_batch_unchecked(input_seed);
    }
    let mut rejected = Vec::new();
    'seeds: for input_seed in 77..97 {
        let (model, x, labels, dropout_seed) = mini_batch_unchecked(input_seed);
        let trace = model.forward_train(&x, dropout_seed).unwrap();
        for (opt, opts) in option_variants(1 << 20) {
            let tr = GpuTrainer::with_options(ctx, &model, labels.len(), Sgd::default(), &opts)
                .await
                .unwrap();
            tr.loss_and_grads(ctx, &x, &labels, dropout_seed)
                .await
                .unwrap();
            let flips = switch_flips(ctx, &tr, &model, &trace).await;
            if let Some(first) = flips.first() {
                rejected.push((input_seed, opt, flips.len(), first.clone()));
                continue 'seeds;
            }
        }
        if !rejected.is_empty() {
            eprintln!(
                "mini batch: input seed {input_seed}; earlier seeds flipped a branch \
                 (seed, kernels, flips, first): {rejected:?}"
            );
        }
        let _ = AGREEING_SEED.set(input_seed);
        return (model, x, labels, dropout_seed);
    }
    panic!(
        "no input seed in 77..97 on which the GPU takes the CPU's branches \
         (seed, kernels, flips, first): {rejected:?}"
    );
}

/// `tr`'s loss and every parameter's gradient on `(x, labels, seed)` against the CPU's `want`
/// (`Model::loss_and_grads` on the same batch).
async fn assert_trainer_matches_cpu(
    ctx: &GpuContext,
    what: &str,
    tr: &GpuTrainer,
    (x, labels, seed): (&Tensor, &[usize], u64),
    (want_loss, want): &(f32, Params),
) {
    let loss = tr.loss_and_grads(ctx, x, labels, seed).await.unwrap();
    assert_close(
        &format!("{what}: loss"),
        &[loss],
        &[*want_loss],
        NET_RTOL,
        0.0,
    );
    let got = tr.grads(ctx).await.unwrap();
    assert_params_close(
        &format!("{what}: grad"),
        &got,
        want,
        NET_RTOL,
        NET_ATOL_OF_MAX,
    );
}

/// `GpuTrainer`'s loss and every parameter's gradient on `mini` (batch 3, training mode)
/// against `Model::loss_and_grads`, under every kernel choice (`option_variants`; fc6 in 3
/// blocks for the split).
pub async fn trainer_matches_cpu_gradients_every_option_on_mini(ctx: &GpuContext) {
    let (model, x, labels, seed) = mini_batch(ctx).await;
    let want = model.loss_and_grads(&x, &labels, seed).unwrap();
    for (opt, opts) in option_variants(1 << 20) {
        let tr = GpuTrainer::with_options(ctx, &model, labels.len(), Sgd::default(), &opts)
            .await
            .unwrap();
        let batch = (&x, &labels[..], seed);
        assert_trainer_matches_cpu(ctx, &format!("mini {opt}"), &tr, batch, &want).await;
    }
}

/// `GpuTrainer`'s loss and every parameter's gradient on the full-size `bvlc` and
/// `torchvision` networks (batch 1, training mode, default kernels: the tiled conv
/// backward, fc6 split where the binding limit requires it) against `Model::loss_and_grads`.
pub async fn trainer_matches_cpu_gradients_on_bvlc_and_torchvision(ctx: &GpuContext) {
    for (name, arch) in [
        ("bvlc", model::bvlc()),
        ("torchvision", model::torchvision()),
    ] {
        let model = Model::random(arch, 9).unwrap();
        let x = random_input(&model.arch, 1, 91);
        let (labels, seed) = ([417], 5);
        let want = model.loss_and_grads(&x, &labels, seed).unwrap();
        let tr = GpuTrainer::new(ctx, &model, 1, Sgd::default())
            .await
            .unwrap();
        assert_trainer_matches_cpu(ctx, name, &tr, (&x, &labels, seed), &want).await;
    }
}

/// One `GpuTrainer::step` on `mini` (default kernels) against the update computed in f64
/// from the CPU's gradients, then four more steps on the same batch must lower the loss.
pub async fn trainer_update_matches_cpu_and_lowers_the_loss_on_mini(ctx: &GpuContext) {
    let (model, x, labels, seed) = mini_batch(ctx).await;
    // lr 1e-3, not the paper's 0.01: the random net's first logits are large (loss 6.5 on
    // this batch) and at 0.01 the 3.45 M mini overshoots on one repeated batch (measured
    // losses 6.55, 6.90, 0.0, 9.19, 2594, 6727), which says nothing about the update rule.
    let opt = Sgd {
        lr: 1e-3,
        ..Sgd::default()
    };
    let (want_loss, want) = model.loss_and_grads(&x, &labels, seed).unwrap();
    let tr = GpuTrainer::new(ctx, &model, labels.len(), opt)
        .await
        .unwrap();

    // one step from zero velocity: v = -wd lr w - lr g, w + v, in f64 from the CPU gradients
    let step_loss = tr.step(ctx, &x, &labels, seed).await.unwrap();
    assert_close("mini step loss", &[step_loss], &[want_loss], NET_RTOL, 0.0);
    let after = tr.to_model(ctx).await.unwrap();
    let (lr, wd) = (opt.lr as f64, opt.weight_decay as f64);
    for (name, p) in &model.params {
        let g = &want[name];
        let expect: Vec<f32> = p
            .data
            .iter()
            .zip(&g.data)
            .map(|(&w, &g)| (w as f64 - wd * lr * w as f64 - lr * g as f64) as f32)
            .collect();
        // the update is lr * (gradient error) away from exact: the gradient tolerance times lr
        assert_close(
            &format!("mini after one step {name}"),
            &after.params[name].data,
            &expect,
            SGD_RTOL,
            lr as f32 * NET_ATOL_OF_MAX * max_abs(&g.data) + SGD_ATOL,
        );
    }

    // four more steps on the same batch (same dropout mask), then the loss after five
    let mut losses = vec![step_loss];
    for _ in 0..4 {
        losses.push(tr.step(ctx, &x, &labels, seed).await.unwrap());
    }
    let final_loss = tr.loss_and_grads(ctx, &x, &labels, seed).await.unwrap();
    losses.push(final_loss);
    eprintln!("mini batch {}: losses {losses:?}", labels.len());
    assert!(
        final_loss < losses[0] && losses.iter().all(|l| l.is_finite()),
        "5 SGD steps did not lower the loss: {losses:?}"
    );
}

/// Fine-tuning the head only: with every layer but fc8 frozen, a step leaves them bit for bit
/// as they were and still moves fc8; unfreezing moves them again.
pub async fn trainer_frozen_layers_stay_put(ctx: &GpuContext) {
    let (model, x, labels, seed) = mini_batch_unchecked(77);
    let mut tr = GpuTrainer::new(ctx, &model, labels.len(), Sgd::default())
        .await
        .unwrap();
    let frozen: Vec<usize> = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
        .iter()
        .map(|l| model.arch.layer_index(l).unwrap())
        .collect();
    tr.set_frozen(ctx, &frozen).unwrap();
    tr.step(ctx, &x, &labels, seed).await.unwrap();
    let after = tr.to_model(ctx).await.unwrap();
    for (name, p) in &model.params {
        let same = after.params[name].data == p.data;
        assert_eq!(
            same,
            !name.starts_with("fc8"),
            "{name}: frozen layers stay, fc8 moves"
        );
    }
    tr.set_frozen(ctx, &[]).unwrap();
    tr.step(ctx, &x, &labels, seed + 1).await.unwrap();
    let again = tr.to_model(ctx).await.unwrap();
    assert_ne!(
        again.params["conv1.weight"].data,
        after.params["conv1.weight"].data
    );
}

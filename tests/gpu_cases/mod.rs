//! The GPU test cases, written once and run in two worlds: natively on Mesa lavapipe
//! (tests/gpu_forward.rs and tests/gpu_backward.rs, `cargo test`) and in headless Chromium on
//! WebGPU (tests/web.rs, `wasm-pack test --headless --chrome`).
//!
//! - [`forward`]: every forward kernel and whole networks against the CPU reference;
//! - [`backward`]: every backward kernel, the loss, SGD and `GpuTrainer` against the CPU
//!   reference.
//!
//! A case is `pub async fn name(ctx: &GpuContext)`: it awaits its GPU work (readback is
//! async in the browser), panics with the worst element on a mismatch, and times nothing
//! (`std::time::Instant` panics on wasm32). Its tolerances are named constants beside it.
//!
//! Every case is listed once, in [`forward_cases!`] or [`backward_cases!`]; each world
//! expands the lists with its own wrapper (`native_tests!` here, a `#[wasm_bindgen_test]` one
//! in tests/web.rs), so a case added to a list runs in both.
//!
//! Where a kernel has variants, a case loops over all of them: [`CONV_ALGOS`],
//! [`LINEAR_ALGOS`], [`option_variants`]. Each list is checked against its enum by an
//! exhaustive `match`, so a new variant does not compile until it is listed, and is then
//! tested in both worlds.
// Each test crate expands one of the two lists (tests/web.rs both), so the other and its
// cases are unused there.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod backward;
pub mod forward;

use crate::common::{avgpool_spec, conv_spec, lrn_spec, pads, pool_spec, random};
use alexnet::gpu::ops::{self, ConvAlgo, LinearAlgo, LrnAlgo, WeightBlock};
use alexnet::gpu::plan::GpuOptions;
use alexnet::gpu::{Dispatch, GpuContext};
use alexnet::model::{AvgPoolGeom, ConvSpec, LrnAlpha, LrnGeom, Pads, PoolGeom};
use alexnet::shape::Rounding;

// ---- tolerances shared by the forward and the backward cases ----

/// Same operations in the same order on both sides (ReLU, dropout's integer mask and one
/// multiply, Flatten, max-pool values and argmax, and its routing of at most a few dout values
/// summed in the CPU's order): bit-identical.
pub const EXACT: f32 = 0.0;
/// Adaptive average pool, both directions: the same f32 sums in the same order and one
/// division; an ulp of slack in case the shader compiler fuses or reorders.
pub const AVGPOOL_RTOL: f32 = 1e-6;
pub const AVGPOOL_ATOL: f32 = 1e-7;
/// Convolution and fully connected, outputs and gradients: f32 accumulation in a different
/// order (tiles, split-K trees, row-wise partials) against the CPU's f64 sum rounded once. The
/// error of a K-term f32 dot product is about sqrt(K) * 2^-24 * sum|w x|; with K <= 1200 here
/// and outputs of order 1, 1e-4 relative plus 1e-4 of the tensor's largest magnitude is loose
/// enough for any order and still catches a single wrong, missing or extra term (a term is
/// ~1/K of the sum, >= 1e-3).
pub const DOT_RTOL: f32 = 1e-4;
pub const DOT_ATOL_OF_MAX: f32 = 1e-4;
/// Whole networks, outputs and gradients: the per-layer dot-product error above, compounded
/// over up to 8 weight layers and 2 LRNs, forward and then backward; 1e-3 relative plus 1e-3
/// of the tensor's largest magnitude. ReLU and max-pool switches that flip on near-ties would
/// move more: the forward cases' whole networks have none at these seeds, and the training
/// cases run on an input where the GPU takes every branch the CPU takes (`mini_batch` in
/// [`backward`]).
pub const NET_RTOL: f32 = 1e-3;
pub const NET_ATOL_OF_MAX: f32 = 1e-3;

/// Every convolution kernel.
pub const CONV_ALGOS: [ConvAlgo; 2] = [ConvAlgo::Naive, ConvAlgo::Tiled];
const _: () = match ConvAlgo::Naive {
    // a new variant fails here until it is in CONV_ALGOS
    ConvAlgo::Naive | ConvAlgo::Tiled => (),
};

/// Every LRN kernel (forward and backward).
pub const LRN_ALGOS: [LrnAlgo; 2] = [LrnAlgo::Naive, LrnAlgo::Tiled];
const _: () = match LrnAlgo::Naive {
    // a new variant fails here until it is in LRN_ALGOS
    LrnAlgo::Naive | LrnAlgo::Tiled => (),
};

/// Every fully connected kernel.
pub const LINEAR_ALGOS: [LinearAlgo; 2] = [LinearAlgo::Gemv, LinearAlgo::Gemm];
const _: () = match LinearAlgo::Gemv {
    // a new variant fails here until it is in LINEAR_ALGOS
    LinearAlgo::Gemv | LinearAlgo::Gemm => (),
};

/// The kernel choices whole networks are checked with: each [`GpuOptions`] knob forced to
/// each of its values in turn, the others left at their defaults, then the fc weights split
/// into blocks of at most `split_bytes` (as a device with a small storage binding limit would
/// split them). A new knob gets its lines here (the destructuring below does not compile
/// until it does).
pub fn option_variants(split_bytes: u64) -> Vec<(String, GpuOptions)> {
    let GpuOptions {
        conv: _,
        lrn: _,
        linear: _,
        max_weight_block: _,
    } = GpuOptions::default();
    let mut v = Vec::new();
    for conv in CONV_ALGOS {
        let o = GpuOptions {
            conv: Some(conv),
            ..Default::default()
        };
        v.push((format!("conv {conv:?}"), o));
    }
    for lrn in LRN_ALGOS {
        let o = GpuOptions {
            lrn: Some(lrn),
            ..Default::default()
        };
        v.push((format!("lrn {lrn:?}"), o));
    }
    for linear in LINEAR_ALGOS {
        let o = GpuOptions {
            linear: Some(linear),
            ..Default::default()
        };
        v.push((format!("linear {linear:?}"), o));
    }
    let o = GpuOptions {
        max_weight_block: Some(split_bytes),
        ..Default::default()
    };
    v.push((format!("fc weights in blocks of <= {split_bytes} bytes"), o));
    v
}

/// A convolution case: (what, spec, n, h, w).
pub type ConvCase = (&'static str, ConvSpec, usize, usize, usize);

/// The convolution shapes every conv kernel is checked on, forward and backward: stride 4
/// with pad 2, groups 2 with asymmetric pads (also at stride 4), channel counts and K that
/// are not tile multiples, several channel tiles, and reductions long enough for the weight
/// gradient's split and chunked sums; batch 1 to 9.
pub fn conv_cases() -> Vec<ConvCase> {
    let asym = pads(1, 2, 0, 3);
    let asym4 = pads(2, 0, 1, 3);
    vec![
        (
                "11x11 stride 4 pad 2, 3->5, batch 3",
                conv_spec(3, 5, [11, 11], [4, 4], Pads::same(2), 1),
                3,
                29,
                31,
            ),
        (
                "5x5 groups 2 asymmetric pads, 6->10, batch 1",
                conv_spec(6, 10, [5, 5], [1, 1], asym, 2),
                1,
                13,
                11,
            ),
        (
                "3x3 stride 4 groups 2 pads t2 l0 b1 r3, 4->6, batch 3",
                conv_spec(4, 6, [3, 3], [4, 4], asym4, 2),
                3,
                17,
                14,
            ),
        (
                "3x3 pad 1 groups 2, 8->70, batch 3",
                conv_spec(8, 70, [3, 3], [1, 1], Pads::same(1), 2),
                3,
                9,
                9,
            ),
        (
                "3x2 stride 2x3, 4->3, batch 2",
                conv_spec(4, 3, [3, 2], [2, 3], Pads::default(), 1),
                2,
                16,
                19,
            ),
        (
                "5x5 pad 2 groups 2, 140->66 (two channel tiles, chunked sums over 1458 terms), batch 2",
                conv_spec(140, 66, [5, 5], [1, 1], Pads::same(2), 2),
                2,
                27,
                27,
            ),
        (
                "11x11 stride 4 pad 2, 3->7 (split-K over 2160 terms), batch 9",
                conv_spec(3, 7, [11, 11], [4, 4], Pads::same(2), 1),
                9,
                67,
                65,
            ),
        (
                "1x1, 130->66 (K not a multiple of 16), batch 1",
                conv_spec(130, 66, [1, 1], [1, 1], Pads::default(), 1),
                1,
                7,
                5,
            ),
    ]
}

/// The max-pool geometries both directions are checked on, with what each is: overlapping
/// windows with ceil rounding, floor rounding, asymmetric pads, and a stride larger than the
/// window (inputs no window reads).
#[rustfmt::skip]
pub fn pool_geoms() -> Vec<(&'static str, PoolGeom)> {
    // (what, kernel, stride, pads, rounding, n, c, h, w)
    let cases = [
        ("3/2 ceil (overlapping)", [3, 3], [2, 2], Pads::default(), Rounding::Ceil,
            3, 4, 13, 13),
        ("3/2 floor", [3, 3], [2, 2], Pads::default(), Rounding::Floor, 1, 3, 15, 14),
        ("3x2/2x1 pads t1 l1 b2 r0 ceil", [3, 2], [2, 1], pads(1, 1, 2, 0), Rounding::Ceil,
            2, 5, 8, 7),
        ("3/4 pad 2 (gaps)", [3, 3], [4, 4], Pads::same(2), Rounding::Floor, 3, 2, 17, 19),
    ];
    cases
        .into_iter()
        .map(|(what, kernel, stride, pads, rounding, n, c, h, w)| {
            let spec = pool_spec(kernel, stride, pads, rounding);
            (what, PoolGeom::new(&spec, n, c, h, w).unwrap())
        })
        .collect()
}

/// The adaptive average pool geometries both directions are checked on, with what each is:
/// 13 -> 6 (overlapping windows), 5x7 -> 3x2, the identity, and upsampling.
pub fn avgpool_geoms() -> Vec<(String, AvgPoolGeom)> {
    // (oh, ow, n, c, h, w)
    let cases = [
        (6, 6, 1, 3, 13, 13),
        (3, 2, 3, 2, 5, 7),
        (6, 6, 1, 2, 6, 6),
        (4, 4, 2, 2, 3, 2),
    ];
    cases
        .into_iter()
        .map(|(oh, ow, n, c, h, w)| {
            let g = AvgPoolGeom::new(&avgpool_spec([oh, ow]), n, c, h, w).unwrap();
            (format!("{h}x{w} -> {oh}x{ow}"), g)
        })
        .collect()
}

/// Runs `dispatches` and reads back the first `len` values of `out`.
pub async fn run_read(
    ctx: &GpuContext,
    dispatches: &[&Dispatch],
    out: &wgpu::Buffer,
    len: usize,
) -> Vec<f32> {
    ctx.run(dispatches, &[(out, len)]).await.unwrap().remove(0)
}

/// A `rows x cols` row-major matrix uploaded in the row blocks of at most `max_bytes` that
/// `ops::row_blocks` makes (as a device with a small storage binding limit splits fc6): the
/// buffers and each block's `(row0, rows)`.
pub struct RowBlocks {
    pub bufs: Vec<wgpu::Buffer>,
    pub blocks: Vec<(usize, usize)>,
}

impl RowBlocks {
    pub fn upload(ctx: &GpuContext, label: &str, m: &[f32], cols: usize, max_bytes: u64) -> Self {
        let blocks = ops::row_blocks(m.len() / cols, cols, max_bytes).unwrap();
        let bufs = blocks
            .iter()
            .map(|&(r0, rows)| {
                ctx.upload(label, &m[r0 * cols..(r0 + rows) * cols])
                    .unwrap()
            })
            .collect();
        RowBlocks { bufs, blocks }
    }

    /// The blocks as the fc kernels take them.
    pub fn weight_blocks(&self) -> Vec<WeightBlock<'_>> {
        let blocks = self.blocks.iter().zip(&self.bufs);
        blocks
            .map(|(&(row0, rows), buf)| WeightBlock { buf, row0, rows })
            .collect()
    }
}

/// Dropout `(p, seed)` cases, both directions: the paper's 0.5, a layer seed as a training
/// step derives it, and p 0 (the identity).
pub fn dropout_cases() -> [(f32, u32); 3] {
    let layer_seed = alexnet::reference::dropout_layer_seed(99, 18);
    [(0.5, 7), (0.1, layer_seed), (0.0, 3)]
}

/// An LRN case: (window size, alpha convention, k, n, c, h, w); alpha 1e-2, beta 0.75.
pub type LrnCase = (usize, LrnAlpha, f32, usize, usize, usize, usize);

/// The LRN shapes both directions are checked on, with both alpha conventions.
pub const LRN_CASES: [LrnCase; 6] = [
    (5, LrnAlpha::OverN, 1.0, 3, 7, 5, 3),
    (5, LrnAlpha::Raw, 2.0, 1, 9, 4, 4),
    // even window: asymmetric, so the backward's reverse window differs
    (4, LrnAlpha::OverN, 2.0, 2, 6, 3, 5),
    // 70 channels over three 32-channel blocks, 100 pixels over two 64-pixel blocks
    (5, LrnAlpha::OverN, 2.0, 2, 70, 10, 10),
    (8, LrnAlpha::Raw, 1.0, 1, 40, 9, 9), // even window wider than AlexNet's
    (35, LrnAlpha::OverN, 2.0, 1, 40, 3, 3), // over 33: a tiled request runs naive
];

/// An LRN case's geometry, its input (N(0, 9) from seed `60 + size`) and a name for it.
pub fn lrn_input((size, mode, k, n, c, h, w): LrnCase) -> (LrnGeom, Vec<f32>, String) {
    let g = LrnGeom::new(&lrn_spec(size, 1e-2, 0.75, k, mode), n, c, h, w).unwrap();
    let x = random(n * c * h * w, 60 + size as u64, 3.0);
    (g, x, format!("n{size} c{c} {mode:?} batch {n}"))
}

/// The forward cases. `$wrap!(forward; case, ...)` must define one test per case.
macro_rules! forward_cases {
    ($wrap:ident) => {
        $wrap!(forward;
            conv_every_algo_matches_cpu_on_odd_shapes,
            linear_every_algo_matches_cpu_with_and_without_split,
            relu_dropout_softmax_match_cpu,
            elementwise_grid_folds_past_65535_workgroups,
            lrn_matches_cpu_both_conventions,
            maxpool_and_avgpool_match_cpu,
            mini_network_matches_cpu_every_option_batch_1_and_3_eval_and_train,
            bvlc_batch_1_matches_cpu_with_fc6_split,
            torchvision_batch_1_matches_cpu_with_fc6_split,
            session_reads_layers_back_and_recovers_from_a_lost_device,
        );
    };
}
pub(crate) use forward_cases;

/// The backward cases. `$wrap!(backward; case, ...)` must define one test per case.
macro_rules! backward_cases {
    ($wrap:ident) => {
        $wrap!(backward;
            conv_backward_matches_cpu_on_odd_shapes,
            linear_backward_matches_cpu_with_and_without_split,
            relu_and_dropout_backward_match_cpu,
            lrn_backward_matches_cpu_both_conventions,
            maxpool_and_avgpool_backward_match_cpu,
            softmax_xent_matches_cpu,
            sgd_matches_the_papers_formula_in_f64,
            trainer_matches_cpu_gradients_every_option_on_mini,
            trainer_matches_cpu_gradients_on_bvlc_and_torchvision,
            trainer_update_matches_cpu_and_lowers_the_loss_on_mini,
            trainer_frozen_layers_stay_put,
        );
    };
}
pub(crate) use backward_cases;

/// The native wrapper: `#[test] fn case()` running `gpu_cases::$module::case` on the shared
/// lavapipe context. Without an adapter it passes with a loud SKIPPED line, except under
/// `CI=true`, where `common::gpu()` fails.
#[cfg(not(target_arch = "wasm32"))]
macro_rules! native_tests {
    ($module:ident; $($case:ident),* $(,)?) => {$(
        #[test]
        fn $case() {
            let Some(ctx) = crate::common::gpu() else { return };
            crate::common::block_on(crate::gpu_cases::$module::$case(ctx));
        }
    )*};
}
#[cfg(not(target_arch = "wasm32"))]
pub(crate) use native_tests;

//! The WebGPU forward path against the CPU reference, natively (Mesa lavapipe on a machine
//! without a GPU): one `#[test]` per case of `gpu_cases::forward` (every forward kernel and
//! whole networks; the same cases run in headless Chromium from tests/web.rs), plus native
//! timings of the big networks.
//!
//! No adapter: every test prints a loud SKIPPED line and passes, unless `CI=true`, where it
//! fails (see `common::gpu()`).
#![cfg(not(target_arch = "wasm32"))]

mod common;
mod gpu_cases;

use common::{block_on, gpu, median_ms, random_input};
use gpu_cases::forward::FC6_BYTES;
use gpu_cases::native_tests;

use alexnet::gpu::ops::ConvAlgo;
use alexnet::gpu::plan::GpuOptions;
use alexnet::gpu::GpuPlan;
use alexnet::model;
use alexnet::model::Model;
use std::time::Instant;

gpu_cases::forward_cases!(native_tests);

/// Timings only, no checks (the cases above check the same plans): `bvlc` and `torchvision`
/// at batch 1, and tiled vs naive conv per layer of `bvlc`. lavapipe is a CPU: these say
/// nothing about a real GPU. Run with `--nocapture` to see them.
#[test]
fn bvlc_and_torchvision_batch_1_timings() {
    let Some(ctx) = gpu() else { return };
    for (name, arch) in [
        ("bvlc", model::bvlc()),
        ("torchvision", model::torchvision()),
    ] {
        let t = Instant::now();
        let model = Model::random(arch, 7).unwrap();
        let x = random_input(&model.arch, 1, 200);
        let gm = block_on(GpuPlan::new(ctx, &model, 1)).unwrap();
        eprintln!(
            "{name}: random weights + GPU upload {:.2} s; fc6 weight ({FC6_BYTES} bytes) in {} \
             block(s)",
            t.elapsed().as_secs_f64(),
            gm.weight_blocks("fc6").unwrap()
        );
        let cpu = median_ms(1, || drop(model.forward(&x).unwrap()));
        let fwd = median_ms(3, || drop(block_on(gm.forward(ctx, &x)).unwrap()));
        eprintln!(
            "{name} batch 1: CPU reference forward {cpu:.0} ms, GPU forward (tiled conv, fc \
             GEMV) median {fwd:.0} ms"
        );
        if name != "bvlc" {
            continue;
        }
        let naive = GpuOptions {
            conv: Some(ConvAlgo::Naive),
            ..Default::default()
        };
        let gmn = block_on(GpuPlan::with_options(ctx, &model, 1, &naive)).unwrap();
        for layer in ["conv1", "conv2", "conv3"] {
            let idx = model.arch.layer_index(layer).unwrap();
            let (pt, pn) = if idx == 0 {
                (0.0, 0.0)
            } else {
                let prev = model.arch.layers[idx - 1].name().to_string();
                (
                    median_ms(3, || drop(block_on(gm.forward_to(ctx, &x, &prev)).unwrap())),
                    median_ms(3, || {
                        drop(block_on(gmn.forward_to(ctx, &x, &prev)).unwrap())
                    }),
                )
            };
            let tt = median_ms(3, || drop(block_on(gm.forward_to(ctx, &x, layer)).unwrap()));
            let tn = median_ms(3, || {
                drop(block_on(gmn.forward_to(ctx, &x, layer)).unwrap())
            });
            eprintln!(
                "bvlc batch 1 {layer}: tiled ~{:.0} ms, naive ~{:.0} ms (prefix difference, \
                 medians of 3)",
                tt - pt,
                tn - pn
            );
        }
    }
}

//! `alexnet::bench` reports: the right rows, the right timing method per backend, and times
//! that are finite (their values are never asserted: shared, noisy machines).
#![cfg(not(target_arch = "wasm32"))]

mod common;
use common::{block_on, gpu};

use alexnet::backend::BackendKind;
use alexnet::bench::{self, Method, Options, Report};
use alexnet::model::Model;
use alexnet::model::{self, Layer};
use std::time::Instant;

fn run(m: &Model, kind: BackendKind, train: bool) -> Report {
    let t0 = Instant::now();
    let clock = move || t0.elapsed().as_secs_f64();
    let opts = Options {
        batch: 2,
        runs: 2,
        per_layer: true,
        train,
        gpu: Default::default(),
    };
    block_on(bench::run(m, kind, opts, &clock)).unwrap()
}

fn check_common(what: &str, m: &Model, r: &Report) {
    assert_eq!(r.runs_s.len(), 2, "{what}: runs");
    assert!(
        r.total_s.is_finite() && r.total_s > 0.0,
        "{what}: total {}",
        r.total_s
    );
    if r.method != Method::TotalOnly {
        let names: Vec<&str> = m.arch.layers.iter().map(Layer::name).collect();
        let got: Vec<&str> = r.layers.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(got, names, "{what}: one row per layer, in order");
        for l in &r.layers {
            assert!(l.forward_s.is_finite(), "{what}: {} forward", l.name);
        }
    }
}

#[test]
fn cpu_backends_report_prefix_times_forward_and_per_layer_training_on_the_fast_one() {
    let m = Model::random(model::mini(), 1).unwrap();
    for kind in [BackendKind::Reference, BackendKind::Cpu] {
        let r = run(&m, kind, false);
        check_common(&format!("{kind:?} forward"), &m, &r);
        assert_eq!(r.method, Method::PrefixDifferences);
        assert!(r.layers.iter().all(|l| l.prefix_s.is_some()));
        assert_eq!(r.output.len(), 2 * 10, "the last forward's (N, K) output");

        let r = run(&m, kind, true);
        check_common(&format!("{kind:?} train"), &m, &r);
        if kind == BackendKind::Reference {
            assert_eq!(r.method, Method::TotalOnly);
            continue;
        }
        // the fast backend times each layer inside the step
        assert_eq!(r.method, Method::WallPerLayer);
        for (l, layer) in r.layers.iter().zip(&m.arch.layers) {
            let params = matches!(layer, Layer::Conv(_) | Layer::Linear(_));
            assert_eq!(l.update_s.is_some(), params, "{}: update", l.name);
            assert!(l.backward_s.is_some(), "{}: backward", l.name);
            assert!(l.forward_s >= 0.0 && l.backward_s.unwrap_or(0.0) >= 0.0);
        }
        let conv2 = &r.layers[m.arch.layer_index("conv2").unwrap()];
        assert!(
            conv2.forward_s > 0.0 && conv2.backward_s.unwrap_or(0.0) > 0.0,
            "conv2 takes measurable time: {conv2:?}"
        );
    }
}

#[test]
fn gpu_reports_a_timestamp_per_layer_forward_and_backward_where_the_adapter_has_them() {
    let Some(ctx) = gpu() else { return };
    let timestamps = ctx.has_timestamps();
    let m = Model::random(model::mini(), 1).unwrap();
    let r = run(&m, BackendKind::Gpu, false);
    check_common("gpu forward", &m, &r);
    if !timestamps {
        assert_eq!(r.method, Method::PrefixDifferences);
        return;
    }
    assert_eq!(r.method, Method::GpuTimestamps);
    assert!(
        r.gpu_total_s.is_some_and(|s| s > 0.0),
        "GPU total with timestamps"
    );
    for (l, layer) in r.layers.iter().zip(&m.arch.layers) {
        assert!(l.forward_s >= 0.0, "{}: {}", l.name, l.forward_s);
        // layers that launch kernels took some GPU time; relabels (flatten, eval dropout) none
        let launches = !matches!(layer, Layer::Flatten { .. } | Layer::Dropout(_));
        assert_eq!(l.forward_s > 0.0, launches, "{}: {} s", l.name, l.forward_s);
    }

    let r = run(&m, BackendKind::Gpu, true);
    check_common("gpu train", &m, &r);
    assert_eq!(r.method, Method::GpuTimestamps);
    assert!(
        r.loss_s.is_some_and(|s| s > 0.0),
        "the loss kernel is timed"
    );
    for (i, (l, layer)) in r.layers.iter().zip(&m.arch.layers).enumerate() {
        let params = matches!(layer, Layer::Conv(_) | Layer::Linear(_));
        assert_eq!(l.update_s.is_some(), params, "{}: update", l.name);
        // every layer but flatten (a relabel) and a parameterless first layer has a backward
        let bwd = !matches!(layer, Layer::Flatten { .. }) && (params || i > 0);
        assert_eq!(l.backward_s.is_some(), bwd, "{}: backward", l.name);
    }
}

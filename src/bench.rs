//! `alexnet bench`: forward time per layer and in total, on one backend, medians of several
//! runs after a warm-up. Numbers are printed, never asserted (shared, noisy machines).
//!
//! Per-layer times are differences of prefix times: the time to run layers `0..=i` minus the
//! time to run `0..i`, each the median of the runs. That works the same on every backend
//! (one submission per prefix on the GPU, so it includes what a real forward pays: dispatch,
//! synchronisation, the readback of that prefix's output), at the cost of running the
//! network about L/2 times per run. Tiny layers can come out slightly negative in noise;
//! they are printed as measured.

use crate::backend::Runner;
use crate::error::Result;
use crate::model::Arch;
use crate::net::Model;
use crate::tensor::{Rng, Tensor};
use std::time::Instant;

/// One row of the report.
#[derive(Clone, Debug)]
pub struct LayerTime {
    pub name: String,
    pub kind: &'static str,
    pub macs: u64,
    /// Median prefix time up to and including this layer, seconds.
    pub prefix_s: f64,
    /// This layer's share: prefix minus the previous prefix, seconds.
    pub layer_s: f64,
}

pub struct Report {
    pub backend: String,
    pub batch: usize,
    pub runs: usize,
    /// Median time of a whole forward (`Runner::forward`), seconds.
    pub total_s: f64,
    pub layers: Vec<LayerTime>,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// A seeded random input batch for `arch`.
pub fn random_input(arch: &Arch, batch: usize) -> Tensor {
    let [c, h, w] = arch.input;
    let mut x = Tensor::zeros(&[batch, c, h, w]);
    Rng::new(0xA1E7).fill_normal(&mut x.data, 1.0);
    x
}

/// Times `runner` on `model` at `batch`: `runs` measured runs after one warm-up (which also
/// builds GPU plans and fills caches). `per_layer` adds the prefix-difference breakdown.
pub async fn run(
    runner: &mut Runner<'_>,
    model: &Model,
    batch: usize,
    runs: usize,
    per_layer: bool,
) -> Result<Report> {
    let x = random_input(&model.arch, batch);
    let runs = runs.max(1);
    runner.forward(&x).await?; // warm-up
    let mut totals = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        runner.forward(&x).await?;
        totals.push(t.elapsed().as_secs_f64());
    }
    let mut layers = Vec::new();
    if per_layer {
        let rows = model.arch.summary()?;
        let mut prev = 0.0;
        for r in rows {
            let mut ts = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = Instant::now();
                runner.forward_to(&x, &r.name).await?;
                ts.push(t.elapsed().as_secs_f64());
            }
            let prefix = median(ts);
            layers.push(LayerTime {
                name: r.name,
                kind: r.kind,
                macs: r.macs,
                prefix_s: prefix,
                layer_s: prefix - prev,
            });
            prev = prefix;
        }
    }
    Ok(Report {
        backend: runner.describe(),
        batch,
        runs,
        total_s: median(totals),
        layers,
    })
}

impl Report {
    /// The table `alexnet bench` prints.
    pub fn render(&self, model: &Model) -> Result<String> {
        let mut s = String::new();
        let macs = model.arch.macs()? as f64 * self.batch as f64;
        s.push_str(&format!(
            "backend: {}\nmodel: {} ({} parameters), batch {}, median of {} runs\n",
            self.backend,
            model.arch.family.as_str(),
            model.arch.param_count(),
            self.batch,
            self.runs
        ));
        if !self.layers.is_empty() {
            s.push_str(&format!(
                "\n{:<10} {:<8} {:>12} {:>12} {:>10}\n",
                "layer", "op", "ms", "prefix ms", "GFLOP/s"
            ));
            for l in &self.layers {
                let flops = 2.0 * l.macs as f64 * self.batch as f64;
                let gflops = if l.macs > 0 && l.layer_s > 0.0 {
                    format!("{:.2}", flops / l.layer_s / 1e9)
                } else {
                    "-".into()
                };
                s.push_str(&format!(
                    "{:<10} {:<8} {:>12.3} {:>12.3} {:>10}\n",
                    l.name,
                    l.kind,
                    l.layer_s * 1e3,
                    l.prefix_s * 1e3,
                    gflops
                ));
            }
        }
        s.push_str(&format!(
            "\nforward: {:.3} ms per batch, {:.3} ms per image, {:.1} images/s, {:.2} GFLOP/s\n",
            self.total_s * 1e3,
            self.total_s * 1e3 / self.batch as f64,
            self.batch as f64 / self.total_s,
            2.0 * macs / self.total_s / 1e9
        ));
        Ok(s)
    }
}

//! `alexnet bench` and the browser's bench page: time per layer and in total, for a forward
//! or (with `train`) a whole training step (forward, loss, backward, SGD update), on one
//! backend, medians of several runs after a warm-up. Numbers are printed, never asserted
//! (shared, noisy machines).
//!
//! How per-layer times are measured, best first:
//! - **GPU timestamps** (the device has `timestamp-query`): every kernel launch in its own
//!   compute pass with timestamps at its beginning and end ([`crate::gpu::timer`]); a
//!   layer's time is the sum of its launches' GPU times, free of submission and readback
//!   costs. Forward and training steps.
//! - **Prefix differences** (forward without timestamps, every CPU backend): the time to run
//!   layers `0..=i` minus the time to run `0..i`, each the median of the runs. That works
//!   the same on every backend at the cost of running the network about L/2 times per run;
//!   tiny layers can come out slightly negative in noise and are printed as measured.
//! - **Wall time per layer** (a training step on the fast CPU backend): the clock read around
//!   each layer's forward, backward and update inside the step.
//! - A training step on the reference, or on a GPU without timestamps, gets its total only.
//!
//! Wall time comes from a caller's clock (`Instant` natively, `performance.now()` in a
//! browser, where `Instant` panics), so the same code serves the CLI and the page.

use crate::backend::{BackendKind, Runner};
use crate::elementwise::Sgd;
use crate::error::{Error, Result};
use crate::gpu::plan::GpuOptions;
use crate::gpu::{Phase, Span};
use crate::model::Model;
use crate::model::{Arch, LayerInfo};
use crate::tensor::{Rng, Tensor};
use crate::train::engine::{Engine, StepProfiles};
use std::collections::HashMap;

/// What to measure.
#[derive(Clone, Debug)]
pub struct Options {
    pub batch: usize,
    /// Measured runs after one warm-up.
    pub runs: usize,
    /// Per-layer times as well as the total.
    pub per_layer: bool,
    /// A training step (forward + loss + backward + update) instead of a forward.
    pub train: bool,
    /// GPU kernel choices (`Default`: what the app uses).
    pub gpu: GpuOptions,
}

/// How the per-layer numbers were obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    GpuTimestamps,
    PrefixDifferences,
    /// Wall time around each layer's forward, backward and update inside the step.
    WallPerLayer,
    /// No per-layer numbers.
    TotalOnly,
}

impl Method {
    fn describe(self) -> &'static str {
        match self {
            Method::GpuTimestamps => "GPU timestamps per kernel launch (timestamp-query)",
            Method::PrefixDifferences => "wall time, differences of prefix runs",
            Method::WallPerLayer => "wall time around each layer inside the step",
            Method::TotalOnly => "wall time of the whole step only",
        }
    }
}

/// One row of the report; times in seconds, medians over the runs.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LayerTime {
    pub name: String,
    pub kind: &'static str,
    /// Forward multiply-adds per image.
    pub macs: u64,
    pub forward_s: f64,
    /// Prefix-difference timing only: the median time of layers `0..=i`.
    pub prefix_s: Option<f64>,
    /// Training only.
    pub backward_s: Option<f64>,
    /// Training only, layers with parameters.
    pub update_s: Option<f64>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    pub backend: String,
    /// `Some(true)` on a software GPU adapter (lavapipe, SwiftShader).
    pub software_adapter: Option<bool>,
    pub batch: usize,
    pub runs: usize,
    pub train: bool,
    pub method: Method,
    /// Creating the backend (GPU: device and every pipeline), seconds.
    pub setup_s: f64,
    /// The first forward or step (GPU: planning buffers, uploading weights), seconds.
    pub warmup_s: f64,
    /// Median wall time of a whole forward or training step, seconds.
    pub total_s: f64,
    pub runs_s: Vec<f64>,
    /// With GPU timestamps: the median summed GPU time of every launch, seconds.
    pub gpu_total_s: Option<f64>,
    /// Training with GPU timestamps: the fused softmax + cross-entropy, seconds.
    pub loss_s: Option<f64>,
    pub layers: Vec<LayerTime>,
    /// The last forward's output (forward only), for comparing backends.
    #[serde(skip)]
    pub output: Vec<f32>,
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

/// Labels for a training benchmark: `i mod classes`.
fn bench_labels(model: &Model, batch: usize) -> Result<Vec<usize>> {
    let shapes = model.arch.shapes()?;
    let classes = shapes
        .iter()
        .rev()
        .find_map(|s| match s.as_slice() {
            [k] if *k > 0 => Some(*k),
            _ => None,
        })
        .ok_or_else(|| Error::Arch("training needs (N, K) logits".into()))?;
    Ok((0..batch).map(|i| i % classes).collect())
}

/// Times `model` on backend `kind`. `clock` returns seconds from any fixed origin.
pub async fn run(
    model: &Model,
    kind: BackendKind,
    opts: Options,
    clock: &dyn Fn() -> f64,
) -> Result<Report> {
    if opts.batch == 0 {
        return Err(Error::Usage("--batch must be at least 1".into()));
    }
    let runs = opts.runs.max(1);
    let t = clock();
    let mut runner = Runner::with_gpu_options(model, kind, opts.gpu.clone()).await?;
    let setup_s = clock() - t;
    let mut report = Report {
        backend: runner.describe(),
        software_adapter: runner.adapter().map(|a| a.software),
        batch: opts.batch,
        runs,
        train: opts.train,
        method: Method::TotalOnly,
        setup_s,
        warmup_s: 0.0,
        total_s: 0.0,
        runs_s: Vec::new(),
        gpu_total_s: None,
        loss_s: None,
        layers: Vec::new(),
        output: Vec::new(),
    };
    let x = random_input(&model.arch, opts.batch);
    if opts.train {
        train(runner, model, &x, &opts, clock, &mut report).await?;
    } else {
        forward(&mut runner, model, &x, &opts, clock, &mut report).await?;
    }
    Ok(report)
}

async fn forward(
    runner: &mut Runner<'_>,
    model: &Model,
    x: &Tensor,
    opts: &Options,
    clock: &dyn Fn() -> f64,
    report: &mut Report,
) -> Result<()> {
    let t = clock();
    runner.forward(x).await?;
    report.warmup_s = clock() - t;
    for _ in 0..report.runs {
        let t = clock();
        let y = runner.forward(x).await?;
        report.runs_s.push(clock() - t);
        report.output = y.data;
    }
    report.total_s = median(report.runs_s.clone());
    if !opts.per_layer {
        return Ok(());
    }
    let rows = model.arch.summary()?;
    if let Some(runs) = runner.profile_forward(x, report.runs).await? {
        from_gpu_timestamps(report, &runs, rows);
        return Ok(());
    }
    report.method = Method::PrefixDifferences;
    let mut prev = 0.0;
    for r in rows {
        let mut ts = Vec::with_capacity(report.runs);
        for _ in 0..report.runs {
            let t = clock();
            runner.forward_to(x, &r.name).await?;
            ts.push(clock() - t);
        }
        let prefix = median(ts);
        report.layers.push(LayerTime {
            name: r.name,
            kind: r.kind,
            macs: r.macs,
            forward_s: prefix - prev,
            prefix_s: Some(prefix),
            backward_s: None,
            update_s: None,
        });
        prev = prefix;
    }
    Ok(())
}

/// The report of timestamped GPU runs (one list of `(span, seconds)` per run, from an
/// inference or a training step): the GPU's total, each layer's phases and the loss, as
/// medians over the runs. A phase no run launched (backward and update in inference) is
/// `None`.
fn from_gpu_timestamps(report: &mut Report, runs: &[Vec<(Span, f64)>], rows: Vec<LayerInfo>) {
    let per_run: Vec<HashMap<Span, f64>> = runs.iter().map(|r| sum_spans(r)).collect();
    report.method = Method::GpuTimestamps;
    report.gpu_total_s = Some(median(
        runs.iter()
            .map(|r| r.iter().map(|(_, s)| s).sum())
            .collect(),
    ));
    report.loss_s = span_median_opt(&per_run, Phase::Loss, rows.len().saturating_sub(1))
        .or_else(|| span_median_opt(&per_run, Phase::Loss, rows.len()));
    for (idx, r) in rows.into_iter().enumerate() {
        report.layers.push(LayerTime {
            name: r.name,
            kind: r.kind,
            macs: r.macs,
            forward_s: span_median(&per_run, Phase::Forward, idx),
            prefix_s: None,
            backward_s: span_median_opt(&per_run, Phase::Backward, idx),
            update_s: span_median_opt(&per_run, Phase::Update, idx),
        });
    }
}

/// Seconds per span, summed over the launches of one run.
fn sum_spans(run: &[(Span, f64)]) -> HashMap<Span, f64> {
    let mut m = HashMap::new();
    for &(s, t) in run {
        *m.entry(s).or_insert(0.0) += t;
    }
    m
}

/// The median over runs of one span's time (0 where a run had no launch for it).
fn span_median(runs: &[HashMap<Span, f64>], phase: Phase, layer: usize) -> f64 {
    median(
        runs.iter()
            .map(|m| m.get(&Span { phase, layer }).copied().unwrap_or(0.0))
            .collect(),
    )
}

/// The same span's median, or `None` when no run had a launch for it.
fn span_median_opt(runs: &[HashMap<Span, f64>], phase: Phase, layer: usize) -> Option<f64> {
    let span = Span { phase, layer };
    runs.iter()
        .any(|m| m.contains_key(&span))
        .then(|| span_median(runs, phase, layer))
}

async fn train(
    runner: Runner<'_>,
    model: &Model,
    x: &Tensor,
    opts: &Options,
    clock: &dyn Fn() -> f64,
    report: &mut Report,
) -> Result<()> {
    let labels = bench_labels(model, opts.batch)?;
    let opt = Sgd::default();
    let t = clock();
    // the one training interface; the GPU's on the device the set-up created
    let mut engine = match runner.kind() {
        BackendKind::Reference => Engine::reference(model.clone(), opt)?,
        BackendKind::Cpu => Engine::cpu(model.clone(), None, opt, crate::cpu::default_threads())?,
        BackendKind::Gpu => {
            let ctx = runner
                .into_gpu_context()
                .ok_or_else(|| Error::Internal("the GPU backend has no context".into()))?;
            Engine::gpu_with_options(ctx, model, None, opts.batch, opt, &opts.gpu).await?
        }
    };
    engine.step(x, &labels, 0).await?;
    report.warmup_s = clock() - t;
    for i in 0..report.runs {
        let t = clock();
        engine.step(x, &labels, i as u64 + 1).await?;
        report.runs_s.push(clock() - t);
    }
    report.total_s = median(report.runs_s.clone());
    if !opts.per_layer {
        return Ok(());
    }
    match engine
        .profile_steps(x, &labels, 1000, report.runs, clock)
        .await?
    {
        None => {}
        Some(StepProfiles::Gpu(runs)) => from_gpu_timestamps(report, &runs, model.arch.summary()?),
        Some(StepProfiles::Wall(per_run)) => {
            report.method = Method::WallPerLayer;
            let med = |part: usize, i: usize| -> f64 {
                median(
                    per_run
                        .iter()
                        .map(|r| r[part].get(i).copied().unwrap_or(0.0))
                        .collect(),
                )
            };
            // the step runs every layer but a terminal softmax, backward included
            let ran = crate::model::loss_layers(&model.arch);
            for (idx, (r, layer)) in model
                .arch
                .summary()?
                .into_iter()
                .zip(&model.arch.layers)
                .enumerate()
            {
                report.layers.push(LayerTime {
                    name: r.name,
                    kind: r.kind,
                    macs: r.macs,
                    forward_s: med(0, idx),
                    prefix_s: None,
                    backward_s: (idx < ran).then(|| med(1, idx)),
                    update_s: layer.param_shapes().is_some().then(|| med(2, idx)),
                });
            }
        }
    }
    Ok(())
}

impl Report {
    /// The table `alexnet bench` prints.
    pub fn render(&self, model: &Model) -> Result<String> {
        let mut s = String::new();
        let batch = self.batch as f64;
        s.push_str(&format!(
            "backend: {}\nmodel: {} ({} parameters), batch {}, {}, median of {} runs\n",
            self.backend,
            model.arch.family.as_str(),
            model.arch.param_count(),
            self.batch,
            if self.train {
                "training step (forward + loss + backward + SGD update)"
            } else {
                "forward"
            },
            self.runs
        ));
        let gflops = |macs: f64, secs: f64| {
            if macs > 0.0 && secs > 0.0 {
                format!("{:.2}", 2.0 * macs * batch / secs / 1e9)
            } else {
                "-".into()
            }
        };
        if !self.layers.is_empty() {
            s.push_str(&format!("per layer: {}\n", self.method.describe()));
            if self.train {
                s.push_str(&format!(
                    "\n{:<10} {:<8} {:>11} {:>11} {:>11} {:>10}\n",
                    "layer", "op", "fwd ms", "bwd ms", "update ms", "GFLOP/s"
                ));
                for (i, l) in self.layers.iter().enumerate() {
                    let bwd = l.backward_s.unwrap_or(0.0);
                    // backward of a conv/FC: input gradient + weight gradient, each as many
                    // multiply-adds as the forward (the first layer skips its input gradient)
                    let bwd_macs = if i == 0 { 1.0 } else { 2.0 } * l.macs as f64;
                    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{:.3}", v * 1e3));
                    s.push_str(&format!(
                        "{:<10} {:<8} {:>11.3} {:>11} {:>11} {:>10}\n",
                        l.name,
                        l.kind,
                        l.forward_s * 1e3,
                        ms(l.backward_s),
                        ms(l.update_s),
                        gflops(l.macs as f64 + bwd_macs, l.forward_s + bwd)
                    ));
                }
                if let Some(loss) = self.loss_s {
                    s.push_str(&format!(
                        "{:<10} {:<8} {:>11.3}\n",
                        "loss",
                        "xent",
                        loss * 1e3
                    ));
                }
            } else {
                let prefix = self.method == Method::PrefixDifferences;
                s.push_str(&format!(
                    "\n{:<10} {:<8} {:>12} {:>10}{}\n",
                    "layer",
                    "op",
                    "ms",
                    "GFLOP/s",
                    if prefix { "    prefix ms" } else { "" }
                ));
                for l in &self.layers {
                    s.push_str(&format!(
                        "{:<10} {:<8} {:>12.3} {:>10}{}\n",
                        l.name,
                        l.kind,
                        l.forward_s * 1e3,
                        gflops(l.macs as f64, l.forward_s),
                        l.prefix_s
                            .filter(|_| prefix)
                            .map_or(String::new(), |p| format!(" {:>12.3}", p * 1e3)),
                    ));
                }
            }
        }
        if let Some(g) = self.gpu_total_s {
            s.push_str(&format!(
                "\nGPU time of all kernels: {:.3} ms per {}\n",
                g * 1e3,
                if self.train { "step" } else { "batch" }
            ));
        }
        let macs = model.arch.macs()? as f64;
        // a training step: forward, plus backward at about twice the forward's work
        let step_macs = if self.train { 3.0 * macs } else { macs };
        s.push_str(&format!(
            "\n{}: {:.3} ms per batch, {:.3} ms per image, {:.1} images/s, {} GFLOP/s\n",
            if self.train {
                "training step"
            } else {
                "forward"
            },
            self.total_s * 1e3,
            self.total_s * 1e3 / batch,
            batch / self.total_s,
            gflops(step_macs, self.total_s)
        ));
        Ok(s)
    }
}

//! The one training interface over the backends: [`Engine`] takes training steps (forward,
//! loss, backward and the SGD update) on the fast CPU backend or on a GPU, and gives the
//! current weights, momentum and eval-mode logits. Its methods are async so the page awaits
//! them in the browser while the CLI blocks on them (`pollster`), driving the same loop
//! ([`super::run`]).

use crate::elementwise::Sgd;
use crate::error::{Error, Result};
use crate::gpu::plan::GpuOptions;
use crate::gpu::{GpuContext, GpuTrainer, Span};
use crate::model::{Model, Params};
use crate::tensor::Tensor;

/// Training on the CPU: the fast backend's `cpu::loss_and_grads`, or with `exact` the
/// reference's `Model::loss_and_grads` (the oracle, for benchmarks and checks), then
/// `elementwise::sgd_update`.
pub struct CpuEngine {
    model: Model,
    velocities: Params,
    ws: crate::cpu::Workspace,
    sgd: Sgd,
    /// Layers not updated.
    frozen: Vec<String>,
    exact: bool,
}

/// Per-layer times of profiled training steps, one entry per step.
pub enum StepProfiles {
    /// Wall time of each layer's forward, backward and update on the fast CPU backend,
    /// seconds, indexed by layer.
    Wall(Vec<[Vec<f64>; 3]>),
    /// Every GPU launch's timestamped seconds, labelled with its phase and layer.
    Gpu(Vec<Vec<(Span, f64)>>),
}

impl CpuEngine {
    /// `velocities`: from a checkpoint, or `None` for zeros.
    pub fn new(model: Model, velocities: Option<Params>, sgd: Sgd, threads: usize) -> Result<Self> {
        let velocities = match velocities {
            Some(v) => {
                check_velocities(&model, &v)?;
                v
            }
            None => model
                .params
                .iter()
                .map(|(k, t)| (k.clone(), Tensor::zeros(&t.shape)))
                .collect(),
        };
        Ok(CpuEngine {
            model,
            velocities,
            ws: crate::cpu::Workspace::new(threads),
            sgd,
            frozen: Vec::new(),
            exact: false,
        })
    }

    fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        let (loss, grads) = if self.exact {
            self.model.loss_and_grads(x, labels, seed)?
        } else {
            crate::cpu::train::loss_and_grads(&mut self.ws, &self.model, x, labels, seed)?
        };
        self.update(&grads, None)?;
        Ok(loss)
    }

    /// A fast-backend step with each layer's forward, backward and update timed by `clock`.
    fn timed_step(
        &mut self,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
        clock: &dyn Fn() -> f64,
    ) -> Result<[Vec<f64>; 3]> {
        let (_, grads, t) = crate::cpu::train::loss_and_grads_timed(
            &mut self.ws,
            &self.model,
            x,
            labels,
            seed,
            clock,
        )?;
        let mut update = Vec::new();
        self.update(&grads, Some((clock, &mut update)))?;
        Ok([t.forward, t.backward, update])
    }

    /// The SGD update of every parameter not frozen; with `timing`, each layer's update
    /// seconds added at its index.
    fn update(
        &mut self,
        grads: &Params,
        mut timing: Option<(&dyn Fn() -> f64, &mut Vec<f64>)>,
    ) -> Result<()> {
        let layer_of = |name: &str| -> Option<usize> {
            let layer = name.rsplit_once('.').map_or(name, |(l, _)| l);
            self.model.arch.layer_index(layer).ok()
        };
        // layer indices only where updates are timed: a plain step does no lookups
        let indices: Vec<Option<usize>> = match timing {
            Some(_) => self.model.params.keys().map(|n| layer_of(n)).collect(),
            None => vec![None; self.model.params.len()],
        };
        for ((name, w), idx) in self.model.params.iter_mut().zip(indices) {
            let layer = name.rsplit_once('.').map_or(name.as_str(), |(l, _)| l);
            if self.frozen.iter().any(|f| f == layer) {
                continue;
            }
            let g = grads
                .get(name)
                .ok_or_else(|| Error::Internal(format!("no gradient for {name}")))?;
            let v = self
                .velocities
                .get_mut(name)
                .ok_or_else(|| Error::Internal(format!("no momentum for {name}")))?;
            let t = timing.as_ref().map(|(clock, _)| clock());
            crate::elementwise::sgd_update(&self.sgd, &mut w.data, &mut v.data, &g.data)?;
            if let (Some(t), Some((clock, times)), Some(i)) = (t, timing.as_mut(), idx) {
                if times.len() <= i {
                    times.resize(i + 1, 0.0);
                }
                times[i] += clock() - t;
            }
        }
        Ok(())
    }
}

fn check_velocities(model: &Model, v: &Params) -> Result<()> {
    for (k, t) in &model.params {
        match v.get(k) {
            Some(m) if m.shape == t.shape => {}
            _ => {
                return Err(Error::Weights(format!(
                    "the checkpoint's momentum for {k} is missing or has the wrong shape"
                )))
            }
        }
    }
    Ok(())
}

/// Training on a GPU: `GpuTrainer` (one submission per step), evaluated on the same
/// parameter buffers.
pub struct GpuEngine {
    ctx: GpuContext,
    trainer: GpuTrainer,
    frozen: Vec<String>,
}

impl GpuEngine {
    /// Eval-mode logits of any number of images: the plan's batch is fixed, so `x` runs in
    /// chunks of it, the last one padded with zero images whose rows are dropped.
    async fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let (n, b) = (x.shape.first().copied().unwrap_or(0), self.trainer.batch());
        let per = x.data.len() / n.max(1);
        let mut rows = Vec::new();
        let mut k = 0;
        for chunk in x.data.chunks(b * per) {
            let m = chunk.len() / per;
            let mut shape = x.shape.clone();
            shape[0] = m;
            let part = pad_batch(&Tensor::new(&shape, chunk.to_vec())?, b)?;
            let out = first_rows(self.trainer.model().forward(&self.ctx, &part).await?, m)?;
            k = out.shape[1];
            rows.extend(out.data);
        }
        Tensor::new(&[n, k], rows)
    }
}

/// A training run's backend.
// One engine per run, moved rarely: the CPU variant's inline size does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    /// The reference backend's gradients (slow: benchmarks and checks).
    Reference(CpuEngine),
    Cpu(CpuEngine),
    Gpu(Box<GpuEngine>),
}

impl Engine {
    /// The fast CPU backend with `threads` threads; `velocities` from a checkpoint or zeros.
    pub fn cpu(model: Model, velocities: Option<Params>, sgd: Sgd, threads: usize) -> Result<Self> {
        Ok(Engine::Cpu(CpuEngine::new(
            model, velocities, sgd, threads,
        )?))
    }

    /// The reference backend's training step (plain loops, f64 sums).
    pub fn reference(model: Model, sgd: Sgd) -> Result<Self> {
        let mut e = CpuEngine::new(model, None, sgd, 1)?;
        e.exact = true;
        Ok(Engine::Reference(e))
    }

    /// A GPU training plan for batches of `batch` on `ctx`.
    pub async fn gpu(
        ctx: GpuContext,
        model: &Model,
        velocities: Option<&Params>,
        batch: usize,
        sgd: Sgd,
    ) -> Result<Self> {
        Engine::gpu_with_options(ctx, model, velocities, batch, sgd, &GpuOptions::default()).await
    }

    /// As `gpu`, with explicit kernel choices (benchmarks compare them).
    pub async fn gpu_with_options(
        ctx: GpuContext,
        model: &Model,
        velocities: Option<&Params>,
        batch: usize,
        sgd: Sgd,
        opts: &GpuOptions,
    ) -> Result<Self> {
        let trainer = GpuTrainer::with_options(&ctx, model, batch, sgd, opts).await?;
        if let Some(v) = velocities {
            check_velocities(model, v)?;
            trainer.set_velocities(&ctx, v)?;
        }
        Ok(Engine::Gpu(Box::new(GpuEngine {
            ctx,
            trainer,
            frozen: Vec::new(),
        })))
    }

    /// `runs` steps (dropout seeds `seed`, `seed + 1`, ...) with per-layer times: wall
    /// clock per layer on the fast CPU backend, GPU timestamps where the adapter has them;
    /// `None` where neither is possible (the reference, a GPU without timestamp queries).
    pub async fn profile_steps(
        &mut self,
        x: &Tensor,
        labels: &[usize],
        seed: u64,
        runs: usize,
        clock: &dyn Fn() -> f64,
    ) -> Result<Option<StepProfiles>> {
        match self {
            Engine::Reference(_) => Ok(None),
            Engine::Cpu(e) => {
                let steps = (0..runs as u64)
                    .map(|i| e.timed_step(x, labels, seed + i, clock))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Some(StepProfiles::Wall(steps)))
            }
            Engine::Gpu(g) => {
                let Some(mut timer) = g.ctx.timer(g.trainer.dispatch_count())? else {
                    return Ok(None);
                };
                let mut steps = Vec::with_capacity(runs);
                for i in 0..runs as u64 {
                    let (_, times) = g
                        .trainer
                        .profile_step(&g.ctx, x, labels, seed + i, &mut timer)
                        .await?;
                    steps.push(times);
                }
                Ok(Some(StepProfiles::Gpu(steps)))
            }
        }
    }

    /// One step on `(N, C, H, W)` with `labels`; dropout seeded with `seed`. The mean loss
    /// before the update.
    pub async fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        match self {
            Engine::Reference(e) | Engine::Cpu(e) => e.step(x, labels, seed),
            Engine::Gpu(g) => g.trainer.step(&g.ctx, x, labels, seed).await,
        }
    }

    pub fn set_sgd(&mut self, sgd: Sgd) -> Result<()> {
        match self {
            Engine::Reference(e) | Engine::Cpu(e) => {
                e.sgd = sgd;
                Ok(())
            }
            Engine::Gpu(g) => g.trainer.set_sgd(&g.ctx, sgd),
        }
    }

    /// Stops updating the parameters of these layers (by name); empty trains them all.
    pub fn set_frozen(&mut self, layers: &[String]) -> Result<()> {
        match self {
            Engine::Reference(e) | Engine::Cpu(e) => {
                for l in layers {
                    e.model.arch.layer_index(l)?;
                }
                e.frozen = layers.to_vec();
            }
            Engine::Gpu(g) => {
                let arch = g.trainer.model().arch();
                let idx = layers
                    .iter()
                    .map(|l| arch.layer_index(l))
                    .collect::<Result<Vec<_>>>()?;
                g.trainer.set_frozen(&g.ctx, &idx)?;
                g.frozen = layers.to_vec();
            }
        }
        Ok(())
    }

    /// Eval-mode logits `(N, classes)` (any N).
    pub async fn logits(&mut self, x: &Tensor) -> Result<Tensor> {
        match self {
            Engine::Reference(e) => e.model.forward(x),
            Engine::Cpu(e) => {
                crate::cpu::FastCpu::with_threads(&e.model, e.ws.threads())?.forward(x)
            }
            Engine::Gpu(g) => g.logits(x).await,
        }
    }

    /// The current weights.
    pub async fn model(&mut self) -> Result<Model> {
        match self {
            Engine::Reference(e) | Engine::Cpu(e) => Ok(e.model.clone()),
            Engine::Gpu(g) => g.trainer.to_model(&g.ctx).await,
        }
    }

    /// The current momentum of every parameter.
    pub async fn velocities(&mut self) -> Result<Params> {
        match self {
            Engine::Reference(e) | Engine::Cpu(e) => Ok(e.velocities.clone()),
            Engine::Gpu(g) => g.trainer.velocities(&g.ctx).await,
        }
    }

    /// "ref", "cpu" or "gpu".
    pub fn kind(&self) -> &'static str {
        match self {
            Engine::Reference(_) => "ref",
            Engine::Cpu(_) => "cpu",
            Engine::Gpu(_) => "gpu",
        }
    }

    /// Which backend, in words.
    pub fn describe(&self) -> String {
        match self {
            Engine::Reference(_) => "CPU reference (plain loops)".into(),
            Engine::Cpu(e) => format!("fast CPU backend, {} thread(s)", e.ws.threads()),
            Engine::Gpu(g) => {
                let a = g.ctx.report();
                format!("GPU {} ({})", a.name, a.backend)
            }
        }
    }

    /// Moves the run to a GPU plan for batches of `batch` on `ctx`: the weights and the
    /// frozen layers so far (the momentum restarts at zero, as a person switching mid-run
    /// expects no more than the weights to carry over). On an error the engine is unchanged.
    pub async fn move_to_gpu(&mut self, ctx: GpuContext, batch: usize, sgd: Sgd) -> Result<()> {
        let model = self.model().await?;
        let frozen = match self {
            Engine::Reference(e) | Engine::Cpu(e) => e.frozen.clone(),
            Engine::Gpu(g) => g.frozen.clone(),
        };
        let mut moved = Engine::gpu(ctx, &model, None, batch, sgd).await?;
        moved.set_frozen(&frozen)?;
        *self = moved;
        Ok(())
    }
}

/// `x` `(n, ...)` padded with zero images to `(batch, ...)`: a GPU plan's batch is fixed.
pub fn pad_batch(x: &Tensor, batch: usize) -> Result<Tensor> {
    let n = x.shape.first().copied().unwrap_or(0);
    if n == 0 || n > batch {
        return Err(Error::Training(format!(
            "a batch of {n} does not fit the planned batch of {batch}"
        )));
    }
    let per = x.data.len() / n;
    let mut shape = x.shape.clone();
    shape[0] = batch;
    let mut data = x.data.clone();
    data.resize(batch * per, 0.0);
    Tensor::new(&shape, data)
}

/// The first `n` rows of `(N, K)` logits (dropping a padded batch's extra rows).
pub fn first_rows(out: Tensor, n: usize) -> Result<Tensor> {
    let k = out.shape.get(1).copied().unwrap_or(0);
    let rows = out
        .data
        .get(..n * k)
        .ok_or_else(|| Error::Training(format!("{n} rows asked of {:?}", out.shape)))?;
    Tensor::new(&[n, k], rows.to_vec())
}

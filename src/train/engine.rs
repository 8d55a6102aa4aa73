//! The one training interface over the backends: [`Engine`] takes training steps (forward,
//! loss, backward and the SGD update) on the fast CPU backend or on a GPU, and gives the
//! current weights, momentum and eval-mode logits. Its methods are async so the page awaits
//! them in the browser while the CLI blocks on them (`pollster`), driving the same loop
//! ([`super::run`]).

use crate::elementwise::Sgd;
use crate::error::{Error, Result};
use crate::gpu::{GpuContext, GpuTrainer};
use crate::model::{Model, Params};
use crate::tensor::Tensor;

/// Training on the fast CPU backend (`cpu::loss_and_grads` and `elementwise::sgd_update`).
pub struct CpuEngine {
    model: Model,
    velocities: Params,
    ws: crate::cpu::Workspace,
    sgd: Sgd,
    /// Layers not updated.
    frozen: Vec<String>,
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
        })
    }

    fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        let (loss, grads) =
            crate::cpu::train::loss_and_grads(&mut self.ws, &self.model, x, labels, seed)?;
        for (name, w) in self.model.params.iter_mut() {
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
            crate::elementwise::sgd_update(&self.sgd, &mut w.data, &mut v.data, &g.data)?;
        }
        Ok(loss)
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
    pub async fn new(
        ctx: GpuContext,
        model: &Model,
        velocities: Option<&Params>,
        batch: usize,
        sgd: Sgd,
    ) -> Result<Self> {
        let trainer = GpuTrainer::new(&ctx, model, batch, sgd).await?;
        if let Some(v) = velocities {
            check_velocities(model, v)?;
            trainer.set_velocities(&ctx, v)?;
        }
        Ok(GpuEngine {
            ctx,
            trainer,
            frozen: Vec::new(),
        })
    }

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

    /// A GPU training plan for batches of `batch` on `ctx`.
    pub async fn gpu(
        ctx: GpuContext,
        model: &Model,
        velocities: Option<&Params>,
        batch: usize,
        sgd: Sgd,
    ) -> Result<Self> {
        Ok(Engine::Gpu(Box::new(
            GpuEngine::new(ctx, model, velocities, batch, sgd).await?,
        )))
    }

    /// One step on `(N, C, H, W)` with `labels`; dropout seeded with `seed`. The mean loss
    /// before the update.
    pub async fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> Result<f32> {
        match self {
            Engine::Cpu(e) => e.step(x, labels, seed),
            Engine::Gpu(g) => g.trainer.step(&g.ctx, x, labels, seed).await,
        }
    }

    pub fn set_sgd(&mut self, sgd: Sgd) -> Result<()> {
        match self {
            Engine::Cpu(e) => {
                e.sgd = sgd;
                Ok(())
            }
            Engine::Gpu(g) => g.trainer.set_sgd(&g.ctx, sgd),
        }
    }

    /// Stops updating the parameters of these layers (by name); empty trains them all.
    pub fn set_frozen(&mut self, layers: &[String]) -> Result<()> {
        match self {
            Engine::Cpu(e) => {
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
            Engine::Cpu(e) => {
                crate::cpu::FastCpu::with_threads(&e.model, e.ws.threads())?.forward(x)
            }
            Engine::Gpu(g) => g.logits(x).await,
        }
    }

    /// The current weights.
    pub async fn model(&mut self) -> Result<Model> {
        match self {
            Engine::Cpu(e) => Ok(e.model.clone()),
            Engine::Gpu(g) => g.trainer.to_model(&g.ctx).await,
        }
    }

    /// The current momentum of every parameter.
    pub async fn velocities(&mut self) -> Result<Params> {
        match self {
            Engine::Cpu(e) => Ok(e.velocities.clone()),
            Engine::Gpu(g) => g.trainer.velocities(&g.ctx).await,
        }
    }

    /// "cpu" or "gpu".
    pub fn kind(&self) -> &'static str {
        match self {
            Engine::Cpu(_) => "cpu",
            Engine::Gpu(_) => "gpu",
        }
    }

    /// Which backend, in words.
    pub fn describe(&self) -> String {
        match self {
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
            Engine::Cpu(e) => e.frozen.clone(),
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

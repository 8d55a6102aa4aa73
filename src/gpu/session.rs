//! [`GpuSession`]: a device with the network planned on it once per batch size, as an
//! interactive user (the web page) holds it: it keeps the last run's activations on the GPU
//! so a layer can be read back when the person opens it, and it survives a lost device
//! (driver reset, the browser reclaiming the GPU) by re-creating the device and re-uploading
//! the model, once per request, instead of failing every later request.

use super::context::GpuContext;
use super::plan::{GpuOptions, GpuPlan};
use super::AdapterReport;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::tensor::Tensor;
use std::collections::HashMap;

pub struct GpuSession {
    ctx: GpuContext,
    /// One plan per batch size (1 for a single crop, 10 for the paper's ten crops).
    plans: HashMap<usize, GpuPlan>,
    opts: GpuOptions,
    /// The batch size of the last successful forward: its plan's buffers hold that run.
    last: Option<usize>,
}

/// What [`GpuSession::forward_read`] returns: the outputs asked for and, when the device
/// had to be re-created first, why.
pub struct Outputs {
    pub tensors: Vec<Tensor>,
    pub recovered: Option<String>,
}

impl GpuSession {
    /// The default adapter with every kernel compiled (see [`GpuContext::new`]).
    pub async fn new() -> Result<GpuSession> {
        Ok(GpuSession::with_context(GpuContext::new().await?))
    }

    pub fn with_context(ctx: GpuContext) -> GpuSession {
        GpuSession::with_options(ctx, GpuOptions::default())
    }

    /// As `with_context`, with explicit kernel choices for its plans (benchmarks).
    pub fn with_options(ctx: GpuContext, opts: GpuOptions) -> GpuSession {
        GpuSession {
            ctx,
            plans: HashMap::new(),
            opts,
            last: None,
        }
    }

    pub fn options(&self) -> &GpuOptions {
        &self.opts
    }

    /// The plan of `model` for batches of `batch`, built on first use and kept, with the
    /// context it runs on.
    pub async fn plan(&mut self, model: &Model, batch: usize) -> Result<(&GpuContext, &GpuPlan)> {
        let plan =
            super::plan::plan_for(&self.ctx, &mut self.plans, model, batch, &self.opts).await?;
        Ok((&self.ctx, plan))
    }

    /// The output of layer `layer` for `x`: only that prefix of the network runs.
    pub async fn forward_to(&mut self, model: &Model, x: &Tensor, layer: &str) -> Result<Tensor> {
        let batch = super::plan::batch_of(x)?;
        self.last = None;
        let plan =
            super::plan::plan_for(&self.ctx, &mut self.plans, model, batch, &self.opts).await?;
        plan.forward_to(&self.ctx, x, layer).await
    }

    /// The device, the plans dropped.
    pub fn into_context(self) -> GpuContext {
        self.ctx
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn report(&self) -> AdapterReport {
        self.ctx.report()
    }

    /// Drops every plan (after the model changed): the next forward uploads it again.
    pub fn forget_model(&mut self) {
        self.plans.clear();
        self.last = None;
    }

    /// An eval forward of `x` `(N, C, H, W)` through `model`, reading back the outputs of
    /// the layers in `read`. A lost device (seen before the run, or a device error during
    /// it) is re-created and the model re-uploaded, then the run is tried once more.
    pub async fn forward_read(
        &mut self,
        model: &Model,
        x: &Tensor,
        read: &[usize],
    ) -> Result<Outputs> {
        let mut recovered = None;
        if let Some(why) = self.ctx.lost() {
            recovered = Some(self.recreate(&why).await?);
        }
        match self.try_forward(model, x, read).await {
            Ok(tensors) => Ok(Outputs { tensors, recovered }),
            // Only a device error can be a lost device; a shape error would fail again.
            Err(Error::Gpu(e)) if recovered.is_none() => {
                let why = self.ctx.lost().unwrap_or(e);
                let note = self.recreate(&why).await?;
                let tensors = self.try_forward(model, x, read).await?;
                Ok(Outputs {
                    tensors,
                    recovered: Some(note),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Layer `idx`'s output for image `image` of the last forward, `(1, ...)`, read back
    /// without running anything.
    pub async fn read_image(&self, idx: usize, image: usize) -> Result<Tensor> {
        let plan = self
            .last
            .and_then(|b| self.plans.get(&b))
            .ok_or_else(|| Error::Gpu("nothing has run on the GPU yet".into()))?;
        plan.read_image(&self.ctx, idx, image).await
    }

    /// Destroys the device, as a driver reset would (tests, and the page's control that
    /// shows the recovery).
    pub fn lose_device(&self) {
        self.ctx.lose_device();
    }

    async fn try_forward(
        &mut self,
        model: &Model,
        x: &Tensor,
        read: &[usize],
    ) -> Result<Vec<Tensor>> {
        let batch = super::plan::batch_of(x)?;
        self.last = None;
        let plan =
            super::plan::plan_for(&self.ctx, &mut self.plans, model, batch, &self.opts).await?;
        let out = plan.forward_read(&self.ctx, x, read).await?;
        self.last = Some(batch);
        Ok(out)
    }

    /// A new device on a fresh adapter request; the plans are rebuilt on the next forward.
    async fn recreate(&mut self, why: &str) -> Result<String> {
        self.plans.clear();
        self.last = None;
        self.ctx = GpuContext::new().await.map_err(|e| {
            Error::Gpu(format!(
                "the GPU device was lost ({why}) and could not be re-created: {e}"
            ))
        })?;
        Ok(format!(
            "the GPU device was lost ({why}); re-created it and re-uploaded the model"
        ))
    }
}

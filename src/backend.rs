//! One model, one backend: the plain CPU reference (`ref`), the fast CPU backend (`cpu`) or
//! WebGPU (`gpu`), behind the same forward calls. The GPU plans its buffers per batch size,
//! so a `Runner` builds one plan per batch size it meets and keeps it.

use crate::cpu::FastCpu;
use crate::error::{Error, Result};
use crate::gpu::plan::GpuOptions;
use crate::gpu::plan::{batch_of, plan_for};
use crate::gpu::{AdapterReport, GpuContext, GpuPlan, Span};
use crate::model::Model;
use crate::tensor::Tensor;
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "wasm32"), derive(clap::ValueEnum))]
pub enum BackendKind {
    /// The plain CPU reference (`src/reference`): the oracle, slow.
    #[cfg_attr(not(target_arch = "wasm32"), value(name = "ref", alias = "reference"))]
    Reference,
    /// The fast CPU backend (`src/cpu`).
    Cpu,
    /// WebGPU kernels (`src/gpu`; Vulkan natively).
    #[cfg_attr(not(target_arch = "wasm32"), value(alias = "webgpu"))]
    Gpu,
}

impl BackendKind {
    /// The backend the CLI and the page name `name`: `ref` (or `reference`), `cpu`, `gpu`
    /// (or `webgpu`).
    pub fn from_name(name: &str) -> Result<BackendKind> {
        match name {
            "ref" | "reference" => Ok(BackendKind::Reference),
            "cpu" => Ok(BackendKind::Cpu),
            "gpu" | "webgpu" => Ok(BackendKind::Gpu),
            other => Err(Error::Usage(format!(
                "unknown backend {other:?}: use ref, cpu or gpu"
            ))),
        }
    }

    /// What runs when nothing is asked for: the GPU on a hardware adapter, else the fast
    /// CPU (a software adapter is slower than the CPU backend).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn native_default() -> BackendKind {
        if crate::gpu::native_adapters().iter().any(|a| !a.software) {
            BackendKind::Gpu
        } else {
            BackendKind::Cpu
        }
    }
}

enum Inner<'m> {
    Reference,
    Cpu(FastCpu<'m>),
    Gpu {
        // boxed: the device handles make this variant far larger than the others
        ctx: Box<GpuContext>,
        plans: HashMap<usize, GpuPlan>,
    },
}

pub struct Runner<'m> {
    model: &'m Model,
    inner: Inner<'m>,
    /// Kernel choices for the GPU plans (the defaults unless a benchmark compares kernels).
    gpu_options: GpuOptions,
}

impl<'m> Runner<'m> {
    /// Binds `model` to a backend. For `Gpu` this finds an adapter and compiles every
    /// kernel before returning, so the first forward pays no shader compilation.
    pub async fn new(model: &'m Model, kind: BackendKind) -> Result<Runner<'m>> {
        let inner = match kind {
            BackendKind::Reference => Inner::Reference,
            BackendKind::Cpu => Inner::Cpu(FastCpu::new(model)?),
            BackendKind::Gpu => Inner::Gpu {
                ctx: Box::new(GpuContext::new().await?),
                plans: HashMap::new(),
            },
        };
        Ok(Runner {
            model,
            inner,
            gpu_options: GpuOptions::default(),
        })
    }

    /// As `new`, with explicit GPU kernel choices (ignored by the CPU backends).
    pub async fn with_gpu_options(
        model: &'m Model,
        kind: BackendKind,
        gpu_options: GpuOptions,
    ) -> Result<Runner<'m>> {
        let mut r = Runner::new(model, kind).await?;
        r.gpu_options = gpu_options;
        Ok(r)
    }

    /// The GPU kernel choices plans are built with.
    pub fn gpu_options(&self) -> &GpuOptions {
        &self.gpu_options
    }

    pub fn kind(&self) -> BackendKind {
        match self.inner {
            Inner::Reference => BackendKind::Reference,
            Inner::Cpu(_) => BackendKind::Cpu,
            Inner::Gpu { .. } => BackendKind::Gpu,
        }
    }

    /// The GPU adapter in use, if any.
    pub fn adapter(&self) -> Option<AdapterReport> {
        match &self.inner {
            Inner::Gpu { ctx, .. } => Some(ctx.report()),
            _ => None,
        }
    }

    /// One line for a person: which backend runs, and on what.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Reference => "CPU reference (plain loops)".into(),
            Inner::Cpu(f) => format!("fast CPU ({} threads)", f.workspace().threads()),
            Inner::Gpu { ctx, .. } => {
                let a = ctx.report();
                let kind = if a.software {
                    "a software adapter: a CPU emulating a GPU"
                } else {
                    "hardware"
                };
                format!("WebGPU on {} ({}, {kind})", a.name, a.backend)
            }
        }
    }

    /// The GPU context, on the GPU backend.
    pub fn gpu_context(&self) -> Option<&GpuContext> {
        match &self.inner {
            Inner::Gpu { ctx, .. } => Some(ctx),
            _ => None,
        }
    }

    /// `runs` eval-mode forwards of `x` with every kernel launch timed on the GPU (one list
    /// of `(layer span, seconds)` per run), or `None` when this is not the GPU backend or
    /// the device has no timestamp queries.
    pub async fn profile_forward(
        &mut self,
        x: &Tensor,
        runs: usize,
    ) -> Result<Option<Vec<Vec<(Span, f64)>>>> {
        let Inner::Gpu { ctx, plans } = &mut self.inner else {
            return Ok(None);
        };
        let plan = plan_for(ctx, plans, self.model, batch_of(x)?, &self.gpu_options).await?;
        let Some(mut timer) = ctx.timer(plan.dispatch_count(self.model.arch.layers.len()))? else {
            return Ok(None);
        };
        let mut all = Vec::with_capacity(runs);
        for _ in 0..runs {
            all.push(plan.profile_forward(ctx, x, &mut timer).await?);
        }
        Ok(Some(all))
    }

    /// Prepares the GPU plan for `batch` now (buffers and uploads), so a later forward at
    /// that batch size does no allocation. No-op on the CPU backends.
    pub async fn prepare(&mut self, batch: usize) -> Result<()> {
        if let Inner::Gpu { ctx, plans } = &mut self.inner {
            plan_for(ctx, plans, self.model, batch, &self.gpu_options).await?;
        }
        Ok(())
    }

    /// The last layer's output for `x` `(N, C, H, W)`, eval mode.
    pub async fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        match &mut self.inner {
            Inner::Reference => self.model.forward(x),
            Inner::Cpu(f) => f.forward(x),
            Inner::Gpu { ctx, plans } => {
                let plan =
                    plan_for(ctx, plans, self.model, batch_of(x)?, &self.gpu_options).await?;
                plan.forward(ctx, x).await
            }
        }
    }

    /// The output of `layer` for `x`, eval mode; only that prefix of the network runs.
    pub async fn forward_to(&mut self, x: &Tensor, layer: &str) -> Result<Tensor> {
        match &mut self.inner {
            Inner::Reference => self.model.forward_to(x, layer),
            Inner::Cpu(f) => f.forward_to(x, layer),
            Inner::Gpu { ctx, plans } => {
                let plan =
                    plan_for(ctx, plans, self.model, batch_of(x)?, &self.gpu_options).await?;
                plan.forward_to(ctx, x, layer).await
            }
        }
    }
}

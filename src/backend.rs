//! One model, one backend: the plain CPU reference (`ref`), the fast CPU backend (`cpu`) or
//! WebGPU (`gpu`), behind the same forward calls, and the policy that picks one: the GPU
//! first where it pays (a hardware adapter), the CPU otherwise, and a GPU that fails moves
//! the run to the CPU and says why. The page's session (`crate::session`) follows the same
//! policy with the same functions.

use crate::cpu::FastCpu;
use crate::error::{Error, Result};
use crate::gpu::plan::batch_of;
use crate::gpu::plan::GpuOptions;
use crate::gpu::{AdapterReport, GpuContext, GpuSession, Span};
use crate::model::Model;
use crate::tensor::Tensor;

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

    /// What runs natively when nothing is asked for ([`default_backend`] of this machine's
    /// adapters).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn native_default() -> BackendKind {
        default_backend(&crate::gpu::native_adapters()).0
    }
}

/// Which backend runs when nothing is asked for, and why: the GPU on a hardware adapter,
/// else the fast CPU (a software adapter such as lavapipe or SwiftShader is far slower
/// than the CPU backend). `adapters` are the ones the platform offers.
pub fn default_backend(adapters: &[AdapterReport]) -> (BackendKind, String) {
    match adapters.iter().find(|a| !a.software) {
        Some(a) => (BackendKind::Gpu, format!("the hardware adapter {}", a.name)),
        None if adapters.is_empty() => (BackendKind::Cpu, "no GPU adapter".into()),
        None => (
            BackendKind::Cpu,
            format!(
                "only a software adapter ({}), slower than the CPU backend",
                adapters[0].name
            ),
        ),
    }
}

/// What a failed GPU run means: with the GPU chosen by default (`asked` false) this run
/// and the later ones move to the CPU, and the returned reason (the error, for a person)
/// says why; a GPU asked for by name fails with the error. (A lost device is not a
/// failure: `GpuSession` re-creates it first.)
pub fn after_gpu_failure(e: Error, asked: bool) -> Result<String> {
    if asked {
        return Err(e);
    }
    Ok(e.to_string())
}

enum Inner<'m> {
    Reference,
    Cpu(FastCpu<'m>),
    // boxed: the device handles make this variant far larger than the others
    Gpu(Box<GpuSession>),
}

/// Inference on one backend: the CLI's `classify`, `run`, `eval` and `bench` run on it. On
/// the GPU it holds a `GpuSession` (the one cache of per-batch plans, re-creating a lost
/// device); a GPU chosen by default moves to the CPU when it fails ([`after_gpu_failure`]).
pub struct Runner<'m> {
    model: &'m Model,
    inner: Inner<'m>,
    /// The backend was asked for by name: a failure is an error, not a move to the CPU.
    asked: bool,
    /// Why the run moved from the GPU to the CPU, when it did.
    fell_back: Option<String>,
}

impl<'m> Runner<'m> {
    /// Binds `model` to `kind`. For `Gpu` this finds an adapter and compiles every kernel
    /// before returning, so the first forward pays no shader compilation.
    pub async fn new(model: &'m Model, kind: BackendKind) -> Result<Runner<'m>> {
        Runner::with_gpu_options(model, kind, GpuOptions::default()).await
    }

    /// As `new`, with explicit GPU kernel choices (ignored by the CPU backends).
    pub async fn with_gpu_options(
        model: &'m Model,
        kind: BackendKind,
        gpu_options: GpuOptions,
    ) -> Result<Runner<'m>> {
        let inner = match kind {
            BackendKind::Reference => Inner::Reference,
            BackendKind::Cpu => Inner::Cpu(FastCpu::new(model)?),
            BackendKind::Gpu => Inner::Gpu(Box::new(GpuSession::with_options(
                GpuContext::new().await?,
                gpu_options,
            ))),
        };
        Ok(Runner {
            model,
            inner,
            asked: true,
            fell_back: None,
        })
    }

    /// `asked`, else the default for `adapters` ([`default_backend`]); a default GPU that
    /// cannot start, or fails later, leaves the run on the CPU and says why.
    pub async fn choose(
        model: &'m Model,
        asked: Option<BackendKind>,
        adapters: &[AdapterReport],
    ) -> Result<Runner<'m>> {
        if let Some(kind) = asked {
            return Runner::new(model, kind).await;
        }
        let (kind, _) = default_backend(adapters);
        let mut r = match Runner::new(model, kind).await {
            Ok(r) => r,
            Err(e) => {
                let why = after_gpu_failure(e, false)?;
                let mut r = Runner::new(model, BackendKind::Cpu).await?;
                r.fell_back = Some(format!("the GPU did not start ({why}); running on the CPU"));
                r
            }
        };
        r.asked = false;
        Ok(r)
    }

    /// Why the run moved from the GPU to the CPU, when it did.
    pub fn fell_back(&self) -> Option<&str> {
        self.fell_back.as_deref()
    }

    pub fn kind(&self) -> BackendKind {
        match self.inner {
            Inner::Reference => BackendKind::Reference,
            Inner::Cpu(_) => BackendKind::Cpu,
            Inner::Gpu(_) => BackendKind::Gpu,
        }
    }

    /// The GPU adapter in use, if any.
    pub fn adapter(&self) -> Option<AdapterReport> {
        match &self.inner {
            Inner::Gpu(s) => Some(s.report()),
            _ => None,
        }
    }

    /// One line for a person: which backend runs, and on what.
    pub fn describe(&self) -> String {
        match &self.inner {
            Inner::Reference => "CPU reference (plain loops)".into(),
            Inner::Cpu(f) => format!("fast CPU ({} threads)", f.workspace().threads()),
            Inner::Gpu(s) => {
                let a = s.report();
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
            Inner::Gpu(s) => Some(s.context()),
            _ => None,
        }
    }

    /// The GPU context (the runner's device), for a training plan on it.
    pub fn into_gpu_context(self) -> Option<GpuContext> {
        match self.inner {
            Inner::Gpu(s) => Some(s.into_context()),
            _ => None,
        }
    }

    /// The GPU kernel choices plans are built with.
    pub fn gpu_options(&self) -> GpuOptions {
        match &self.inner {
            Inner::Gpu(s) => s.options().clone(),
            _ => GpuOptions::default(),
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
        let model = self.model;
        let Inner::Gpu(s) = &mut self.inner else {
            return Ok(None);
        };
        let (ctx, plan) = s.plan(model, batch_of(x)?).await?;
        let Some(mut timer) = ctx.timer(plan.dispatch_count(model.arch.layers.len()))? else {
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
        if let Inner::Gpu(s) = &mut self.inner {
            s.plan(self.model, batch).await?;
        }
        Ok(())
    }

    /// The last layer's output for `x` `(N, C, H, W)`, eval mode.
    pub async fn forward(&mut self, x: &Tensor) -> Result<Tensor> {
        let last = self.model.arch.layers.len().saturating_sub(1);
        let out = match &mut self.inner {
            Inner::Reference => return self.model.forward(x),
            Inner::Cpu(f) => return f.forward(x),
            Inner::Gpu(s) => s.forward_read(self.model, x, &[last]).await,
        };
        match out {
            Ok(mut o) => o
                .tensors
                .pop()
                .ok_or_else(|| Error::Internal("no network output".into())),
            Err(e) => {
                self.move_to_cpu(e)?;
                self.forward_cpu(x)
            }
        }
    }

    /// The output of `layer` for `x`, eval mode; only that prefix of the network runs.
    pub async fn forward_to(&mut self, x: &Tensor, layer: &str) -> Result<Tensor> {
        let out = match &mut self.inner {
            Inner::Reference => return self.model.forward_to(x, layer),
            Inner::Cpu(f) => return f.forward_to(x, layer),
            Inner::Gpu(s) => s.forward_to(self.model, x, layer).await,
        };
        match out {
            Ok(t) => Ok(t),
            Err(e) => {
                self.move_to_cpu(e)?;
                match &mut self.inner {
                    Inner::Cpu(f) => f.forward_to(x, layer),
                    _ => Err(Error::Internal("the CPU fallback did not start".into())),
                }
            }
        }
    }

    /// After a GPU error: the CPU from now on, or the error (see [`after_gpu_failure`]).
    fn move_to_cpu(&mut self, e: Error) -> Result<()> {
        let why = after_gpu_failure(e, self.asked)?;
        self.inner = Inner::Cpu(FastCpu::new(self.model)?);
        self.fell_back = Some(format!(
            "the GPU failed ({why}); this and later runs use the fast CPU backend"
        ));
        Ok(())
    }

    fn forward_cpu(&mut self, x: &Tensor) -> Result<Tensor> {
        match &mut self.inner {
            Inner::Cpu(f) => f.forward(x),
            _ => Err(Error::Internal("the CPU fallback did not start".into())),
        }
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    fn adapter(name: &str, software: bool) -> AdapterReport {
        AdapterReport {
            name: name.into(),
            backend: "Vulkan".into(),
            device_type: if software { "Cpu" } else { "DiscreteGpu" }.into(),
            driver: String::new(),
            software,
        }
    }

    #[test]
    fn the_gpu_runs_by_default_only_on_hardware() {
        assert_eq!(default_backend(&[]).0, BackendKind::Cpu);
        let soft = [adapter("llvmpipe (LLVM 15)", true)];
        let (kind, why) = default_backend(&soft);
        assert_eq!(kind, BackendKind::Cpu);
        assert!(why.contains("software adapter (llvmpipe"), "{why}");
        let both = [adapter("llvmpipe", true), adapter("NVIDIA H100", false)];
        let (kind, why) = default_backend(&both);
        assert_eq!(kind, BackendKind::Gpu);
        assert!(why.contains("NVIDIA H100"), "{why}");
    }

    #[test]
    fn a_failed_default_gpu_moves_to_the_cpu_an_asked_one_fails() {
        let e = || Error::Gpu("device lost twice".into());
        assert!(after_gpu_failure(e(), false)
            .unwrap()
            .contains("device lost twice"));
        assert!(matches!(after_gpu_failure(e(), true), Err(Error::Gpu(_))));
    }

    #[test]
    fn a_default_runner_without_a_hardware_gpu_is_the_cpu() {
        let m = Model::random(crate::model::mini(), 1).unwrap();
        let soft = [adapter("SwiftShader", true)];
        let r = pollster::block_on(Runner::choose(&m, None, &soft)).unwrap();
        assert_eq!(r.kind(), BackendKind::Cpu);
        assert!(r.fell_back().is_none());
    }
}

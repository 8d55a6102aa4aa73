//! The only module that knows about JavaScript: a thin wasm-bindgen wrapper around `Model`.
//! Every function returns `Result<_, JsError>` so a bad file or image becomes a JS exception
//! with our message, never a wasm trap.

use crate::classify;
use crate::gpu::{GpuContext, GpuModel};
use crate::model::Arch;
use crate::net::Model;
use crate::tensor::Tensor;
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use wasm_bindgen::prelude::*;

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    serde_wasm_bindgen::to_value(v).map_err(|e| JsError::new(&e.to_string()))
}

#[derive(Serialize)]
struct LayerRow {
    name: String,
    kind: &'static str,
    output: Vec<usize>,
    params: u64,
    macs: u64,
}

#[derive(Serialize)]
struct ArchInfo {
    family: &'static str,
    input: [usize; 3],
    params: u64,
    macs: u64,
    classes: usize,
    layers: Vec<LayerRow>,
}

fn arch_info(arch: &Arch) -> Result<ArchInfo, JsError> {
    let rows = arch.summary().map_err(js_err)?;
    Ok(ArchInfo {
        family: arch.family.as_str(),
        input: arch.input,
        params: arch.param_count(),
        macs: arch.macs().map_err(js_err)?,
        classes: arch.num_classes().map_err(js_err)?,
        layers: rows
            .into_iter()
            .map(|r| LayerRow {
                name: r.name,
                kind: r.kind,
                output: r.output,
                params: r.params,
                macs: r.macs,
            })
            .collect(),
    })
}

/// Layers, shapes, parameter count and multiply-adds of a built-in config.
#[wasm_bindgen(js_name = builtinInfo)]
pub fn builtin_info(name: &str) -> Result<JsValue, JsError> {
    let arch = Arch::builtin(name).map_err(js_err)?;
    to_js(&arch_info(&arch)?)
}

#[wasm_bindgen]
pub struct WasmModel {
    inner: Rc<Model>,
    /// WebGPU, once `enableGpu` found an adapter: the device and one plan per batch size
    /// (1 for a single crop, 10 for the paper's ten crops). The worker runs one request at a
    /// time, so no two futures borrow it at once.
    gpu: Rc<RefCell<Option<GpuState>>>,
}

struct GpuState {
    ctx: GpuContext,
    plans: HashMap<usize, GpuModel>,
}

#[derive(Serialize)]
struct AdapterInfo {
    name: String,
    backend: String,
    software: bool,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads an ONNX or safetensors file from its bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<WasmModel, JsError> {
        Ok(WasmModel::new(
            crate::io::load_bytes(bytes).map_err(js_err)?,
        ))
    }

    /// A built-in config with seeded random (untrained) weights.
    pub fn random(config: &str, seed: u32) -> Result<WasmModel, JsError> {
        let arch = Arch::builtin(config).map_err(js_err)?;
        Ok(WasmModel::new(
            Model::random(arch, seed as u64).map_err(js_err)?,
        ))
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&arch_info(&self.inner.arch)?)
    }

    /// Asks the browser for a WebGPU adapter and compiles every kernel; later
    /// `classifyGpu` calls run there. Resolves to `{name, backend, software}` (software: a
    /// CPU emulating a GPU, such as SwiftShader); rejects when the browser has no WebGPU.
    #[wasm_bindgen(js_name = enableGpu)]
    pub fn enable_gpu(&self) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let ctx = GpuContext::new()
                .await
                .map_err(|e| JsValue::from(js_err(e)))?;
            let a = ctx.report();
            let info = AdapterInfo {
                name: a.name,
                backend: a.backend,
                software: a.software,
            };
            *gpu.borrow_mut() = Some(GpuState {
                ctx,
                plans: HashMap::new(),
            });
            to_js(&info).map_err(JsValue::from)
        })
    }

    /// Forgets the GPU (after a lost device, or to force the CPU path); `classify` keeps
    /// working on the CPU.
    #[wasm_bindgen(js_name = disableGpu)]
    pub fn disable_gpu(&self) {
        self.gpu.borrow_mut().take();
    }

    /// `classify` on WebGPU (`enableGpu` first): the same preprocessing and ranking, the
    /// forward in one submission with only the logits read back. Resolves to the same list.
    #[wasm_bindgen(js_name = classifyGpu)]
    pub fn classify_gpu(&self, image: &[u8], top: usize, tta: bool) -> js_sys::Promise {
        let model = self.inner.clone();
        let gpu = self.gpu.clone();
        let x = classify::prepare_input(&model, image, tta);
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let x = x.map_err(fail)?;
            // taken out for the await, put back after, so no RefCell borrow spans it
            let mut state = gpu
                .borrow_mut()
                .take()
                .ok_or_else(|| JsValue::from(JsError::new("WebGPU is not enabled")))?;
            let out = gpu_forward(&mut state, &model, &x).await;
            *gpu.borrow_mut() = Some(state);
            let preds = classify::rank(&model, out.map_err(fail)?, top).map_err(fail)?;
            to_js(&preds).map_err(JsValue::from)
        })
    }

    /// Top-`top` predictions for an encoded image (png, jpeg, webp, gif, bmp), as
    /// `[{index, label, probability}]`; `tta` averages the paper's ten crops.
    pub fn classify(&self, image: &[u8], top: usize, tta: bool) -> Result<JsValue, JsError> {
        let m: &Model = &self.inner;
        let x = classify::prepare_input(m, image, tta).map_err(js_err)?;
        // The fast CPU backend (im2col + SIMD128 GEMM, one thread in wasm); its scratch is
        // sized per call, which costs far less than the forward pass itself.
        let out = crate::fast::FastCpu::new(m)
            .and_then(|mut f| f.forward(&x))
            .map_err(js_err)?;
        to_js(&classify::rank(m, out, top).map_err(js_err)?)
    }
}

impl WasmModel {
    fn new(model: Model) -> WasmModel {
        WasmModel {
            inner: Rc::new(model),
            gpu: Rc::new(RefCell::new(None)),
        }
    }
}

/// The forward of `x` on the GPU, with the plan for its batch size built on first use.
async fn gpu_forward(state: &mut GpuState, model: &Model, x: &Tensor) -> crate::Result<Tensor> {
    let batch = crate::backend::batch_of(x)?;
    let opts = crate::gpu::model::GpuOptions::default();
    let plan = crate::backend::plan_for(&state.ctx, &mut state.plans, model, batch, &opts).await?;
    plan.forward(&state.ctx, x).await
}

// ---------------------------------------------------------------------------------------------
// Benchmarks (www/bench.html): `crate::bench` timed with the global `performance.now()`
// (std::time::Instant panics on wasm32, and a Worker has no `window`), reported in ms, plus
// the model as ONNX and the input as floats so onnxruntime-web can run the same weights on
// the same input.

use crate::backend::BackendKind;
use crate::bench::{self, Method};

/// Seconds from the global `performance.now()` (a Window or a Worker); NaN where the page
/// has no such clock, which shows up in the report instead of failing the run.
fn now_s() -> f64 {
    let now = || -> Option<f64> {
        let perf =
            js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance")).ok()?;
        let f: js_sys::Function = js_sys::Reflect::get(&perf, &JsValue::from_str("now"))
            .ok()?
            .dyn_into()
            .ok()?;
        f.call0(&perf).ok()?.as_f64()
    };
    now().map_or(f64::NAN, |ms| ms / 1e3)
}

#[derive(Serialize)]
struct BenchLayer {
    name: String,
    kind: &'static str,
    macs: u64,
    /// Forward time of this layer (GPU timestamps, or prefix differences).
    layer_ms: f64,
    prefix_ms: Option<f64>,
    backward_ms: Option<f64>,
    update_ms: Option<f64>,
}

#[derive(Serialize)]
struct BenchReport {
    backend: String,
    software_adapter: Option<bool>,
    batch: usize,
    runs: usize,
    train: bool,
    method: Method,
    /// Model set-up for this backend (GPU: adapter, device and every kernel), ms.
    setup_ms: f64,
    /// The warm-up forward or step (GPU: includes building the plan for this batch), ms.
    warmup_ms: f64,
    total_ms: f64,
    runs_ms: Vec<f64>,
    gpu_total_ms: Option<f64>,
    loss_ms: Option<f64>,
    layers: Vec<BenchLayer>,
    /// The last layer's output of the timed forward, flattened (N x classes).
    output: Vec<f32>,
}

fn ms(s: f64) -> f64 {
    s * 1e3
}

impl From<bench::Report> for BenchReport {
    fn from(r: bench::Report) -> BenchReport {
        BenchReport {
            backend: r.backend,
            software_adapter: r.software_adapter,
            batch: r.batch,
            runs: r.runs,
            train: r.train,
            method: r.method,
            setup_ms: ms(r.setup_s),
            warmup_ms: ms(r.warmup_s),
            total_ms: ms(r.total_s),
            runs_ms: r.runs_s.into_iter().map(ms).collect(),
            gpu_total_ms: r.gpu_total_s.map(ms),
            loss_ms: r.loss_s.map(ms),
            layers: r
                .layers
                .into_iter()
                .map(|l| BenchLayer {
                    name: l.name,
                    kind: l.kind,
                    macs: l.macs,
                    layer_ms: ms(l.forward_s),
                    prefix_ms: l.prefix_s.map(ms),
                    backward_ms: l.backward_s.map(ms),
                    update_ms: l.update_s.map(ms),
                })
                .collect(),
            output: r.output,
        }
    }
}

/// One model held for benchmarking: see `www/bench.html`.
#[wasm_bindgen]
pub struct WasmBench {
    model: Rc<Model>,
}

#[wasm_bindgen]
impl WasmBench {
    /// Loads an ONNX or safetensors file from its bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<WasmBench, JsError> {
        Ok(WasmBench {
            model: Rc::new(crate::io::load_bytes(bytes).map_err(js_err)?),
        })
    }

    /// A built-in config with seeded random (untrained) weights.
    pub fn random(config: &str, seed: u32) -> Result<WasmBench, JsError> {
        let arch = Arch::builtin(config).map_err(js_err)?;
        Ok(WasmBench {
            model: Rc::new(Model::random(arch, seed as u64).map_err(js_err)?),
        })
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&arch_info(&self.model.arch)?)
    }

    /// The model as ONNX bytes (opset 13), so onnxruntime-web runs the same weights.
    #[wasm_bindgen(js_name = exportOnnx)]
    pub fn export_onnx(&self) -> Result<Vec<u8>, JsError> {
        crate::io::onnx::export(&self.model).map_err(js_err)
    }

    /// The seeded random input batch every backend is timed on, `(batch, C, H, W)` flattened.
    pub fn input(&self, batch: usize) -> Vec<f32> {
        bench::random_input(&self.model.arch, batch).data
    }

    /// Times `backend` (`ref`, `cpu` or `gpu`) at `batch`: one warm-up, then `runs` whole
    /// forwards (or training steps with `train`); with `per_layer` also per-layer times (GPU
    /// timestamps where the adapter has them, else prefix differences). Resolves to
    /// `{backend, software_adapter, batch, runs, train, method, setup_ms, warmup_ms,
    /// total_ms, runs_ms, gpu_total_ms, loss_ms, layers: [{name, kind, macs, layer_ms,
    /// prefix_ms, backward_ms, update_ms}], output}`.
    pub fn run(
        &self,
        backend: &str,
        batch: usize,
        runs: usize,
        per_layer: bool,
        train: bool,
    ) -> Result<js_sys::Promise, JsError> {
        let kind: BackendKind = backend.parse().map_err(js_err)?;
        if batch == 0 {
            return Err(JsError::new("batch must be at least 1"));
        }
        let model = self.model.clone();
        let opts = bench::Options {
            batch,
            runs: runs.max(1),
            per_layer,
            train,
            gpu: Default::default(),
        };
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let report = bench::run(&model, kind, opts, &now_s)
                .await
                .map_err(|e| JsValue::from(js_err(e)))?;
            to_js(&BenchReport::from(report)).map_err(JsValue::from)
        }))
    }
}

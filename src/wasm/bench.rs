//! `WasmBench` (www/bench.html): `crate::bench` timed with the global `performance.now()`
//! (std::time::Instant panics on wasm32, and a Worker has no `window`), reported in ms, plus
//! the model as ONNX and the input as floats so onnxruntime-web can run the same weights on
//! the same input.

use super::{arch_info, js_err, to_js};
use crate::backend::BackendKind;
use crate::bench::{self, Method};
use crate::model::{Arch, Model};
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

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
    model: Model,
}

#[wasm_bindgen]
impl WasmBench {
    /// Loads an ONNX or safetensors file from its bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<WasmBench, JsError> {
        Ok(WasmBench {
            model: crate::io::load_bytes(bytes).map_err(js_err)?,
        })
    }

    /// A built-in config with seeded random (untrained) weights.
    pub fn random(config: &str, seed: u32) -> Result<WasmBench, JsError> {
        let arch = Arch::builtin(config).map_err(js_err)?;
        Ok(WasmBench {
            model: Model::random(arch, seed as u64).map_err(js_err)?,
        })
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        arch_info(&self.model.arch)
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
    pub async fn run(
        &self,
        backend: String,
        batch: usize,
        runs: usize,
        per_layer: bool,
        train: bool,
    ) -> Result<JsValue, JsError> {
        let kind = BackendKind::from_name(&backend).map_err(js_err)?;
        if batch == 0 {
            return Err(JsError::new("batch must be at least 1"));
        }
        let opts = bench::Options {
            batch,
            runs: runs.max(1),
            per_layer,
            train,
            gpu: Default::default(),
        };
        let report = bench::run(&self.model, kind, opts, &now_s)
            .await
            .map_err(js_err)?;
        to_js(&BenchReport::from(report))
    }
}

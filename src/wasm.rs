//! The only module that knows about JavaScript: a thin wasm-bindgen wrapper around `Model`.
//! Every function returns `Result<_, JsError>` so a bad file or image becomes a JS exception
//! with our message, never a wasm trap.

use crate::classify;
use crate::model::Arch;
use crate::net::Model;
use serde::Serialize;
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
    inner: Model,
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads an ONNX or safetensors file from its bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<WasmModel, JsError> {
        Ok(WasmModel {
            inner: crate::io::load_bytes(bytes).map_err(js_err)?,
        })
    }

    /// A built-in config with seeded random (untrained) weights.
    pub fn random(config: &str, seed: u32) -> Result<WasmModel, JsError> {
        let arch = Arch::builtin(config).map_err(js_err)?;
        Ok(WasmModel {
            inner: Model::random(arch, seed as u64).map_err(js_err)?,
        })
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&arch_info(&self.inner.arch)?)
    }

    /// Top-`top` predictions for an encoded image (png, jpeg, webp, gif, bmp), as
    /// `[{index, label, probability}]`; `tta` averages the paper's ten crops.
    pub fn classify(&self, image: &[u8], top: usize, tta: bool) -> Result<JsValue, JsError> {
        let m = &self.inner;
        let x = classify::prepare_input(m, image, tta).map_err(js_err)?;
        // The fast CPU backend (im2col + SIMD128 GEMM, one thread in wasm); its scratch is
        // sized per call, which costs far less than the forward pass itself.
        let out = crate::fast::FastCpu::new(m)
            .and_then(|mut f| f.forward(&x))
            .map_err(js_err)?;
        to_js(&classify::rank(m, out, top).map_err(js_err)?)
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmarks (www/bench.html): forward time per layer and in total on `ref`, `cpu` or `gpu`,
// timed with the global `performance.now()` (std::time::Instant panics on wasm32, and a Worker
// has no `window`), plus the model as ONNX and the input as floats so onnxruntime-web can run
// the same weights on the same input.

use crate::backend::{BackendKind, Runner};
use crate::tensor::{Rng, Tensor};
use std::rc::Rc;

/// Milliseconds from the global `performance.now()` (a Window or a Worker).
fn now_ms() -> Result<f64, JsError> {
    let perf = js_sys::Reflect::get(&js_sys::global(), &JsValue::from_str("performance"))
        .map_err(|_| JsError::new("no global performance object"))?;
    let now: js_sys::Function = js_sys::Reflect::get(&perf, &JsValue::from_str("now"))
        .map_err(|_| JsError::new("no performance.now"))?
        .into();
    now.call0(&perf)
        .ok()
        .and_then(|v| v.as_f64())
        .ok_or_else(|| JsError::new("performance.now() did not return a number"))
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// The seeded random input batch `alexnet bench` uses (same seed, same values).
fn bench_input(arch: &Arch, batch: usize) -> Tensor {
    let [c, h, w] = arch.input;
    let mut x = Tensor::zeros(&[batch, c, h, w]);
    Rng::new(0xA1E7).fill_normal(&mut x.data, 1.0);
    x
}

#[derive(Serialize)]
struct BenchLayer {
    name: String,
    kind: &'static str,
    macs: u64,
    prefix_ms: f64,
    layer_ms: f64,
}

#[derive(Serialize)]
struct BenchReport {
    backend: String,
    software_adapter: Option<bool>,
    batch: usize,
    runs: usize,
    /// Model set-up for this backend (GPU: adapter, device and every kernel), ms.
    setup_ms: f64,
    /// The warm-up forward (GPU: includes building the plan for this batch size), ms.
    warmup_ms: f64,
    total_ms: f64,
    runs_ms: Vec<f64>,
    layers: Vec<BenchLayer>,
    /// The last layer's output of the timed forward, flattened (N x classes).
    output: Vec<f32>,
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
        bench_input(&self.model.arch, batch).data
    }

    /// Times `backend` (`ref`, `cpu` or `gpu`) at `batch`: one warm-up, then `runs` whole
    /// forwards; with `per_layer` also the prefix times (`forward_to` each layer, `runs`
    /// times, medians; a layer's time is its prefix minus the previous prefix). Resolves to
    /// `{backend, software_adapter, batch, runs, setup_ms, warmup_ms, total_ms, runs_ms,
    /// layers: [{name, kind, macs, prefix_ms, layer_ms}], output}`.
    pub fn run(
        &self,
        backend: &str,
        batch: usize,
        runs: usize,
        per_layer: bool,
    ) -> Result<js_sys::Promise, JsError> {
        let kind: BackendKind = backend.parse().map_err(js_err)?;
        if batch == 0 {
            return Err(JsError::new("batch must be at least 1"));
        }
        let model = self.model.clone();
        let runs = runs.max(1);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            bench_run(&model, kind, batch, runs, per_layer)
                .await
                .map_err(JsValue::from)
        }))
    }
}

async fn bench_run(
    model: &Model,
    kind: BackendKind,
    batch: usize,
    runs: usize,
    per_layer: bool,
) -> Result<JsValue, JsError> {
    let x = bench_input(&model.arch, batch);
    let t = now_ms()?;
    let mut runner = Runner::new(model, kind).await.map_err(js_err)?;
    let setup_ms = now_ms()? - t;
    let t = now_ms()?;
    runner.forward(&x).await.map_err(js_err)?;
    let warmup_ms = now_ms()? - t;
    let mut runs_ms = Vec::with_capacity(runs);
    let mut output = Vec::new();
    for _ in 0..runs {
        let t = now_ms()?;
        let y = runner.forward(&x).await.map_err(js_err)?;
        runs_ms.push(now_ms()? - t);
        output = y.data;
    }
    let mut layers = Vec::new();
    if per_layer {
        let mut prev = 0.0;
        for r in model.arch.summary().map_err(js_err)? {
            let mut ts = Vec::with_capacity(runs);
            for _ in 0..runs {
                let t = now_ms()?;
                runner.forward_to(&x, &r.name).await.map_err(js_err)?;
                ts.push(now_ms()? - t);
            }
            let prefix = median(&ts);
            layers.push(BenchLayer {
                name: r.name,
                kind: r.kind,
                macs: r.macs,
                prefix_ms: prefix,
                layer_ms: prefix - prev,
            });
            prev = prefix;
        }
    }
    to_js(&BenchReport {
        backend: runner.describe(),
        software_adapter: runner.adapter().map(|a| a.software),
        batch,
        runs,
        setup_ms,
        warmup_ms,
        total_ms: median(&runs_ms),
        runs_ms,
        layers,
        output,
    })
}

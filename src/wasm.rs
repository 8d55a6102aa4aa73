//! The only module that knows about JavaScript: a thin wasm-bindgen wrapper around `Model`.
//! Every function returns `Result<_, JsError>` so a bad file or image becomes a JS exception
//! with our message, never a wasm trap.

use crate::classify;
use crate::gpu::GpuSession;
use crate::inspect;
use crate::model::Arch;
use crate::model::Model;
use crate::tensor::Tensor;
use serde::Serialize;
use std::cell::RefCell;
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
    /// What the page can draw, layer by layer (`inspect::views`).
    views: Vec<inspect::LayerView>,
    /// 2 for a net with the paper's two GPU towers (grouped convolutions), else 1.
    towers: usize,
    /// The layer whose output is compared for nearest images ("fc7 after its ReLU") and its
    /// width.
    feature_layer: String,
    feature_dim: usize,
}

fn arch_info(arch: &Arch) -> Result<ArchInfo, JsError> {
    let rows = arch.summary().map_err(js_err)?;
    let feature = inspect::feature_layer(arch).map_err(js_err)?;
    let shapes = arch.shapes().map_err(js_err)?;
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
        views: inspect::views(arch).map_err(js_err)?,
        towers: inspect::towers(arch),
        feature_layer: match (
            feature.checked_sub(1).map(|i| &arch.layers[i]),
            &arch.layers[feature],
        ) {
            (Some(crate::model::Layer::Linear(fc)), crate::model::Layer::Relu { .. }) => {
                format!("{} after its ReLU", fc.name)
            }
            (_, l) => l.name().to_string(),
        },
        feature_dim: shapes[feature].iter().product(),
    })
}

/// Layers, shapes, parameter count and multiply-adds of a built-in config.
#[wasm_bindgen(js_name = builtinInfo)]
pub fn builtin_info(name: &str) -> Result<JsValue, JsError> {
    let arch = Arch::builtin(name).map_err(js_err)?;
    to_js(&arch_info(&arch)?)
}

/// A picture as `{width, height, rgba: Uint8ClampedArray, cols, tileW, tileH, gap, first,
/// count}`: `new ImageData(p.rgba, p.width, p.height)` draws it; tile `i` (channel
/// `first + i`) is at column `i % cols`, row `i / cols`.
fn picture_js(p: &inspect::Picture) -> Result<JsValue, JsError> {
    let o = js_sys::Object::new();
    let set = |k: &str, v: JsValue| {
        js_sys::Reflect::set(&o, &JsValue::from_str(k), &v)
            .map(drop)
            .map_err(|_| JsError::new("could not build a picture object"))
    };
    let n = |v: usize| JsValue::from_f64(v as f64);
    set("width", n(p.width))?;
    set("height", n(p.height))?;
    set(
        "rgba",
        js_sys::Uint8ClampedArray::from(p.rgba.as_slice()).into(),
    )?;
    set("cols", n(p.cols))?;
    set("tileW", n(p.tile_w))?;
    set("tileH", n(p.tile_h))?;
    set("gap", n(p.gap))?;
    set("first", n(p.first))?;
    set("count", n(p.count))?;
    Ok(o.into())
}

fn pictures_js(ps: &[inspect::Picture]) -> Result<JsValue, JsError> {
    let a = js_sys::Array::new();
    for p in ps {
        a.push(&picture_js(p)?);
    }
    Ok(a.into())
}

/// The network held by the page's worker, with the GPU session (when the browser has
/// WebGPU) and the last analysed image's activations.
#[wasm_bindgen]
pub struct WasmModel {
    inner: Rc<Model>,
    /// WebGPU, once `enableGpu` found an adapter. The worker runs one request at a time, so
    /// no two futures use it at once; each takes it out across its awaits and puts it back.
    gpu: Rc<RefCell<Option<GpuSession>>>,
    /// Where the last `analyze` left every layer's output, for `layerPictures`.
    last: Rc<RefCell<Option<LastRun>>>,
}

enum LastRun {
    /// The fast CPU's outputs of every layer, for the whole batch.
    Cpu { outs: Vec<Tensor>, show: usize },
    /// On the GPU session's plan for that run; read back per layer on demand.
    Gpu { show: usize },
}

#[derive(Serialize)]
struct AdapterInfo {
    name: String,
    backend: String,
    software: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Analysis {
    preds: Vec<classify::Prediction>,
    /// "gpu" or "cpu": where this image ran.
    backend: &'static str,
    /// The GPU device was lost and re-created for this run: why.
    recovered: Option<String>,
    /// The GPU failed and this run fell back to the CPU (the GPU is then disabled): why.
    gpu_error: Option<String>,
    /// How many crops ran (1, or 10 with test-time averaging) and which one the activations
    /// show (the centre crop).
    crops: usize,
    shown_crop: usize,
}

/// Which crop of a batch the page shows: the centre one of the paper's ten (see
/// `preprocess::crops_as_images`), the only one otherwise.
fn shown_crop(tta: bool) -> usize {
    if tta {
        4
    } else {
        0
    }
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

    /// Replaces the network with the one in `bytes` (ONNX or safetensors), keeping the GPU
    /// device; a bad file leaves the current network in place.
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let model = crate::io::load_bytes(bytes).map_err(js_err)?;
        self.inner = Rc::new(model);
        self.last.borrow_mut().take();
        if let Some(s) = self.gpu.borrow_mut().as_mut() {
            s.forget_model();
        }
        Ok(())
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        to_js(&arch_info(&self.inner.arch)?)
    }

    /// Asks the browser for a WebGPU adapter and compiles every kernel; later `analyze`
    /// calls with `gpu` run there. Resolves to `{name, backend, software}` (software: a CPU
    /// emulating a GPU, such as SwiftShader); rejects when the browser has no WebGPU.
    #[wasm_bindgen(js_name = enableGpu)]
    pub fn enable_gpu(&self) -> js_sys::Promise {
        let gpu = self.gpu.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let s = GpuSession::new()
                .await
                .map_err(|e| JsValue::from(js_err(e)))?;
            let a = s.report();
            let info = AdapterInfo {
                name: a.name,
                backend: a.backend,
                software: a.software,
            };
            *gpu.borrow_mut() = Some(s);
            to_js(&info).map_err(JsValue::from)
        })
    }

    /// Forgets the GPU (to force the CPU path); `analyze` keeps working on the CPU.
    #[wasm_bindgen(js_name = disableGpu)]
    pub fn disable_gpu(&self) {
        self.gpu.borrow_mut().take();
    }

    /// Destroys the GPU device as a driver reset would; the next `analyze` re-creates it and
    /// re-uploads the model. For tests and the page's demonstration of the recovery.
    #[wasm_bindgen(js_name = loseGpuDevice)]
    pub fn lose_gpu_device(&self) -> Result<(), JsError> {
        match self.gpu.borrow().as_ref() {
            Some(s) => {
                s.lose_device();
                Ok(())
            }
            None => Err(JsError::new("WebGPU is not in use")),
        }
    }

    /// Classifies an encoded image (png, jpeg, webp, gif, bmp) and keeps every layer's output
    /// for `layerPictures`. `tta` runs the paper's ten crops and averages their softmax.
    /// With `gpu` (after `enableGpu`) it runs on WebGPU, reading back only the logits and
    /// the feature layer; a lost device is re-created once, and any other GPU failure falls
    /// back to the CPU for this and later runs (`gpuError` says why). Resolves to `{preds:
    /// [{index, label, probability}], feature: Float32Array, backend, recovered, gpuError,
    /// crops, shownCrop}`; a bad image rejects with `image: ...`.
    pub fn analyze(&self, image: &[u8], top: usize, tta: bool, gpu: bool) -> js_sys::Promise {
        let model = self.inner.clone();
        let session = self.gpu.clone();
        let last = self.last.clone();
        let x = classify::prepare_input(&model, image, tta);
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let x = x.map_err(fail)?;
            let show = shown_crop(tta);
            let n_layers = model.arch.layers.len();
            let fc7 = inspect::feature_layer(&model.arch).map_err(fail)?;
            let mut ran = None;
            let mut gpu_error = None;
            let mut recovered = None;
            last.borrow_mut().take();
            // taken out across the await, so no RefCell borrow spans it
            let taken = if gpu {
                session.borrow_mut().take()
            } else {
                None
            };
            if let Some(mut s) = taken {
                match s.forward_read(&model, &x, &[n_layers - 1, fc7]).await {
                    Ok(out) => {
                        recovered = out.recovered;
                        ran = Some(("gpu", out.tensors));
                        *last.borrow_mut() = Some(LastRun::Gpu { show });
                        *session.borrow_mut() = Some(s);
                    }
                    // the session is dropped: later runs go to the CPU
                    Err(e) => gpu_error = Some(e.to_string()),
                }
            }
            let (backend, mut outs) = match ran {
                Some(r) => r,
                None => {
                    let all = crate::cpu::FastCpu::new(&model)
                        .and_then(|mut f| f.forward_all(&x))
                        .map_err(fail)?;
                    let picked = vec![all[n_layers - 1].clone(), all[fc7].clone()];
                    *last.borrow_mut() = Some(LastRun::Cpu { outs: all, show });
                    ("cpu", picked)
                }
            };
            let feature = outs
                .pop()
                .ok_or_else(|| JsError::new("no feature output"))?;
            let logits = outs
                .pop()
                .ok_or_else(|| JsError::new("no network output"))?;
            let preds = classify::rank(&model, logits, top).map_err(fail)?;
            let crops = x.shape[0];
            let result = to_js(&Analysis {
                preds,
                backend,
                recovered,
                gpu_error,
                crops,
                shown_crop: show,
            })?;
            let mean = js_sys::Float32Array::from(classify::mean_rows(&feature).as_slice());
            js_sys::Reflect::set(&result, &JsValue::from_str("feature"), &mean)?;
            Ok(result)
        })
    }

    /// Layer `index`'s output for the shown crop of the last `analyze`, drawn: feature maps
    /// as one grid per tower, a vector as a bar strip. Resolves to an array of pictures (see
    /// `picture_js`). On the GPU only this layer's slice of one image is read back.
    #[wasm_bindgen(js_name = layerPictures)]
    pub fn layer_pictures(&self, index: usize) -> js_sys::Promise {
        let model = self.inner.clone();
        let session = self.gpu.clone();
        let last = self.last.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let views = inspect::views(&model.arch).map_err(fail)?;
            let view = views
                .into_iter()
                .find(|v| v.index == index)
                .ok_or_else(|| JsError::new(&format!("layer {index} has nothing to draw")))?;
            let per: usize = view.shape.iter().product();
            // copied out first, so no RefCell borrow spans the await below
            let source = match &*last.borrow() {
                None => return Err(JsError::new("no image has been analysed yet").into()),
                Some(LastRun::Cpu { outs, show }) => Ok(outs
                    .get(index)
                    .and_then(|t| t.data.get(show * per..(show + 1) * per))
                    .ok_or_else(|| JsError::new("layer or crop out of range"))?
                    .to_vec()),
                Some(LastRun::Gpu { show }) => Err(*show),
            };
            let data = match source {
                Ok(data) => data,
                Err(show) => {
                    let s = session.borrow_mut().take().ok_or_else(|| {
                        JsError::new("the GPU is no longer in use: analyse the image again")
                    })?;
                    let r = s.read_image(index, show).await;
                    *session.borrow_mut() = Some(s);
                    r.map_err(fail)?.data
                }
            };
            let pics = match view.display {
                inspect::Display::Strip => vec![inspect::strip_picture(&data).map_err(fail)?],
                inspect::Display::Maps => {
                    let c = view.shape[0] / view.towers;
                    (0..view.towers)
                        .map(|t| inspect::maps_picture(&data, &view.shape, t * c, c))
                        .collect::<crate::Result<Vec<_>>>()
                        .map_err(fail)?
                }
            };
            pictures_js(&pics).map_err(JsValue::from)
        })
    }

    /// The first convolution's kernels as the paper's figure 3: one picture per tower (the
    /// two GPUs each learned half of them), colour when the input is RGB.
    pub fn filters(&self) -> Result<JsValue, JsError> {
        let m: &Model = &self.inner;
        let name = m
            .arch
            .layers
            .iter()
            .find_map(|l| match l {
                crate::model::Layer::Conv(c) => Some(c.name.clone()),
                _ => None,
            })
            .ok_or_else(|| JsError::new("the network has no convolution"))?;
        let w = m.weight(&name).map_err(js_err)?;
        let towers = inspect::towers(&m.arch);
        let o = w.shape[0];
        let towers = if o % towers == 0 { towers } else { 1 };
        let pics = (0..towers)
            .map(|t| inspect::filters_picture(w, t * o / towers, o / towers))
            .collect::<crate::Result<Vec<_>>>()
            .map_err(js_err)?;
        pictures_js(&pics)
    }

    /// What the network sees of an encoded image: the paper's ten crops with `tta` (see
    /// `preprocess::crops_as_images` for their order), else the one centre crop; one
    /// picture each.
    pub fn crops(&self, image: &[u8], tta: bool) -> Result<JsValue, JsError> {
        let pp = &self.inner.arch.preprocess;
        let img = crate::preprocess::decode(image).map_err(js_err)?;
        let crops = if tta {
            crate::preprocess::crops_as_images(&img, pp).map_err(js_err)?
        } else {
            vec![crate::preprocess::input_image(&img, pp).map_err(js_err)?]
        };
        let pics: Vec<inspect::Picture> = crops.iter().map(inspect::rgb_picture).collect();
        pictures_js(&pics)
    }

    /// The network as safetensors bytes (config in the metadata; Python's `safetensors`
    /// opens it, and so do this page and the CLI).
    #[wasm_bindgen(js_name = exportSafetensors)]
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        crate::io::safetensors::save(&self.inner).map_err(js_err)
    }

    /// The network as ONNX bytes (opset 13; onnxruntime runs it with the same outputs).
    #[wasm_bindgen(js_name = exportOnnx)]
    pub fn export_onnx(&self) -> Result<Vec<u8>, JsError> {
        crate::io::onnx::export(&self.inner).map_err(js_err)
    }
}

impl WasmModel {
    fn new(model: Model) -> WasmModel {
        WasmModel {
            inner: Rc::new(model),
            gpu: Rc::new(RefCell::new(None)),
            last: Rc::new(RefCell::new(None)),
        }
    }
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

// ---------------------------------------------------------------------------------------------
// Training in the page (www/index.html's "Train in the browser"): `crate::train`'s recipe
// and bookkeeping, steps on WebGPU (`GpuTrainer`, one submission per step) or the fast CPU
// backend, on the Fashion-MNIST subset shipped in www/data.

use crate::data::Images;
use crate::gpu::{GpuContext, GpuTrainer};
use crate::train::{self, CpuEngine, Engine as _};

/// The options the page sets (JSON from JS); every field has the paper's default.
#[derive(serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct TrainOptions {
    config: String,
    batch: usize,
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    dropout: f32,
    crops: bool,
    flips: bool,
    pca_std: f32,
    /// "he" or "paper" (see `train::Init`).
    init: String,
    seed: u32,
}

impl Default for TrainOptions {
    fn default() -> TrainOptions {
        let r = train::Recipe::default();
        TrainOptions {
            config: "mini".into(),
            batch: 32,
            lr: r.lr,
            momentum: r.momentum,
            weight_decay: r.weight_decay,
            dropout: 0.5,
            crops: true,
            flips: true,
            pca_std: 0.1,
            init: "he".into(),
            seed: 1,
        }
    }
}

enum TrainEngine {
    Cpu(CpuEngine),
    Gpu(Box<(GpuContext, GpuTrainer)>),
}

impl TrainEngine {
    fn set_frozen(&mut self, layers: &[String]) -> crate::Result<()> {
        match self {
            TrainEngine::Cpu(e) => e.set_frozen(layers),
            TrainEngine::Gpu(g) => {
                let (ctx, t) = &mut **g;
                let arch = t.model().arch().clone();
                let idx = layers
                    .iter()
                    .map(|l| arch.layer_index(l))
                    .collect::<crate::Result<Vec<_>>>()?;
                t.set_frozen(ctx, &idx)
            }
        }
    }

    async fn step(&mut self, x: &Tensor, labels: &[usize], seed: u64) -> crate::Result<f32> {
        match self {
            TrainEngine::Cpu(e) => e.step(x, labels, seed),
            TrainEngine::Gpu(g) => g.1.step(&g.0, x, labels, seed).await,
        }
    }

    fn set_sgd(&mut self, sgd: crate::elementwise::Sgd) -> crate::Result<()> {
        match self {
            TrainEngine::Cpu(e) => e.set_sgd(sgd),
            TrainEngine::Gpu(g) => {
                let (ctx, t) = &mut **g;
                t.set_sgd(ctx, sgd)
            }
        }
    }

    async fn logits(&mut self, x: &Tensor) -> crate::Result<Tensor> {
        match self {
            TrainEngine::Cpu(e) => e.logits(x),
            // the plan's batch is fixed: chunks of it, the last one padded
            TrainEngine::Gpu(g) => {
                let (ctx, t) = &**g;
                let (n, b) = (x.shape[0], t.batch());
                let per = x.data.len() / n.max(1);
                let mut rows = Vec::new();
                let mut k = 0;
                for (i, chunk) in x.data.chunks(b * per).enumerate() {
                    let m = chunk.len() / per;
                    let mut shape = x.shape.clone();
                    shape[0] = m;
                    let part = train::pad_batch(&Tensor::new(&shape, chunk.to_vec())?, b)?;
                    let out = train::first_rows(t.model().forward(ctx, &part).await?, m)?;
                    k = out.shape[1];
                    rows.extend(out.data);
                    debug_assert_eq!(rows.len(), (i * b + m) * k);
                }
                Tensor::new(&[n, k], rows)
            }
        }
    }

    async fn model(&mut self) -> crate::Result<Model> {
        match self {
            TrainEngine::Cpu(e) => e.model(),
            TrainEngine::Gpu(g) => g.1.to_model(&g.0).await,
        }
    }
}

/// A training run in the page. The worker runs one request at a time, so each async method
/// takes the engine out across its awaits and puts it back.
#[wasm_bindgen]
pub struct WasmTrainer {
    arch: Arch,
    data: Rc<train::Data>,
    state: Rc<RefCell<train::State>>,
    engine: Rc<RefCell<Option<TrainEngine>>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepsReport {
    step: u64,
    epoch: usize,
    batch_in_epoch: usize,
    batches: usize,
    /// Mean loss of the steps of this call.
    loss: f64,
    lr: f32,
    images: usize,
    backend: &'static str,
    /// The epochs this call finished (validation on the test subset).
    epochs: Vec<train::EpochLog>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Example {
    label: String,
    predicted: String,
    probability: f32,
    correct: bool,
}

/// The engine's current weights as safetensors bytes (a `Uint8Array`).
fn snapshot_promise(engine: Rc<RefCell<Option<TrainEngine>>>) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let fail = |e: crate::Error| JsValue::from(js_err(e));
        let mut e = take_engine(&engine)?;
        let m = e.model().await;
        *engine.borrow_mut() = Some(e);
        let bytes = crate::io::safetensors::save(&m.map_err(fail)?).map_err(fail)?;
        Ok(js_sys::Uint8Array::from(bytes.as_slice()).into())
    })
}

/// Moves `engine`'s run to a new WebGPU device (the weights so far; momentum restarts at
/// zero) with `frozen` layers; on failure the CPU engine stays. Resolves to the adapter's
/// name.
fn to_gpu_promise(
    engine: Rc<RefCell<Option<TrainEngine>>>,
    batch: usize,
    sgd: crate::elementwise::Sgd,
    frozen: Vec<String>,
) -> js_sys::Promise {
    wasm_bindgen_futures::future_to_promise(async move {
        let mut e = take_engine(&engine)?;
        let result = async {
            let model = e.model().await?;
            let ctx = GpuContext::new().await?;
            let name = ctx.report().name;
            let t = GpuTrainer::new(&ctx, &model, batch, sgd).await?;
            let mut g = TrainEngine::Gpu(Box::new((ctx, t)));
            g.set_frozen(&frozen)?;
            Ok::<_, crate::Error>((g, name))
        }
        .await;
        match result {
            Ok((g, name)) => {
                *engine.borrow_mut() = Some(g);
                Ok(JsValue::from_str(&name))
            }
            Err(err) => {
                *engine.borrow_mut() = Some(e);
                Err(JsValue::from(js_err(err)))
            }
        }
    })
}

fn take_engine(e: &Rc<RefCell<Option<TrainEngine>>>) -> Result<TrainEngine, JsValue> {
    e.borrow_mut()
        .take()
        .ok_or_else(|| JsError::new("the trainer is busy or was reset").into())
}

#[wasm_bindgen]
impl WasmTrainer {
    /// A fresh run of `options.config` (mini) from the paper's recipe with `options`, on the
    /// IDX files of a training and a test set (gzipped or not), on the CPU until `useGpu`.
    #[wasm_bindgen(constructor)]
    pub fn new(
        train_images: &[u8],
        train_labels: &[u8],
        test_images: &[u8],
        test_labels: &[u8],
        options: JsValue,
    ) -> Result<WasmTrainer, JsError> {
        let o: TrainOptions = serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("training options: {e}")))?;
        if o.batch == 0 || o.batch > 512 {
            return Err(JsError::new("batch size must be 1..=512"));
        }
        if !(0.0..1.0).contains(&o.dropout) {
            return Err(JsError::new("dropout must be in [0, 1)"));
        }
        let train_set = Images::from_idx(train_images, train_labels).map_err(js_err)?;
        let val = Images::from_idx(test_images, test_labels).map_err(js_err)?;
        let pca = train_set.pca();
        let mut arch = Arch::builtin(&o.config).map_err(js_err)?;
        for l in arch.layers.iter_mut() {
            if let crate::model::Layer::Dropout(d) = l {
                d.p = o.dropout;
            }
        }
        let init = match o.init.as_str() {
            "paper" => train::Init::Paper { std: 0.01 },
            _ => train::Init::He,
        };
        let recipe = train::Recipe {
            // the page runs until paused; the schedule still divides the rate on plateaus
            epochs: 1_000_000,
            batch: o.batch,
            lr: o.lr,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
            init,
            augment: crate::augment::Augment {
                crops: o.crops,
                flips: o.flips,
                pca_std: o.pca_std,
            },
            patience: 3,
            max_drops: 3,
            seed: o.seed as u64,
        };
        let model = train::init_model(arch.clone(), init, o.seed as u64).map_err(js_err)?;
        let state = train::State::new(recipe);
        let engine = CpuEngine::new(model, None, state.sgd(), 1).map_err(js_err)?;
        Ok(WasmTrainer {
            arch,
            data: Rc::new(train::Data {
                train: train_set,
                val,
                pca,
            }),
            state: Rc::new(RefCell::new(state)),
            engine: Rc::new(RefCell::new(Some(TrainEngine::Cpu(engine)))),
        })
    }

    /// Moves the run to WebGPU (the weights so far; the momentum restarts at zero).
    /// Resolves to the adapter's name.
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&self) -> js_sys::Promise {
        let s = self.state.borrow();
        to_gpu_promise(self.engine.clone(), s.recipe.batch, s.sgd(), Vec::new())
    }

    /// Sets the learning rate, momentum and weight decay for the next steps.
    #[wasm_bindgen(js_name = setSgd)]
    pub fn set_sgd(&self, lr: f32, momentum: f32, weight_decay: f32) -> Result<(), JsError> {
        if !(lr >= 0.0 && (0.0..1.0).contains(&momentum) && weight_decay >= 0.0) {
            return Err(JsError::new(
                "need lr >= 0, 0 <= momentum < 1 and weight decay >= 0",
            ));
        }
        let sgd = {
            let mut s = self.state.borrow_mut();
            s.lr = lr;
            s.recipe.momentum = momentum;
            s.recipe.weight_decay = weight_decay;
            s.sgd()
        };
        match self.engine.borrow_mut().as_mut() {
            Some(e) => e.set_sgd(sgd).map_err(js_err),
            None => Err(JsError::new("the trainer is busy")),
        }
    }

    /// Turns each augmentation on or off for the next batches.
    #[wasm_bindgen(js_name = setAugment)]
    pub fn set_augment(&self, crops: bool, flips: bool, pca_std: f32) {
        self.state.borrow_mut().recipe.augment = crate::augment::Augment {
            crops,
            flips,
            pca_std: pca_std.max(0.0),
        };
    }

    /// Takes `n` training steps; an epoch that ends among them is validated on the test
    /// subset and the schedule applied. Resolves to `{step, epoch, batchInEpoch, batches,
    /// loss, lr, images, backend, epochs: [{epoch, lr, train_loss, val_top1_err,
    /// val_top5_err, seconds}]}`.
    pub fn steps(&self, n: usize) -> js_sys::Promise {
        let engine = self.engine.clone();
        let state = self.state.clone();
        let data = self.data.clone();
        let arch = self.arch.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let mut e = take_engine(&engine)?;
            let r = run_steps(&mut e, &state, &data, &arch, n).await;
            *engine.borrow_mut() = Some(e);
            to_js(&r.map_err(fail)?).map_err(JsValue::from)
        })
    }

    /// The first `n` test images with their label and the net's prediction, and their
    /// pictures: `{examples: [...], pictures: [...]}`.
    pub fn examples(&self, n: usize) -> js_sys::Promise {
        let engine = self.engine.clone();
        let data = self.data.clone();
        let arch = self.arch.clone();
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let idx: Vec<usize> = (0..n.min(data.val.len())).collect();
            let x = data
                .val
                .batch(&idx, arch.input[1], &arch.preprocess, None)
                .map_err(fail)?;
            let mut e = take_engine(&engine)?;
            let logits = e.logits(&x).await;
            *engine.borrow_mut() = Some(e);
            let probs =
                classify::to_probabilities_of(&arch, logits.map_err(fail)?).map_err(fail)?;
            let k = probs.shape[1];
            let labels = data.val.label_vec(&idx);
            let examples: Vec<Example> = probs
                .data
                .chunks_exact(k)
                .zip(&labels)
                .map(|(row, &label)| {
                    let (best, p) = classify::top_k(row, 1)[0];
                    Example {
                        label: crate::labels::name(&arch.labels, label),
                        predicted: crate::labels::name(&arch.labels, best),
                        probability: p,
                        correct: best == label,
                    }
                })
                .collect();
            let pics: Vec<inspect::Picture> =
                idx.iter().map(|&i| grey_picture(&data.val, i)).collect();
            let out = js_sys::Object::new();
            js_sys::Reflect::set(&out, &"examples".into(), &to_js(&examples)?)?;
            js_sys::Reflect::set(&out, &"pictures".into(), &pictures_js(&pics)?)?;
            Ok(out.into())
        })
    }

    /// The current weights as safetensors bytes (config in the metadata): load them into a
    /// `WasmModel` to look inside, or save them.
    pub fn snapshot(&self) -> js_sys::Promise {
        snapshot_promise(self.engine.clone())
    }

    /// `n` augmented training images as the net gets them (this epoch's draws).
    pub fn samples(&self, n: usize) -> Result<JsValue, JsError> {
        let s = self.state.borrow();
        let r = &s.recipe;
        let order = train::epoch_order(self.data.train.len(), r.seed, s.epoch);
        let idx = &order[..n.min(order.len())];
        let aug = (
            &r.augment,
            &self.data.pca,
            train::augment_seed(r.seed, s.epoch),
        );
        let x = self
            .data
            .train
            .batch(idx, self.arch.input[1], &self.arch.preprocess, Some(aug))
            .map_err(js_err)?;
        let pics: Vec<inspect::Picture> = (0..idx.len())
            .map(|b| input_picture(&x, b, &self.arch.preprocess))
            .collect();
        pictures_js(&pics)
    }
}

async fn run_steps(
    e: &mut TrainEngine,
    state: &RefCell<train::State>,
    data: &train::Data,
    arch: &Arch,
    n: usize,
) -> crate::Result<StepsReport> {
    let batches = data.train.len() / state.borrow().recipe.batch;
    if batches == 0 {
        return Err(crate::Error::Training(format!(
            "{} training images make no batch",
            data.train.len()
        )));
    }
    let (mut loss_sum, mut epochs) = (0.0f64, Vec::new());
    for _ in 0..n {
        let (x, labels, seed) = state.borrow().next_batch(arch, data)?;
        let loss = e.step(&x, &labels, seed).await?;
        state.borrow_mut().record_step(loss, 0.0)?;
        loss_sum += loss as f64;
        if state.borrow().batch_in_epoch >= batches {
            let batch = state.borrow().recipe.batch;
            let (top1, top5) = validate(e, arch, &data.val, batch).await?;
            let lr = state.borrow().lr;
            let log = state.borrow_mut().end_epoch(batches, top1, top5);
            let s = state.borrow();
            if s.lr != lr {
                e.set_sgd(s.sgd())?;
            }
            epochs.push(log);
        }
    }
    let s = state.borrow();
    Ok(StepsReport {
        step: s.step,
        epoch: s.epoch,
        batch_in_epoch: s.batch_in_epoch,
        batches,
        loss: loss_sum / n.max(1) as f64,
        lr: s.lr,
        images: n * s.recipe.batch,
        backend: match e {
            TrainEngine::Cpu(_) => "cpu",
            TrainEngine::Gpu(_) => "gpu",
        },
        epochs,
    })
}

async fn validate(
    e: &mut TrainEngine,
    arch: &Arch,
    images: &Images,
    batch: usize,
) -> crate::Result<(f64, f64)> {
    let (mut top1, mut top5) = (0usize, 0usize);
    let all: Vec<usize> = (0..images.len()).collect();
    for idx in all.chunks(batch.max(1)) {
        let x = images.batch(idx, arch.input[1], &arch.preprocess, None)?;
        let (a, b) = train::count_correct(&e.logits(&x).await?, &images.label_vec(idx));
        top1 += a;
        top5 += b;
    }
    let n = images.len().max(1) as f64;
    Ok((1.0 - top1 as f64 / n, 1.0 - top5 as f64 / n))
}

/// Image `i` of a grey dataset as a picture.
fn grey_picture(images: &Images, i: usize) -> inspect::Picture {
    let (h, w) = (images.height, images.width);
    let px = &images.pixels[i * h * w..(i + 1) * h * w];
    let img = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let v = px[y as usize * w + x as usize];
        image::Rgb([v, v, v])
    });
    inspect::rgb_picture(&img)
}

/// Image `b` of a network input batch `(N, 3, H, W)` with the normalisation undone.
fn input_picture(x: &Tensor, b: usize, pp: &crate::model::Preprocess) -> inspect::Picture {
    let (h, w) = (x.shape[2], x.shape[3]);
    let img = image::RgbImage::from_fn(w as u32, h as u32, |xx, y| {
        let mut px = [0u8; 3];
        for (c, p) in px.iter_mut().enumerate() {
            let v = x.data[((b * 3 + c) * h + y as usize) * w + xx as usize];
            *p = ((v * pp.std[c] + pp.mean[c]) / pp.scale)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
        image::Rgb(px)
    });
    inspect::rgb_picture(&img)
}

// ---------------------------------------------------------------------------------------------
// Fine-tuning on a person's own classes (www/index.html's "Teach it your classes"): the page's
// network with a new head, trained at the chosen depth with the paper's augmentations on
// their photos, a held-out split for accuracy; `crate::finetune`.

use crate::finetune::{self, Depth, Photos};

/// The fine-tuning options the page sets.
#[derive(serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FinetuneOptions {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    epochs: usize,
    /// The largest batch wanted; the plan picks the largest that fits `budget_mb`.
    batch: usize,
    budget_mb: f64,
    seed: u32,
}

impl Default for FinetuneOptions {
    fn default() -> FinetuneOptions {
        FinetuneOptions {
            lr: 0.005,
            momentum: 0.9,
            weight_decay: 0.0005,
            epochs: 30,
            batch: 32,
            budget_mb: 1024.0,
            seed: 1,
        }
    }
}

struct FinetuneState {
    step: u64,
    epoch: usize,
    batch_in_epoch: usize,
    loss_sum: f64,
    history: Vec<(usize, f64, Option<f64>)>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FinetunePlan {
    classes: Vec<String>,
    depth: Depth,
    frozen: Vec<String>,
    train_images: usize,
    held_out: usize,
    batch: usize,
    epochs: usize,
    memory: finetune::Memory,
    budget_mb: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct FinetuneReport {
    step: u64,
    epoch: usize,
    epochs: usize,
    batch_in_epoch: usize,
    batches: usize,
    loss: f64,
    /// Per finished epoch: (epoch, mean loss, held-out accuracy).
    finished_epochs: Vec<(usize, f64, Option<f64>)>,
    done: bool,
    backend: &'static str,
}

/// One fine-tuning run in the page.
#[wasm_bindgen]
pub struct WasmFinetuner {
    arch: Arch,
    train: Rc<Photos>,
    held: Rc<Photos>,
    pca: crate::augment::Pca,
    augment: crate::augment::Augment,
    plan: FinetunePlan,
    sgd: crate::elementwise::Sgd,
    seed: u64,
    state: Rc<RefCell<FinetuneState>>,
    engine: Rc<RefCell<Option<TrainEngine>>>,
}

#[wasm_bindgen]
impl WasmFinetuner {
    /// Starts from `base`'s weights with a new last layer for `classes`; `images` (encoded
    /// photos) are labelled by `labels` (indices into `classes`); `depth` is `head`
    /// (fc8), `classifier` (fc6-fc8) or `all`. A bad photo is an error naming it.
    #[wasm_bindgen(constructor)]
    pub fn new(
        base: &WasmModel,
        classes: Vec<String>,
        images: js_sys::Array,
        labels: Vec<u32>,
        depth: &str,
        options: JsValue,
    ) -> Result<WasmFinetuner, JsError> {
        let o: FinetuneOptions = serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("fine-tuning options: {e}")))?;
        let depth = match depth {
            "head" => Depth::Head,
            "classifier" => Depth::Classifier,
            "all" => Depth::All,
            other => return Err(JsError::new(&format!("unknown depth {other:?}"))),
        };
        if images.length() as usize != labels.len() {
            return Err(JsError::new("one label per photo"));
        }
        let mut list = Vec::with_capacity(labels.len());
        for (i, (bytes, &label)) in images.iter().zip(&labels).enumerate() {
            if label as usize >= classes.len() {
                return Err(JsError::new(&format!("photo {} has no class", i + 1)));
            }
            let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
            let img = crate::preprocess::decode(&bytes).map_err(|e| {
                JsError::new(&format!(
                    "photo {} of {}: {e}",
                    i + 1,
                    classes[label as usize]
                ))
            })?;
            list.push((img, label as usize));
        }
        for (c, name) in classes.iter().enumerate() {
            if !labels.iter().any(|&l| l as usize == c) {
                return Err(JsError::new(&format!("class {name:?} has no photos")));
            }
        }
        let model =
            finetune::with_new_head(&base.inner, &classes, o.seed as u64).map_err(js_err)?;
        let pp = model.arch.preprocess.clone();
        let mut train_set = Photos::new(list, &pp).map_err(js_err)?;
        let held = train_set.split_held_out(4);
        let budget = (o.budget_mb * 1e6) as u64;
        let batch = finetune::largest_batch(&model, budget, o.batch.min(train_set.len()))
            .map_err(js_err)?;
        let memory = finetune::memory(&model, batch).map_err(js_err)?;
        let frozen = depth.frozen(&model);
        let sgd = crate::elementwise::Sgd {
            lr: o.lr,
            momentum: o.momentum,
            weight_decay: o.weight_decay,
        };
        let pca = train_set.pca();
        let mut engine = CpuEngine::new(model.clone(), None, sgd, 1).map_err(js_err)?;
        engine.set_frozen(&frozen).map_err(js_err)?;
        Ok(WasmFinetuner {
            arch: model.arch.clone(),
            plan: FinetunePlan {
                classes,
                depth,
                frozen,
                train_images: train_set.len(),
                held_out: held.len(),
                batch,
                epochs: o.epochs.max(1),
                memory,
                budget_mb: o.budget_mb,
            },
            train: Rc::new(train_set),
            held: Rc::new(held),
            pca,
            augment: crate::augment::Augment::default(),
            sgd,
            seed: o.seed as u64,
            state: Rc::new(RefCell::new(FinetuneState {
                step: 0,
                epoch: 0,
                batch_in_epoch: 0,
                loss_sum: 0.0,
                history: Vec::new(),
            })),
            engine: Rc::new(RefCell::new(Some(TrainEngine::Cpu(engine)))),
        })
    }

    /// What will run: classes, depth, frozen layers, photos (train / held out), the batch
    /// picked and the memory it needs (`{parameters, per_image, batch, total}` bytes).
    pub fn plan(&self) -> Result<JsValue, JsError> {
        to_js(&self.plan)
    }

    /// Moves the run to WebGPU (before the first step). Resolves to the adapter's name.
    #[wasm_bindgen(js_name = useGpu)]
    pub fn use_gpu(&self) -> js_sys::Promise {
        to_gpu_promise(
            self.engine.clone(),
            self.plan.batch,
            self.sgd,
            self.plan.frozen.clone(),
        )
    }

    /// Takes up to `n` steps (stopping when the epochs are done); an epoch that ends is
    /// scored on the held-out photos.
    pub fn steps(&self, n: usize) -> js_sys::Promise {
        let engine = self.engine.clone();
        let state = self.state.clone();
        let (train_set, held) = (self.train.clone(), self.held.clone());
        let arch = self.arch.clone();
        let (batch, epochs, seed) = (self.plan.batch, self.plan.epochs, self.seed);
        let (augment, pca) = (self.augment, self.pca);
        wasm_bindgen_futures::future_to_promise(async move {
            let fail = |e: crate::Error| JsValue::from(js_err(e));
            let mut e = take_engine(&engine)?;
            let batches = (train_set.len() / batch).max(1);
            let mut finished = Vec::new();
            let mut losses = (0.0f64, 0usize);
            let result: crate::Result<()> = async {
                for _ in 0..n {
                    let (epoch, b, step) = {
                        let s = state.borrow();
                        (s.epoch, s.batch_in_epoch, s.step)
                    };
                    if epoch >= epochs {
                        break;
                    }
                    let order = train::epoch_order(train_set.len(), seed, epoch);
                    // batch <= photos and batches = photos / batch: every batch is full
                    let idx = &order[b * batch..(b + 1) * batch];
                    let aug = (&augment, &pca, train::augment_seed(seed, epoch));
                    let x = train_set.batch(idx, &arch.preprocess, Some(aug))?;
                    let labels: Vec<usize> = idx.iter().map(|&i| train_set.labels[i]).collect();
                    let loss = e.step(&x, &labels, train::step_seed(seed, step)).await?;
                    if !loss.is_finite() {
                        return Err(crate::Error::Training(format!(
                            "the loss became {loss}: lower the learning rate and start again"
                        )));
                    }
                    losses.0 += loss as f64;
                    losses.1 += 1;
                    let end = {
                        let mut s = state.borrow_mut();
                        s.step += 1;
                        s.loss_sum += loss as f64;
                        s.batch_in_epoch += 1;
                        s.batch_in_epoch >= batches
                    };
                    if end {
                        let acc = if held.is_empty() {
                            None
                        } else {
                            let all: Vec<usize> = (0..held.len()).collect();
                            let mut right = 0;
                            for chunk in all.chunks(batch) {
                                let x = held.batch(chunk, &arch.preprocess, None)?;
                                let l: Vec<usize> = chunk.iter().map(|&i| held.labels[i]).collect();
                                right += train::count_correct(&e.logits(&x).await?, &l).0;
                            }
                            Some(right as f64 / held.len() as f64)
                        };
                        let mut s = state.borrow_mut();
                        let entry = (s.epoch + 1, s.loss_sum / batches as f64, acc);
                        s.history.push(entry);
                        finished.push(entry);
                        s.epoch += 1;
                        s.batch_in_epoch = 0;
                        s.loss_sum = 0.0;
                    }
                }
                Ok(())
            }
            .await;
            let backend = match e {
                TrainEngine::Cpu(_) => "cpu",
                TrainEngine::Gpu(_) => "gpu",
            };
            *engine.borrow_mut() = Some(e);
            result.map_err(fail)?;
            let s = state.borrow();
            to_js(&FinetuneReport {
                step: s.step,
                epoch: s.epoch,
                epochs,
                batch_in_epoch: s.batch_in_epoch,
                batches,
                loss: losses.0 / losses.1.max(1) as f64,
                finished_epochs: finished,
                done: s.epoch >= epochs,
                backend,
            })
            .map_err(JsValue::from)
        })
    }

    /// The fine-tuned network as safetensors bytes (its classes in the metadata).
    pub fn snapshot(&self) -> js_sys::Promise {
        snapshot_promise(self.engine.clone())
    }
}

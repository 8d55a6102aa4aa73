//! The only module that knows about JavaScript: a thin wasm-bindgen wrapper around `Model`.
//! Every function returns `Result<_, JsError>` so a bad file or image becomes a JS exception
//! with our message, never a wasm trap.

use crate::classify;
use crate::gpu::GpuSession;
use crate::inspect;
use crate::model::Arch;
use crate::net::Model;
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
                    let all = crate::fast::FastCpu::new(&model)
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

    /// Top-`top` predictions for an encoded image on the fast CPU backend, as
    /// `[{index, label, probability}]`; `tta` averages the paper's ten crops.
    pub fn classify(&self, image: &[u8], top: usize, tta: bool) -> Result<JsValue, JsError> {
        let m: &Model = &self.inner;
        let x = classify::prepare_input(m, image, tta).map_err(js_err)?;
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

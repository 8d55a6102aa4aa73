//! The only module that knows about JavaScript: thin wasm-bindgen bindings, one file per
//! exported type, each converting between JS values and the core's types and delegating
//! (the page's logic is in `session`, `train::session` and `finetune`). Every function
//! returns `Result<_, JsError>` so a bad file or image becomes a JS exception with our
//! message, never a wasm trap. The worker runs one request at a time, so an async method
//! holds its object (`&mut self`) across its awaits.

mod bench;
mod finetuner;
mod model;
mod trainer;

pub use bench::WasmBench;
pub use finetuner::WasmFinetuner;
pub use model::WasmModel;
pub use trainer::WasmTrainer;

use crate::inspect;
use crate::model::{Arch, Layer};
use serde::Serialize;
use wasm_bindgen::prelude::*;

fn js_err(e: crate::Error) -> JsError {
    JsError::new(&e.to_string())
}

fn to_js<T: Serialize>(v: &T) -> Result<JsValue, JsError> {
    serde_wasm_bindgen::to_value(v).map_err(|e| JsError::new(&e.to_string()))
}

/// Sets `key` of the JS object `o`.
fn set(o: &JsValue, key: &str, v: &JsValue) -> Result<(), JsError> {
    js_sys::Reflect::set(o, &JsValue::from_str(key), v)
        .map(drop)
        .map_err(|_| JsError::new("could not build a result object"))
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

fn arch_info(arch: &Arch) -> Result<JsValue, JsError> {
    let rows = arch.summary().map_err(js_err)?;
    let feature = inspect::feature_layer(arch).map_err(js_err)?;
    let shapes = arch.shapes().map_err(js_err)?;
    to_js(&ArchInfo {
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
            (Some(Layer::Linear(fc)), Layer::Relu { .. }) => format!("{} after its ReLU", fc.name),
            (_, l) => l.name().to_string(),
        },
        feature_dim: shapes[feature].iter().product(),
    })
}

/// Layers, shapes, parameter count and multiply-adds of a built-in config.
#[wasm_bindgen(js_name = builtinInfo)]
pub fn builtin_info(name: &str) -> Result<JsValue, JsError> {
    arch_info(&Arch::builtin(name).map_err(js_err)?)
}

/// A picture as `{width, height, rgba: Uint8ClampedArray, cols, tileW, tileH, gap, first,
/// count}`: `new ImageData(p.rgba, p.width, p.height)` draws it; tile `i` (channel
/// `first + i`) is at column `i % cols`, row `i / cols`.
fn picture_js(p: &inspect::Picture) -> Result<JsValue, JsError> {
    let o: JsValue = js_sys::Object::new().into();
    let n = |v: usize| JsValue::from_f64(v as f64);
    set(&o, "width", &n(p.width))?;
    set(&o, "height", &n(p.height))?;
    let rgba = js_sys::Uint8ClampedArray::from(p.rgba.as_slice());
    set(&o, "rgba", &rgba.into())?;
    set(&o, "cols", &n(p.cols))?;
    set(&o, "tileW", &n(p.tile_w))?;
    set(&o, "tileH", &n(p.tile_h))?;
    set(&o, "gap", &n(p.gap))?;
    set(&o, "first", &n(p.first))?;
    set(&o, "count", &n(p.count))?;
    Ok(o)
}

fn pictures_js(ps: &[inspect::Picture]) -> Result<JsValue, JsError> {
    let a = js_sys::Array::new();
    for p in ps {
        a.push(&picture_js(p)?);
    }
    Ok(a.into())
}

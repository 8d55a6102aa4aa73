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

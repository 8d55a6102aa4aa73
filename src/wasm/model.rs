//! `WasmModel`: the page's network (`session::Session`): classify with the GPU-first
//! policy, draw layers, filters and crops, export.

use super::{arch_info, js_err, pictures_js, set, to_js};
use crate::model::{Arch, Model};
use crate::session::Session;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct WasmModel {
    session: Session,
}

#[derive(Serialize)]
struct AdapterInfo {
    name: String,
    backend: String,
    software: bool,
}

impl WasmModel {
    pub(super) fn model(&self) -> &Model {
        self.session.model()
    }
}

#[wasm_bindgen]
impl WasmModel {
    /// Loads an ONNX or safetensors file from its bytes.
    #[wasm_bindgen(js_name = fromBytes)]
    pub fn from_bytes(bytes: &[u8]) -> Result<WasmModel, JsError> {
        let model = crate::io::load_bytes(bytes).map_err(js_err)?;
        Ok(WasmModel {
            session: Session::new(model),
        })
    }

    /// A built-in config with seeded random (untrained) weights.
    pub fn random(config: &str, seed: u32) -> Result<WasmModel, JsError> {
        let arch = Arch::builtin(config).map_err(js_err)?;
        let model = Model::random(arch, seed as u64).map_err(js_err)?;
        Ok(WasmModel {
            session: Session::new(model),
        })
    }

    /// Replaces the network with the one in `bytes` (ONNX or safetensors), keeping the GPU
    /// device; a bad file leaves the current network in place.
    pub fn replace(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let model = crate::io::load_bytes(bytes).map_err(js_err)?;
        self.session.replace(model);
        Ok(())
    }

    pub fn info(&self) -> Result<JsValue, JsError> {
        arch_info(&self.model().arch)
    }

    /// Asks the browser for a WebGPU adapter and compiles every kernel. Resolves to `{name,
    /// backend, software}`; rejects when the browser has no WebGPU.
    #[wasm_bindgen(js_name = enableGpu)]
    pub async fn enable_gpu(&mut self) -> Result<JsValue, JsError> {
        let a = self.session.enable_gpu().await.map_err(js_err)?;
        to_js(&AdapterInfo {
            name: a.name,
            backend: a.backend,
            software: a.software,
        })
    }

    /// Forgets the GPU (to force the CPU path); `analyze` keeps working on the CPU.
    #[wasm_bindgen(js_name = disableGpu)]
    pub fn disable_gpu(&mut self) {
        self.session.disable_gpu();
    }

    /// Destroys the GPU device as a driver reset would; the next `analyze` re-creates it.
    #[wasm_bindgen(js_name = loseGpuDevice)]
    pub fn lose_gpu_device(&self) -> Result<(), JsError> {
        self.session.lose_gpu_device().map_err(js_err)
    }

    /// Classifies an encoded image and keeps every layer's output for `layerPictures`.
    /// Resolves to `{preds: [{index, label, probability}], feature: Float32Array, backend,
    /// recovered, gpuError, crops, shownCrop}`; a bad image rejects with `image: ...`.
    pub async fn analyze(
        &mut self,
        image: Vec<u8>,
        top: usize,
        tta: bool,
        gpu: bool,
    ) -> Result<JsValue, JsError> {
        let a = self
            .session
            .analyze(&image, top, tta, gpu)
            .await
            .map_err(js_err)?;
        let result = to_js(&a)?;
        let feature = js_sys::Float32Array::from(a.feature.as_slice());
        set(&result, "feature", &feature.into())?;
        Ok(result)
    }

    /// Layer `index`'s output for the shown crop of the last `analyze`, drawn (an array of
    /// pictures).
    #[wasm_bindgen(js_name = layerPictures)]
    pub async fn layer_pictures(&self, index: usize) -> Result<JsValue, JsError> {
        let pics = self.session.layer_pictures(index).await.map_err(js_err)?;
        pictures_js(&pics)
    }

    /// The first convolution's kernels as the paper's figure 3, one picture per tower.
    pub fn filters(&self) -> Result<JsValue, JsError> {
        pictures_js(&self.session.filters().map_err(js_err)?)
    }

    /// What the network sees of an encoded image: the ten crops with `tta`, else the
    /// centre crop.
    pub fn crops(&self, image: &[u8], tta: bool) -> Result<JsValue, JsError> {
        pictures_js(&self.session.crops(image, tta).map_err(js_err)?)
    }

    /// The network as safetensors bytes (config in the metadata).
    #[wasm_bindgen(js_name = exportSafetensors)]
    pub fn export_safetensors(&self) -> Result<Vec<u8>, JsError> {
        crate::io::safetensors::save(self.model()).map_err(js_err)
    }

    /// The network as ONNX bytes (opset 13; onnxruntime runs it with the same outputs).
    #[wasm_bindgen(js_name = exportOnnx)]
    pub fn export_onnx(&self) -> Result<Vec<u8>, JsError> {
        crate::io::onnx::export(self.model()).map_err(js_err)
    }
}

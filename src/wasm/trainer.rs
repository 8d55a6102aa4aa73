//! `WasmTrainer`: the page's training demo (`train::session::demo`), a few steps per
//! request on the one training loop.

use super::{js_err, pictures_js, set, to_js};
use crate::data::Images;
use crate::train::session::{self, DemoOptions, RunSession};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct WasmTrainer {
    run: RunSession<Images>,
}

/// What the page's training panel reads after each request.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StepsReport {
    step: u64,
    epoch: usize,
    batch_in_epoch: usize,
    batches: usize,
    loss: f64,
    lr: f32,
    images: usize,
    backend: &'static str,
    /// The epochs this request finished (validation on the test subset).
    epochs: Vec<crate::train::EpochLog>,
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
        let o: DemoOptions = serde_wasm_bindgen::from_value(options)
            .map_err(|e| JsError::new(&format!("training options: {e}")))?;
        let run = session::demo(train_images, train_labels, test_images, test_labels, &o)
            .map_err(js_err)?;
        Ok(WasmTrainer { run })
    }

    /// Moves the run to WebGPU (the weights so far; the momentum restarts at zero).
    /// Resolves to the adapter's name.
    #[wasm_bindgen(js_name = useGpu)]
    pub async fn use_gpu(&mut self) -> Result<String, JsError> {
        self.run.use_gpu().await.map_err(js_err)
    }

    /// Sets the learning rate, momentum and weight decay for the next steps.
    #[wasm_bindgen(js_name = setSgd)]
    pub fn set_sgd(&mut self, lr: f32, momentum: f32, weight_decay: f32) -> Result<(), JsError> {
        self.run.set_sgd(lr, momentum, weight_decay).map_err(js_err)
    }

    /// Turns each augmentation on or off for the next batches.
    #[wasm_bindgen(js_name = setAugment)]
    pub fn set_augment(&mut self, crops: bool, flips: bool, pca_std: f32) {
        self.run.set_augment(crops, flips, pca_std);
    }

    /// Takes `n` training steps. Resolves to `{step, epoch, batchInEpoch, batches, loss,
    /// lr, images, backend, epochs: [{epoch, lr, train_loss, val_top1_err, val_top5_err,
    /// seconds}]}`.
    pub async fn steps(&mut self, n: usize) -> Result<JsValue, JsError> {
        let r = self.run.steps(n).await.map_err(js_err)?;
        to_js(&StepsReport {
            step: r.step,
            epoch: r.epoch,
            batch_in_epoch: r.batch_in_epoch,
            batches: r.batches,
            loss: r.loss,
            lr: r.lr,
            images: r.taken * r.batch,
            backend: r.backend,
            epochs: r.finished,
        })
    }

    /// The first `n` test images with their label and the net's prediction, and their
    /// pictures: `{examples: [...], pictures: [...]}`.
    pub async fn examples(&mut self, n: usize) -> Result<JsValue, JsError> {
        let (examples, pics) = self.run.examples(n).await.map_err(js_err)?;
        let out: JsValue = js_sys::Object::new().into();
        set(&out, "examples", &to_js(&examples)?)?;
        set(&out, "pictures", &pictures_js(&pics)?)?;
        Ok(out)
    }

    /// The current weights as safetensors bytes (config in the metadata).
    pub async fn snapshot(&mut self) -> Result<Vec<u8>, JsError> {
        self.run.snapshot().await.map_err(js_err)
    }

    /// `n` augmented training images as the net gets them (this epoch's draws).
    pub fn samples(&self, n: usize) -> Result<JsValue, JsError> {
        pictures_js(&self.run.samples(n).map_err(js_err)?)
    }
}

//! `WasmFinetuner`: fine-tuning the page's network on a person's classes
//! (`finetune::session`), a few steps per request on the one training loop.

use super::{js_err, to_js, WasmModel};
use crate::finetune::{self, Depth, Photos, Plan};
use crate::train::session::RunSession;
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub struct WasmFinetuner {
    run: RunSession<Photos>,
    plan: Plan,
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
        let o: finetune::Options = serde_wasm_bindgen::from_value(options)
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
        let mut photos = Vec::with_capacity(labels.len());
        for (i, (bytes, &label)) in images.iter().zip(&labels).enumerate() {
            let class = classes
                .get(label as usize)
                .map_or("no class", String::as_str);
            let bytes = js_sys::Uint8Array::new(&bytes).to_vec();
            let img = crate::preprocess::decode(&bytes)
                .map_err(|e| JsError::new(&format!("photo {} of {class}: {e}", i + 1)))?;
            photos.push((img, label as usize));
        }
        let (run, plan) =
            finetune::session(base.model(), &classes, photos, depth, &o).map_err(js_err)?;
        Ok(WasmFinetuner { run, plan })
    }

    /// What will run: classes, depth, frozen layers, photos (train / held out), the batch
    /// picked and the memory it needs.
    pub fn plan(&self) -> Result<JsValue, JsError> {
        to_js(&self.plan)
    }

    /// Moves the run to WebGPU (before the first step). Resolves to the adapter's name.
    #[wasm_bindgen(js_name = useGpu)]
    pub async fn use_gpu(&mut self) -> Result<String, JsError> {
        self.run.use_gpu().await.map_err(js_err)
    }

    /// Takes up to `n` steps (stopping when the epochs are done); an epoch that ends is
    /// scored on the held-out photos.
    pub async fn steps(&mut self, n: usize) -> Result<JsValue, JsError> {
        let r = self.run.steps(n).await.map_err(js_err)?;
        let held = self.plan.held_out > 0;
        to_js(&FinetuneReport {
            step: r.step,
            epoch: r.epoch,
            epochs: r.epochs,
            batch_in_epoch: r.batch_in_epoch,
            batches: r.batches,
            loss: r.loss,
            finished_epochs: r
                .finished
                .iter()
                .map(|l| (l.epoch, l.train_loss, held.then_some(1.0 - l.val_top1_err)))
                .collect(),
            done: r.done,
            backend: r.backend,
        })
    }

    /// The fine-tuned network as safetensors bytes (its classes in the metadata).
    pub async fn snapshot(&mut self) -> Result<Vec<u8>, JsError> {
        self.run.snapshot().await.map_err(js_err)
    }
}

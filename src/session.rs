//! What the page holds while a person uses it: the network, WebGPU when the browser has an
//! adapter, and the last analysed image's activations so a layer is drawn when its panel
//! opens. The GPU-first policy lives here (tested natively on lavapipe): with the GPU in
//! use an image runs there, reading back only the logits and the feature layer; a lost
//! device is re-created once (`GpuSession`); any other GPU failure moves this image and
//! every later one to the fast CPU backend and says why.

use crate::classify::{self, Prediction};
use crate::error::{Error, Result};
use crate::gpu::{AdapterReport, GpuSession};
use crate::inspect::{self, Picture};
use crate::model::{Layer, Model};
use crate::tensor::Tensor;

/// Where the last `analyze` left every layer's output.
enum LastRun {
    /// The fast CPU's outputs of every layer, for the whole batch.
    Cpu { outs: Vec<Tensor>, show: usize },
    /// On the GPU session's plan for that run; read back per layer on demand.
    Gpu { show: usize },
}

/// One analysed image.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Analysis {
    pub preds: Vec<Prediction>,
    /// The feature layer's output (fc7 after its ReLU) averaged over the crops, for nearest
    /// images.
    #[serde(skip)]
    pub feature: Vec<f32>,
    /// "gpu" or "cpu": where this image ran.
    pub backend: &'static str,
    /// The GPU device was lost and re-created for this run: why.
    pub recovered: Option<String>,
    /// The GPU failed and this run fell back to the CPU (the GPU is then dropped): why.
    pub gpu_error: Option<String>,
    /// How many crops ran (1, or 10 with test-time averaging) and which one the activations
    /// show (the centre crop).
    pub crops: usize,
    pub shown_crop: usize,
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

pub struct Session {
    model: Model,
    gpu: Option<GpuSession>,
    last: Option<LastRun>,
}

impl Session {
    pub fn new(model: Model) -> Session {
        Session {
            model,
            gpu: None,
            last: None,
        }
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Replaces the network, keeping the GPU device (the next run uploads the new one).
    pub fn replace(&mut self, model: Model) {
        self.model = model;
        self.last = None;
        if let Some(s) = self.gpu.as_mut() {
            s.forget_model();
        }
    }

    /// Asks for a WebGPU adapter and compiles every kernel; later `analyze` calls with
    /// `use_gpu` run there.
    pub async fn enable_gpu(&mut self) -> Result<AdapterReport> {
        let s = GpuSession::new().await?;
        let report = s.report();
        self.gpu = Some(s);
        Ok(report)
    }

    /// Forgets the GPU; `analyze` keeps working on the CPU.
    pub fn disable_gpu(&mut self) {
        self.gpu = None;
    }

    pub fn gpu_in_use(&self) -> bool {
        self.gpu.is_some()
    }

    /// Destroys the GPU device as a driver reset would; the next `analyze` re-creates it.
    pub fn lose_gpu_device(&self) -> Result<()> {
        match &self.gpu {
            Some(s) => {
                s.lose_device();
                Ok(())
            }
            None => Err(Error::Gpu("WebGPU is not in use".into())),
        }
    }

    /// Classifies an encoded image (its top `top` classes) and keeps every layer's output for
    /// `layer_pictures`; `tta` runs the paper's ten crops and averages their softmax.
    pub async fn analyze(
        &mut self,
        image: &[u8],
        top: usize,
        tta: bool,
        use_gpu: bool,
    ) -> Result<Analysis> {
        let model = &self.model;
        let x = classify::prepare_input(model, image, tta)?;
        let show = shown_crop(tta);
        let n_layers = model.arch.layers.len();
        let fc7 = inspect::feature_layer(&model.arch)?;
        let (mut gpu_error, mut recovered) = (None, None);
        self.last = None;
        let mut ran = None;
        if use_gpu {
            if let Some(s) = self.gpu.as_mut() {
                match s.forward_read(model, &x, &[n_layers - 1, fc7]).await {
                    Ok(out) => {
                        recovered = out.recovered;
                        ran = Some(("gpu", out.tensors));
                        self.last = Some(LastRun::Gpu { show });
                    }
                    Err(e) => {
                        // the page's GPU is always the default choice: later runs go to the CPU
                        gpu_error = Some(crate::backend::after_gpu_failure(e, false)?);
                        self.gpu = None;
                    }
                }
            }
        }
        let (backend, mut outs) = match ran {
            Some(r) => r,
            None => {
                let all = crate::cpu::FastCpu::new(model)?.forward_all(&x)?;
                let picked = vec![all[n_layers - 1].clone(), all[fc7].clone()];
                self.last = Some(LastRun::Cpu { outs: all, show });
                ("cpu", picked)
            }
        };
        let feature = outs
            .pop()
            .ok_or_else(|| Error::Internal("no feature output".into()))?;
        let logits = outs
            .pop()
            .ok_or_else(|| Error::Internal("no network output".into()))?;
        Ok(Analysis {
            preds: classify::rank(model, logits, top)?,
            feature: classify::mean_rows(&feature),
            backend,
            recovered,
            gpu_error,
            crops: x.shape[0],
            shown_crop: show,
        })
    }

    /// Layer `index`'s output for the shown crop of the last `analyze`, drawn: feature maps
    /// as one grid per tower, a vector as a bar strip. On the GPU only this layer's slice of
    /// one image is read back.
    pub async fn layer_pictures(&self, index: usize) -> Result<Vec<Picture>> {
        let views = inspect::views(&self.model.arch)?;
        let view = views
            .into_iter()
            .find(|v| v.index == index)
            .ok_or_else(|| Error::Draw(format!("layer {index}: it has nothing to draw")))?;
        let per: usize = view.shape.iter().product();
        let data = match &self.last {
            None => return Err(Error::Draw("a layer before any image is analysed".into())),
            Some(LastRun::Cpu { outs, show }) => outs
                .get(index)
                .and_then(|t| t.data.get(show * per..(show + 1) * per))
                .ok_or_else(|| Error::OutOfRange {
                    what: "layer".into(),
                    index,
                    len: outs.len(),
                })?
                .to_vec(),
            Some(LastRun::Gpu { show }) => {
                let s = self.gpu.as_ref().ok_or_else(|| {
                    Error::Gpu("the GPU is no longer in use: analyse the image again".into())
                })?;
                s.read_image(index, *show).await?.data
            }
        };
        inspect::view_pictures(&view, &data)
    }

    /// The first convolution's kernels as the paper's figure 3: one picture per tower.
    pub fn filters(&self) -> Result<Vec<Picture>> {
        let m = &self.model;
        let name = m
            .arch
            .layers
            .iter()
            .find_map(|l| match l {
                Layer::Conv(c) => Some(c.name.clone()),
                _ => None,
            })
            .ok_or_else(|| Error::Draw("filters: the network has no convolution".into()))?;
        let w = m.weight(&name)?;
        let o = w.shape[0];
        let towers = inspect::towers(&m.arch);
        let towers = if o % towers == 0 { towers } else { 1 };
        (0..towers)
            .map(|t| inspect::filters_picture(w, t * o / towers, o / towers))
            .collect()
    }

    /// What the network sees of an encoded image: the paper's ten crops with `tta`, else
    /// the one centre crop; one picture each.
    pub fn crops(&self, image: &[u8], tta: bool) -> Result<Vec<Picture>> {
        let pp = &self.model.arch.preprocess;
        let img = crate::preprocess::decode(image)?;
        let crops = if tta {
            crate::preprocess::crops_as_images(&img, pp)?
        } else {
            vec![crate::preprocess::input_image(&img, pp)?]
        };
        Ok(crops.iter().map(inspect::rgb_picture).collect())
    }
}

//! safetensors in and out (bytes only, so it runs the same natively and in wasm). Parsing is
//! the `safetensors` crate's; this file decides which architecture a file holds, converts the
//! tensors to f32 and names them the way `Model` does.
//!
//! # Which architecture a file holds (in this order)
//! 1. Metadata key [`ARCH_KEY`] (`"alexnet.arch"`): the `Arch` as JSON. Our own `save` writes it.
//! 2. torchvision key names (`features.{0,3,6,8,10}.*`, `classifier.{1,4,6}.*`, optionally
//!    behind a `module.` prefix from `DataParallel`): renamed to `conv1..conv5`, `fc6..fc8`
//!    (see [`TORCHVISION_KEYS`]) and loaded as `model::torchvision()`.
//! 3. Our own key names (`conv1.weight`, ...) whose names and shapes match exactly one
//!    built-in config (`Arch::BUILTINS`). `paper` and `bvlc` have the same tensors, so such a
//!    file is ambiguous and is refused with a message asking for the metadata.
//!
//! Otherwise the file is refused with [`Error::Safetensors`], naming the keys it has.
//!
//! # Values
//! F32 is read as is; F16, BF16 and F64 are converted to f32 (F64 values beyond f32's range
//! become infinite and are then refused, see below). Every other dtype (integers, bool, the
//! F8/F6/F4 formats) is refused with the tensor's name and dtype.
//!
//! # Errors, never panics
//! A malformed file (truncated, header length past the end, bad JSON, offsets that do not
//! cover the data) is `Error::Safetensors`. Tensors that do not fit the architecture are
//! reported by `Model::new`: `Error::Shape` for a wrong shape, `Error::Weights` for a missing
//! or extra tensor, and `Error::NonFinite` for NaN or Inf values, which are an error, not a
//! warning: such a network can only output NaN, so loading it would hide the real problem.

use crate::error::{Error, Result};
use crate::model::{torchvision, Arch, Family};
use crate::model::{Model, Params};
use crate::tensor::Tensor;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::HashMap;

/// Metadata key holding the architecture as JSON (`serde_json` of `Arch`).
pub const ARCH_KEY: &str = "alexnet.arch";

/// torchvision's `AlexNet.state_dict()` prefixes and ours, in layer order.
pub const TORCHVISION_KEYS: [(&str, &str); 8] = [
    ("features.0", "conv1"),
    ("features.3", "conv2"),
    ("features.6", "conv3"),
    ("features.8", "conv4"),
    ("features.10", "conv5"),
    ("classifier.1", "fc6"),
    ("classifier.4", "fc7"),
    ("classifier.6", "fc8"),
];

/// Reads a model from the bytes of a `.safetensors` file (see the module docs for how the
/// architecture is chosen and which errors are reported).
pub fn load(bytes: &[u8]) -> Result<Model> {
    let st = SafeTensors::deserialize(bytes).map_err(|e| {
        Error::Safetensors(format!(
            "not a valid safetensors file ({} bytes): {e}",
            bytes.len()
        ))
    })?;
    // The user metadata lives in the header the crate has just validated; read_metadata
    // parses that (small) header once more to hand it to us.
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Safetensors(format!("not a valid safetensors file: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();

    let mut params = Params::new();
    for (name, view) in st.iter() {
        params.insert(name.to_string(), to_f32(name, &view)?);
    }

    // torchvision names are renamed whatever says which architecture it is.
    let torchvision_named =
        !params.is_empty() && params.keys().all(|k| torchvision_to_ours(k).is_some());
    if torchvision_named {
        params = params
            .into_iter()
            .map(|(k, t)| (torchvision_to_ours(&k).unwrap_or(k), t))
            .collect();
    }

    let arch = if let Some(json) = metadata.get(ARCH_KEY) {
        serde_json::from_str::<Arch>(json).map_err(|e| {
            Error::Safetensors(format!(
                "metadata {ARCH_KEY:?} is not a valid architecture: {e}"
            ))
        })?
    } else if torchvision_named {
        torchvision()
    } else {
        match_builtin(&params)?
    };
    Model::new(arch, params)
}

/// Writes `model` as safetensors: f32 tensors under our key names (`conv1.weight`, ...), the
/// architecture under [`ARCH_KEY`], and `"format": "pt"` so that Python's
/// `safetensors.torch.load_file` accepts it.
pub fn save(model: &Model) -> Result<Vec<u8>> {
    let tensors = model.params.iter().map(|(k, t)| (k.clone(), Out::f32(t)));
    serialize(tensors, &model.arch)
}

/// As [`save`] with every tensor stored as IEEE half precision (F16): half the bytes, for
/// shipping a model (the app's embedded default). Each value is rounded to the nearest f16
/// (relative error <= 2^-11 for normal values; below 6.1e-5 in magnitude the step is a fixed
/// 6e-8). A value beyond f16's range (|v| > 65504) would become infinite and the file would
/// not load back, so it is refused with the tensor's name.
pub fn save_f16(model: &Model) -> Result<Vec<u8>> {
    for (k, t) in &model.params {
        if let Some(v) = t.data.iter().find(|v| v.abs() > f32::from(half::f16::MAX)) {
            return Err(Error::Safetensors(format!(
                "tensor {k:?} holds {v}, beyond half precision's range (65504): save it as f32"
            )));
        }
    }
    let tensors = model.params.iter().map(|(k, t)| (k.clone(), Out::f16(t)));
    serialize(tensors, &model.arch)
}

/// Writes a torchvision-family model under torchvision's key names (`features.0.weight`,
/// ...), so that PyTorch's `torchvision.models.alexnet().load_state_dict(load_file(path))`
/// takes it. The metadata is as in [`save`]. Any other family is an error: its tensors have
/// no torchvision names.
pub fn save_torchvision(model: &Model) -> Result<Vec<u8>> {
    if model.arch.family != Family::Torchvision
        || model.arch.param_shapes() != torchvision().param_shapes()
    {
        return Err(Error::Safetensors(format!(
            "only a torchvision-family AlexNet with torchvision's tensor shapes can be saved \
             under torchvision key names; this model is {}",
            model.arch.family.as_str()
        )));
    }
    let mut tensors = Vec::with_capacity(model.params.len());
    for (k, t) in &model.params {
        let key = ours_to_torchvision(k)
            .ok_or_else(|| Error::Safetensors(format!("tensor {k:?} has no torchvision name")))?;
        tensors.push((key, Out::f32(t)));
    }
    serialize(tensors, &model.arch)
}

/// Metadata key of a training checkpoint's `train::State` (JSON).
pub const STATE_KEY: &str = "alexnet.train_state";
/// Prefix of a checkpoint's momentum tensors (`momentum/conv1.weight`, ...).
const MOMENTUM: &str = "momentum/";

/// A training checkpoint: the weights as [`save`] writes them, each parameter's momentum
/// under `momentum/<name>`, and the trainer's state (JSON) under [`STATE_KEY`].
pub fn save_checkpoint(model: &Model, momentum: &Params, state_json: &str) -> Result<Vec<u8>> {
    let json = serde_json::to_string(&model.arch)
        .map_err(|e| Error::Safetensors(format!("cannot write the architecture: {e}")))?;
    let metadata = HashMap::from([
        (ARCH_KEY.to_string(), json),
        (STATE_KEY.to_string(), state_json.to_string()),
        ("format".to_string(), "pt".to_string()),
    ]);
    let tensors = model
        .params
        .iter()
        .map(|(k, t)| (k.clone(), Out::f32(t)))
        .chain(
            momentum
                .iter()
                .map(|(k, t)| (format!("{MOMENTUM}{k}"), Out::f32(t))),
        );
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::Safetensors(format!("cannot write the checkpoint: {e}")))
}

/// Reads a checkpoint written by [`save_checkpoint`]: the model, the momentum and the state
/// JSON.
pub fn load_checkpoint(bytes: &[u8]) -> Result<(Model, Params, String)> {
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::Safetensors(format!("not a valid checkpoint: {e}")))?;
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::Safetensors(format!("not a valid checkpoint: {e}")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let (Some(arch), Some(state)) = (metadata.get(ARCH_KEY), metadata.get(STATE_KEY)) else {
        return Err(Error::Safetensors(format!(
            "not a training checkpoint (no {ARCH_KEY:?} and {STATE_KEY:?} metadata)"
        )));
    };
    let arch = serde_json::from_str::<Arch>(arch)
        .map_err(|e| Error::Safetensors(format!("bad architecture in the checkpoint: {e}")))?;
    let (mut params, mut momentum) = (Params::new(), Params::new());
    for (name, view) in st.iter() {
        let t = to_f32(name, &view)?;
        match name.strip_prefix(MOMENTUM) {
            Some(k) => momentum.insert(k.to_string(), t),
            None => params.insert(name.to_string(), t),
        };
    }
    Ok((Model::new(arch, params)?, momentum, state.clone()))
}

fn serialize<'a>(
    tensors: impl IntoIterator<Item = (String, Out<'a>)>,
    arch: &Arch,
) -> Result<Vec<u8>> {
    let json = serde_json::to_string(arch)
        .map_err(|e| Error::Safetensors(format!("cannot write the architecture: {e}")))?;
    let metadata = HashMap::from([
        (ARCH_KEY.to_string(), json),
        ("format".to_string(), "pt".to_string()),
    ]);
    safetensors::serialize(tensors, Some(metadata))
        .map_err(|e| Error::Safetensors(format!("cannot write the file: {e}")))
}

/// A tensor as safetensors sees it, stored as F32 or F16; the little-endian bytes are made one
/// tensor at a time while writing, so saving needs one tensor's worth of extra memory, not the
/// model's.
struct Out<'a> {
    t: &'a Tensor,
    half: bool,
}

impl<'a> Out<'a> {
    fn f32(t: &'a Tensor) -> Self {
        Out { t, half: false }
    }
    fn f16(t: &'a Tensor) -> Self {
        Out { t, half: true }
    }
}

impl View for Out<'_> {
    fn dtype(&self) -> Dtype {
        if self.half {
            Dtype::F16
        } else {
            Dtype::F32
        }
    }
    fn shape(&self) -> &[usize] {
        &self.t.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let mut bytes = Vec::with_capacity(self.data_len());
        for &v in &self.t.data {
            if self.half {
                bytes.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
            } else {
                bytes.extend_from_slice(&v.to_le_bytes());
            }
        }
        Cow::Owned(bytes)
    }
    fn data_len(&self) -> usize {
        self.t.data.len() * if self.half { 2 } else { 4 }
    }
}

/// One tensor's values as f32 (see the module docs for the dtypes taken).
fn to_f32(name: &str, view: &TensorView<'_>) -> Result<Tensor> {
    let b = view.data();
    let data: Vec<f32> = match view.dtype() {
        Dtype::F32 => b
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F16 => b
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => b
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::F64 => b
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        other => {
            return Err(Error::Safetensors(format!(
                "tensor {name:?} has dtype {other}; weights must be F32, F16, BF16 or F64"
            )))
        }
    };
    Tensor::new(view.shape(), data).map_err(|e| Error::Safetensors(format!("tensor {name:?}: {e}")))
}

/// `features.3.weight` -> `conv2.weight` (also behind a `module.` prefix); None when the key
/// is not one of torchvision AlexNet's.
pub fn torchvision_to_ours(key: &str) -> Option<String> {
    let key = key.strip_prefix("module.").unwrap_or(key);
    rename_param(key, |&(tv, ours)| (tv, ours))
}

/// `conv2.weight` -> `features.3.weight`; None for names torchvision's AlexNet does not have.
pub fn ours_to_torchvision(key: &str) -> Option<String> {
    rename_param(key, |&(tv, ours)| (ours, tv))
}

/// `{layer}.weight` / `{layer}.bias` with the layer renamed by the `TORCHVISION_KEYS` pair
/// whose `from` side (as `pick` orders the pair into `(from, to)`) is `layer`.
fn rename_param(
    key: &str,
    pick: impl Fn(&(&'static str, &'static str)) -> (&'static str, &'static str),
) -> Option<String> {
    let (layer, suffix) = key.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    TORCHVISION_KEYS
        .iter()
        .map(pick)
        .find(|(from, _)| *from == layer)
        .map(|(_, to)| format!("{to}.{suffix}"))
}

/// The one built-in config whose parameter names and shapes are exactly the file's.
fn match_builtin(params: &Params) -> Result<Arch> {
    let mut found: Vec<Arch> = Vec::new();
    for name in Arch::BUILTINS {
        let arch = Arch::builtin(name)?;
        let shapes = arch.param_shapes();
        let same = shapes.len() == params.len()
            && shapes
                .iter()
                .all(|(k, s)| params.get(k).is_some_and(|t| &t.shape == s));
        if same {
            found.push(arch);
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => {
            const SHOWN: usize = 24;
            let mut seen: Vec<String> = params
                .iter()
                .take(SHOWN)
                .map(|(k, t)| format!("{k} {:?}", t.shape))
                .collect();
            if params.len() > SHOWN {
                seen.push(format!("... ({} tensors in all)", params.len()));
            }
            Err(Error::Safetensors(format!(
                "unknown architecture: no {ARCH_KEY:?} metadata, and the tensors match neither \
                 torchvision's key names nor any built-in config ({}); keys seen: {}",
                Arch::BUILTINS.join(", "),
                if seen.is_empty() {
                    "none".to_string()
                } else {
                    seen.join(", ")
                }
            )))
        }
        _ => Err(Error::Safetensors(format!(
            "ambiguous architecture: the tensors fit the built-in configs {} alike, which \
             differ in preprocessing or layers; add the {ARCH_KEY:?} metadata (this program's \
             `save` writes it) to say which",
            found
                .iter()
                .map(|a| a.family.as_str())
                .collect::<Vec<_>>()
                .join(" and ")
        ))),
    }
}

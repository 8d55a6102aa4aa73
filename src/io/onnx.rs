//! ONNX import and export, bytes in and bytes out (no file system, so it runs in wasm).
//!
//! The protobuf messages are declared with `prost` derives in `onnx_proto.rs`; nothing here
//! parses protobuf by hand.
//!
//! ## Import
//! The graph must be a chain: every compute node reads the previous node's output (plus
//! constants: initializers, `Constant` or `ConstantOfShape` nodes). Supported ops and how they
//! map to our layers:
//!
//! | ONNX | layer | conditions |
//! |---|---|---|
//! | Conv | `conv{k}` | 2-D, dilations 1, `auto_pad` NOTSET/VALID |
//! | Relu | `relu{k}` / `relu{m}` | k / m = the last conv / fc |
//! | LRN | `norm{k}` | ONNX divides alpha by `size`: `LrnAlpha::OverN` |
//! | MaxPool | `pool{k}` | dilations 1, storage_order 0, `ceil_mode` -> `Rounding` |
//! | AveragePool | `avgpool` (adaptive) | kernel == stride, no pads, input divisible |
//! | GlobalAveragePool | `avgpool` (adaptive 1x1) | |
//! | Flatten / Reshape | `flatten` | Flatten axis 1; Reshape to (N or 0 or -1 or 1, -1 or F) |
//! | Gemm | `fc{nconv + j}` | transA 0; transB 0 is transposed; alpha, beta folded in |
//! | MatMul (+ Add) | `fc{nconv + j}` | constant (in, out) matrix; a following constant Add is the bias |
//! | Dropout | `drop{m}` | kept as a layer (identity at inference) with its ratio |
//! | Softmax | `prob` | axis 1 or -1 on a flat input |
//! | Identity | (skipped) | |
//!
//! Dropout names follow the builtins: if a dropout comes before the first fc (torchvision's
//! layout) every dropout is named after the fc that follows it, otherwise (Caffe's layout)
//! after the fc whose ReLU it follows.
//!
//! ### Family recognition
//! 1. `metadata_props["alexnet.arch"]` (written by [`export`]) is used verbatim, after
//!    checking that it describes the same computation as the graph.
//! 2. Layers equal to a builtin's (and the same input) -> that builtin.
//! 3. Equal to a builtin's ignoring Dropout layers (an eval-mode torch export has none) and up
//!    to equivalent max-pool encodings (ceil rounding vs. explicit trailing pads giving the same
//!    windows) -> that builtin, adopting its layer list.
//! 4. The same layers as a builtin except for max-pool padding/rounding that changes shapes
//!    -> that builtin's family, preprocessing and labels, with the graph's own layers. This is
//!    the ONNX model zoo's bvlcalexnet: converted from Caffe for 224 input, its pool1/pool2 floor
//!    (54 -> 26 -> 12) where Caffe's ceil pooling at 224 gives 27 and 13, and pool5 uses pads
//!    `[0, 0, 1, 1]`; so its intermediate shapes differ from `model::bvlc()` while its weights,
//!    preprocessing and labels are the Caffe ones. We keep the zoo's pooling so our outputs
//!    match ONNX Runtime's on that file.
//! 5. Otherwise `Family::Custom` with torchvision's preprocessing at the graph's input size,
//!    ImageNet labels if there are 1000 outputs, else `class i`.
//!
//! ## Export
//! Opset 13, IR version 8, input `input` `(N, C, H, W)` with a symbolic `N`, output `output`,
//! parameters as float32 initializers named `{layer}.weight` / `{layer}.bias`, Dropout left
//! out (an inference graph), adaptive average pooling as AveragePool when the sizes divide,
//! and the architecture as JSON in `metadata_props["alexnet.arch"]`.

#[path = "onnx_proto.rs"]
pub mod proto;

use crate::error::{Error, Result};
use crate::model::{
    self, Arch, AvgPoolSpec, ConvSpec, DropoutSpec, Family, Labels, Layer, LinearSpec, LrnAlpha,
    LrnSpec, Pads, PoolSpec,
};
use crate::net::{Model, Params};
use crate::shape::{self, Rounding};
use crate::tensor::Tensor;
use prost::Message;
use proto::{
    attr_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto,
};
use std::collections::{HashMap, HashSet};

/// The metadata key under which [`export`] stores the architecture as JSON.
pub const ARCH_KEY: &str = "alexnet.arch";
/// Opset and IR version that [`export`] writes.
pub const EXPORT_OPSET: i64 = 13;
pub const EXPORT_IR_VERSION: i64 = 8;

/// Refuse constants (ConstantOfShape) above this many elements rather than allocate them:
/// AlexNet's largest tensor (fc6) has 37.7 M.
const MAX_CONST_ELEMS: usize = 1 << 28;

/// Upper bound for sizes read from attributes and the input shape (kernels, strides, pads,
/// groups, LRN size, C/H/W), so that shape arithmetic can never overflow (also on wasm32's
/// 32-bit usize). AlexNet's largest is 224.
const MAX_DIM: i64 = 1 << 16;

// ------------------------------------------------------------------------------------------
// import

/// Reads an ONNX model (the bytes of a `.onnx` file) into a [`Model`].
pub fn import(bytes: &[u8]) -> Result<Model> {
    let model = ModelProto::decode(bytes).map_err(|e| {
        Error::Onnx(format!(
            "not a valid ONNX model ({e}); the file may be truncated or not ONNX at all"
        ))
    })?;
    let graph = model
        .graph
        .ok_or_else(|| Error::Onnx("the file has no graph (is it an ONNX model?)".into()))?;
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .unwrap_or(0);
    if opset < 1 {
        return Err(Error::Onnx(
            "the model imports no version of the default ONNX operator set (opset_import); \
             the file is incomplete or truncated"
                .into(),
        ));
    }
    let meta_arch = model
        .metadata_props
        .iter()
        .find(|p| p.key == ARCH_KEY)
        .map(|p| p.value.clone());
    let (input, layers, params) = Importer::new(graph)?.run()?;
    let arch = recognise(input, layers, meta_arch.as_deref())?;
    Model::new(arch, params)
}

/// What the importer knows about the most recent layer with parameters, for naming.
#[derive(Clone, Copy)]
enum Last {
    None,
    Conv(usize),
    Fc(usize),
}

impl Last {
    fn number(self) -> String {
        match self {
            Last::None => String::new(),
            Last::Conv(k) | Last::Fc(k) => k.to_string(),
        }
    }
}

struct Importer {
    nodes: Vec<NodeProto>,
    /// Initializers and constant-node outputs, by name. Weights are taken out when used.
    consts: HashMap<String, TensorProto>,
    graph_outputs: Vec<String>,
    input_name: String,
    input: [usize; 3],
    cur: String,
    shape: Vec<usize>,
    layers: Vec<Layer>,
    params: Params,
    nconv: usize,
    nfc: usize,
    last: Last,
    /// Index in `layers` of a Linear made from MatMul whose bias may follow as an Add.
    matmul_fc: Option<usize>,
    names: HashSet<String>,
}

fn node_label(n: &NodeProto) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else if let Some(o) = n.output.first() {
        o.clone()
    } else {
        "<unnamed>".into()
    }
}

fn node_err(n: &NodeProto, msg: impl Into<String>) -> Error {
    Error::OnnxNode {
        node: node_label(n),
        op: n.op_type.clone(),
        msg: msg.into(),
    }
}

impl Importer {
    fn new(mut graph: GraphProto) -> Result<Importer> {
        let mut consts = HashMap::new();
        for t in graph.initializer.drain(..) {
            consts.insert(t.name.clone(), t);
        }
        // The data input: the one graph input that is not an initializer (IR < 4 lists the
        // initializers among the inputs too).
        let data_inputs: Vec<&ValueInfoProto> = graph
            .input
            .iter()
            .filter(|i| !consts.contains_key(&i.name))
            .collect();
        let vi = match data_inputs.as_slice() {
            [one] => *one,
            [] => {
                return Err(Error::Onnx(
                    "the graph has no input (every input is an initializer)".into(),
                ))
            }
            many => {
                return Err(Error::Onnx(format!(
                    "the graph has {} inputs ({}); AlexNet takes one image tensor",
                    many.len(),
                    many.iter()
                        .map(|i| i.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )))
            }
        };
        let input = input_shape(vi)?;
        let input_name = vi.name.clone();
        Ok(Importer {
            nodes: std::mem::take(&mut graph.node),
            consts,
            graph_outputs: graph.output.iter().map(|o| o.name.clone()).collect(),
            cur: input_name.clone(),
            input_name,
            input,
            shape: input.to_vec(),
            layers: Vec::new(),
            params: Params::new(),
            nconv: 0,
            nfc: 0,
            last: Last::None,
            matmul_fc: None,
            names: HashSet::new(),
        })
    }

    fn run(mut self) -> Result<([usize; 3], Vec<Layer>, Params)> {
        let nodes = std::mem::take(&mut self.nodes);
        for node in &nodes {
            if !(node.domain.is_empty() || node.domain == "ai.onnx") {
                return Err(node_err(
                    node,
                    format!(
                        "operator domain {:?} is not supported (only the default ONNX domain)",
                        node.domain
                    ),
                ));
            }
            match node.op_type.as_str() {
                "Constant" => self.constant(node)?,
                "ConstantOfShape"
                    if node
                        .input
                        .first()
                        .is_some_and(|i| self.consts.contains_key(i)) =>
                {
                    self.constant_of_shape(node)?
                }
                _ => self.compute(node)?,
            }
        }
        if self.layers.is_empty() {
            return Err(Error::Onnx("the graph has no layers we can run".into()));
        }
        if !self.graph_outputs.contains(&self.cur) {
            return Err(Error::Onnx(format!(
                "the chain of layers ends in {:?}, which is not a graph output (outputs: {:?}); \
                 the graph must be a single chain from {:?} to its output",
                self.cur, self.graph_outputs, self.input_name
            )));
        }
        name_dropouts(&mut self.layers);
        Ok((self.input, self.layers, self.params))
    }

    fn constant(&mut self, node: &NodeProto) -> Result<()> {
        let out = node
            .output
            .first()
            .ok_or_else(|| node_err(node, "has no output"))?;
        let a = node
            .attribute
            .first()
            .ok_or_else(|| node_err(node, "has no value attribute"))?;
        let mut t = match a.name.as_str() {
            "value" => {
                a.t.clone()
                    .ok_or_else(|| node_err(node, "value attribute holds no tensor"))?
            }
            "value_float" => TensorProto {
                data_type: data_type::FLOAT,
                float_data: vec![a.f],
                ..Default::default()
            },
            "value_floats" => TensorProto {
                data_type: data_type::FLOAT,
                dims: vec![a.floats.len() as i64],
                float_data: a.floats.clone(),
                ..Default::default()
            },
            "value_int" => TensorProto {
                data_type: data_type::INT64,
                int64_data: vec![a.i],
                ..Default::default()
            },
            "value_ints" => TensorProto {
                data_type: data_type::INT64,
                dims: vec![a.ints.len() as i64],
                int64_data: a.ints.clone(),
                ..Default::default()
            },
            other => {
                return Err(node_err(
                    node,
                    format!("attribute {other:?} is not supported"),
                ))
            }
        };
        t.name = out.clone();
        self.consts.insert(out.clone(), t);
        Ok(())
    }

    fn constant_of_shape(&mut self, node: &NodeProto) -> Result<()> {
        let out = node
            .output
            .first()
            .ok_or_else(|| node_err(node, "has no output"))?;
        let dims = self.ints_input(node, 0)?;
        let n =
            checked_len(&dims).ok_or_else(|| node_err(node, format!("invalid shape {dims:?}")))?;
        if n > MAX_CONST_ELEMS {
            return Err(node_err(
                node,
                format!("shape {dims:?} is too large ({n} elements)"),
            ));
        }
        let (dt, v) = match attr(node, "value") {
            None => (data_type::FLOAT, 0.0),
            Some(a) => {
                let t =
                    a.t.as_ref()
                        .ok_or_else(|| node_err(node, "value attribute holds no tensor"))?;
                let v = tensor_f32(t, "value").map_err(|e| node_err(node, e))?;
                match v.as_slice() {
                    [x] => (t.data_type, *x),
                    _ => return Err(node_err(node, "value must hold exactly one element")),
                }
            }
        };
        let t = if dt == data_type::INT64 || dt == data_type::INT32 {
            TensorProto {
                data_type: data_type::INT64,
                dims,
                int64_data: vec![v as i64; n],
                ..Default::default()
            }
        } else {
            TensorProto {
                data_type: data_type::FLOAT,
                dims,
                float_data: vec![v; n],
                ..Default::default()
            }
        };
        self.consts.insert(
            out.clone(),
            TensorProto {
                name: out.clone(),
                ..t
            },
        );
        Ok(())
    }

    /// A constant integer input (shapes), by input index.
    fn ints_input(&self, node: &NodeProto, i: usize) -> Result<Vec<i64>> {
        let name = node
            .input
            .get(i)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| node_err(node, format!("missing input {i}")))?;
        let t = self.consts.get(name).ok_or_else(|| {
            node_err(
                node,
                format!("input {name:?} must be a constant (initializer or Constant node)"),
            )
        })?;
        tensor_i64(t).map_err(|e| node_err(node, e))
    }

    /// A constant float input (weights), by input index; `None` for an absent optional input.
    /// Returns the dims and the values, and removes the tensor (weights are used once).
    fn float_input(
        &mut self,
        node: &NodeProto,
        i: usize,
    ) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        let Some(name) = node.input.get(i).filter(|s| !s.is_empty()) else {
            return Ok(None);
        };
        let t = self.consts.remove(name).ok_or_else(|| {
            node_err(
                node,
                format!("input {name:?} must be a constant (initializer or Constant node); computed or shared weights are not supported"),
            )
        })?;
        let dims =
            dims_usize(&t.dims).map_err(|e| node_err(node, format!("tensor {name:?}: {e}")))?;
        let data = tensor_f32(&t, name).map_err(|e| node_err(node, e))?;
        Ok(Some((dims, data)))
    }

    fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut i = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    fn push(&mut self, node: &NodeProto, layer: Layer) -> Result<()> {
        self.shape = layer
            .output_shape(&self.shape)
            .map_err(|e| node_err(node, e.to_string()))?;
        self.layers.push(layer);
        Ok(())
    }

    fn chw(&self, node: &NodeProto) -> Result<[usize; 3]> {
        match self.shape.as_slice() {
            [c, h, w] => Ok([*c, *h, *w]),
            s => Err(node_err(
                node,
                format!("needs an (N, C, H, W) input, got per-image shape {s:?}"),
            )),
        }
    }

    fn compute(&mut self, node: &NodeProto) -> Result<()> {
        let op = node.op_type.as_str();
        // The data input: for Add (a bias after MatMul) it may be either operand.
        let data_ix = if op == "Add" && node.input.get(1) == Some(&self.cur) {
            1
        } else {
            0
        };
        match node.input.get(data_ix) {
            Some(i) if *i == self.cur => {}
            Some(i) => {
                return Err(node_err(
                    node,
                    format!(
                        "reads {i:?}, but the graph must be a chain and the previous layer's output is {:?}",
                        self.cur
                    ),
                ))
            }
            None => return Err(node_err(node, "has no inputs")),
        }
        let out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| node_err(node, "has no output"))?
            .clone();
        if op != "Add" {
            self.matmul_fc = None;
        }
        match op {
            "Conv" => self.conv(node)?,
            "Relu" => {
                let name = self.unique(format!("relu{}", self.last.number()));
                self.push(node, Layer::Relu { name })?;
            }
            "LRN" => self.lrn(node)?,
            "MaxPool" => self.maxpool(node)?,
            "AveragePool" => self.avgpool(node)?,
            "GlobalAveragePool" => {
                self.chw(node)?;
                let name = self.unique("avgpool".into());
                self.push(node, Layer::AdaptiveAvgPool(AvgPoolSpec { name, out: [1, 1] }))?;
            }
            "Flatten" => {
                let axis = attr_int(node, "axis")?.unwrap_or(1);
                let rank = self.shape.len() as i64 + 1;
                let axis = if axis < 0 { axis + rank } else { axis };
                if axis != 1 {
                    return Err(node_err(node, format!("axis {axis} is not supported (only 1: keep the batch)")));
                }
                self.flatten(node)?;
            }
            "Reshape" => self.reshape(node)?,
            "Gemm" => self.gemm(node)?,
            "MatMul" => self.matmul(node)?,
            "Add" => self.add_bias(node, data_ix)?,
            "Dropout" => self.dropout(node)?,
            "Softmax" => {
                let axis = attr_int(node, "axis")?.unwrap_or(1);
                if self.shape.len() != 1 || !(axis == 1 || axis == -1) {
                    return Err(node_err(
                        node,
                        format!("only softmax over the classes of an (N, F) tensor is supported (axis {axis}, per-image shape {:?})", self.shape),
                    ));
                }
                let name = self.unique("prob".into());
                self.push(node, Layer::Softmax { name })?;
            }
            "Identity" => {}
            other => {
                return Err(node_err(
                    node,
                    format!("operator {other} is not supported (AlexNet import handles Conv, Relu, LRN, MaxPool, AveragePool, GlobalAveragePool, Flatten, Reshape, Gemm, MatMul+Add, Dropout, Softmax, Identity)"),
                ))
            }
        }
        // Extra outputs (Dropout's mask, MaxPool's indices) must not be used by anyone.
        for extra in node.output.iter().skip(1).filter(|o| !o.is_empty()) {
            if self.graph_outputs.contains(extra) {
                return Err(node_err(
                    node,
                    format!("its second output {extra:?} is a graph output; not supported"),
                ));
            }
        }
        self.cur = out;
        Ok(())
    }

    fn conv(&mut self, node: &NodeProto) -> Result<()> {
        let [c, _, _] = self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        let (wd, w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no weight input"))?;
        let [m, cg, kh, kw] = match wd.as_slice() {
            [m, cg, kh, kw] => [*m, *cg, *kh, *kw],
            d => {
                return Err(node_err(
                    node,
                    format!("weight must be 4-D (M, C/group, kH, kW), got {d:?}"),
                ))
            }
        };
        let group = attr_int(node, "group")?.unwrap_or(1);
        let group = usize::try_from(group)
            .ok()
            .filter(|g| *g >= 1 && *g as i64 <= MAX_DIM)
            .ok_or_else(|| node_err(node, format!("invalid group {group}")))?;
        if cg.checked_mul(group) != Some(c) {
            return Err(node_err(
                node,
                format!(
                    "weight {wd:?} with group {group} expects {} input channels, the input has {c}",
                    cg.saturating_mul(group)
                ),
            ));
        }
        if let Some(ks) = attr_ints(node, "kernel_shape")? {
            if ks != [kh as i64, kw as i64] {
                return Err(node_err(
                    node,
                    format!("kernel_shape {ks:?} does not match the weight {wd:?}"),
                ));
            }
        }
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        let b = match self.float_input(node, 2)? {
            Some((bd, b)) => {
                if b.len() != m {
                    return Err(node_err(
                        node,
                        format!("bias has shape {bd:?}, expected [{m}]"),
                    ));
                }
                b
            }
            None => vec![0.0; m],
        };
        self.nconv += 1;
        self.last = Last::Conv(self.nconv);
        let name = self.unique(format!("conv{}", self.nconv));
        self.add_params(&name, Tensor::new(&wd, w)?, Tensor::new(&[m], b)?);
        self.push(
            node,
            Layer::Conv(ConvSpec {
                name,
                in_channels: c,
                out_channels: m,
                kernel: [kh, kw],
                stride,
                pads,
                groups: group,
            }),
        )
    }

    fn add_params(&mut self, layer: &str, w: Tensor, b: Tensor) {
        self.params.insert(format!("{layer}.weight"), w);
        self.params.insert(format!("{layer}.bias"), b);
    }

    fn lrn(&mut self, node: &NodeProto) -> Result<()> {
        self.chw(node)?;
        let size = attr_int(node, "size")?
            .ok_or_else(|| node_err(node, "the size attribute is required"))?;
        let size = usize::try_from(size)
            .ok()
            .filter(|s| *s >= 1 && *s as i64 <= MAX_DIM)
            .ok_or_else(|| node_err(node, format!("invalid size {size}")))?;
        let name = self.unique(format!("norm{}", self.last.number()));
        let layer = Layer::Lrn(LrnSpec {
            name,
            size,
            alpha: attr_float(node, "alpha")?.unwrap_or(1e-4),
            beta: attr_float(node, "beta")?.unwrap_or(0.75),
            k: attr_float(node, "bias")?.unwrap_or(1.0),
            // ONNX: square_sum * alpha / size.
            alpha_mode: LrnAlpha::OverN,
        });
        self.push(node, layer)
    }

    fn maxpool(&mut self, node: &NodeProto) -> Result<()> {
        self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        if let Some(so) = attr_int(node, "storage_order")? {
            if so != 0 {
                return Err(node_err(
                    node,
                    format!("storage_order {so} is not supported (only 0)"),
                ));
            }
        }
        if node.output.get(1).is_some_and(|o| !o.is_empty()) {
            return Err(node_err(node, "the Indices output is not supported"));
        }
        let kernel = pair(node, "kernel_shape", [0, 0])?;
        if kernel.contains(&0) {
            return Err(node_err(node, "kernel_shape is required"));
        }
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        let rounding = match attr_int(node, "ceil_mode")?.unwrap_or(0) {
            0 => Rounding::Floor,
            1 => Rounding::Ceil,
            c => return Err(node_err(node, format!("invalid ceil_mode {c}"))),
        };
        let name = self.unique(format!("pool{}", self.last.number()));
        self.push(
            node,
            Layer::MaxPool(PoolSpec {
                name,
                kernel,
                stride,
                pads,
                rounding,
            }),
        )
    }

    /// AveragePool is imported only as what torch exports for AdaptiveAvgPool2d when the
    /// input size is a multiple of the output size: kernel == stride, no padding.
    fn avgpool(&mut self, node: &NodeProto) -> Result<()> {
        let [_, h, w] = self.chw(node)?;
        check_auto_pad(node)?;
        check_ones(node, "dilations")?;
        let kernel = pair(node, "kernel_shape", [0, 0])?;
        let stride = pair(node, "strides", [1, 1])?;
        let pads = pads(node)?;
        if kernel.contains(&0) {
            return Err(node_err(node, "kernel_shape is required"));
        }
        if kernel != stride || pads != Pads::default() || h % kernel[0] != 0 || w % kernel[1] != 0 {
            return Err(node_err(
                node,
                format!(
                    "only non-overlapping average pooling that tiles the input exactly is supported \
                     (kernel {kernel:?} == strides {stride:?}, no pads, input {h}x{w} divisible), as exported for AdaptiveAvgPool2d"
                ),
            ));
        }
        let name = self.unique("avgpool".into());
        self.push(
            node,
            Layer::AdaptiveAvgPool(AvgPoolSpec {
                name,
                out: [h / kernel[0], w / kernel[1]],
            }),
        )
    }

    fn flatten(&mut self, node: &NodeProto) -> Result<()> {
        if self.shape.len() == 1 {
            return Ok(()); // already (N, F)
        }
        let name = self.unique("flatten".into());
        self.push(node, Layer::Flatten { name })
    }

    fn reshape(&mut self, node: &NodeProto) -> Result<()> {
        let target = self.ints_input(node, 1)?;
        let allowzero = attr_int(node, "allowzero")?.unwrap_or(0) != 0;
        let f: usize = self.shape.iter().product();
        let ok = match target.as_slice() {
            // (N, F) with N copied (0), inferred (-1) or 1 (the zoo's batch-1 graphs: per image
            // that is the same flatten).
            [n, x] => {
                (*n == -1 || *n == 1 || (*n == 0 && !allowzero)) && (*x == -1 || *x == f as i64)
            }
            _ => false,
        };
        if !ok {
            return Err(node_err(
                node,
                format!("only a flatten to (N, -1) is supported; shape {target:?} on per-image shape {:?}", self.shape),
            ));
        }
        self.flatten(node)
    }

    fn flat_features(&self, node: &NodeProto) -> Result<usize> {
        match self.shape.as_slice() {
            [f] => Ok(*f),
            s => Err(node_err(
                node,
                format!("needs a flat (N, F) input, got per-image shape {s:?}"),
            )),
        }
    }

    fn new_fc(&mut self, node: &NodeProto, inf: usize, w: Tensor, b: Vec<f32>) -> Result<()> {
        let outf = w.shape[0];
        self.nfc += 1;
        let k = self.nconv + self.nfc;
        self.last = Last::Fc(k);
        let name = self.unique(format!("fc{k}"));
        self.add_params(&name, w, Tensor::new(&[outf], b)?);
        self.push(
            node,
            Layer::Linear(LinearSpec {
                name,
                in_features: inf,
                out_features: outf,
            }),
        )
    }

    fn gemm(&mut self, node: &NodeProto) -> Result<()> {
        let inf = self.flat_features(node)?;
        if attr_int(node, "transA")?.unwrap_or(0) != 0 {
            return Err(node_err(node, "transA = 1 is not supported"));
        }
        let trans_b = attr_int(node, "transB")?.unwrap_or(0) != 0;
        let alpha = attr_float(node, "alpha")?.unwrap_or(1.0);
        let beta = attr_float(node, "beta")?.unwrap_or(1.0);
        let (bd, mut w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no B input"))?;
        let (r, c) = match bd.as_slice() {
            [r, c] => (*r, *c),
            d => return Err(node_err(node, format!("B must be 2-D, got {d:?}"))),
        };
        let (outf, k) = if trans_b { (r, c) } else { (c, r) };
        if k != inf {
            return Err(node_err(
                node,
                format!(
                    "B {bd:?} (transB {}) expects {k} inputs, got {inf}",
                    trans_b as u8
                ),
            ));
        }
        if !trans_b {
            w = transpose(&w, r, c);
        }
        if alpha != 1.0 {
            w.iter_mut().for_each(|v| *v *= alpha);
        }
        let mut b = match self.float_input(node, 2)? {
            None => vec![0.0; outf],
            Some((cd, cv)) => broadcast_bias(&cd, cv, outf).map_err(|m| node_err(node, m))?,
        };
        if beta != 1.0 {
            b.iter_mut().for_each(|v| *v *= beta);
        }
        self.new_fc(node, inf, Tensor::new(&[outf, inf], w)?, b)
    }

    fn matmul(&mut self, node: &NodeProto) -> Result<()> {
        let inf = self.flat_features(node)?;
        let (bd, w) = self
            .float_input(node, 1)?
            .ok_or_else(|| node_err(node, "has no B input"))?;
        let (r, c) = match bd.as_slice() {
            [r, c] if *r == inf => (*r, *c),
            d => {
                return Err(node_err(
                    node,
                    format!("B must be a constant ({inf}, out) matrix, got {d:?}"),
                ))
            }
        };
        let w = transpose(&w, r, c);
        self.new_fc(node, inf, Tensor::new(&[c, r], w)?, vec![0.0; c])?;
        self.matmul_fc = Some(self.layers.len() - 1);
        Ok(())
    }

    fn add_bias(&mut self, node: &NodeProto, data_ix: usize) -> Result<()> {
        let Some(ix) = self.matmul_fc.take() else {
            return Err(node_err(
                node,
                "Add is only supported as the bias of a preceding MatMul",
            ));
        };
        let name = self.layers[ix].name().to_string();
        let outf = self.shape.first().copied().unwrap_or(0);
        let (cd, cv) = self
            .float_input(node, 1 - data_ix)?
            .ok_or_else(|| node_err(node, "needs two inputs"))?;
        let add = broadcast_bias(&cd, cv, outf).map_err(|m| node_err(node, m))?;
        let bias = self
            .params
            .get_mut(&format!("{name}.bias"))
            .ok_or_else(|| node_err(node, "internal: fc bias missing"))?;
        bias.data.iter_mut().zip(add).for_each(|(b, a)| *b += a);
        Ok(())
    }

    fn dropout(&mut self, node: &NodeProto) -> Result<()> {
        let mut p = attr_float(node, "ratio")?.unwrap_or(0.5);
        if node.input.get(1).is_some_and(|s| !s.is_empty()) {
            let (_, r) = self
                .float_input(node, 1)?
                .ok_or_else(|| node_err(node, "ratio input missing"))?;
            p = *r
                .first()
                .ok_or_else(|| node_err(node, "ratio input is empty"))?;
        }
        if let Some(tm) = node.input.get(2).filter(|s| !s.is_empty()) {
            let t = self
                .consts
                .get(tm)
                .ok_or_else(|| node_err(node, "training_mode must be a constant"))?;
            let v = tensor_f32(t, tm)
                .or_else(|_| tensor_i64(t).map(|v| v.iter().map(|x| *x as f32).collect()));
            if v.map_or(true, |v| v.iter().any(|x| *x != 0.0)) {
                return Err(node_err(
                    node,
                    "training_mode = true is not supported (inference graphs only)",
                ));
            }
        }
        if !(0.0..1.0).contains(&p) {
            return Err(node_err(node, format!("ratio {p} must be in [0, 1)")));
        }
        // Renamed once the whole chain is known (see `name_dropouts`).
        let name = format!("\u{0}dropout{}", self.layers.len());
        self.push(node, Layer::Dropout(DropoutSpec { name, p }))
    }
}

/// Names dropouts like the builtins: torchvision layout (a dropout before the first fc) ->
/// `drop{m}` for the fc that follows; Caffe layout -> `drop{m}` for the fc it follows.
fn name_dropouts(layers: &mut [Layer]) {
    let fc_num = |l: &Layer| match l {
        Layer::Linear(s) => s.name.strip_prefix("fc").map(|n| n.to_string()),
        _ => None,
    };
    let first_fc = layers.iter().position(|l| matches!(l, Layer::Linear(_)));
    let before_first = layers
        .iter()
        .enumerate()
        .any(|(i, l)| matches!(l, Layer::Dropout(_)) && first_fc.is_some_and(|f| i < f));
    let mut taken: HashSet<String> = layers.iter().map(|l| l.name().to_string()).collect();
    for i in 0..layers.len() {
        if !matches!(layers[i], Layer::Dropout(_)) {
            continue;
        }
        let next = layers[i + 1..].iter().find_map(fc_num);
        let prev = layers[..i].iter().rev().find_map(fc_num);
        let num = if before_first {
            next.or(prev)
        } else {
            prev.or(next)
        };
        let base = format!("drop{}", num.unwrap_or_default());
        let mut name = base.clone();
        let mut k = 2;
        while taken.contains(&name) {
            name = format!("{base}_{k}");
            k += 1;
        }
        taken.insert(name.clone());
        if let Layer::Dropout(d) = &mut layers[i] {
            d.name = name;
        }
    }
}

fn transpose(w: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut t = vec![0.0; w.len()];
    for i in 0..r {
        for j in 0..c {
            t[j * r + i] = w[i * c + j];
        }
    }
    t
}

fn broadcast_bias(
    dims: &[usize],
    v: Vec<f32>,
    outf: usize,
) -> std::result::Result<Vec<f32>, String> {
    let batchless = dims.len() <= 1 || dims[..dims.len() - 1].iter().all(|d| *d == 1);
    if batchless && v.len() == outf {
        Ok(v)
    } else if v.len() == 1 {
        Ok(vec![v[0]; outf])
    } else {
        Err(format!(
            "bias of shape {dims:?} cannot be broadcast to ({outf}) per image"
        ))
    }
}

fn input_shape(vi: &ValueInfoProto) -> Result<[usize; 3]> {
    let err = |m: String| Error::Onnx(format!("graph input {:?}: {m}", vi.name));
    let tt = vi
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| err("is not a tensor".into()))?;
    if tt.elem_type != data_type::FLOAT && tt.elem_type != data_type::FLOAT16 {
        return Err(err(format!(
            "element type {} is not supported (float32)",
            data_type::name(tt.elem_type)
        )));
    }
    let dims = &tt
        .shape
        .as_ref()
        .ok_or_else(|| err("has no shape".into()))?
        .dim;
    if dims.len() != 4 {
        return Err(err(format!(
            "must be 4-D (N, C, H, W), has {} dimensions",
            dims.len()
        )));
    }
    let mut chw = [0; 3];
    for (i, d) in dims[1..].iter().enumerate() {
        chw[i] = d
            .dim_value
            .filter(|v| *v > 0 && *v <= MAX_DIM)
            .map(|v| v as usize)
            .ok_or_else(|| {
                err(format!(
                    "dimension {} (C, H, W) must be a fixed size from 1 to {MAX_DIM}, got {:?}",
                    i + 1,
                    d.dim_param
                ))
            })?;
    }
    if chw.iter().product::<usize>() > MAX_CONST_ELEMS {
        return Err(err(format!("shape {chw:?} is too large")));
    }
    Ok(chw)
}

fn checked_len(dims: &[i64]) -> Option<usize> {
    dims.iter().try_fold(1usize, |acc, d| {
        usize::try_from(*d).ok().and_then(|d| acc.checked_mul(d))
    })
}

fn dims_usize(dims: &[i64]) -> std::result::Result<Vec<usize>, String> {
    if checked_len(dims).is_none() {
        return Err(format!("invalid dims {dims:?}"));
    }
    Ok(dims.iter().map(|d| *d as usize).collect())
}

/// Float values of a tensor: FLOAT (raw_data or float_data) or FLOAT16 (raw_data or
/// int32_data), converted to f32. Other types are an error naming the tensor.
fn tensor_f32(t: &TensorProto, name: &str) -> std::result::Result<Vec<f32>, String> {
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(format!(
            "tensor {name:?} is stored in an external data file; save the model as a single file \
             (onnx.save(model, path, save_as_external_data=False))"
        ));
    }
    let n = checked_len(&t.dims)
        .ok_or_else(|| format!("tensor {name:?}: invalid dims {:?}", t.dims))?;
    let v: Vec<f32> = match t.data_type {
        data_type::FLOAT if !t.raw_data.is_empty() => {
            if t.raw_data.len() != n * 4 {
                return Err(format!(
                    "tensor {name:?}: raw_data has {} bytes, dims {:?} need {}",
                    t.raw_data.len(),
                    t.dims,
                    n * 4
                ));
            }
            t.raw_data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        }
        data_type::FLOAT => t.float_data.clone(),
        data_type::FLOAT16 if !t.raw_data.is_empty() => {
            if t.raw_data.len() != n * 2 {
                return Err(format!(
                    "tensor {name:?}: raw_data has {} bytes, dims {:?} need {}",
                    t.raw_data.len(),
                    t.dims,
                    n * 2
                ));
            }
            t.raw_data
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()
        }
        data_type::FLOAT16 => t
            .int32_data
            .iter()
            .map(|b| half::f16::from_bits(*b as u16).to_f32())
            .collect(),
        other => {
            return Err(format!(
                "tensor {name:?} has element type {}; only FLOAT and FLOAT16 weights are supported",
                data_type::name(other)
            ))
        }
    };
    if v.len() != n {
        return Err(format!(
            "tensor {name:?}: {} values for dims {:?} ({n})",
            v.len(),
            t.dims
        ));
    }
    Ok(v)
}

fn tensor_i64(t: &TensorProto) -> std::result::Result<Vec<i64>, String> {
    let name = &t.name;
    let v: Vec<i64> = match t.data_type {
        data_type::INT64 if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(8) {
                return Err(format!(
                    "tensor {name:?}: raw_data is not a whole number of int64"
                ));
            }
            t.raw_data
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                .collect()
        }
        data_type::INT64 => t.int64_data.clone(),
        data_type::INT32 if !t.raw_data.is_empty() => {
            if !t.raw_data.len().is_multiple_of(4) {
                return Err(format!(
                    "tensor {name:?}: raw_data is not a whole number of int32"
                ));
            }
            t.raw_data
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect()
        }
        data_type::INT32 => t.int32_data.iter().map(|v| *v as i64).collect(),
        other => {
            return Err(format!(
                "tensor {name:?} has element type {}, expected INT64",
                data_type::name(other)
            ))
        }
    };
    match checked_len(&t.dims) {
        Some(n) if n == v.len() => Ok(v),
        _ => Err(format!(
            "tensor {name:?}: {} values for dims {:?}",
            v.len(),
            t.dims
        )),
    }
}

fn attr<'a>(node: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    node.attribute.iter().find(|a| a.name == name)
}

fn attr_int(node: &NodeProto, name: &str) -> Result<Option<i64>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::INT || a.r#type == 0 => Ok(Some(a.i)),
        Some(_) => Err(node_err(node, format!("attribute {name} must be an int"))),
    }
}

fn attr_float(node: &NodeProto, name: &str) -> Result<Option<f32>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::FLOAT || a.r#type == 0 => Ok(Some(a.f)),
        Some(_) => Err(node_err(node, format!("attribute {name} must be a float"))),
    }
}

fn attr_ints(node: &NodeProto, name: &str) -> Result<Option<Vec<i64>>> {
    match attr(node, name) {
        None => Ok(None),
        Some(a) if a.r#type == attr_type::INTS || a.r#type == 0 => Ok(Some(a.ints.clone())),
        Some(_) => Err(node_err(
            node,
            format!("attribute {name} must be a list of ints"),
        )),
    }
}

/// A 2-element positive int list attribute (kernel_shape, strides).
fn pair(node: &NodeProto, name: &str, default: [usize; 2]) -> Result<[usize; 2]> {
    match attr_ints(node, name)? {
        None => Ok(default),
        Some(v) => match v.as_slice() {
            [a, b] if (1..=MAX_DIM).contains(a) && (1..=MAX_DIM).contains(b) => {
                Ok([*a as usize, *b as usize])
            }
            _ => Err(node_err(
                node,
                format!("{name} {v:?} is not supported (2-D, positive)"),
            )),
        },
    }
}

fn pads(node: &NodeProto) -> Result<Pads> {
    match attr_ints(node, "pads")? {
        None => Ok(Pads::default()),
        Some(v) => match v.as_slice() {
            [t, l, b, r] if v.iter().all(|p| (0..=MAX_DIM).contains(p)) => Ok(Pads {
                top: *t as usize,
                left: *l as usize,
                bottom: *b as usize,
                right: *r as usize,
            }),
            _ => Err(node_err(
                node,
                format!("pads {v:?} is not supported ([top, left, bottom, right], non-negative)"),
            )),
        },
    }
}

fn check_ones(node: &NodeProto, name: &str) -> Result<()> {
    if let Some(v) = attr_ints(node, name)? {
        if v.iter().any(|d| *d != 1) {
            return Err(node_err(
                node,
                format!("{name} {v:?} is not supported (only 1)"),
            ));
        }
    }
    Ok(())
}

fn check_auto_pad(node: &NodeProto) -> Result<()> {
    if let Some(a) = attr(node, "auto_pad") {
        let s = String::from_utf8_lossy(&a.s);
        // VALID means no padding, which is what NOTSET with pads 0 does too.
        let explicit_pads = attr(node, "pads").is_some_and(|p| p.ints.iter().any(|v| *v != 0));
        match s.as_ref() {
            "" | "NOTSET" => {}
            "VALID" if !explicit_pads => {}
            other => {
                return Err(node_err(
                    node,
                    format!("auto_pad {other} is not supported (only NOTSET with explicit pads)"),
                ))
            }
        }
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// family recognition

/// Layers without Dropout (identity at inference).
fn compute_layers(layers: &[Layer]) -> Vec<&Layer> {
    layers
        .iter()
        .filter(|l| !matches!(l, Layer::Dropout(_)))
        .collect()
}

/// How strictly two layer lists are compared.
#[derive(Clone, Copy, PartialEq)]
enum Match {
    /// Same computation: equal up to Dropout, LRN's alpha convention and max-pool encodings
    /// that give the same windows.
    Equivalent,
    /// Same layers except max-pool padding and rounding (the family is the same).
    Structure,
}

fn layers_match(a: &[Layer], b: &[Layer], input: [usize; 3], how: Match) -> bool {
    let (a, b) = (compute_layers(a), compute_layers(b));
    if a.len() != b.len() {
        return false;
    }
    let mut shape = input.to_vec();
    for (x, y) in a.iter().zip(&b) {
        let same = match (x, y) {
            (Layer::Lrn(p), Layer::Lrn(q)) => {
                let (ea, eb) = (p.effective_alpha(), q.effective_alpha());
                p.name == q.name
                    && p.size == q.size
                    && p.beta == q.beta
                    && p.k == q.k
                    && (ea - eb).abs() <= 1e-6 * ea.abs().max(eb.abs())
            }
            (Layer::MaxPool(p), Layer::MaxPool(q)) => {
                p.name == q.name
                    && p.kernel == q.kernel
                    && p.stride == q.stride
                    && (how == Match::Structure || pools_equivalent(p, q, &shape))
            }
            _ => x == y,
        };
        if !same {
            return false;
        }
        match x.output_shape(&shape) {
            Ok(s) => shape = s,
            Err(_) => return false,
        }
    }
    true
}

/// Two max pools with equal kernel and stride compute the same thing on this input when their
/// leading pads are equal and they produce the same number of windows: the windows then start
/// at the same places, and padding (-inf) never wins a max (every window keeps at least one
/// real element under both the ceil rule and pads < kernel).
fn pools_equivalent(p: &PoolSpec, q: &PoolSpec, shape: &[usize]) -> bool {
    let [_, h, w] = match shape {
        [c, h, w] => [*c, *h, *w],
        _ => return false,
    };
    if p.pads.top != q.pads.top || p.pads.left != q.pads.left {
        return false;
    }
    let out = |s: &PoolSpec| -> Option<(usize, usize)> {
        let oh = shape::pool_out(
            h,
            s.kernel[0],
            s.stride[0],
            s.pads.top,
            s.pads.bottom,
            s.rounding,
        )
        .ok()?;
        let ow = shape::pool_out(
            w,
            s.kernel[1],
            s.stride[1],
            s.pads.left,
            s.pads.right,
            s.rounding,
        )
        .ok()?;
        Some((oh, ow))
    };
    out(p).is_some() && out(p) == out(q)
}

fn dropouts(layers: &[Layer]) -> Vec<&DropoutSpec> {
    layers
        .iter()
        .filter_map(|l| match l {
            Layer::Dropout(d) => Some(d),
            _ => None,
        })
        .collect()
}

fn recognise(input: [usize; 3], layers: Vec<Layer>, meta: Option<&str>) -> Result<Arch> {
    if let Some(json) = meta {
        let arch: Arch = serde_json::from_str(json).map_err(|e| {
            Error::Onnx(format!(
                "metadata {ARCH_KEY} is not a valid architecture: {e}"
            ))
        })?;
        if arch.input != input || !layers_match(&arch.layers, &layers, input, Match::Equivalent) {
            return Err(Error::Onnx(format!(
                "metadata {ARCH_KEY} describes a different network than the graph (input {:?} vs {input:?}); \
                 the file was edited after export",
                arch.input
            )));
        }
        return Ok(arch);
    }
    let builtins: Vec<Arch> = Arch::BUILTINS
        .iter()
        .filter_map(|n| Arch::builtin(n).ok())
        .collect();
    let candidates = || builtins.iter().filter(|b| b.input == input);
    if let Some(b) = candidates().find(|b| b.layers == layers) {
        return Ok(b.clone());
    }
    if let Some(b) = candidates().find(|b| {
        layers_match(&b.layers, &layers, input, Match::Equivalent)
            && (dropouts(&layers).is_empty() || dropouts(&layers) == dropouts(&b.layers))
    }) {
        return Ok(b.clone());
    }
    if let Some(b) =
        candidates().find(|b| layers_match(&b.layers, &layers, input, Match::Structure))
    {
        return Ok(Arch {
            layers,
            ..b.clone()
        });
    }
    let mut arch = Arch {
        family: Family::Custom,
        input,
        layers,
        preprocess: model::torchvision().preprocess,
        labels: Labels::Imagenet,
    };
    arch.preprocess.crop = input[1];
    arch.preprocess.resize = (input[1] * 256).div_ceil(224);
    let n = arch.num_classes()?;
    if n != 1000 {
        arch.labels = Labels::Custom((0..n).map(|i| format!("class {i}")).collect());
    }
    Ok(arch)
}

// ------------------------------------------------------------------------------------------
// export

fn a_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attr_type::INT,
        ..Default::default()
    }
}

fn a_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attr_type::FLOAT,
        ..Default::default()
    }
}

fn a_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|x| *x as i64).collect(),
        r#type: attr_type::INTS,
        ..Default::default()
    }
}

fn pads_attr(p: &Pads) -> AttributeProto {
    a_ints("pads", &[p.top, p.left, p.bottom, p.right])
}

fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        dim_param: Some("N".into()),
        ..Default::default()
    }];
    dim.extend(shape.iter().map(|d| Dimension {
        dim_value: Some(*d as i64),
        ..Default::default()
    }));
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn f32_initializer(name: &str, t: &Tensor) -> TensorProto {
    let mut raw = Vec::with_capacity(t.data.len() * 4);
    for v in &t.data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        name: name.into(),
        dims: t.shape.iter().map(|d| *d as i64).collect(),
        data_type: data_type::FLOAT,
        raw_data: raw,
        ..Default::default()
    }
}

/// Writes the model as ONNX (opset 13, IR 8): see the module docs.
pub fn export(model: &Model) -> Result<Vec<u8>> {
    let arch = &model.arch;
    let shapes = arch.shapes()?;
    let last = arch
        .layers
        .iter()
        .rposition(|l| !matches!(l, Layer::Dropout(_)));
    let mut nodes = Vec::new();
    let mut inits = Vec::new();
    let mut cur = "input".to_string();
    let mut in_shape = arch.input.to_vec();
    for (i, layer) in arch.layers.iter().enumerate() {
        let out_shape = &shapes[i];
        let name = layer.name().to_string();
        let out = if Some(i) == last {
            "output".to_string()
        } else {
            name.clone()
        };
        let node = |op: &str, inputs: Vec<String>, attribute: Vec<AttributeProto>| NodeProto {
            input: inputs,
            output: vec![out.clone()],
            name: name.clone(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        };
        let mut params = |inputs: &mut Vec<String>| -> Result<()> {
            for key in [format!("{name}.weight"), format!("{name}.bias")] {
                let t = model
                    .params
                    .get(&key)
                    .ok_or_else(|| Error::Weights(format!("missing tensor {key:?}")))?;
                inits.push(f32_initializer(&key, t));
                inputs.push(key);
            }
            Ok(())
        };
        let n = match layer {
            Layer::Dropout(_) => {
                in_shape = out_shape.clone();
                continue;
            }
            Layer::Conv(c) => {
                let mut inputs = vec![cur.clone()];
                params(&mut inputs)?;
                node(
                    "Conv",
                    inputs,
                    vec![
                        a_ints("dilations", &[1, 1]),
                        a_int("group", c.groups as i64),
                        a_ints("kernel_shape", &c.kernel),
                        pads_attr(&c.pads),
                        a_ints("strides", &c.stride),
                    ],
                )
            }
            Layer::Relu { .. } => node("Relu", vec![cur.clone()], vec![]),
            Layer::Lrn(l) => node(
                "LRN",
                vec![cur.clone()],
                vec![
                    // ONNX divides alpha by size.
                    a_float(
                        "alpha",
                        match l.alpha_mode {
                            LrnAlpha::OverN => l.alpha,
                            LrnAlpha::Raw => l.alpha * l.size as f32,
                        },
                    ),
                    a_float("beta", l.beta),
                    a_float("bias", l.k),
                    a_int("size", l.size as i64),
                ],
            ),
            Layer::MaxPool(p) => node(
                "MaxPool",
                vec![cur.clone()],
                vec![
                    a_int("ceil_mode", (p.rounding == Rounding::Ceil) as i64),
                    a_ints("kernel_shape", &p.kernel),
                    pads_attr(&p.pads),
                    a_ints("strides", &p.stride),
                ],
            ),
            Layer::AdaptiveAvgPool(p) => {
                let (h, w) = match in_shape.as_slice() {
                    [_, h, w] => (*h, *w),
                    s => {
                        return Err(Error::Onnx(format!(
                            "layer {name:?}: input shape {s:?} is not (C, H, W)"
                        )))
                    }
                };
                if h % p.out[0] != 0 || w % p.out[1] != 0 {
                    return Err(Error::Onnx(format!(
                        "layer {name:?}: adaptive average pooling from {h}x{w} to {}x{} has uneven windows and \
                         has no ONNX AveragePool equivalent; only sizes that divide can be exported",
                        p.out[0], p.out[1]
                    )));
                }
                let k = [h / p.out[0], w / p.out[1]];
                node(
                    "AveragePool",
                    vec![cur.clone()],
                    vec![
                        a_ints("kernel_shape", &k),
                        pads_attr(&Pads::default()),
                        a_ints("strides", &k),
                    ],
                )
            }
            Layer::Flatten { .. } => node("Flatten", vec![cur.clone()], vec![a_int("axis", 1)]),
            Layer::Linear(_) => {
                let mut inputs = vec![cur.clone()];
                params(&mut inputs)?;
                node(
                    "Gemm",
                    inputs,
                    vec![
                        a_float("alpha", 1.0),
                        a_float("beta", 1.0),
                        a_int("transA", 0),
                        a_int("transB", 1),
                    ],
                )
            }
            Layer::Softmax { .. } => node("Softmax", vec![cur.clone()], vec![a_int("axis", 1)]),
        };
        nodes.push(n);
        cur = out;
        in_shape = out_shape.clone();
    }
    if last.is_none() {
        nodes.push(NodeProto {
            input: vec![cur],
            output: vec!["output".into()],
            name: "identity".into(),
            op_type: "Identity".into(),
            ..Default::default()
        });
    }
    let out_shape = shapes
        .last()
        .cloned()
        .unwrap_or_else(|| arch.input.to_vec());
    let json = serde_json::to_string(arch)
        .map_err(|e| Error::Other(format!("serialising the architecture: {e}")))?;
    let m = ModelProto {
        ir_version: EXPORT_IR_VERSION,
        producer_name: "alexnet-web".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: nodes,
            name: format!("alexnet-{}", arch.family.as_str()),
            initializer: inits,
            input: vec![value_info("input", &arch.input)],
            output: vec![value_info("output", &out_shape)],
            ..Default::default()
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: EXPORT_OPSET,
        }],
        metadata_props: vec![StringStringEntryProto {
            key: ARCH_KEY.into(),
            value: json,
        }],
        ..Default::default()
    };
    Ok(m.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropout_naming_follows_builtins() {
        for arch in [model::bvlc(), model::torchvision(), model::mini()] {
            let mut layers = arch.layers.clone();
            for l in layers.iter_mut() {
                if let Layer::Dropout(d) = l {
                    d.name = "x".into();
                }
            }
            name_dropouts(&mut layers);
            assert_eq!(layers, arch.layers, "{:?}", arch.family);
        }
    }

    #[test]
    fn pool_encodings() {
        // The zoo's pool5: floor with pads [0,0,1,1] on 12x12 == ceil without pads.
        let p = |pads: Pads, rounding| PoolSpec {
            name: "p".into(),
            kernel: [3, 3],
            stride: [2, 2],
            pads,
            rounding,
        };
        let zoo = p(
            Pads {
                top: 0,
                left: 0,
                bottom: 1,
                right: 1,
            },
            Rounding::Floor,
        );
        let ceil = p(Pads::default(), Rounding::Ceil);
        assert!(pools_equivalent(&zoo, &ceil, &[256, 12, 12]));
        assert!(pools_equivalent(&zoo, &ceil, &[256, 13, 13]));
        // 54 -> 26 (floor) vs 27 (ceil): not the same.
        let floor = p(Pads::default(), Rounding::Floor);
        assert!(!pools_equivalent(&floor, &ceil, &[96, 54, 54]));
    }

    #[test]
    fn transpose_is_right() {
        assert_eq!(
            transpose(&[1., 2., 3., 4., 5., 6.], 2, 3),
            vec![1., 4., 2., 5., 3., 6.]
        );
    }
}

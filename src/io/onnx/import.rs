//! The graph walk of the importer: initializers and constants, then one compute node at a
//! time into layers and parameters (the layer builders are in `layers`).

use super::decode::*;
use super::family::recognise;
use super::proto::{data_type, GraphProto, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use super::*;
use crate::error::{Error, Result};
use crate::model::{AvgPoolSpec, Layer};
use crate::model::{Model, Params};
use prost::Message;
use std::collections::{HashMap, HashSet};

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
pub(super) enum Last {
    None,
    Conv(usize),
    Fc(usize),
}

impl Last {
    pub(super) fn number(self) -> String {
        match self {
            Last::None => String::new(),
            Last::Conv(k) | Last::Fc(k) => k.to_string(),
        }
    }
}

pub(super) struct Importer {
    pub(super) nodes: Vec<NodeProto>,
    /// Initializers and constant-node outputs, by name. Weights are taken out when used.
    pub(super) consts: HashMap<String, TensorProto>,
    pub(super) graph_outputs: Vec<String>,
    pub(super) input_name: String,
    pub(super) input: [usize; 3],
    pub(super) cur: String,
    pub(super) shape: Vec<usize>,
    pub(super) layers: Vec<Layer>,
    pub(super) params: Params,
    pub(super) nconv: usize,
    pub(super) nfc: usize,
    pub(super) last: Last,
    /// Index in `layers` of a Linear made from MatMul whose bias may follow as an Add.
    pub(super) matmul_fc: Option<usize>,
    pub(super) names: HashSet<String>,
}

pub(super) fn node_label(n: &NodeProto) -> String {
    if !n.name.is_empty() {
        n.name.clone()
    } else if let Some(o) = n.output.first() {
        o.clone()
    } else {
        "<unnamed>".into()
    }
}

pub(super) fn node_err(n: &NodeProto, msg: impl Into<String>) -> Error {
    Error::OnnxNode {
        node: node_label(n),
        op: n.op_type.clone(),
        msg: msg.into(),
    }
}

impl Importer {
    pub(super) fn new(mut graph: GraphProto) -> Result<Importer> {
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

    pub(super) fn run(mut self) -> Result<([usize; 3], Vec<Layer>, Params)> {
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

    pub(super) fn constant(&mut self, node: &NodeProto) -> Result<()> {
        let out = node
            .output
            .first()
            .ok_or_else(|| node_err(node, "has no output"))?;
        let a = node
            .attribute
            .first()
            .ok_or_else(|| node_err(node, "has no value attribute"))?;
        let floats = |dims, float_data| TensorProto {
            data_type: data_type::FLOAT,
            dims,
            float_data,
            ..Default::default()
        };
        let ints = |dims, int64_data| TensorProto {
            data_type: data_type::INT64,
            dims,
            int64_data,
            ..Default::default()
        };
        let mut t = match a.name.as_str() {
            "value" => {
                a.t.clone()
                    .ok_or_else(|| node_err(node, "value attribute holds no tensor"))?
            }
            "value_float" => floats(vec![], vec![a.f]),
            "value_floats" => floats(vec![a.floats.len() as i64], a.floats.clone()),
            "value_int" => ints(vec![], vec![a.i]),
            "value_ints" => ints(vec![a.ints.len() as i64], a.ints.clone()),
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

    pub(super) fn constant_of_shape(&mut self, node: &NodeProto) -> Result<()> {
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
    pub(super) fn ints_input(&self, node: &NodeProto, i: usize) -> Result<Vec<i64>> {
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
    pub(super) fn float_input(
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

    pub(super) fn unique(&mut self, base: String) -> String {
        let mut name = base.clone();
        let mut i = 2;
        while self.names.contains(&name) {
            name = format!("{base}_{i}");
            i += 1;
        }
        self.names.insert(name.clone());
        name
    }

    pub(super) fn push(&mut self, node: &NodeProto, layer: Layer) -> Result<()> {
        self.shape = layer
            .output_shape(&self.shape)
            .map_err(|e| node_err(node, e.to_string()))?;
        self.layers.push(layer);
        Ok(())
    }

    pub(super) fn chw(&self, node: &NodeProto) -> Result<[usize; 3]> {
        match self.shape.as_slice() {
            [c, h, w] => Ok([*c, *h, *w]),
            s => Err(node_err(
                node,
                format!("needs an (N, C, H, W) input, got per-image shape {s:?}"),
            )),
        }
    }

    pub(super) fn compute(&mut self, node: &NodeProto) -> Result<()> {
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
}

/// Names dropouts like the builtins: torchvision layout (a dropout before the first fc) ->
/// `drop{m}` for the fc that follows; Caffe layout -> `drop{m}` for the fc it follows.
pub(super) fn name_dropouts(layers: &mut [Layer]) {
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

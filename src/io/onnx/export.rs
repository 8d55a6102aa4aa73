//! Export: opset 13, float32 initializers, the architecture in the metadata.

use super::proto::{
    attr_type, data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto,
    OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto,
    TypeProtoTensor, ValueInfoProto,
};
use super::*;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::model::{Layer, LrnAlpha, Pads};
use crate::shape::Rounding;
use crate::tensor::Tensor;
use prost::Message;

pub(super) fn a_int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i,
        r#type: attr_type::INT,
        ..Default::default()
    }
}

pub(super) fn a_float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        f,
        r#type: attr_type::FLOAT,
        ..Default::default()
    }
}

pub(super) fn a_ints(name: &str, v: &[usize]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.iter().map(|x| *x as i64).collect(),
        r#type: attr_type::INTS,
        ..Default::default()
    }
}

pub(super) fn pads_attr(p: &Pads) -> AttributeProto {
    a_ints("pads", &[p.top, p.left, p.bottom, p.right])
}

pub(super) fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
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

pub(super) fn f32_initializer(name: &str, t: &Tensor) -> TensorProto {
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
        // The layer's input, weight and bias (the last two added to the initializers).
        let mut with_params = || -> Result<Vec<String>> {
            let mut inputs = vec![cur.clone()];
            for key in [format!("{name}.weight"), format!("{name}.bias")] {
                let t = model
                    .params
                    .get(&key)
                    .ok_or_else(|| Error::Weights(format!("missing tensor {key:?}")))?;
                inits.push(f32_initializer(&key, t));
                inputs.push(key);
            }
            Ok(inputs)
        };
        let n = match layer {
            Layer::Dropout(_) => {
                in_shape = out_shape.clone();
                continue;
            }
            Layer::Conv(c) => node(
                "Conv",
                with_params()?,
                vec![
                    a_ints("dilations", &[1, 1]),
                    a_int("group", c.groups as i64),
                    a_ints("kernel_shape", &c.kernel),
                    pads_attr(&c.pads),
                    a_ints("strides", &c.stride),
                ],
            ),
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
            Layer::Linear(_) => node(
                "Gemm",
                with_params()?,
                vec![
                    a_float("alpha", 1.0),
                    a_float("beta", 1.0),
                    a_int("transA", 0),
                    a_int("transB", 1),
                ],
            ),
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
        .map_err(|e| Error::Internal(format!("serialising the architecture: {e}")))?;
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

//! Convolution and transposed convolution (grouped or not, with their bias) and MatMul
//! (constant weights transposed into `transpose_b` form).

use burn_compress_graph::ConvAttrs;

use super::{bool_str, Lowerer};
use crate::error::Result;
use crate::ir::{attr, join, ElementType, Port, PortRef};
use crate::weights::Layout;

impl Lowerer<'_> {
    pub(super) fn conv(&mut self, i: usize, a: &ConvAttrs) -> Result<()> {
        self.convolution(i, a, ["Convolution", "GroupConvolution"], vec![])
    }

    /// Burn's transposed convolution: weight `[in, out/groups, k..]` is OpenVINO's
    /// `[C_IN, C_OUT, k..]` as it is, or `[G, C_IN/G, C_OUT/G, k..]` split along axis 0.
    pub(super) fn conv_transpose(
        &mut self,
        i: usize,
        a: &ConvAttrs,
        output_padding: &[usize],
    ) -> Result<()> {
        let kinds = ["ConvolutionBackpropData", "GroupConvolutionBackpropData"];
        let extra = vec![attr("output_padding", join(output_padding.iter()))];
        self.convolution(i, a, kinds, extra)
    }

    /// DeformableConvolution-8 (zero padding around the image for the bilinear samples, as
    /// Burn and torchvision sample).
    pub(super) fn deform_conv(
        &mut self,
        i: usize,
        a: &ConvAttrs,
        offset_groups: usize,
    ) -> Result<()> {
        let p = self.input_ports(i)?;
        let mut attrs = window_attrs(a);
        attrs.extend([
            attr("group", a.groups),
            attr("deformable_group", offset_groups),
            attr("bilinear_interpolation_pad", "true"),
        ]);
        self.emit(i, "DeformableConvolution", "opset8", attrs, &p);
        Ok(())
    }

    /// Node `i` as layer `kinds[0]`, or `kinds[1]` with the weight split into groups along
    /// axis 0, followed by its bias.
    fn convolution(
        &mut self,
        i: usize,
        a: &ConvAttrs,
        kinds: [&str; 2],
        extra_attrs: Vec<(String, String)>,
    ) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let grouped = a.groups > 1;
        let layout = if grouped {
            Layout::Grouped(a.groups)
        } else {
            Layout::AsIs
        };
        let w = self.weight_for(node.inputs[1], layout, i)?;
        let mut attrs = window_attrs(a);
        attrs.extend(extra_attrs);
        let kind = kinds[usize::from(grouped)];
        let conv = self.emit(i, kind, "opset1", attrs, &[x, w]);
        self.add_bias(i, conv)
    }

    /// Adds node `i`'s bias (its input 2, if any, over axis 1) to `conv`, the node's output.
    fn add_bias(&mut self, i: usize, conv: PortRef) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let g = self.graph;
        let out_shape = g.value(node.output).shape.clone();
        let numpy = || vec![attr("auto_broadcast", "numpy")];
        if let Some(&b) = node.inputs.get(2) {
            let mut shape = vec![1usize; out_shape.len()];
            shape[1] = out_shape[1];
            let bias = match g.constant(b) {
                Some(c) => {
                    let name = g.value(b).name.clone();
                    self.ir.const_f32(name, &shape, &c.data)
                }
                None => {
                    let bp = self.port_of(b)?;
                    let target: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
                    let tc = self
                        .ir
                        .const_i64(format!("{}/bias_shape", self.node_names[i]), &target);
                    self.ir.add_layer(
                        "Reshape",
                        "opset1",
                        format!("{}/bias_reshape", self.node_names[i]),
                        vec![attr("special_zero", "false")],
                        &[bp, tc],
                        vec![Port {
                            element: ElementType::F32,
                            dims: target,
                        }],
                    )[0]
                }
            };
            let port = self.out_port(node.output);
            let name = format!("{}/bias", self.node_names[i]);
            let p = self
                .ir
                .add_layer("Add", "opset1", name, numpy(), &[conv, bias], vec![port])[0];
            self.ports.insert(node.output, p);
        }
        Ok(())
    }

    pub(super) fn matmul(&mut self, i: usize) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let g = self.graph;
        let a = self.port_of(node.inputs[0])?;
        let rhs = node.inputs[1];
        let shape = &g.value(rhs).shape;
        let matrix = shape.len() >= 2 && shape[..shape.len() - 2].iter().all(|&d| d == 1);
        let (b, transpose_b) = if self.weight_like(rhs) && matrix {
            (self.weight_for(rhs, Layout::Transposed, i)?, true)
        } else {
            (self.port_of(rhs)?, false)
        };
        self.emit(
            i,
            "MatMul",
            "opset1",
            vec![
                attr("transpose_a", "false"),
                attr("transpose_b", bool_str(transpose_b)),
            ],
            &[a, b],
        );
        Ok(())
    }
}

/// Strides, dilations and explicit padding of a convolution layer.
fn window_attrs(a: &ConvAttrs) -> Vec<(String, String)> {
    vec![
        attr("strides", join(a.stride.iter())),
        attr("dilations", join(a.dilation.iter())),
        attr("pads_begin", join(a.pads_begin.iter())),
        attr("pads_end", join(a.pads_end.iter())),
        attr("auto_pad", "explicit"),
    ]
}

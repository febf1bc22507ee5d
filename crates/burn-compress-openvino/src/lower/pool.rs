//! Pooling and reductions: MaxPool (opset8 when dilated), AvgPool, AdaptiveAvgPool, ReduceMean
//! and ReduceSum (dimensions kept).

use burn_compress_graph::PoolAttrs;

use super::{bool_str, Lowerer};
use crate::error::Result;
use crate::ir::{attr, join, ElementType, Port};

impl Lowerer<'_> {
    pub(super) fn max_pool(&mut self, i: usize, pool: &PoolAttrs) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let p = self.input_ports(i)?;
        let mut attrs = vec![
            attr("strides", join(pool.stride.iter())),
            attr("pads_begin", join(pool.padding.iter())),
            attr("pads_end", join(pool.padding.iter())),
            attr("kernel", join(pool.kernel.iter())),
            attr(
                "rounding_type",
                if pool.ceil_mode { "ceil" } else { "floor" },
            ),
            attr("auto_pad", "explicit"),
        ];
        if pool.dilation.iter().all(|&d| d == 1) {
            self.emit(i, "MaxPool", "opset1", attrs, &p);
        } else {
            attrs.push(attr("dilations", join(pool.dilation.iter())));
            attrs.push(attr("index_element_type", "i64"));
            attrs.push(attr("axis", 0));
            let values = self.out_port(node.output);
            let indices = Port {
                element: ElementType::I64,
                dims: values.dims.clone(),
            };
            let name = self.node_names[i].clone();
            let outs =
                self.ir
                    .add_layer("MaxPool", "opset8", name, attrs, &p, vec![values, indices]);
            self.ports.insert(node.output, outs[0]);
        }
        Ok(())
    }

    pub(super) fn avg_pool(
        &mut self,
        i: usize,
        pool: &PoolAttrs,
        count_include_pad: bool,
    ) -> Result<()> {
        let p = self.input_ports(i)?;
        let attrs = vec![
            attr("strides", join(pool.stride.iter())),
            attr("pads_begin", join(pool.padding.iter())),
            attr("pads_end", join(pool.padding.iter())),
            attr("kernel", join(pool.kernel.iter())),
            attr("exclude-pad", bool_str(!count_include_pad)),
            attr(
                "rounding_type",
                if pool.ceil_mode { "ceil" } else { "floor" },
            ),
            attr("auto_pad", "explicit"),
        ];
        self.emit(i, "AvgPool", "opset1", attrs, &p);
        Ok(())
    }

    pub(super) fn adaptive_avg_pool(&mut self, i: usize, output_size: &[usize]) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let sizes: Vec<i64> = output_size.iter().map(|&d| d as i64).collect();
        let s = self
            .ir
            .const_i64(format!("{}/output_shape", self.node_names[i]), &sizes);
        self.emit(i, "AdaptiveAvgPool", "opset8", vec![], &[x, s]);
        Ok(())
    }

    pub(super) fn reduce(&mut self, i: usize, kind: &str, axes: &[usize]) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let a: Vec<i64> = axes.iter().map(|&d| d as i64).collect();
        let c = self
            .ir
            .const_i64(format!("{}/axes", self.node_names[i]), &a);
        self.emit(i, kind, "opset1", vec![attr("keep_dims", "true")], &[x, c]);
        Ok(())
    }
}

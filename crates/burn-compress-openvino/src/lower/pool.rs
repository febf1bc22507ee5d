//! Pooling and reductions: MaxPool (opset8 when dilated), AvgPool, AdaptiveAvgPool,
//! ReduceMean / ReduceSum / ReduceProd / ReduceMax / ReduceMin (dimensions kept), arg max / min
//! (TopK) and running sums (CumSum).

use burn_compress_graph::{PoolAttrs, Reduction};

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

    pub(super) fn reduce(&mut self, i: usize, how: Reduction, axes: &[usize]) -> Result<()> {
        let kind = match how {
            Reduction::Mean => "ReduceMean",
            Reduction::Sum => "ReduceSum",
            Reduction::Prod => "ReduceProd",
            Reduction::Max => "ReduceMax",
            Reduction::Min => "ReduceMin",
            Reduction::All => "ReduceLogicalAnd",
            Reduction::Any => "ReduceLogicalOr",
        };
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let a: Vec<i64> = axes.iter().map(|&d| d as i64).collect();
        let c = self
            .ir
            .const_i64(format!("{}/axes", self.node_names[i]), &a);
        self.emit(i, kind, "opset1", vec![attr("keep_dims", "true")], &[x, c]);
        Ok(())
    }

    /// TopK-11 with `k = 1`, values sorted and ties in input order (the first extreme, as Burn
    /// returns it): its second output, the i64 index.
    pub(super) fn arg_extreme(&mut self, i: usize, axis: usize, largest: bool) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let x = self.port_of(node.inputs[0])?;
        let name = self.node_names[i].clone();
        let k = self.ir.const_i64_scalar(format!("{name}/k"), 1);
        let index = self.out_port(node.output);
        let values = Port {
            element: self.out_port(node.inputs[0]).element,
            dims: index.dims.clone(),
        };
        let attrs = vec![
            attr("axis", axis),
            attr("mode", if largest { "max" } else { "min" }),
            attr("sort", "value"),
            attr("index_element_type", "i64"),
            attr("stable", "true"),
        ];
        let ports = self
            .ir
            .add_layer("TopK", "opset11", name, attrs, &[x, k], vec![values, index]);
        self.ports.insert(node.output, ports[1]);
        Ok(())
    }

    /// CumSum-3 along `axis`, inclusive, forward.
    pub(super) fn cum_sum(&mut self, i: usize, axis: usize) -> Result<()> {
        let x = self.port_of(self.graph.nodes[i].inputs[0])?;
        let axis = self
            .ir
            .const_i64_scalar(format!("{}/axis", self.node_names[i]), axis as i64);
        let attrs = vec![attr("exclusive", "false"), attr("reverse", "false")];
        self.emit(i, "CumSum", "opset3", attrs, &[x, axis]);
        Ok(())
    }
}

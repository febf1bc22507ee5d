//! Normalisation: BatchNorm (inference form) and LayerNorm (MVN, scale, shift).

use super::Lowerer;
use crate::error::Result;
use crate::ir::attr;

impl Lowerer<'_> {
    pub(super) fn batch_norm(&mut self, i: usize, epsilon: f64) -> Result<()> {
        let p = self.input_ports(i)?;
        self.emit(
            i,
            "BatchNormInference",
            "opset5",
            vec![attr("epsilon", epsilon)],
            &p,
        );
        Ok(())
    }

    pub(super) fn layer_norm(&mut self, i: usize, epsilon: f64) -> Result<()> {
        let node = self.graph.nodes[i].clone();
        let numpy = || vec![attr("auto_broadcast", "numpy")];
        let p = self.input_ports(i)?;
        let axes = self
            .ir
            .const_i64(format!("{}/axes", self.node_names[i]), &[-1]);
        let port = self.out_port(node.output);
        let base = self.node_names[i].clone();
        let mut x = self.ir.add_layer(
            "MVN",
            "opset6",
            format!("{base}/mvn"),
            vec![
                attr("eps", epsilon),
                attr("normalize_variance", "true"),
                attr("eps_mode", "INSIDE_SQRT"),
            ],
            &[p[0], axes],
            vec![port.clone()],
        )[0];
        x = self.ir.add_layer(
            "Multiply",
            "opset1",
            format!("{base}/gamma"),
            numpy(),
            &[x, p[1]],
            vec![port.clone()],
        )[0];
        if let Some(&beta) = p.get(2) {
            x = self.ir.add_layer(
                "Add",
                "opset1",
                format!("{base}/beta"),
                numpy(),
                &[x, beta],
                vec![port],
            )[0];
        }
        self.ports.insert(node.output, x);
        Ok(())
    }
}

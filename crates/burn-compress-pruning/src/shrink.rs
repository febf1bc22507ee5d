//! Shrinking: every parameter a [`ShrinkPlan`] names is sliced to its kept indices, with the
//! state of its weight transform (mask, per-channel quantizer ranges) alongside; BatchNorm
//! statistics are sliced like any other follower. The module keeps its type.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Int, Tensor, TensorData};
use burn_compress_core::site::weight_sites;
use burn_compress_core::WeightTransform;

use crate::error::{PruningError, Result};
use crate::plan::{AxisSlice, ShrinkPlan};

/// Applies `plan` to `model`: the same type with smaller tensors. Parameters and the
/// dimensions the plan was made for must match; the error names the first that does not.
///
/// A plan that prunes through a depthwise convolution changes its `groups`, a field Burn keeps
/// outside the parameters: such a plan is refused here (naming the layer) and applied by
/// [`apply_plan_regrouped`].
pub fn apply_plan<M: Module>(model: M, plan: &ShrinkPlan) -> Result<M> {
    if let Some((layer, change)) = plan.regroup.iter().next() {
        return Err(PruningError::Regroup {
            layer: layer.clone(),
            from: change.from,
            to: change.to,
        });
    }
    shrink_tensors(model, plan)
}

/// [`apply_plan`] for plans that change depthwise convolutions' `groups`: `set_groups(model,
/// layer, groups)` sets the `groups` field of the convolution at module path `layer` and returns
/// whether it knew the layer, e.g.
/// `|m, layer, g| match layer { "dw" => { m.dw.groups = g; true } _ => false }`.
pub fn apply_plan_regrouped<M: Module>(
    mut model: M,
    plan: &ShrinkPlan,
    mut set_groups: impl FnMut(&mut M, &str, usize) -> bool,
) -> Result<M> {
    for (layer, change) in &plan.regroup {
        if !set_groups(&mut model, layer, change.to) {
            return Err(PruningError::Regroup {
                layer: layer.clone(),
                from: change.from,
                to: change.to,
            });
        }
    }
    shrink_tensors(model, plan)
}

fn shrink_tensors<M: Module>(model: M, plan: &ShrinkPlan) -> Result<M> {
    let output_axes: HashMap<String, usize> = weight_sites(&model)
        .into_iter()
        .map(|site| (site.param, site.kind.output_axis()))
        .collect();
    let mut shrinker = Shrinker {
        plan,
        output_axes,
        path: Vec::new(),
        transform_at: None,
        error: None,
    };
    let model = model.map(&mut shrinker);
    match shrinker.error {
        Some(error) => Err(error),
        None => Ok(model),
    }
}

struct Shrinker<'p> {
    plan: &'p ShrinkPlan,
    /// Output-channel axis of every Conv/Linear weight.
    output_axes: HashMap<String, usize>,
    path: Vec<String>,
    /// Depth of the weight transform being mapped, while inside one.
    transform_at: Option<usize>,
    error: Option<PruningError>,
}

/// `tensor` with only `kept` indices along `axis`.
fn select<const D: usize>(tensor: Tensor<D>, axis: usize, kept: &[usize]) -> Tensor<D> {
    let device = tensor.device();
    let indices: Vec<i64> = kept.iter().map(|&i| i as i64).collect();
    let n = indices.len();
    let indices = Tensor::<1, Int>::from_data(TensorData::new(indices, [n]), &device);
    tensor.select(axis, indices)
}

impl Shrinker<'_> {
    fn fail(&mut self, param: &str, reason: String) {
        self.error.get_or_insert(PruningError::Shrink {
            param: param.to_string(),
            reason,
        });
    }

    /// Slices a base parameter of rank `D`.
    fn base<const D: usize>(&mut self, path: &str, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(slices) = self.plan.params.get(path) else {
            return param;
        };
        let dims = param.dims().to_vec();
        if self.plan.dims.get(path) != Some(&dims) {
            self.fail(
                path,
                format!(
                    "has dimensions {dims:?}, the plan was made for {:?}",
                    self.plan.dims.get(path)
                ),
            );
            return param;
        }
        let slices = slices.clone();
        param.map(|mut tensor| {
            for slice in &slices {
                tensor = select(tensor, slice.axis, &slice.kept);
            }
            tensor
        })
    }

    /// Slices the state of `weight`'s transform: flattened masks like the weight, per-channel
    /// quantizer ranges along the weight's output axis.
    fn state<const D: usize>(
        &mut self,
        weight: &str,
        inner: &str,
        param: Param<Tensor<D>>,
    ) -> Param<Tensor<D>> {
        let Some(slices) = self.plan.params.get(weight).cloned() else {
            return param;
        };
        let dims = self.plan.dims[weight].clone();
        let length = param.dims().iter().product::<usize>();
        match inner {
            "mask.keep" | "mask.logits" if length == dims.iter().product::<usize>() => {
                param.map(|flat| {
                    let mut t = flat.reshape::<5, _>(padded(&dims));
                    let offset = 5 - dims.len();
                    for slice in &slices {
                        t = select(t, slice.axis + offset, &slice.kept);
                    }
                    let mut shrunk = [1usize; D];
                    shrunk[D - 1] = t.shape().num_elements();
                    t.reshape(shrunk)
                })
            }
            "quantizer.scale" | "quantizer.input_low" => {
                let out_axis = self.output_axes.get(weight).copied().unwrap_or(0);
                let along_output: Option<&AxisSlice> = slices.iter().find(|s| s.axis == out_axis);
                match along_output {
                    None => param,
                    Some(_) if length == 1 => param,
                    Some(slice) if length == slice.original => {
                        let kept = slice.kept.clone();
                        param.map(|t| select(t, 0, &kept))
                    }
                    Some(_) => {
                        self.fail(
                            weight,
                            format!(
                                "its quantizer holds {length} ranges, neither one nor one per \
                                 output channel"
                            ),
                        );
                        param
                    }
                }
            }
            _ => {
                self.fail(
                    weight,
                    format!("its transform state `{inner}` has {length} values"),
                );
                param
            }
        }
    }
}

/// `dims` with leading unit axes up to rank 5 (Conv3d weights).
fn padded(dims: &[usize]) -> [usize; 5] {
    let mut out = [1usize; 5];
    out[5 - dims.len()..].copy_from_slice(dims);
    out
}

impl ModuleMapper for Shrinker<'_> {
    fn enter_module(&mut self, name: &str, container_type: &str) {
        if container_type == "Reparameterization"
            && name == WeightTransform::NAME
            && self.transform_at.is_none()
        {
            self.transform_at = Some(self.path.len());
        }
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
        if self.transform_at == Some(self.path.len()) {
            self.transform_at = None;
        }
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        match self.transform_at {
            Some(at) => {
                let weight = self.path[..at].join(".");
                let inner = self.path[at + 1..].join(".");
                self.state(&weight, &inner, param)
            }
            None => {
                let path = self.path.join(".");
                self.base(&path, param)
            }
        }
    }
}

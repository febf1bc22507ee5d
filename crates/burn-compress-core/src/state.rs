//! Reading and writing the state of weight transforms by weight path: the live (autodiff)
//! tensors a method's loss needs, and new mask values a controller writes.

use std::collections::HashMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::Tensor;

use crate::transform::WeightTransform;

/// The tensors of one weight and its mask, flattened, as the model holds them (on an autodiff
/// device they are the leaves the optimizer updates).
#[derive(Clone, Debug)]
pub struct WeightTensors {
    /// The base weight (before its transform).
    pub weight: Tensor<1>,
    /// The mask's keep values, if a mask is attached.
    pub keep: Option<Tensor<1>>,
    /// The mask's logits, if the mask is learned.
    pub logits: Option<Tensor<1>>,
}

/// Tracks module paths and whether the traversal is inside a weight's [`WeightTransform`].
#[derive(Default)]
struct PathTracker {
    path: Vec<String>,
    /// Depth of the transform's container while inside one.
    transform_at: Option<usize>,
}

impl PathTracker {
    fn enter(&mut self, name: &str, container_type: &str) {
        if container_type == "Reparameterization"
            && name == WeightTransform::NAME
            && self.transform_at.is_none()
        {
            self.transform_at = Some(self.path.len());
        }
        self.path.push(name.to_string());
    }

    fn exit(&mut self) {
        self.path.pop();
        if self.transform_at == Some(self.path.len()) {
            self.transform_at = None;
        }
    }

    /// `(weight path, inner path)` inside a transform, e.g. `("conv.weight", "mask.keep")`.
    fn inside(&self) -> Option<(String, String)> {
        let at = self.transform_at?;
        Some((self.path[..at].join("."), self.path[at + 1..].join(".")))
    }
}

/// The tensors of every weight in `weights` (parameter paths), flattened.
pub fn weight_tensors<M: Module>(model: &M, weights: &[String]) -> HashMap<String, WeightTensors> {
    struct Reader<'a> {
        tracker: PathTracker,
        weights: &'a [String],
        found: HashMap<String, WeightTensors>,
    }
    impl ModuleVisitor for Reader<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.tracker.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.tracker.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let flat = |p: &Param<Tensor<D>>| {
                let value = p.val();
                let n = value.shape().num_elements();
                value.reshape([n])
            };
            match self.tracker.inside() {
                Some((weight, inner)) => {
                    if let Some(entry) = self.found.get_mut(&weight) {
                        match inner.as_str() {
                            "mask.keep" => entry.keep = Some(flat(param)),
                            "mask.logits" => entry.logits = Some(flat(param)),
                            _ => {}
                        }
                    }
                }
                None => {
                    let path = self.tracker.path.join(".");
                    if self.weights.contains(&path) {
                        self.found.insert(
                            path,
                            WeightTensors {
                                weight: flat(param),
                                keep: None,
                                logits: None,
                            },
                        );
                    }
                }
            }
        }
    }
    let mut reader = Reader {
        tracker: PathTracker::default(),
        weights,
        found: HashMap::new(),
    };
    model.visit(&mut reader);
    reader.found
}

/// Replaces the mask `keep` values of the weights in `masks` (parameter path -> flattened 0/1
/// values, on the mask's device) and, for the weights in `freeze_logits`, stops training their
/// mask logits. Weights without a mask are left alone.
pub fn write_masks<M: Module>(
    model: M,
    masks: &HashMap<String, Tensor<1>>,
    freeze_logits: &[String],
) -> M {
    struct Writer<'a> {
        tracker: PathTracker,
        masks: &'a HashMap<String, Tensor<1>>,
        freeze_logits: &'a [String],
    }
    impl ModuleMapper for Writer<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.tracker.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.tracker.exit();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let Some((weight, inner)) = self.tracker.inside() else {
                return param;
            };
            match inner.as_str() {
                "mask.keep" => match self.masks.get(&weight) {
                    Some(mask) => param.map(|old| {
                        let dims = old.dims();
                        mask.clone().to_device(&old.device()).reshape(dims)
                    }),
                    None => param,
                },
                "mask.logits" if self.freeze_logits.contains(&weight) => {
                    param.set_require_grad(false)
                }
                _ => param,
            }
        }
    }
    model.map(&mut Writer {
        tracker: PathTracker::default(),
        masks,
        freeze_logits,
    })
}

/// Parameter ids of every learned mask's logits (RB sparsity), e.g. to train them at their own
/// learning rate.
pub fn mask_logit_ids<M: Module>(model: &M) -> Vec<burn::module::ParamId> {
    struct Ids {
        tracker: PathTracker,
        ids: Vec<burn::module::ParamId>,
    }
    impl ModuleVisitor for Ids {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            self.tracker.enter(name, container_type);
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.tracker.exit();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if matches!(self.tracker.inside(), Some((_, inner)) if inner == "mask.logits") {
                self.ids.push(param.id);
            }
        }
    }
    let mut ids = Ids {
        tracker: PathTracker::default(),
        ids: Vec::new(),
    };
    model.visit(&mut ids);
    ids.ids
}

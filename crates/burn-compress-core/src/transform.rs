//! [`WeightTransform`]: the one reparameterization a compressed weight carries, `w' =
//! FQ(mask ⊙ w)`, and the attaching of its stages.
//!
//! Burn keeps one reparameterization per parameter and, when a module is mapped, re-attaches the
//! one a parameter had, whatever a [`Reparameterizer`] returned for it. So every method (sparsity,
//! quantization, pruning) adds its stage to the same [`WeightTransform`] through [`attach`]: a
//! parameter without one gets a new transform; a parameter that has one gets the new stage
//! inserted while Burn maps the existing transform ([`Stage`]'s `map` takes it from a hand-off
//! slot that [`attach`] fills for exactly that parameter). A parameter carrying any other
//! reparameterization is refused, by name, before anything changes.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;

use burn::module::{
    Content, Module, ModuleDisplay, ModuleDisplayDefault, ModuleMapper, ModuleVisitor, Param,
    Reparameterization, Reparameterizer,
};
use burn::tensor::{Device, Tensor};

use crate::error::{CoreError, Result};
use crate::mask::WeightMask;
use crate::quantizer::FakeQuantizer;
use crate::site::{weight_sites, WeightSite};

/// An optional stage of a [`WeightTransform`]. Behaves as `Option<T>`, except that a stage can
/// be inserted while the module is mapped by [`attach`].
#[derive(Clone, Debug)]
pub struct Stage<T>(Option<T>);

impl<T> Stage<T> {
    /// The stage, if present.
    pub fn get(&self) -> Option<&T> {
        self.0.as_ref()
    }

    /// Whether the stage is present.
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

impl<T> From<Option<T>> for Stage<T> {
    fn from(stage: Option<T>) -> Self {
        Stage(stage)
    }
}

/// What [`attach`] or [`remove_masks`] hands to the [`Stage`]s of the transform about to be
/// mapped (one parameter's worth).
enum Handoff {
    /// A stage to insert.
    Insert(Box<dyn Any>),
    /// The stage of this type to drop.
    Remove(std::any::TypeId),
}

thread_local! {
    static HANDOFF: RefCell<Vec<Handoff>> = const { RefCell::new(Vec::new()) };
}

fn hand_off<T: 'static>(stage: T) {
    HANDOFF.with(|slot| slot.borrow_mut().push(Handoff::Insert(Box::new(stage))));
}

/// The change handed off for a stage of type `T`: `Some(Some(stage))` to insert,
/// `Some(None)` to remove, `None` to keep it as it is.
fn take_handed_off<T: 'static>() -> Option<Option<T>> {
    HANDOFF.with(|slot| {
        let mut slot = slot.borrow_mut();
        let index = slot.iter().position(|change| match change {
            Handoff::Insert(stage) => stage.is::<T>(),
            Handoff::Remove(id) => *id == std::any::TypeId::of::<T>(),
        })?;
        match slot.remove(index) {
            Handoff::Insert(stage) => Some(stage.downcast().ok().map(|stage| *stage)),
            Handoff::Remove(_) => Some(None),
        }
    })
}

fn clear_handoff() {
    HANDOFF.with(|slot| slot.borrow_mut().clear());
}

impl<T: Module + 'static> Module for Stage<T> {
    fn visit<V: ModuleVisitor>(&self, visitor: &mut V) {
        self.0.visit(visitor)
    }

    fn map<M: ModuleMapper>(self, mapper: &mut M) -> Self {
        let mapped = Module::map(self.0, mapper);
        match take_handed_off::<T>() {
            Some(changed) => Stage(changed),
            None => Stage(mapped),
        }
    }

    fn to_device(self, device: &Device) -> Self {
        Stage(self.0.to_device(device))
    }

    fn fork(self, device: &Device) -> Self {
        Stage(self.0.fork(device))
    }

    fn collect_devices(&self, devices: Vec<Device>) -> Vec<Device> {
        self.0.collect_devices(devices)
    }

    fn valid(&self) -> Self {
        Stage(self.0.valid())
    }

    fn train(self) -> Self {
        Stage(self.0.train())
    }

    fn materialize(self) -> Self {
        Stage(self.0.materialize())
    }
}

impl<T: ModuleDisplay> ModuleDisplayDefault for Stage<T> {
    fn content(&self, content: Content) -> Option<Content> {
        self.0.content(content)
    }
}

impl<T: ModuleDisplay> ModuleDisplay for Stage<T> {}

/// The compression of one weight: a sparsity mask, then a fake-quantizer (NNCF's order), each
/// optional. Attached to Conv/Linear weights as their Burn reparameterization, so stock layers
/// read `FQ(mask ⊙ w)` through `weight.val()`.
#[derive(Module, Debug)]
pub struct WeightTransform {
    /// The sparsity (or pruning) mask.
    pub mask: Stage<WeightMask>,
    /// The weight fake-quantizer.
    pub quantizer: Stage<FakeQuantizer>,
}

impl WeightTransform {
    /// Name of this reparameterization in module paths (`conv.weight.compress.mask.keep`).
    pub const NAME: &'static str = "compress";

    /// The transform of `weight`, if it carries one.
    pub fn of<const D: usize>(weight: &Param<Tensor<D>>) -> Option<&WeightTransform> {
        weight.reparameterization::<WeightTransform>()
    }

    /// The fake-quantizer of `weight`, if it has one.
    pub fn quantizer_of<const D: usize>(weight: &Param<Tensor<D>>) -> Option<&FakeQuantizer> {
        Self::of(weight)?.quantizer.get()
    }

    /// The mask of `weight`, if it has one.
    pub fn mask_of<const D: usize>(weight: &Param<Tensor<D>>) -> Option<&WeightMask> {
        Self::of(weight)?.mask.get()
    }
}

impl Reparameterization for WeightTransform {
    const NAME: &'static str = WeightTransform::NAME;

    fn apply<const D: usize>(&self, base: Tensor<D>) -> Tensor<D> {
        let weight = match self.mask.get() {
            Some(mask) => mask.apply(base),
            None => base,
        };
        match self.quantizer.get() {
            Some(quantizer) => quantizer.forward_weight(weight),
            None => weight,
        }
    }
}

/// Stages to add to one weight.
#[derive(Debug, Default)]
pub struct Attachment {
    /// A mask stage.
    pub mask: Option<WeightMask>,
    /// A quantizer stage.
    pub quantizer: Option<FakeQuantizer>,
}

/// Adds the stages of `attachments` (keyed by weight parameter path, e.g. `conv1.weight`) to the
/// weights' [`WeightTransform`]s, creating them where needed. Every path must be a Conv/Linear
/// weight whose transform lacks the stages being added, and that carries no foreign
/// reparameterization; otherwise nothing changes and the error names the parameter.
pub fn attach<M: Module>(model: M, attachments: HashMap<String, Attachment>) -> Result<M> {
    let sites: HashMap<String, WeightSite> = weight_sites(&model)
        .into_iter()
        .map(|site| (site.param.clone(), site))
        .collect();
    for (path, attachment) in &attachments {
        let site = sites.get(path).ok_or_else(|| CoreError::UnknownWeight {
            param: path.clone(),
            candidates: sorted_keys(&sites),
        })?;
        if let Some(name) = &site.transform.foreign {
            return Err(CoreError::ForeignReparameterization {
                param: path.clone(),
                name: name.clone(),
            });
        }
        let clash = [
            (attachment.mask.is_some() && site.transform.mask, "a mask"),
            (
                attachment.quantizer.is_some() && site.transform.quantizer,
                "a quantizer",
            ),
        ];
        if let Some((_, stage)) = clash.iter().find(|(clash, _)| *clash) {
            return Err(CoreError::AlreadyAttached {
                param: path.clone(),
                stage,
            });
        }
    }
    let existing = attachments
        .keys()
        .filter(|path| sites[*path].transform.present())
        .cloned()
        .collect();
    let wanted: Vec<(String, bool, bool)> = attachments
        .iter()
        .map(|(path, a)| (path.clone(), a.mask.is_some(), a.quantizer.is_some()))
        .collect();
    let mut attacher = Attacher {
        attachments,
        existing,
    };
    clear_handoff();
    let model = model.apply_reparameterization(&mut attacher);
    clear_handoff();
    // Every stage must have landed: Burn replaces reparameterizations without a word.
    let after: HashMap<String, WeightSite> = weight_sites(&model)
        .into_iter()
        .map(|site| (site.param.clone(), site))
        .collect();
    for (path, mask, quantizer) in wanted {
        let state = &after[&path].transform;
        if (mask && !state.mask) || (quantizer && !state.quantizer) {
            return Err(CoreError::NotAttached { param: path });
        }
    }
    Ok(model)
}

fn sorted_keys<V>(map: &HashMap<String, V>) -> String {
    let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys.join(", ")
}

struct Attacher {
    attachments: HashMap<String, Attachment>,
    /// Paths whose weights already carry a transform (stages are handed off to it).
    existing: std::collections::HashSet<String>,
}

impl Reparameterizer for &mut Attacher {
    type Reparam = WeightTransform;

    fn reparameterize<const D: usize>(
        &mut self,
        path: &str,
        param: Param<Tensor<D>>,
    ) -> (Param<Tensor<D>>, Option<WeightTransform>) {
        let Some(attachment) = self.attachments.remove(path) else {
            return (param, None);
        };
        if self.existing.contains(path) {
            // Burn maps the existing transform right after this call; its stages take these.
            if let Some(mask) = attachment.mask {
                hand_off(mask);
            }
            if let Some(quantizer) = attachment.quantizer {
                hand_off(quantizer);
            }
            return (param, None);
        }
        let transform = WeightTransform {
            mask: attachment.mask.into(),
            quantizer: attachment.quantizer.into(),
        };
        (param, Some(transform))
    }
}

/// Drops the mask stage of the weights `params` (parameter paths), keeping their other stages;
/// e.g. after shrinking, when pruning masks keep everything. Weights without a mask are left
/// alone.
pub fn remove_masks<M: Module>(model: M, params: &[String]) -> M {
    struct Remover<'a> {
        path: Vec<String>,
        params: &'a [String],
    }
    impl ModuleMapper for Remover<'_> {
        fn enter_module(&mut self, name: &str, container_type: &str) {
            if container_type == "Reparameterization"
                && name == WeightTransform::NAME
                && self.params.contains(&self.path.join("."))
            {
                // Burn maps this transform next: its mask stage takes the removal.
                HANDOFF.with(|slot| {
                    slot.borrow_mut()
                        .push(Handoff::Remove(std::any::TypeId::of::<WeightMask>()))
                });
            }
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
    }
    clear_handoff();
    let model = model.map(&mut Remover {
        path: Vec::new(),
        params,
    });
    clear_handoff();
    model
}

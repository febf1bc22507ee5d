//! What pruning removes: per parameter and axis, the indices kept. A [`ShrinkPlan`] is derived
//! from the pruned channels of each group, gives the masks of the pruned-but-not-shrunk model,
//! and is what [`shrink`](crate::shrink) applies (it serialises, so a shrunk checkpoint can be
//! loaded into a freshly built model shrunk by the same plan).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::deps::Dependencies;

/// The indices kept along one axis of a parameter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AxisSlice {
    /// The axis.
    pub axis: usize,
    /// Its size before shrinking.
    pub original: usize,
    /// Kept indices, ascending.
    pub kept: Vec<usize>,
}

/// How a depthwise convolution's `groups` changes when its channels shrink.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupChange {
    /// Groups before shrinking.
    pub from: usize,
    /// Groups after.
    pub to: usize,
}

/// Per parameter path, the axes shrinking slices.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShrinkPlan {
    /// Parameter path -> sliced axes.
    pub params: BTreeMap<String, Vec<AxisSlice>>,
    /// Dimensions of every parameter before shrinking (also those left alone).
    pub dims: BTreeMap<String, Vec<usize>>,
    /// Depthwise convolutions (module path) whose `groups` change.
    #[serde(default)]
    pub regroup: BTreeMap<String, GroupChange>,
}

impl ShrinkPlan {
    /// The plan that removes, in every group, the channels `pruned[g]`.
    pub fn new(
        deps: &Dependencies,
        pruned: &[BTreeSet<usize>],
        dims: &HashMap<String, Vec<usize>>,
    ) -> Self {
        let mut removed: BTreeMap<(String, usize), BTreeSet<usize>> = BTreeMap::new();
        for (group, channels) in deps.groups.iter().zip(pruned) {
            if channels.is_empty() {
                continue;
            }
            for &s in &group.sources {
                for follower in &deps.sources[s].followers {
                    let entry = removed
                        .entry((follower.param.clone(), follower.axis))
                        .or_default();
                    entry.extend(
                        follower
                            .links
                            .iter()
                            .filter(|(c, _)| channels.contains(c))
                            .map(|(_, index)| *index),
                    );
                }
            }
        }
        let mut params: BTreeMap<String, Vec<AxisSlice>> = BTreeMap::new();
        for ((param, axis), gone) in removed {
            if gone.is_empty() {
                continue;
            }
            let original = dims[&param][axis];
            params.entry(param).or_default().push(AxisSlice {
                axis,
                original,
                kept: (0..original).filter(|i| !gone.contains(i)).collect(),
            });
        }
        let regroup = deps
            .depthwise
            .iter()
            .filter_map(|conv| {
                let slice = params.get(&conv.weight)?.iter().find(|s| s.axis == 0)?;
                let change = GroupChange {
                    from: slice.original / conv.multiplier,
                    to: slice.kept.len() / conv.multiplier,
                };
                Some((conv.layer().to_string(), change))
            })
            .collect();
        Self {
            params,
            dims: dims.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            regroup,
        }
    }

    /// Whether the plan removes nothing.
    pub fn is_empty(&self) -> bool {
        self.params.is_empty()
    }

    /// Dimensions of `param` after shrinking.
    pub fn shrunk_dims(&self, param: &str) -> Option<Vec<usize>> {
        let mut dims = self.dims.get(param)?.clone();
        for slice in self.params.get(param).into_iter().flatten() {
            dims[slice.axis] = slice.kept.len();
        }
        Some(dims)
    }

    /// Parameters of the model before and after shrinking (`params` paths given; compression
    /// state excluded).
    pub fn param_counts(&self) -> (usize, usize) {
        self.dims.keys().fold((0, 0), |(before, after), param| {
            let count = |d: &[usize]| d.iter().product::<usize>();
            let shrunk = self.shrunk_dims(param).expect("known");
            (before + count(&self.dims[param]), after + count(&shrunk))
        })
    }

    /// The keep-mask (1.0 keep, 0.0 pruned) of `param` in its original shape, flattened; `None`
    /// when the plan does not touch it.
    pub fn mask(&self, param: &str) -> Option<Vec<f32>> {
        let slices = self.params.get(param)?;
        let dims = &self.dims[param];
        let total: usize = dims.iter().product();
        let mut mask = vec![1.0; total];
        for slice in slices {
            let inner: usize = dims[slice.axis + 1..].iter().product();
            let size = dims[slice.axis];
            let mut kept = vec![false; size];
            for &k in &slice.kept {
                kept[k] = true;
            }
            for (i, m) in mask.iter_mut().enumerate() {
                if !kept[(i / inner) % size] {
                    *m = 0.0;
                }
            }
        }
        Some(mask)
    }
}

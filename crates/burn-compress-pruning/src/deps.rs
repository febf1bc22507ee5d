//! Channel dependencies from a captured graph: which parameter axes follow which output channels.
//!
//! Every Conv/Linear whose weight is a parameter produces a *source*: its output channels. Values
//! downstream carry, along their channel axis, which source channel each position holds. Ops
//! then decide what follows a source:
//!
//! - consumers' weights (Conv input channels, Linear input features, also after a flatten, where
//!   channel `c` of `[N, C, H, W]` becomes features `c·H·W .. (c+1)·H·W`), biases, BatchNorm
//!   parameters and statistics follow the channels they see;
//! - element-wise add/sub/mul/div of two sources couples them into one group (channel `i` of
//!   each is pruned together);
//! - activations, pooling, transposes, reshapes that keep the channel axis, slices and concats
//!   (offsets) pass channels through;
//! - anything that mixes channels or that the analysis does not model blocks the sources it sees,
//!   with the reason: the model's outputs, normalisation over channels (LayerNorm, softmax,
//!   reductions), grouped convolutions other than depthwise ones, products of two activations,
//!   unknown ops;
//! - a depthwise convolution (`groups` equal to its input channels) keeps its group structure:
//!   its filters follow the channels they read, its output carries them on, and shrinking sets
//!   its `groups` to the channels left ([`DepthwiseConv`]).

use std::collections::HashMap;

use burn_compress_graph::{ConvAttrs, Graph, Op, ValueId, ValueKind};
use serde::{Deserialize, Serialize};

/// A parameter axis whose indices follow a source's channels: index `links[k].1` of axis `axis`
/// of `param` holds channel `links[k].0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Follower {
    /// Parameter path (`conv2.weight`, `bn1.running_mean`).
    pub param: String,
    /// Axis of the parameter.
    pub axis: usize,
    /// `(channel, index)` pairs.
    pub links: Vec<(usize, usize)>,
}

/// The output channels of one Conv/Linear layer and what follows them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The producing weight (`conv1.weight`).
    pub producer: String,
    /// Output-channel axis of that weight.
    pub axis: usize,
    /// Number of channels.
    pub channels: usize,
    /// Every parameter axis that follows these channels (the producer's own included).
    pub followers: Vec<Follower>,
    /// The BatchNorm scale (`gamma`) applied to these channels, if one directly follows.
    pub batch_norm_scale: Option<String>,
    /// Why these channels cannot be pruned, if they cannot.
    pub blocked: Vec<String>,
    /// The producer is a convolution (not a matrix product).
    #[serde(default)]
    pub convolution: bool,
    /// The producer is a convolution with a stride above 1 on some axis.
    #[serde(default)]
    pub downsampling: bool,
}

/// Sources whose channels are pruned together (coupled by element-wise ops).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Indices into [`Dependencies::sources`].
    pub sources: Vec<usize>,
    /// Channels of every source in the group.
    pub channels: usize,
    /// Why the group cannot be pruned (empty: prunable).
    pub blocked: Vec<String>,
}

impl Group {
    /// Whether the group's channels can be pruned.
    pub fn prunable(&self) -> bool {
        self.blocked.is_empty()
    }
}

/// A depthwise convolution whose filters follow the channels it reads: pruning them changes
/// its `groups`, which Burn keeps outside the parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DepthwiseConv {
    /// Its weight (`block.depthwise.weight`), `[channels · multiplier, 1, ..]`.
    pub weight: String,
    /// Filters per input channel.
    pub multiplier: usize,
}

impl DepthwiseConv {
    /// The layer's module path (`block.depthwise`).
    pub fn layer(&self) -> &str {
        self.weight
            .rsplit_once('.')
            .map_or(self.weight.as_str(), |(layer, _)| layer)
    }
}

/// The channel dependencies of a model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dependencies {
    /// Every source.
    pub sources: Vec<Source>,
    /// Sources grouped by coupling.
    pub groups: Vec<Group>,
    /// Depthwise convolutions on prunable paths (their groups follow the channels left).
    pub depthwise: Vec<DepthwiseConv>,
}

/// Along which axis of a value which source channel sits at each position.
#[derive(Clone, Debug)]
struct View {
    axis: usize,
    positions: Vec<Option<(usize, usize)>>,
}

impl View {
    fn sources(&self) -> Vec<usize> {
        let mut s: Vec<usize> = self.positions.iter().flatten().map(|(s, _)| *s).collect();
        s.sort_unstable();
        s.dedup();
        s
    }
}

struct Analysis<'g> {
    graph: &'g Graph,
    /// Dimensions of every parameter, by path.
    param_dims: &'g HashMap<String, Vec<usize>>,
    views: Vec<Option<View>>,
    sources: Vec<Source>,
    /// Union-find parents over sources.
    parent: Vec<usize>,
    depthwise: Vec<DepthwiseConv>,
}

/// Analyses `graph` (captured from a model without compression transforms, constants folded)
/// given the dimensions of the model's parameters by path.
pub fn analyse(graph: &Graph, param_dims: &HashMap<String, Vec<usize>>) -> Dependencies {
    let mut a = Analysis {
        graph,
        param_dims,
        views: vec![None; graph.values.len()],
        sources: Vec::new(),
        parent: Vec::new(),
        depthwise: Vec::new(),
    };
    for i in 0..graph.nodes.len() {
        a.node(i);
    }
    for output in &graph.outputs {
        a.block_value(*output, "reaches the model's output");
    }
    a.finish()
}

impl Analysis<'_> {
    fn find(&mut self, s: usize) -> usize {
        let mut root = s;
        while self.parent[root] != root {
            root = self.parent[root];
        }
        self.parent[s] = root;
        root
    }

    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.parent[ra.max(rb)] = ra.min(rb);
        }
    }

    fn block(&mut self, source: usize, reason: String) {
        if !self.sources[source].blocked.contains(&reason) {
            self.sources[source].blocked.push(reason);
        }
    }

    fn block_value(&mut self, v: ValueId, reason: &str) {
        let Some(view) = self.views[v.0].clone() else {
            return;
        };
        let near = self.describe(v);
        for s in view.sources() {
            self.block(s, format!("{reason} ({near})"));
        }
    }

    /// A readable place for messages: the nearest module path of the value's producer.
    fn describe(&self, v: ValueId) -> String {
        match self.graph.value(v).kind {
            ValueKind::Node(i) => format!(
                "at {} in `{}`",
                self.graph.nodes[i].op.name(),
                self.graph.module_path_near(i)
            ),
            _ => format!("at `{}`", self.graph.value(v).name),
        }
    }

    /// The parameter behind constant `v` and the number of leading unit axes the value adds
    /// to it (Burn's Linear prepends them for higher-rank inputs).
    fn param(&self, v: ValueId) -> Option<(String, usize)> {
        let value = self.graph.value(v);
        value.constant()?;
        let param = value.param.clone()?;
        let dims = self.param_dims.get(&param)?;
        let extra = value.shape.len().checked_sub(dims.len())?;
        let same = value.shape[extra..] == dims[..] && value.shape[..extra].iter().all(|&d| d == 1);
        same.then_some((param, extra))
    }

    /// Makes axis `axis` of parameter `param` follow the positions of `view`.
    fn follow(&mut self, param: &str, axis: usize, view: &View) {
        let mut by_source: HashMap<usize, Vec<(usize, usize)>> = HashMap::new();
        for (index, position) in view.positions.iter().enumerate() {
            if let Some((s, c)) = position {
                by_source.entry(*s).or_default().push((*c, index));
            }
        }
        for (s, links) in by_source {
            self.sources[s].followers.push(Follower {
                param: param.to_string(),
                axis,
                links,
            });
        }
    }

    fn new_source(&mut self, producer: String, axis: usize, channels: usize) -> usize {
        let id = self.sources.len();
        self.sources.push(Source {
            producer: producer.clone(),
            axis,
            channels,
            followers: vec![Follower {
                param: producer,
                axis,
                links: (0..channels).map(|c| (c, c)).collect(),
            }],
            batch_norm_scale: None,
            blocked: Vec::new(),
            convolution: false,
            downsampling: false,
        });
        self.parent.push(id);
        id
    }

    fn input_view(&self, v: ValueId) -> Option<View> {
        self.views[v.0].clone()
    }

    fn set(&mut self, v: ValueId, view: Option<View>) {
        self.views[v.0] = view;
    }

    fn node(&mut self, i: usize) {
        let node = self.graph.nodes[i].clone();
        let out = node.output;
        let out_rank = self.graph.value(out).shape.len();
        let first = node.inputs.first().and_then(|v| self.input_view(*v));
        match &node.op {
            Op::Conv(attrs) => self.conv(&node.inputs, out, attrs),
            Op::MatMul => self.matmul(&node.inputs, out),
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::PRelu => self.binary(&node.inputs, out),
            Op::ConvTranspose { .. } => {
                // Its output channels are weight axis 1: not followed yet.
                for v in &node.inputs {
                    self.block_value(*v, "consumed by a transposed convolution");
                }
                self.set(out, None);
            }
            Op::Pad { pads, .. } => {
                if first
                    .as_ref()
                    .is_some_and(|v| pads.get(v.axis).is_some_and(|p| *p != (0, 0)))
                {
                    self.block_value(node.inputs[0], "padded along its channels");
                    self.set(out, None);
                } else {
                    self.set(out, first);
                }
            }
            Op::BatchNorm { .. } => {
                if let Some(view) = &first {
                    for (k, v) in node.inputs.iter().enumerate().skip(1) {
                        if let Some((param, _)) = self.param(*v) {
                            self.follow(&param, 0, view);
                            if k == 1 {
                                for s in view.sources() {
                                    self.sources[s]
                                        .batch_norm_scale
                                        .get_or_insert(param.clone());
                                }
                            }
                        }
                    }
                }
                self.set(out, first);
            }
            Op::LayerNorm { .. } => {
                if first.as_ref().is_some_and(|v| v.axis + 1 == out_rank) {
                    self.block_value(node.inputs[0], "normalised over its channels by LayerNorm");
                    self.set(out, None);
                } else {
                    self.set(out, first);
                }
            }
            Op::Relu
            | Op::LeakyRelu { .. }
            | Op::Gelu
            | Op::Sigmoid
            | Op::Tanh
            | Op::Exp
            | Op::Sqrt
            | Op::Erf
            | Op::Neg
            | Op::Abs
            | Op::Round
            | Op::Log
            | Op::Sign
            | Op::Math(_)
            | Op::SoftPlus
            | Op::Clamp { .. }
            | Op::MaxPool(_)
            | Op::AvgPool { .. }
            | Op::AdaptiveAvgPool { .. }
            | Op::HardSigmoid { .. }
            | Op::Interpolate { .. } => self.set(out, first),
            Op::Softmax { axis } => {
                if first.as_ref().is_some_and(|v| v.axis == *axis) {
                    self.block_value(node.inputs[0], "normalised over its channels by a softmax");
                    self.set(out, None);
                } else {
                    self.set(out, first);
                }
            }
            Op::Reduce { axes, .. } => {
                if first.as_ref().is_some_and(|v| axes.contains(&v.axis)) {
                    self.block_value(node.inputs[0], "summed over its channels");
                    self.set(out, None);
                } else {
                    self.set(out, first);
                }
            }
            Op::Transpose { perm } => {
                let view = first.map(|v| View {
                    axis: perm.iter().position(|&p| p == v.axis).unwrap_or(v.axis),
                    positions: v.positions,
                });
                self.set(out, view);
            }
            Op::Reshape => self.reshape(node.inputs[0], out),
            Op::Slice { ranges } => {
                let view = first.map(|v| match ranges.get(v.axis) {
                    Some(r) if !(r.start == 0 && r.step == 1 && r.end >= v.positions.len()) => {
                        View {
                            axis: v.axis,
                            positions: (r.start..r.end.min(v.positions.len()))
                                .step_by(r.step)
                                .map(|p| v.positions[p])
                                .collect(),
                        }
                    }
                    _ => v,
                });
                self.set(out, view);
            }
            Op::Flip { axes } => {
                let view = first.map(|mut v| {
                    if axes.contains(&v.axis) {
                        v.positions.reverse();
                    }
                    v
                });
                self.set(out, view);
            }
            Op::Concat { axis } => self.concat(&node.inputs, out, *axis),
            // A gathered table's columns (an embedding's features) could follow its consumers,
            // but the table is no Conv/Linear weight: not modelled.
            Op::FakeQuantize { .. }
            | Op::Gather { .. }
            | Op::Power
            | Op::Compare(_)
            | Op::Select
            | Op::Convert
            | Op::Not
            | Op::And
            | Op::Or
            | Op::Expand
            | Op::Tile { .. }
            | Op::ArgExtreme { .. }
            | Op::CumSum { .. }
            | Op::GatherElements { .. }
            | Op::FloorMod
            | Op::IsNan
            | Op::IsInf
            | Op::SliceAssign { .. }
            | Op::Full { .. }
            | Op::DeformConv { .. }
            | Op::Unsupported { .. } => {
                for v in &node.inputs {
                    self.block_value(*v, &format!("consumed by `{}`", node.op.name()));
                }
                self.set(out, None);
            }
        }
    }

    fn conv(&mut self, inputs: &[ValueId], out: ValueId, attrs: &ConvAttrs) {
        let groups = attrs.groups;
        let x = inputs[0];
        let weight = self.param(inputs[1]);
        let out_channels = self.graph.value(out).shape[1];
        let in_channels = self.graph.value(x).shape[1];
        let Some((weight, _)) = weight else {
            self.block_value(x, "consumed by a convolution whose weight is computed");
            self.set(out, None);
            return;
        };
        let bias = inputs.get(2).and_then(|b| self.param(*b)).map(|(b, _)| b);
        if groups == in_channels && groups > 1 && out_channels.is_multiple_of(in_channels) {
            self.depthwise_conv(x, out, weight, bias, out_channels / in_channels);
            return;
        }
        if groups != 1 {
            let reason = format!(
                "consumed by a convolution with {groups} groups of {} channels (only depthwise \
                 ones follow pruned channels)",
                in_channels / groups.max(1)
            );
            self.block_value(x, &reason);
            self.set(out, None);
            return;
        }
        if let Some(view) = self.input_view(x) {
            if view.axis == 1 {
                self.follow(&weight, 1, &view);
            } else {
                self.block_value(x, "fed to a convolution on another axis");
            }
        }
        let source = self.new_source(weight, 0, out_channels);
        self.sources[source].convolution = true;
        self.sources[source].downsampling = attrs.stride.iter().any(|&s| s > 1);
        if let Some(bias) = bias {
            let view = identity_view(1, source, out_channels);
            self.follow(&bias, 0, &view);
        }
        self.set(out, Some(identity_view(1, source, out_channels)));
    }

    /// A depthwise convolution: filter `o` reads input channel `o / multiplier`, so filters and
    /// bias follow the input's channels and the output carries them on.
    fn depthwise_conv(
        &mut self,
        x: ValueId,
        out: ValueId,
        weight: String,
        bias: Option<String>,
        multiplier: usize,
    ) {
        let Some(view) = self.input_view(x) else {
            self.set(out, None);
            return;
        };
        if view.axis != 1 {
            self.block_value(x, "fed to a convolution on another axis");
            self.set(out, None);
            return;
        }
        let filters = view.positions.len() * multiplier;
        let out_view = View {
            axis: 1,
            positions: (0..filters)
                .map(|o| view.positions[o / multiplier])
                .collect(),
        };
        self.follow(&weight, 0, &out_view);
        if let Some(bias) = bias {
            self.follow(&bias, 0, &out_view);
        }
        self.depthwise.push(DepthwiseConv { weight, multiplier });
        self.set(out, Some(out_view));
    }

    fn matmul(&mut self, inputs: &[ValueId], out: ValueId) {
        let (x, w) = (inputs[0], inputs[1]);
        let out_rank = self.graph.value(out).shape.len();
        let Some((weight, extra)) = self.param(w) else {
            for v in inputs {
                self.block_value(*v, "multiplied with another activation");
            }
            self.set(out, None);
            return;
        };
        if let Some(view) = self.input_view(x) {
            if view.axis + 1 == self.graph.value(x).shape.len() {
                // The weight's second-to-last value axis is its input-feature axis.
                let axis = self.graph.value(w).shape.len() - 2 - extra;
                self.follow(&weight, axis, &view);
            } else {
                self.block_value(x, "fed to a matrix product on another axis");
            }
        }
        let features = self.graph.value(out).shape[out_rank - 1];
        let axis = self.param_dims[&weight].len() - 1;
        let source = self.new_source(weight, axis, features);
        self.set(out, Some(identity_view(out_rank - 1, source, features)));
    }

    fn binary(&mut self, inputs: &[ValueId], out: ValueId) {
        let (a, b) = (inputs[0], inputs[1]);
        let out_shape = self.graph.value(out).shape.clone();
        let (va, vb) = (self.input_view(a), self.input_view(b));
        match (va, vb) {
            (Some(va), Some(vb)) => {
                let aligned = va.axis == vb.axis
                    && va.positions.len() == vb.positions.len()
                    && va
                        .positions
                        .iter()
                        .zip(&vb.positions)
                        .all(|(p, q)| match (p, q) {
                            (Some((s1, c1)), Some((s2, c2))) => {
                                c1 == c2 && self.sources[*s1].channels == self.sources[*s2].channels
                            }
                            (None, None) => true,
                            _ => false,
                        });
                if aligned {
                    let pairs: Vec<(usize, usize)> = va
                        .positions
                        .iter()
                        .zip(&vb.positions)
                        .filter_map(|(p, q)| Some((p.as_ref()?.0, q.as_ref()?.0)))
                        .collect();
                    for (s1, s2) in pairs {
                        self.union(s1, s2);
                    }
                    self.set(out, Some(va));
                } else {
                    self.block_value(a, "combined element-wise with unaligned channels");
                    self.block_value(b, "combined element-wise with unaligned channels");
                    self.set(out, None);
                }
            }
            (Some(view), None) | (None, Some(view)) => {
                let other = if self.views[a.0].is_some() { b } else { a };
                let other_shape = self.graph.value(other).shape.clone();
                // Align the other operand's axes to the output from the right.
                let offset = out_shape.len() - other_shape.len();
                let along = view
                    .axis
                    .checked_sub(offset)
                    .map(|axis| other_shape[axis])
                    .unwrap_or(1);
                if along == 1 {
                    self.set(out, Some(view));
                } else if let Some((param, extra)) = self.param(other) {
                    // A per-channel parameter, e.g. a Linear bias.
                    self.follow(&param, view.axis - offset - extra, &view);
                    self.set(out, Some(view));
                } else {
                    self.block_value(
                        if self.views[a.0].is_some() { a } else { b },
                        "combined with a per-channel value that is not a parameter",
                    );
                    self.set(out, None);
                }
            }
            (None, None) => self.set(out, None),
        }
    }

    fn reshape(&mut self, x: ValueId, out: ValueId) {
        let Some(view) = self.input_view(x) else {
            self.set(out, None);
            return;
        };
        let input = self.graph.value(x).shape.clone();
        let output = self.graph.value(out).shape.clone();
        let before: usize = input[..view.axis].iter().product();
        let channels = input[view.axis];
        // The output axis where the channel axis lands, merged with what follows it (after any
        // unit axes that keep the product of the leading dimensions).
        let inner: usize = input[view.axis + 1..].iter().product();
        let mut product = 1;
        for (k, &d) in output.iter().enumerate() {
            if product > before {
                break;
            }
            let rest: usize = output[k + 1..].iter().product();
            if product == before && d % channels == 0 && d / channels * rest == inner {
                let repeat = d / channels;
                let positions = (0..d).map(|p| view.positions[p / repeat]).collect();
                self.set(out, Some(View { axis: k, positions }));
                return;
            }
            product *= d;
        }
        self.block_value(x, "reshaped across its channel axis");
        self.set(out, None);
    }

    fn concat(&mut self, inputs: &[ValueId], out: ValueId, axis: usize) {
        let views: Vec<Option<View>> = inputs.iter().map(|v| self.input_view(*v)).collect();
        if views.iter().all(Option::is_none) {
            self.set(out, None);
            return;
        }
        let on_channels = views.iter().flatten().all(|v| v.axis == axis);
        if on_channels {
            let mut positions = Vec::new();
            for (v, view) in inputs.iter().zip(&views) {
                match view {
                    Some(view) => positions.extend(view.positions.iter().copied()),
                    None => positions.extend(vec![None; self.graph.value(*v).shape[axis]]),
                }
            }
            self.set(out, Some(View { axis, positions }));
        } else {
            for v in inputs {
                self.block_value(*v, "concatenated along another axis");
            }
            self.set(out, None);
        }
    }

    fn finish(mut self) -> Dependencies {
        let mut by_root: HashMap<usize, Vec<usize>> = HashMap::new();
        for s in 0..self.sources.len() {
            let root = self.find(s);
            by_root.entry(root).or_default().push(s);
        }
        let mut groups: Vec<Group> = by_root
            .into_values()
            .map(|mut sources| {
                sources.sort_unstable();
                let blocked = blocked_reasons(&self.sources, &sources);
                Group {
                    channels: self.sources[sources[0]].channels,
                    sources,
                    blocked,
                }
            })
            .collect();
        groups.sort_by_key(|g| g.sources[0]);
        Dependencies {
            sources: self.sources,
            groups,
            depthwise: self.depthwise,
        }
    }
}

/// Why a group of `members` cannot be pruned: every reason of every member, naming its producer.
pub fn blocked_reasons(sources: &[Source], members: &[usize]) -> Vec<String> {
    members
        .iter()
        .flat_map(|&s| {
            let producer = &sources[s].producer;
            sources[s]
                .blocked
                .iter()
                .map(move |reason| format!("`{producer}` {reason}"))
        })
        .collect()
}

fn identity_view(axis: usize, source: usize, channels: usize) -> View {
    View {
        axis,
        positions: (0..channels).map(|c| Some((source, c))).collect(),
    }
}

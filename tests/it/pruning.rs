//! Channel pruning on the reference CNN (BatchNorm, flatten into a Linear), a residual network
//! with BatchNorm, and a network with a depthwise branch, a concat and a flatten into a Linear:
//! the shrunk model computes what the masked one does, has fewer parameters, exports a smaller
//! IR that OpenVINO runs like Burn, and loads its own checkpoint back.

use std::path::Path;

use burn::module::Module;
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn_compress::openvino::{compare, export, ExportOptions};
use burn_compress::prelude::*;
use burn_compress::pruning::{apply_plan, GroupChange, ShrinkPlan};
use burn_compress::shared::site::host_values;
use burn_compress_recipes::{run_recipe, NoHook, Recipe, ReferenceCnn, Trainer};

use crate::common::models::{reference_cnn, ConcatNet, ResNet};
use crate::common::{assert_int8_layers, burn_forward, data, dev, mnist, ov_forward, trained_fp32};

/// Dimensions of the constant layer `name` in the IR at `xml`.
fn ir_const_shape(xml: &Path, name: &str) -> Vec<usize> {
    let text = std::fs::read_to_string(xml).unwrap();
    let key = format!("name=\"{name}\"");
    let layer = text
        .split("<layer ")
        .find(|l| l.contains(&key) && l.contains("type=\"Const\""))
        .unwrap_or_else(|| panic!("no constant `{name}` in {}", xml.display()));
    let start = layer.find("shape=\"").unwrap() + 7;
    let end = start + layer[start..].find('"').unwrap();
    layer[start..end]
        .split(',')
        .map(|d| d.parse().unwrap())
        .collect()
}

fn max_relative(a: &[f32], b: &[f32]) -> f32 {
    let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()));
    diff / scale.max(f32::MIN_POSITIVE)
}

/// Prunes half of every prunable group of `model`, shrinks it (setting depthwise convolutions'
/// groups with `set_groups`), and checks outputs, parameter counts and the IR. Returns the shrunk
/// model and the controller's plan.
fn prune_and_check<M: Module, const O: usize>(
    name: &str,
    model: M,
    shape: [usize; 4],
    forward: impl Fn(&M, Tensor<4>) -> Tensor<O> + Copy,
    pruned_weight: (&str, usize),
    set_groups: impl FnMut(&mut M, &str, usize) -> bool,
) -> (M, ShrinkPlan) {
    let dense_params = ModelStats::of(&model).total_params;
    let dir = tempfile::tempdir().unwrap();
    let dense_xml = dir.path().join("dense.xml");
    let dense = export(
        &model,
        shape,
        forward,
        &dense_xml,
        &ExportOptions::default(),
    )
    .unwrap();

    let (masked, controller) = prune(model)
        .channels(Pruning::target(0.5))
        .build(forward, shape)
        .unwrap();
    let stats = controller.statistics();
    println!("{name}:\n{stats}");
    let input = data(&shape, 91);
    let masked_out = burn_forward(&masked, &input, &forward);
    let shrunk = controller.shrink_regrouped(masked, set_groups).unwrap();
    let shrunk_out = burn_forward(&shrunk, &input, &forward);
    let diff = max_relative(&masked_out, &shrunk_out);
    assert!(diff <= 1e-5, "{name}: shrunk vs masked {diff}");

    let plan = controller.plan();
    let shrunk_params = ModelStats::of(&shrunk).total_params;
    assert_eq!(plan.param_counts(), (dense_params, shrunk_params), "{name}");
    assert!(
        shrunk_params < dense_params,
        "{name}: {shrunk_params} >= {dense_params}"
    );
    assert_eq!(
        (stats.params_before, stats.params_after),
        (dense_params, shrunk_params)
    );

    let xml = dir.path().join("shrunk.xml");
    let report = export(&shrunk, shape, forward, &xml, &ExportOptions::default()).unwrap();
    assert!(
        report.bin_bytes < dense.bin_bytes,
        "{name}: the IR is smaller"
    );
    let (param, axis) = pruned_weight;
    let mut want = plan.shrunk_dims(param).unwrap();
    assert!(
        want[axis] < plan.dims[param][axis],
        "{name}: `{param}` axis {axis} pruned"
    );
    if want.len() == 2 {
        // Burn's Linear weight [d_in, d_out] is written as MatMul's transposed [d_out, d_in].
        want.reverse();
    }
    assert_eq!(
        ir_const_shape(&xml, param),
        want,
        "{name}: `{param}` in the IR"
    );
    let reference = burn_forward(&shrunk, &input, &forward);
    let c = compare(
        &reference,
        &ov_forward(&xml, &input),
        reference.len() / shape[0],
    );
    assert!(c.max_rel_diff <= 1e-4, "{name}: OpenVINO vs Burn {c:?}");
    (shrunk, plan)
}

#[test]
fn reference_cnn_shrinks_conv_batch_norm_and_the_flattened_linear() {
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let (shrunk, plan) = prune_and_check(
        "reference CNN",
        reference_cnn(5),
        [2, 1, 28, 28],
        forward,
        ("fc1.linear.weight", 0),
        no_depthwise,
    );
    // conv2's 64 channels -> 32; fc1's 1600 inputs follow (25 per channel); BN statistics too.
    assert_eq!(shrunk.conv2.conv.weight.dims(), [32, 16, 3, 3]);
    assert_eq!(shrunk.fc1.linear.weight.dims(), [800, 64]);
    assert_eq!(
        shrunk.bn2.as_ref().unwrap().running_mean.value().dims(),
        [32]
    );
    assert_eq!(
        shrunk.fc2.linear.weight.dims(),
        [64, 10],
        "the output stays"
    );
    assert!(plan.params.contains_key("bn1.running_var"));
}

#[test]
fn residual_network_prunes_coupled_channels_together() {
    let forward = |m: &ResNet, x: Tensor<4>| m.forward(x);
    let (shrunk, _) = prune_and_check(
        "residual network",
        ResNet::new(),
        [2, 3, 16, 16],
        forward,
        ("fc.weight", 0),
        no_depthwise,
    );
    // The stem and both convolutions writing into the first residual stream share one group.
    assert_eq!(shrunk.stem.weight.dims()[0], 8);
    assert_eq!(shrunk.blocks[0].conv2.weight.dims()[0], 8);
    assert_eq!(shrunk.blocks[1].conv1.weight.dims()[1], 8);
}

fn no_depthwise<M>(_: &mut M, _: &str, _: usize) -> bool {
    false
}

fn concat_net_groups(model: &mut ConcatNet, layer: &str, groups: usize) -> bool {
    match layer {
        "depthwise" => {
            model.depthwise.groups = groups;
            true
        }
        _ => false,
    }
}

#[test]
fn concat_offsets_flatten_and_depthwise_groups_follow() {
    let forward = |m: &ConcatNet, x: Tensor<4>| m.forward(x);
    let (shrunk, plan) = prune_and_check(
        "concat network",
        ConcatNet::new(),
        [2, 3, 8, 8],
        forward,
        ("head.weight", 0),
        concat_net_groups,
    );
    assert_eq!(shrunk.branch.weight.dims()[0], 3);
    assert_eq!(shrunk.pointwise.weight.dims()[0], 3);
    assert_eq!(
        shrunk.merge.weight.dims(),
        [5, 6, 3, 3],
        "concat of 3 + 3 channels"
    );
    assert_eq!(shrunk.head.weight.dims(), [45, 5]);
    // The stem's channels flow through the depthwise convolution (two filters each) into the
    // pointwise one: all three follow, and the depthwise layer keeps one group per channel.
    assert_eq!(shrunk.stem.weight.dims()[0], 4);
    assert_eq!(shrunk.branch.weight.dims()[1], 4);
    assert_eq!(shrunk.depthwise.weight.dims(), [8, 1, 3, 3]);
    assert_eq!(shrunk.depthwise.bias.as_ref().unwrap().dims(), [8]);
    assert_eq!(shrunk.depthwise.groups, 4);
    assert_eq!(shrunk.pointwise.weight.dims()[1], 8);
    assert_eq!(plan.regroup["depthwise"], GroupChange { from: 8, to: 4 });
}

#[test]
fn shrinking_through_a_depthwise_convolution_needs_its_groups_set() {
    let forward = |m: &ConcatNet, x: Tensor<4>| m.forward(x);
    let (masked, controller) = prune(ConcatNet::new())
        .channels(Pruning::target(0.5))
        .build(forward, [2, 3, 8, 8])
        .unwrap();
    let message = controller.shrink(masked.clone()).unwrap_err().to_string();
    assert!(
        message.contains("`depthwise`") && message.contains("depthwise.groups = 4"),
        "{message}"
    );
    let message = controller
        .shrink_regrouped(masked, no_depthwise)
        .unwrap_err()
        .to_string();
    assert!(message.contains("`depthwise`"), "{message}");
}

#[test]
fn grouped_convolutions_other_than_depthwise_block_their_producers() {
    let forward = |m: &ConcatNet, x: Tensor<4>| m.forward(x);
    let mut model = ConcatNet::new();
    // Two groups of four channels: not depthwise.
    dev().seed(3);
    model.depthwise = burn::nn::conv::Conv2dConfig::new([8, 16], [3, 3])
        .with_groups(2)
        .with_padding(burn::nn::PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init(&dev());
    let (_, controller) = prune(model)
        .channels(Pruning::target(0.5))
        .build(forward, [2, 3, 8, 8])
        .unwrap();
    let stats = controller.statistics();
    let stem = stats
        .groups
        .iter()
        .find(|g| g.producers == ["stem.weight"])
        .unwrap();
    assert_eq!(stem.pruned, 0);
    assert!(
        stem.blocked[0].contains("2 groups of 4 channels") && stem.blocked[0].contains("depthwise"),
        "{:?}",
        stem.blocked
    );
    assert!(controller.plan().regroup.is_empty());
}

#[test]
fn a_shrunk_checkpoint_loads_into_a_fresh_model_shrunk_by_the_same_plan() {
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let (masked, controller) = prune(reference_cnn(6))
        .channels(Pruning::target(0.5).criterion(Criterion::GeometricMedian))
        .build(forward, [2, 1, 28, 28])
        .unwrap();
    let shrunk = controller.shrink(masked).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shrunk.bpk");
    shrunk.clone().save_file(&path).unwrap();
    let plan_json = serde_json::to_string(&controller.plan()).unwrap();

    let plan: ShrinkPlan = serde_json::from_str(&plan_json).unwrap();
    let fresh = apply_plan(reference_cnn(99), &plan).unwrap();
    let loaded = fresh.load_file(&path);
    let input = data(&[3, 1, 28, 28], 4);
    assert_eq!(
        burn_forward(&loaded, &input, &forward),
        burn_forward(&shrunk, &input, &forward)
    );
    // A plan does not apply twice: the dimensions no longer match.
    let error = apply_plan(loaded, &plan).unwrap_err().to_string();
    assert!(error.contains("plan was made for"), "{error}");
}

#[test]
fn pruning_with_quantization_exports_int8_on_every_layer() {
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let fp32 = reference_cnn(7).fold_batch_norms().unwrap();
    let calibration = vec![Tensor::<4>::from_data(data(&[16, 1, 28, 28], 8), &dev())];
    let quantized = quantize(fp32)
        .init_ranges(RangeInit::MinMax, calibration, |m, x| {
            m.forward(x);
        })
        .unwrap();
    let (masked, controller) = prune(quantized)
        .channels(Pruning::target(0.5).round_to(8))
        .build(forward, [2, 1, 28, 28])
        .unwrap();
    let input = data(&[4, 1, 28, 28], 9);
    let masked_out = burn_forward(&masked, &input, &forward);
    let shrunk = controller.shrink(masked).unwrap();
    assert_eq!(
        shrunk.conv1.conv.weight.dims()[0],
        16,
        "32 -> 16 (a multiple of 8)"
    );
    // Per-channel weight scales were shrunk with their channels.
    let scales = WeightTransform::quantizer_of(&shrunk.conv2.conv.weight).unwrap();
    assert_eq!(scales.scale.dims(), [32]);
    // Summing fewer zero terms can move a value across a rounding boundary of the next
    // activation quantizer: a level at most, not 1e-5.
    let c = compare(&masked_out, &burn_forward(&shrunk, &input, &forward), 10);
    assert!(
        c.max_rel_diff <= 2e-2 && c.top1_agreement == 1.0,
        "shrunk vs masked {c:?}"
    );
    // The shrunk model keeps training: quantizer ranges and weights move, the loss falls.
    let train = Device::flex().autodiff();
    let data = mnist();
    let (images, labels) = data.train.batch(&(0..64).collect::<Vec<_>>(), &train);
    let mut trainer = Trainer::adam(1e-3);
    let mut model = shrunk.to_device(&train).train();
    let scale_before = host_values(
        WeightTransform::quantizer_of(&model.conv2.conv.weight)
            .unwrap()
            .scale
            .val(),
    );
    let mut losses = Vec::new();
    for _ in 0..8 {
        let (next, loss) = trainer.step(model, images.clone(), labels.clone(), &mut NoHook);
        model = next;
        losses.push(loss);
    }
    assert!(losses[7] < losses[0], "{losses:?}");
    let scale_after = host_values(
        WeightTransform::quantizer_of(&model.conv2.conv.weight)
            .unwrap()
            .scale
            .val(),
    );
    assert_ne!(scale_before, scale_after);
    assert_eq!(model.conv2.conv.weight.dims(), [32, 16, 3, 3]);
    let report = export_int8_reference_cnn(&model.valid());
    assert_eq!(report.quantized_weights().len(), 4);
}

#[test]
fn bad_settings_and_unprunable_models_are_named_and_nothing_is_attached() {
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let shape = [2, 1, 28, 28];
    let model = reference_cnn(10);
    let error = |pruning: Pruning, ignore: Option<&str>| {
        let mut builder = prune(model.clone()).channels(pruning);
        if let Some(scope) = ignore {
            builder = builder.ignore(scope);
        }
        builder.build(forward, shape).unwrap_err().to_string()
    };
    assert!(error(Pruning::target(1.0), None).contains("target"));
    assert!(error(Pruning::target(0.5).round_to(0), None).contains("round_to"));
    assert!(error(Pruning::target(0.5), Some("conv9")).contains("conv9"));
    let folded = model.clone().fold_batch_norms().unwrap();
    let message = prune(folded)
        .channels(Pruning::target(0.5).criterion(Criterion::BnScale))
        .build(forward, shape)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("bn_scale") && message.contains("conv1.conv.weight"),
        "{message}"
    );
    let parsed: Result<Criterion, _> = serde_json::from_str("\"l3\"");
    assert!(parsed.unwrap_err().to_string().contains("l3"));
    // Only the classifier is left to prune: its outputs are the model's.
    let message = prune(model.clone())
        .channels(Pruning::target(0.5))
        .ignore("re:conv.*")
        .ignore("fc1")
        .build(forward, shape)
        .unwrap_err()
        .to_string();
    assert!(message.contains("reaches the model's output"), "{message}");
    assert!(WeightTransform::of(&model.conv1.conv.weight).is_none());
}

#[test]
fn pruned_and_quantized_reference_cnn_keeps_accuracy_after_fine_tuning() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let recipe = Recipe::from_file(&root.join("configs/mnist_prune50_int8.json")).unwrap();
    let (models, summary) = run_recipe(&recipe, &mnist(), Some(trained_fp32()), None).unwrap();
    let stats = summary.pruning.as_ref().expect("pruned");
    println!(
        "pruned 50 % + INT8: FP32 {:.2} %, after fine-tuning {:.2} %\n{stats}",
        summary.fp32_accuracy, summary.compressed_accuracy
    );
    assert!(
        summary.compressed_accuracy >= summary.fp32_accuracy - 1.0,
        "{} % vs FP32 {} %",
        summary.compressed_accuracy,
        summary.fp32_accuracy
    );
    assert!(stats.params_after * 3 < stats.params_before, "{stats}");
    let shrunk = models.compressed.valid();
    assert_eq!(shrunk.conv2.conv.weight.dims(), [32, 16, 3, 3]);
    export_int8_reference_cnn(&shrunk);
}

/// Exports a quantized reference CNN (checked) and asserts its 4 Conv/MatMul layers run on
/// OpenVINO's INT8 kernels.
fn export_int8_reference_cnn(model: &ReferenceCnn) -> burn_compress::openvino::ExportReport {
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("pruned_int8.xml");
    let forward = |m: &ReferenceCnn, x: Tensor<4>| m.forward(x);
    let report = burn_compress::export(
        model,
        [1, 1, 28, 28],
        forward,
        &xml,
        &ExportOptions::default(),
    )
    .unwrap();
    assert_int8_layers(&xml, "1,1,28,28", 4);
    report
}

#[test]
fn first_and_downsampling_convolutions_stay_whole_when_asked_nncf_style() {
    let forward = |m: &ResNet, x: Tensor<4>| m.forward(x);
    let (_, controller) = prune(ResNet::new())
        .channels(
            Pruning::target(0.5)
                .prune_first_conv(false)
                .prune_downsample_convs(false),
        )
        .build(forward, [2, 3, 16, 16])
        .unwrap();
    let stats = controller.statistics();
    let group = |producer: &str| {
        stats
            .groups
            .iter()
            .find(|g| g.producers.iter().any(|p| p == producer))
            .unwrap_or_else(|| panic!("no group for {producer}: {stats}"))
    };
    // The stem is the first convolution; its group (with the first block's output) stays.
    let stem = group("stem.weight");
    assert!(
        stem.blocked.iter().any(|r| r.contains("first convolution")),
        "{stats}"
    );
    assert_eq!(stem.pruned, 0);
    // The second block's stride-2 convolution and its stride-2 shortcut stay whole.
    let strided = group("blocks.1.conv1.weight");
    assert!(
        strided.blocked.iter().any(|r| r.contains("downsampling")),
        "{stats}"
    );
    let shortcut = group("blocks.1.down.weight");
    assert!(
        shortcut.blocked.iter().any(|r| r.contains("downsampling")),
        "{stats}"
    );
    // The first block's inner convolution is neither, and is pruned.
    let inner = group("blocks.0.conv1.weight");
    assert!(inner.blocked.is_empty() && inner.pruned == 8, "{stats}");
}

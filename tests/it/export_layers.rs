//! One test per family of `burn::nn` layers beyond the reference networks: each exports with a
//! dynamic batch and runs in OpenVINO at two batch sizes, matching Burn within 1e-4 relative
//! (`check_fp32`); an embedding takes integer ids. Operations with no OpenVINO counterpart here
//! are refused by name.

use burn::module::Module;
use burn::nn::activation::{
    HardShrinkConfig, HardSigmoidConfig, HardSwish, HardtanhConfig, PReluConfig, Relu6,
    ShrinkConfig, SiLU, SoftShrinkConfig, Tanhshrink,
};
use burn::nn::conv::{Conv1dConfig, Conv2dConfig, Conv3dConfig, ConvTranspose1dConfig};
use burn::nn::conv::{
    Conv2d, ConvTranspose2dConfig, ConvTranspose3dConfig, DeformConv2d, DeformConv2dConfig,
};
use burn::nn::interpolate::{Interpolate1dConfig, Interpolate2dConfig, InterpolateMode};
use burn::nn::pool::{
    AdaptiveAvgPool1dConfig, AdaptiveAvgPool3dConfig, AvgPool1dConfig, MaxPool1dConfig,
};
use burn::nn::{
    BiGruConfig, BiLstmConfig, Embedding, EmbeddingConfig, Fold4dConfig, GroupNormConfig,
    GruConfig, InstanceNormConfig, Linear, LinearConfig, LocalResponseNormConfig, LstmConfig,
    PaddingConfig1d, PaddingConfig2d, PaddingConfig3d, RmsNormConfig, RnnConfig, Unfold4dConfig,
};
use burn::tensor::activation::{self, gelu};
use burn::tensor::ops::PadMode;
use burn::tensor::{Int, Tensor, TensorData};
use burn_compress::openvino::{export, ExportOptions};

use crate::common::{assert_ids_agree, check_fp32, dev, ov_forward};

const TOLERANCE: f32 = 1e-4;

fn assert_matches(name: &str, worst: f32) {
    assert!(worst < TOLERANCE, "{name}: max relative error {worst:.3e}");
}

#[test]
fn transposed_convolutions_match_burn() {
    let d = dev();
    d.seed(3);
    let plain = ConvTranspose2dConfig::new([4, 6], [3, 3])
        .with_stride([2, 2])
        .with_padding([1, 1])
        .with_padding_out([1, 1])
        .init(&d);
    assert_matches(
        "conv_transpose2d",
        check_fp32("conv_transpose2d", &plain, [2, 4, 5, 5], |m, x| {
            m.forward(x)
        }),
    );
    let grouped = ConvTranspose2dConfig::new([4, 6], [3, 2])
        .with_stride([1, 2])
        .with_dilation([2, 1])
        .with_groups(2)
        .with_bias(false)
        .init(&d);
    assert_matches(
        "conv_transpose2d_grouped",
        check_fp32(
            "conv_transpose2d_grouped",
            &grouped,
            [2, 4, 5, 6],
            |m, x| m.forward(x),
        ),
    );
    let one_d = ConvTranspose1dConfig::new([3, 5], 4)
        .with_stride(3)
        .with_padding(1)
        .init(&d);
    assert_matches(
        "conv_transpose1d",
        check_fp32("conv_transpose1d", &one_d, [2, 3, 7], |m, x| m.forward(x)),
    );
    let three_d = ConvTranspose3dConfig::new([2, 3], [2, 2, 2])
        .with_stride([2, 2, 2])
        .init(&d);
    assert_matches(
        "conv_transpose3d",
        check_fp32("conv_transpose3d", &three_d, [2, 2, 3, 4, 3], |m, x| {
            m.forward(x)
        }),
    );
}

#[derive(Module, Debug)]
struct Volume {
    conv: burn::nn::conv::Conv3d,
    grouped: burn::nn::conv::Conv3d,
    pool: burn::nn::pool::AdaptiveAvgPool3d,
}

#[test]
fn conv3d_and_adaptive_pool3d_match_burn() {
    let d = dev();
    d.seed(5);
    let model = Volume {
        conv: Conv3dConfig::new([2, 4], [3, 3, 3])
            .with_padding(PaddingConfig3d::Explicit(1, 0, 1))
            .with_stride([1, 2, 1])
            .init(&d),
        grouped: Conv3dConfig::new([4, 4], [1, 3, 3]).with_groups(2).init(&d),
        pool: AdaptiveAvgPool3dConfig::new([2, 1, 2]).init(),
    };
    let worst = check_fp32("conv3d", &model, [2, 2, 6, 9, 7], |m, x| {
        m.pool.forward(m.grouped.forward(m.conv.forward(x)))
    });
    assert_matches("conv3d", worst);
}

#[derive(Module, Debug)]
struct Sequence {
    conv: burn::nn::conv::Conv1d,
    max: burn::nn::pool::MaxPool1d,
    avg: burn::nn::pool::AvgPool1d,
    avg_excluding_pad: burn::nn::pool::AvgPool1d,
    adaptive: burn::nn::pool::AdaptiveAvgPool1d,
}

#[test]
fn one_dimensional_pooling_matches_burn() {
    let d = dev();
    d.seed(7);
    let model = Sequence {
        conv: Conv1dConfig::new(3, 4, 3).init(&d),
        max: MaxPool1dConfig::new(3)
            .with_stride(2)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .with_dilation(2)
            .init(),
        avg: AvgPool1dConfig::new(2)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .init(),
        avg_excluding_pad: AvgPool1dConfig::new(3)
            .with_stride(2)
            .with_padding(PaddingConfig1d::Explicit(1, 1))
            .with_count_include_pad(false)
            .init(),
        adaptive: AdaptiveAvgPool1dConfig::new(3).init(),
    };
    let worst = check_fp32("pool1d", &model, [2, 3, 23], |m, x| {
        let x = m.conv.forward(x);
        let x = m.max.forward(x);
        let x = m.avg.forward(x);
        let x = m.avg_excluding_pad.forward(x);
        m.adaptive.forward(x)
    });
    assert_matches("pool1d", worst);
}

#[test]
fn interpolation_matches_burn() {
    let modes = [
        ("nearest", InterpolateMode::Nearest, false),
        ("bilinear", InterpolateMode::Linear, false),
        ("bilinear_corners", InterpolateMode::Linear, true),
        ("bicubic", InterpolateMode::Cubic, false),
        ("bicubic_corners", InterpolateMode::Cubic, true),
        ("lanczos3", InterpolateMode::Lanczos, false),
        ("lanczos3_corners", InterpolateMode::Lanczos, true),
    ];
    for (name, mode, align_corners) in modes {
        // Up and down, integer and fractional ratios, and an output of one pixel.
        for (size, output) in [([4, 5], [8, 7]), ([6, 8], [10, 5]), ([7, 3], [3, 1])] {
            let resize = Interpolate2dConfig::new()
                .with_output_size(Some(output))
                .with_mode(mode.clone())
                .with_align_corners(align_corners)
                .init();
            let label = format!("interpolate2d_{name}_{size:?}_{output:?}");
            let worst = check_fp32(&label, &resize, [2, 3, size[0], size[1]], |m, x| {
                m.forward(x)
            });
            assert_matches(&label, worst);
        }
        let resize = Interpolate1dConfig::new()
            .with_output_size(Some(11))
            .with_mode(mode)
            .with_align_corners(align_corners)
            .init();
        let label = format!("interpolate1d_{name}");
        assert_matches(
            &label,
            check_fp32(&label, &resize, [2, 3, 6], |m, x| m.forward(x)),
        );
    }
}

/// Burn's CPU backends do not run nearest-exact (only its GPU kernels do): the IR is checked
/// against PyTorch's definition, written out here, source index `min(floor((o + 0.5) * in / out),
/// in - 1)` on each axis.
#[test]
fn nearest_exact_interpolation_takes_pytorchs_source_pixels() {
    let (n, c) = (2, 3);
    for (size, output) in [
        ([4, 5], [8, 7]),
        ([6, 8], [10, 5]),
        ([7, 3], [3, 1]),
        ([5, 5], [3, 2]),
    ] {
        let resize = Interpolate2dConfig::new()
            .with_output_size(Some(output))
            .with_mode(InterpolateMode::NearestExact)
            .init();
        let dir = tempfile::tempdir().unwrap();
        let xml = dir.path().join("nearest_exact.xml");
        export(
            &resize,
            [n, c, size[0], size[1]],
            |m, x| m.forward(x),
            &xml,
            &ExportOptions::default(),
        )
        .unwrap();
        let plane = size[0] * size[1];
        let values: Vec<f32> = (0..n * c * plane).map(|v| v as f32).collect();
        let input = TensorData::new(values, [n, c, size[0], size[1]]);
        let got = ov_forward(&xml, &input);
        let source = |o: usize, from: usize, to: usize| {
            (((o as f64 + 0.5) * from as f64 / to as f64).floor() as usize).min(from - 1)
        };
        let mut expected = Vec::new();
        for p in 0..n * c {
            for y in 0..output[0] {
                for x in 0..output[1] {
                    let (sy, sx) = (source(y, size[0], output[0]), source(x, size[1], output[1]));
                    expected.push((p * plane + sy * size[1] + sx) as f32);
                }
            }
        }
        assert_eq!(got, expected, "{size:?} -> {output:?}");
    }
}

#[test]
fn flip_matches_burn() {
    let d = dev();
    d.seed(5);
    let conv = Conv2dConfig::new([2, 3], [3, 3]).init(&d);
    let worst = check_fp32("flip", &conv, [2, 2, 7, 6], |m, x| {
        m.forward(x.flip([1, 3])).flip([0, 2]).flip([-1])
    });
    assert_matches("flip", worst);
}

#[test]
fn padding_modes_match_burn() {
    let d = dev();
    d.seed(11);
    let conv = Conv2dConfig::new([2, 3], [3, 3]).init(&d);
    for (name, mode) in [
        ("constant", PadMode::Constant(-1.5)),
        ("reflect", PadMode::Reflect),
        ("edge", PadMode::Edge),
    ] {
        let label = format!("pad_{name}");
        let worst = check_fp32(&label, &conv, [2, 2, 7, 6], |m, x| {
            m.forward(x.pad([(1, 2), (0, 3)], mode))
        });
        assert_matches(&label, worst);
    }
}

#[derive(Module, Debug)]
struct Norms {
    conv: burn::nn::conv::Conv2d,
    group: burn::nn::GroupNorm,
    instance: burn::nn::InstanceNorm,
    rms: burn::nn::RmsNorm,
}

#[test]
fn group_instance_and_rms_norms_match_burn() {
    let d = dev();
    d.seed(13);
    let model = Norms {
        conv: Conv2dConfig::new([3, 8], [3, 3]).init(&d),
        group: GroupNormConfig::new(4, 8).init(&d),
        instance: InstanceNormConfig::new(8).init(&d),
        rms: RmsNormConfig::new(5).init(&d),
    };
    let worst = check_fp32("norms", &model, [2, 3, 7, 7], |m, x| {
        let x = m.group.forward(m.conv.forward(x));
        m.rms.forward(m.instance.forward(x))
    });
    assert_matches("norms", worst);
}

#[derive(Module, Debug)]
struct Activations {
    conv: burn::nn::conv::Conv2d,
    prelu: burn::nn::PRelu,
    shared_prelu: burn::nn::PRelu,
    hard_sigmoid: burn::nn::HardSigmoid,
}

#[test]
fn activations_match_burn() {
    let d = dev();
    d.seed(17);
    let model = Activations {
        conv: Conv2dConfig::new([3, 4], [3, 3]).init(&d),
        prelu: PReluConfig::new()
            .with_num_parameters(4)
            .with_alpha(0.1)
            .init(&d),
        shared_prelu: PReluConfig::new().init(&d),
        hard_sigmoid: HardSigmoidConfig::new().init(),
    };
    // Per-channel slopes differ, so a wrong broadcast axis shows.
    let model = crate::common::set_param(model, "prelu.alpha", |v| {
        v.iter()
            .enumerate()
            .map(|(i, _)| 0.1 * (i + 1) as f32)
            .collect()
    });
    let worst = check_fp32("activations", &model, [2, 3, 6, 6], |m, x| {
        let x = m.conv.forward(x);
        let x = Tensor::cat(
            vec![
                m.prelu.forward(x.clone()),
                m.shared_prelu.forward(x.clone()),
                m.hard_sigmoid.forward(x.clone()),
                HardSwish::new().forward(x.clone()),
                SiLU::new().forward(x.clone()),
                Relu6::new().forward(x.clone() * 4.0),
            ],
            1,
        );
        x.flatten::<2>(1, 3)
    });
    assert_matches("activations", worst);
}

#[test]
fn masked_and_logarithmic_activations_match_burn() {
    // Comparisons with `mask_where` / `mask_fill` (ELU, CELU, SELU, softplus and Mish with
    // their thresholds, threshold functions), logarithms (log-sigmoid, softplus) and powers
    // (GELU's tanh approximation), on both sides of every threshold.
    let d = dev();
    d.seed(19);
    let conv = Conv2dConfig::new([3, 4], [3, 3]).init(&d);
    let worst = check_fp32("masked_activations", &conv, [2, 3, 6, 6], |m, x| {
        let x = m.forward(x) * 3.0;
        let x = Tensor::cat(
            vec![
                activation::elu(x.clone(), 0.7),
                activation::celu(x.clone(), 1.3),
                activation::selu(x.clone()),
                activation::softplus(x.clone(), 2.0),
                activation::mish(x.clone()),
                activation::threshold(x.clone(), 0.1, -0.5),
                activation::thresholded_relu(x.clone(), 0.2),
                activation::gelu_approximate(x.clone()),
                activation::log_sigmoid(x.clone()),
                activation::softsign(x.clone()),
                // Functions with one OpenVINO operation each, inside their domains.
                x.clone().cos() + x.clone().sin() * x.clone().tanh().tan(),
                (x.clone() * 0.3).cosh() - (x.clone() * 0.3).sinh(),
                x.clone().tanh().acos() + x.clone().tanh().asin() + x.clone().atan(),
                (x.clone().abs() + 1.0).acosh()
                    + x.clone().asinh()
                    + (x.clone().tanh() * 0.9).atanh(),
                x.clone().floor() + (x.clone() * 0.5).ceil(),
                HardShrinkConfig::new()
                    .with_lambda(0.4)
                    .init()
                    .forward(x.clone()),
                SoftShrinkConfig::new()
                    .with_lambda(0.3)
                    .init()
                    .forward(x.clone()),
                ShrinkConfig::new()
                    .with_lambda(0.2)
                    .with_bias(0.1)
                    .init()
                    .forward(x.clone()),
                HardtanhConfig::new().init().forward(x.clone()),
                Tanhshrink::new().forward(x.clone()),
            ],
            1,
        );
        x.flatten::<2>(1, 3)
    });
    assert_matches("masked_activations", worst);
    // Local response normalisation: a power of the windowed mean of squares.
    let lrn = LocalResponseNormConfig::new(3).with_alpha(0.5).init();
    assert_matches(
        "local_response_norm",
        check_fp32("local_response_norm", &lrn, [2, 5, 4, 4], |m, x| {
            m.forward(x)
        }),
    );
}

#[test]
fn unfold4d_and_fold4d_match_burn() {
    // Plain windows, and strided, padded, dilated ones.
    let plain = Unfold4dConfig::new([2, 3]).init();
    assert_matches(
        "unfold4d",
        check_fp32("unfold4d", &plain, [2, 3, 5, 6], |m, x| m.forward(x)),
    );
    let strided = Unfold4dConfig::new([3, 2])
        .with_stride([2, 1])
        .with_padding([1, 0])
        .with_dilation([1, 2])
        .init();
    assert_matches(
        "unfold4d_strided",
        check_fp32("unfold4d_strided", &strided, [2, 2, 7, 6], |m, x| {
            m.forward(x)
        }),
    );
    // The adjoint: overlapping blocks summed back into a 7×6 image.
    let fold = Fold4dConfig::new([7, 6], [3, 2])
        .with_stride([2, 1])
        .with_padding([1, 0])
        .init();
    assert_matches(
        "fold4d",
        check_fp32("fold4d", &fold, [2, 2 * 6, 20], |m, x| m.forward(x)),
    );
}

#[test]
fn recurrent_layers_match_burn() {
    // Unrolled over the traced sequence length (the batch stays dynamic): the hidden states
    // fill a buffer through `slice_assign` (SliceScatter), the initial state is zeros of the
    // batch's size (Broadcast of the run-time batch).
    let d = dev();
    d.seed(23);
    let lstm = LstmConfig::new(5, 6, true).init(&d);
    assert_matches(
        "lstm",
        check_fp32("lstm", &lstm, [2, 4, 5], |m, x| m.forward(x, None).0),
    );
    let bilstm = BiLstmConfig::new(5, 3, true).init(&d);
    assert_matches(
        "bilstm",
        check_fp32("bilstm", &bilstm, [2, 4, 5], |m, x| m.forward(x, None).0),
    );
    let gru = GruConfig::new(5, 6, true).init(&d);
    assert_matches(
        "gru",
        check_fp32("gru", &gru, [2, 4, 5], |m, x| m.forward(x, None)),
    );
    let bigru = BiGruConfig::new(5, 3, true).init(&d);
    assert_matches(
        "bigru",
        check_fp32("bigru", &bigru, [2, 4, 5], |m, x| m.forward(x, None).0),
    );
    let rnn = RnnConfig::new(5, 6, false).init(&d);
    assert_matches(
        "rnn",
        check_fp32("rnn", &rnn, [2, 4, 5], |m, x| m.forward(x, None).0),
    );
}

/// Offsets (and a modulation mask) computed from the input, as deformable networks do.
#[derive(Module, Debug)]
struct Deformable {
    offsets: Conv2d,
    mask: Conv2d,
    deform: DeformConv2d,
}

#[test]
fn deformable_convolution_matches_burn() {
    let d = dev();
    d.seed(29);
    // 2 offset groups over 4 input channels, 2 weight groups, stride 2, padding 1, kernel 3×3:
    // offsets `[b, 2·2·9, 4, 4]`, mask `[b, 2·9, 4, 4]`.
    let model = Deformable {
        offsets: Conv2dConfig::new([4, 36], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&d),
        mask: Conv2dConfig::new([4, 18], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .init(&d),
        deform: DeformConv2dConfig::new([4, 6], [3, 3])
            .with_stride([2, 2])
            .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
            .with_weight_groups(2)
            .with_offset_groups(2)
            .init(&d),
    };
    let worst = check_fp32("deform_conv2d", &model, [2, 4, 8, 8], |m, x| {
        // Offsets of a few pixels, some reaching past the border.
        let offset = m.offsets.forward(x.clone()) * 3.0;
        let mask = activation::sigmoid(m.mask.forward(x.clone()));
        m.deform.forward(x, offset, Some(mask))
    });
    assert_matches("deform_conv2d", worst);
}

/// Token ids → embedding → mean over the sequence → linear.
#[derive(Module, Debug)]
struct TokenClassifier {
    embed: Embedding,
    head: Linear,
}

impl TokenClassifier {
    fn forward(&self, ids: Tensor<2, Int>) -> Tensor<2> {
        let tokens = self.embed.forward(ids);
        self.head
            .forward(gelu(tokens.mean_dim(1).squeeze_dim::<2>(1)))
    }
}

#[test]
fn embedding_of_integer_ids_matches_burn() {
    let d = dev();
    d.seed(61);
    let model = TokenClassifier {
        embed: EmbeddingConfig::new(50, 8).init(&d),
        head: LinearConfig::new(8, 4).init(&d),
    };
    // The traced batch and another one (dynamic batch), every row of the table reachable.
    let text = assert_ids_agree(
        "embedding",
        &model,
        (7, 4),
        &[(2, 5), (5, 6)],
        |k, seed| ((k as u64 * 7919 + seed * 104_729) % 50) as i64,
        |m, ids| m.forward(ids),
    );
    assert!(text.contains("element_type=\"i64\""), "an i64 input");
    assert!(text.contains("type=\"Gather\""), "a Gather layer");
}

#[test]
fn float_to_integer_conversion_is_refused_by_name() {
    let d = dev();
    let embedding = EmbeddingConfig::new(10, 4).init(&d);
    let dir = tempfile::tempdir().unwrap();
    let xml = dir.path().join("embedding.xml");
    // Ids computed from a float input: float-to-integer conversion (its rounding) is not
    // modelled.
    let err = export(
        &embedding,
        [2, 3],
        |m, x: Tensor<2>| m.forward(x.int()),
        &xml,
        &ExportOptions::default(),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("IntoInt"), "{err}");
    assert!(!xml.exists());
}

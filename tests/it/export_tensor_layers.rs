//! Burn's layers beyond convolutions and norms: pixel shuffle and unshuffle, cosine similarity,
//! pairwise distance, gated activations, a transformer decoder and cross-attention; each
//! exported and run by OpenVINO against Burn's forward (FP32, 1e-4 relative, at the traced batch
//! and another).

use burn::module::Module;
use burn::nn::activation::{RReluConfig, SwiGlu, SwiGluConfig, GLU};
use burn::nn::attention::{generate_autoregressive_mask, CrossAttention, CrossAttentionConfig};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::transformer::{
    TransformerDecoder, TransformerDecoderConfig, TransformerDecoderInput,
};
use burn::nn::{
    CosineSimilarityConfig, Linear, LinearConfig, PairwiseDistanceConfig, PixelShuffleConfig,
    PixelUnshuffleConfig,
};
use burn::tensor::Tensor;

use crate::common::{check_fp32, dev};

fn assert_matches(name: &str, worst: f32) {
    assert!(worst < 1e-4, "{name}: max relative error {worst:.3e}");
}

#[test]
fn pixel_shuffle_and_unshuffle_match_burn() {
    let d = dev();
    d.seed(83);
    let conv = Conv2dConfig::new([2, 8], [3, 3]).init(&d);
    let shuffle = PixelShuffleConfig::new(2).init();
    let unshuffle = PixelUnshuffleConfig::new(2).init();
    let worst = check_fp32("pixel_shuffle", &conv, [2, 2, 6, 8], |m, x| {
        let up = shuffle.forward(m.forward(x));
        unshuffle.forward(up * 2.0)
    });
    assert_matches("pixel_shuffle", worst);
}

#[test]
fn cosine_similarity_and_pairwise_distance_match_burn() {
    let d = dev();
    d.seed(89);
    let conv = Conv2dConfig::new([1, 1], [1, 1]).init(&d);
    let cosine = CosineSimilarityConfig::new().init();
    let distance = PairwiseDistanceConfig::new().init();
    let worst = check_fp32("similarity", &conv, [2, 1, 2, 6], |m, x| {
        let [batch, ..] = x.dims();
        let rows = m.forward(x).reshape([batch, 2, 6]);
        let first = rows.clone().slice([0..batch, 0..1]).reshape([batch, 6]);
        let second = rows.slice([0..batch, 1..2]).reshape([batch, 6]);
        let c = cosine.forward(first.clone(), second.clone());
        let p = distance.forward(first, second);
        Tensor::stack::<2>(vec![c, p], 1)
    });
    assert_matches("similarity", worst);
}

/// GLU, SwiGLU and RReLU (its evaluation form, a leaky ReLU with the middle slope).
#[derive(Module, Debug)]
struct Gated {
    conv: Conv2d,
    swiglu: SwiGlu,
}

#[test]
fn gated_and_randomized_activations_match_burn() {
    let d = dev();
    d.seed(101);
    let model = Gated {
        conv: Conv2dConfig::new([2, 8], [3, 3]).init(&d),
        swiglu: SwiGluConfig::new(6, 5).with_bias(true).init(&d),
    };
    let worst = check_fp32("gated", &model, [2, 2, 5, 8], |m, x| {
        let y = m.conv.forward(x); // [b, 8, 3, 6]
        let glu = GLU::new(1).forward(y.clone()); // [b, 4, 3, 6]
        let rrelu = RReluConfig::new().init().forward(y.clone() * 3.0);
        let swiglu = m.swiglu.forward(y.flatten::<3>(1, 2)); // [b, 24, 5]
        Tensor::cat(
            vec![
                glu.flatten::<2>(1, 3),
                rrelu.flatten::<2>(1, 3),
                swiglu.flatten::<2>(1, 2),
            ],
            1,
        )
    });
    assert_matches("gated", worst);
}

/// A transformer decoder over a target projected from the input, with a causal target mask,
/// then a cross-attention into a narrower memory (another projection) with a padding mask.
#[derive(Module, Debug)]
struct DecoderBlock {
    target: Linear,
    memory: Linear,
    decoder: TransformerDecoder,
    cross: CrossAttention,
}

#[test]
fn transformer_decoder_and_cross_attention_match_burn() {
    let d = dev();
    d.seed(103);
    let (width, length) = (8, 4);
    let model = DecoderBlock {
        target: LinearConfig::new(width, width).init(&d),
        memory: LinearConfig::new(width, 6).init(&d),
        decoder: TransformerDecoderConfig::new(width, 16, 2, 1)
            .with_dropout(0.0)
            .init(&d),
        cross: CrossAttentionConfig::new(width, 6, 2, 2, 4)
            .with_dropout(0.0)
            .init(&d),
    };
    let worst = check_fp32("decoder", &model, [2, length, width], |m, x| {
        let [batch, ..] = x.dims();
        let device = x.device();
        let target = m.target.forward(x.clone());
        let memory = m.memory.forward(x.clone());
        let causal = generate_autoregressive_mask(batch, length, &device);
        // The memory's last position is padding where the input's first feature is negative.
        let last = x.clone().slice([0..batch, length - 1..length, 0..1]);
        let padding = Tensor::cat(
            vec![
                Tensor::<3>::zeros([batch, length - 1, 1], &device).greater_elem(1.0),
                last.lower_elem(0.0),
            ],
            1,
        )
        .reshape([batch, length]);
        // The decoder attends over the target itself as memory (tanh of it), causally.
        let decoded = m.decoder.forward(
            TransformerDecoderInput::new(target.clone(), target.tanh()).target_mask_attn(causal),
        );
        let crossed = m.cross.forward(decoded.clone(), memory, Some(padding));
        (decoded + crossed).flatten::<2>(1, 2)
    });
    assert_matches("decoder", worst);
}

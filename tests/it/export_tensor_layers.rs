//! Burn's parameter-free layers over whole tensors: pixel shuffle and unshuffle, cosine
//! similarity, pairwise distance; each exported and run by OpenVINO against Burn's forward
//! (FP32, 1e-4 relative, at the traced batch and another).

use burn::nn::conv::Conv2dConfig;
use burn::nn::{
    CosineSimilarityConfig, PairwiseDistanceConfig, PixelShuffleConfig, PixelUnshuffleConfig,
};

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
        burn::tensor::Tensor::stack::<2>(vec![c, p], 1)
    });
    assert_matches("similarity", worst);
}

//! Reductions, arg max / min, running sums, indexed reads and remainders: each exported with a
//! dynamic batch and run by OpenVINO at two batch sizes against Burn (FP32, 1e-4 relative).

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::Tensor;

use crate::common::{check_fp32, dev};

fn assert_matches(name: &str, worst: f32) {
    assert!(worst < 1e-4, "{name}: max relative error {worst:.3e}");
}

fn conv() -> Conv2d {
    let d = dev();
    d.seed(97);
    Conv2dConfig::new([2, 4], [3, 3]).init(&d)
}

#[test]
fn reductions_along_axes_and_over_everything_match_burn() {
    let conv = conv();
    let worst = check_fp32("reductions", &conv, [2, 2, 6, 7], |m, x| {
        let y = m.forward(x); // [b, 4, 4, 5]
        let [batch, ..] = y.dims();
        let per_axis = Tensor::cat(
            vec![
                y.clone().max_dim(2),
                y.clone().min_dim(2),
                y.clone().sum_dim(2),
                y.clone().mul_scalar(0.5).add_scalar(1.0).prod_dim(2),
                y.clone().max_abs_dim(2),
            ],
            2,
        ); // [b, 4, 5, 5]
           // Whole-tensor reductions (one value each), broadcast back over the batch.
        let whole = (y.clone().max() - y.clone().min() + y.clone().mean() + y.clone().max_abs())
            .reshape([1, 1, 1, 1]);
        let scaled = y.clone().sum().reshape([1, 1, 1, 1]).abs().add_scalar(1.0);
        (per_axis + whole / scaled).reshape([batch, 100])
    });
    assert_matches("reductions", worst);
}

#[test]
fn arg_extremes_cumulative_sums_gathers_and_remainders_match_burn() {
    let conv = conv();
    let worst = check_fp32("indices", &conv, [2, 2, 6, 7], |m, x| {
        let y = m.forward(x); // [b, 4, 4, 5]
        let largest = y.clone().argmax(3); // [b, 4, 4, 1], integer
        let smallest = y.clone().argmin(1); // [b, 1, 4, 5]
                                            // The values at the arg max, read back with `gather`, equal `max_dim`.
        let at_largest = y.clone().gather(3, largest.clone());
        let running = y.clone().cumsum(3);
        let remainder =
            y.clone().remainder_scalar(0.7) + y.clone().remainder(y.clone().abs().add_scalar(0.3));
        let finite = y.clone().is_nan().bool_not().float() + y.clone().is_inf().float();
        // Boolean reductions: whether each row has a positive value, whether all are finite.
        let any_positive = y.clone().greater_elem(0.0).any_dim(3).float();
        let all_finite = y
            .clone()
            .is_nan()
            .bool_not()
            .all()
            .float()
            .reshape([1, 1, 1, 1]);
        let finite = finite + any_positive + all_finite;
        let flat = |t: Tensor<4>| t.flatten::<2>(1, 3);
        Tensor::cat(
            vec![
                flat(largest.float()),
                flat(smallest.float()),
                flat(at_largest),
                flat(running),
                flat(remainder),
                flat(finite),
            ],
            1,
        )
    });
    assert_matches("indices", worst);
}

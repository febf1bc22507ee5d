//! `conv::conv2d` against Burn's own `conv2d` on Flex with autodiff: the same output and weight
//! and bias gradients bit for bit, the same input gradient up to summation order where its own
//! kernel computes it (few input channels, stride 1) and bit for bit where it leaves the work to
//! Burn (a stride of 2, more channels).

use burn::tensor::module::conv2d as burn_conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use burn_compress_core::conv::{conv2d, FEW_CHANNELS};

/// Values, and the gradients of `sum(conv(x)·r)` for `x`, the weight and the bias.
struct Run {
    output: Vec<f32>,
    input_grad: Vec<f32>,
    weight_grad: Vec<f32>,
    bias_grad: Vec<f32>,
}

fn read<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().expect("f32")
}

#[allow(clippy::type_complexity)]
fn run(
    conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>,
    [x, weight, bias, r]: &[Tensor<4>; 4],
    options: &ConvOptions<2>,
) -> Run {
    let x = x.clone().require_grad();
    let weight = weight.clone().require_grad();
    let bias: Tensor<1> = bias.clone().flatten(0, 3).require_grad();
    let output = conv(
        x.clone(),
        weight.clone(),
        Some(bias.clone()),
        options.clone(),
    );
    let grads = output.clone().mul(r.clone()).sum().backward();
    Run {
        output: read(output),
        input_grad: read(x.grad(&grads).expect("input gradient")),
        weight_grad: read(weight.grad(&grads).expect("weight gradient")),
        bias_grad: read(bias.grad(&grads).expect("bias gradient")),
    }
}

fn bits(values: &[f32]) -> Vec<u32> {
    values.iter().map(|v| v.to_bits()).collect()
}

#[test]
fn matches_burns_conv2d_on_flex() {
    let device = Device::flex().autodiff();
    device.seed(11);
    // (in channels, out channels, groups, input size, kernel, stride, dilation, padding)
    type Case = (
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [(usize, usize); 2],
    );
    let cases: [Case; 6] = [
        (1, 32, 1, [28, 28], [3, 3], [1, 1], [1, 1], [(0, 0); 2]),
        (3, 16, 1, [15, 17], [3, 3], [1, 1], [1, 1], [(1, 1); 2]),
        (2, 6, 2, [11, 9], [3, 2], [1, 1], [2, 1], [(2, 1), (0, 3)]),
        // Flex's input gradient: a stride of 2, and more input channels than the kernel takes.
        (3, 8, 1, [16, 16], [3, 3], [2, 2], [1, 1], [(1, 1); 2]),
        (
            FEW_CHANNELS + 1,
            8,
            1,
            [10, 10],
            [3, 3],
            [1, 1],
            [1, 1],
            [(1, 1); 2],
        ),
        (1, 4, 1, [6, 7], [1, 1], [1, 1], [1, 1], [(0, 0); 2]),
    ];
    for (in_channels, out_channels, groups, [h, w], kernel, stride, dilation, padding) in cases {
        let what = format!("{in_channels}→{out_channels} ch, groups {groups}, {h}x{w}, kernel {kernel:?}, stride {stride:?}, dilation {dilation:?}, padding {padding:?}");
        let options = ConvOptions::new_with_padding(stride, padding, dilation, groups);
        let normal = Distribution::Normal(0.0, 1.0);
        let x = Tensor::<4>::random([4, in_channels, h, w], normal, &device);
        let weight = Tensor::<4>::random(
            [out_channels, in_channels / groups, kernel[0], kernel[1]],
            normal,
            &device,
        );
        let bias = Tensor::<4>::random([out_channels, 1, 1, 1], normal, &device);
        let output_shape = burn_conv2d(x.clone(), weight.clone(), None, options.clone()).shape();
        let r = Tensor::<4>::random(output_shape, normal, &device);
        let operands = [x, weight, bias, r];
        let ours = run(conv2d, &operands, &options);
        let burn = run(burn_conv2d, &operands, &options);
        assert_eq!(bits(&ours.output), bits(&burn.output), "{what}: output");
        assert_eq!(
            bits(&ours.weight_grad),
            bits(&burn.weight_grad),
            "{what}: weight gradient"
        );
        assert_eq!(
            bits(&ours.bias_grad),
            bits(&burn.bias_grad),
            "{what}: bias gradient"
        );
        let own_kernel = stride == [1, 1] && in_channels / groups <= FEW_CHANNELS;
        if own_kernel {
            for (k, (a, b)) in ours.input_grad.iter().zip(&burn.input_grad).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{what}: input gradient {k}: {a} against {b}"
                );
            }
        } else {
            assert_eq!(
                bits(&ours.input_grad),
                bits(&burn.input_grad),
                "{what}: input gradient"
            );
        }
    }
}

/// Where `x` is not tracked (FP32 training's first layer), the gradients of the weight and bias
/// are Burn's.
#[test]
fn untracked_input_keeps_burns_gradients() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let normal = Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random([2, 1, 9, 9], normal, &device);
    let weight = Tensor::<4>::random([4, 1, 3, 3], normal, &device).require_grad();
    let options = ConvOptions::new([1, 1], [0, 0], [1, 1], 1);
    let grad_of =
        |conv: fn(Tensor<4>, Tensor<4>, Option<Tensor<1>>, ConvOptions<2>) -> Tensor<4>| {
            let grads = conv(x.clone(), weight.clone(), None, options.clone())
                .sum()
                .backward();
            read(weight.grad(&grads).expect("weight gradient"))
        };
    assert_eq!(bits(&grad_of(conv2d)), bits(&grad_of(burn_conv2d)));
}

//! The host-side level rounding (a shift by 1.5·2^23 that vectorises) against the standard
//! library's `round_ties_even`, on every half and quarter step of an 8-bit grid, a dense sweep,
//! both zeros and NaN.

use burn_compress_core::fake_quant::host;

#[test]
fn level_rounding_equals_round_ties_even() {
    let quarters = (0..=255 * 4).map(|k| k as f32 / 4.0);
    let sweep = (0..=1_000_000).map(|k| k as f32 * 255.0 / 1_000_000.0);
    let below_one = (0..=1000).map(|k| k as f32 * 1e-3);
    for v in quarters
        .chain(sweep)
        .chain(below_one)
        .chain([0.0, -0.0, 255.0])
    {
        assert_eq!(
            host::round_level(v).to_bits(),
            v.round_ties_even().to_bits(),
            "rounding {v}"
        );
    }
    assert!(host::round_level(f32::NAN).is_nan());
}

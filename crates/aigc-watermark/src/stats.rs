//! Detection statistics: a normalised correlation `z` is standard normal on unmarked content,
//! so its one-sided tail is the false-positive probability of one hypothesis; searching `K`
//! hypotheses (keys, scales, rotations, offsets, speeds) multiplies it by `K` (Bonferroni).

/// P(Z > z) for a standard normal Z.
pub fn normal_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

/// The false-positive probability of the best of `hypotheses` scores reaching `z`, capped at 1.
pub fn false_positive_probability(z: f64, hypotheses: f64) -> f64 {
    (normal_tail(z) * hypotheses.max(1.0)).min(1.0)
}

/// The score a detector must reach so that the corrected false-positive probability is at most
/// `target` over `hypotheses` hypotheses.
pub fn z_threshold(target: f64, hypotheses: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if false_positive_probability(mid, hypotheses) > target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_thresholds_from_the_spec() {
        // The spec's reference points: z 4.75 → 1e-6, 6.0 → 1e-9, 1e-6 over 10⁴ hypotheses → 6.36.
        assert!(
            (normal_tail(4.75) / 1.017e-6 - 1.0).abs() < 0.01,
            "{}",
            normal_tail(4.75)
        );
        assert!(
            (normal_tail(6.0) / 9.866e-10 - 1.0).abs() < 0.01,
            "{}",
            normal_tail(6.0)
        );
        assert!(
            (z_threshold(1e-6, 1e4) - 6.36).abs() < 0.01,
            "{}",
            z_threshold(1e-6, 1e4)
        );
        assert_eq!(false_positive_probability(0.0, 1e6), 1.0);
        assert!((normal_tail(0.0) - 0.5).abs() < 1e-12);
    }
}

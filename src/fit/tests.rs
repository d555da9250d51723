//! The USL fit against published reference values: the test vectors and datasets of the
//! R `usl` package (Stefan Möding, github.com/smoeding/usl: `tests/*.Rout.save`, data
//! from `data/*.rda`) and, independently, the "Cisco" benchmark of Baron Schwartz's
//! *Practical Scalability Analysis with the Universal Scalability Law* (2015) whose
//! fitted values the book lists.

use super::*;

fn points(data: &[(f64, f64)]) -> Vec<Measurement> {
    data.iter()
        .map(|&(concurrency, throughput)| Measurement {
            concurrency,
            throughput,
        })
        .collect()
}

/// `|got - want| <= tol * |want|`.
#[track_caller]
fn close(name: &str, got: f64, want: f64, tol: f64) {
    assert!(
        (got - want).abs() <= tol * want.abs(),
        "{name}: got {got}, want {want} (relative error {:.3e} > {tol:e})",
        (got - want).abs() / want.abs()
    );
}

/// `tests/coef.R` (and `usl-nls.R`): alpha = beta = 0.02, gamma = 1.
const COEF: [(f64, f64); 6] = [
    (1.0, 1.0),
    (2.0, 1.8868),
    (4.0, 3.0769),
    (6.0, 3.5294),
    (8.0, 3.5398),
    (10.0, 3.3557),
];

/// `data(specsdm91)`: SPEC SDM91 on a Sun SPARCcenter 2000 (Gunther, *Guerrilla Capacity
/// Planning*, 2007).
pub(crate) const SPECSDM91: [(f64, f64); 7] = [
    (1.0, 64.9),
    (18.0, 995.9),
    (36.0, 1652.4),
    (72.0, 1853.2),
    (108.0, 1828.9),
    (144.0, 1775.0),
    (216.0, 1702.2),
];

/// `data(raytracer)`: ray tracing on an SGI Origin 2000 (same source).
pub(crate) const RAYTRACER: [(f64, f64); 11] = [
    (1.0, 20.0),
    (4.0, 78.0),
    (8.0, 130.0),
    (12.0, 170.0),
    (16.0, 190.0),
    (20.0, 200.0),
    (24.0, 210.0),
    (28.0, 230.0),
    (32.0, 260.0),
    (48.0, 280.0),
    (64.0, 310.0),
];

/// Schwartz (2015), the Cisco measurements; the book lists lambda = 995.6486,
/// sigma = 0.02671591, kappa = 7.690945e-4, Nmax = 35, Xmax = 12341.
pub(crate) const CISCO: [(f64, f64); 32] = [
    (1.0, 955.16),
    (2.0, 1878.91),
    (3.0, 2688.01),
    (4.0, 3548.68),
    (5.0, 4315.54),
    (6.0, 5130.43),
    (7.0, 5931.37),
    (8.0, 6531.08),
    (9.0, 7219.8),
    (10.0, 7867.61),
    (11.0, 8278.71),
    (12.0, 8646.7),
    (13.0, 9047.84),
    (14.0, 9426.55),
    (15.0, 9645.37),
    (16.0, 9897.24),
    (17.0, 10097.6),
    (18.0, 10240.5),
    (19.0, 10532.39),
    (20.0, 10798.52),
    (21.0, 11151.43),
    (22.0, 11518.63),
    (23.0, 11806.0),
    (24.0, 12089.37),
    (25.0, 12075.41),
    (26.0, 12177.29),
    (27.0, 12211.41),
    (28.0, 12158.93),
    (29.0, 12155.27),
    (30.0, 12118.04),
    (31.0, 12140.4),
    (32.0, 12074.39),
];

#[test]
fn r_usl_coef_vector() {
    // coef.Rout.save: signif(alpha, 3) = 0.02, signif(beta, 3) = 0.02, gamma 1.00.
    let f = fit_usl(&points(&COEF)).unwrap();
    close("sigma", f.sigma, 0.02, 1e-3);
    close("kappa", f.kappa, 0.02, 1e-3);
    close("lambda", f.lambda, 1.0, 1e-3);
    let (n, x) = f.peak().unwrap();
    close("peak N", n, (0.98_f64 / 0.02).sqrt(), 1e-3);
    close("peak X", x, usl_throughput(1.0, 0.02, 0.02, n), 1e-3);
}

#[test]
fn r_usl_specsdm91() {
    let f = fit_usl(&points(&SPECSDM91)).unwrap();
    // summary.Rout.save: estimates and standard errors (4 significant digits).
    close("sigma", f.sigma, 2.773e-2, 1e-3);
    close("kappa", f.kappa, 1.044e-4, 1e-3);
    close("lambda", f.lambda, 90.00, 1e-3);
    close("sigma se", f.sigma_se.unwrap(), 9.122e-3, 1e-3);
    close("kappa se", f.kappa_se.unwrap(), 1.988e-5, 1e-3);
    close("lambda se", f.lambda_se.unwrap(), 14.21, 1e-3);
    // "Residual standard error: 82.85 on 4 degrees of freedom", "Multiple R-squared: 0.9896".
    close("residual se", f.residual_se.unwrap(), 82.85, 1e-3);
    close("r_squared", f.r_squared, 0.9896, 1e-3);
    // peak-scalability.R: all.equal(peak.scalability(u), 96.51956, 0.0001).
    close("peak N", f.peak().unwrap().0, 96.51956, 1e-4);
    // fitted.Rout.save (3 significant digits) and residuals.Rout.save.
    let fitted = [90.0, 1078.0, 1541.0, 1850.0, 1879.0, 1822.0, 1646.0];
    let residuals = [-25.10, -81.66, 111.09, 3.05, -49.99, -46.60, 56.00];
    for (i, &(n, x)) in SPECSDM91.iter().enumerate() {
        let y = f.throughput(n);
        assert!(
            (y - fitted[i]).abs() <= 0.5,
            "fitted[{i}] {y} vs {}",
            fitted[i]
        );
        assert!(
            (x - y - residuals[i]).abs() <= 0.005,
            "residual[{i}] {} vs {}",
            x - y,
            residuals[i]
        );
    }
    // optimal-scalability.R (1 / alpha) and limit-scalability.R (gamma / alpha).
    close("optimal N", 1.0 / f.sigma, 36.06401, 1e-4);
    close("limit X", f.lambda / f.sigma, 3245.589, 1e-4);
}

#[test]
fn r_usl_raytracer_sits_on_the_kappa_bound() {
    let f = fit_usl(&points(&RAYTRACER)).unwrap();
    // confint.Rout.save: coef alpha 0.0578, beta 0.0000, gamma 21.8488, and intervals
    // est ± se * qt(0.95, n - 1) (the package's convention): alpha [0.033677, 0.081864],
    // beta [-0.000214, 0.000214], gamma [17.868380, 25.829306].
    assert_eq!(f.kappa, 0.0, "kappa is on its bound");
    let t = 1.812_461_122_811_676; // qt(0.95, 10)
    close("sigma", f.sigma, (0.033677 + 0.081864) / 2.0, 1e-3);
    close("lambda", f.lambda, 21.8488, 1e-3);
    close(
        "sigma se",
        f.sigma_se.unwrap(),
        (0.081864 - 0.033677) / 2.0 / t,
        1e-3,
    );
    close("kappa se", f.kappa_se.unwrap(), 0.000214 / t, 3e-3); // 3 digits published
    close(
        "lambda se",
        f.lambda_se.unwrap(),
        (25.829306 - 17.868380) / 2.0 / t,
        1e-3,
    );
    assert_eq!(f.peak(), None, "no peak with kappa = 0");
    close("ceiling", f.ceiling().unwrap(), f.lambda / f.sigma, 1e-12);
}

#[test]
fn r_usl_raytracer_first_five_rows() {
    // warn-accuracy.Rout.save: coef 0.028, 0.001, 21.059 (3 decimals printed).
    let f = fit_usl(&points(&RAYTRACER[..5])).unwrap();
    assert!((f.sigma - 0.028).abs() <= 5e-4, "{f:?}");
    assert!((f.kappa - 0.001).abs() <= 5e-4, "{f:?}");
    assert!((f.lambda - 21.059).abs() <= 5e-4, "{f:?}");
}

#[test]
fn schwartz_cisco_benchmark() {
    let f = fit_usl(&points(&CISCO)).unwrap();
    close("sigma", f.sigma, 0.02671591, 1e-5);
    close("kappa", f.kappa, 7.690945e-4, 1e-5);
    close("lambda", f.lambda, 995.6486, 1e-5);
    let (n, _) = f.peak().unwrap();
    assert_eq!(n.floor(), 35.0);
    // The book's Xmax is X at the whole concurrency below the peak.
    close("X(35)", f.throughput(35.0), 12341.745415132369, 1e-5);
}

#[test]
fn exact_curves_are_recovered_on_and_off_the_bounds() {
    for (lambda, sigma, kappa) in [
        (250.0, 0.05, 0.001),
        (250.0, 0.05, 0.0),
        (250.0, 0.0, 0.002),
        (250.0, 0.0, 0.0),
        (0.5, 0.3, 0.04),
    ] {
        let data: Vec<Measurement> = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0]
            .iter()
            .map(|&n| Measurement {
                concurrency: n,
                throughput: usl_throughput(lambda, sigma, kappa, n),
            })
            .collect();
        let f = fit_usl(&data).unwrap();
        let what = format!("{lambda},{sigma},{kappa}: {f:?}");
        assert!((f.lambda - lambda).abs() <= 1e-8 * lambda, "{what}");
        assert!((f.sigma - sigma).abs() <= 1e-9, "{what}");
        assert!((f.kappa - kappa).abs() <= 1e-11, "{what}");
        assert!(f.sse <= 1e-12 * lambda * lambda, "{what}");
    }
}

#[test]
fn the_fit_is_deterministic_and_order_free() {
    let a = fit_usl(&points(&SPECSDM91)).unwrap();
    let b = fit_usl(&points(&SPECSDM91)).unwrap();
    assert_eq!(a, b);
    let mut rev = points(&SPECSDM91);
    rev.reverse();
    let c = fit_usl(&rev).unwrap();
    close("sigma", c.sigma, a.sigma, 1e-9);
    close("kappa", c.kappa, a.kappa, 1e-9);
}

#[test]
fn too_few_points_and_bad_values() {
    let e = fit_usl(&points(&[(1.0, 1.0), (2.0, 1.9)])).unwrap_err();
    assert_eq!(
        e,
        FitError::TooFewPoints {
            points: 2,
            distinct: 2
        }
    );
    let e = fit_usl(&points(&[(1.0, 1.0), (2.0, 1.9), (2.0, 1.8), (1.0, 1.1)])).unwrap_err();
    assert!(e.to_string().contains("at 2 distinct"), "{e}");
    let e = fit_usl(&points(&[(1.0, 1.0), (-2.0, 1.9), (3.0, 2.0)])).unwrap_err();
    assert!(matches!(e, FitError::BadValue { index: 1, .. }), "{e}");
    let e = fit_usl(&points(&[(1.0, 0.0), (2.0, 0.0), (3.0, 0.0)])).unwrap_err();
    assert_eq!(e, FitError::NoThroughput);
    // Exactly three points: a fit, but no standard errors.
    let f = fit_usl(&points(&COEF[..3])).unwrap();
    assert_eq!(f.sigma_se, None);
    assert_eq!(f.residual_se, None);
}

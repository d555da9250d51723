//! Draws the sample figures and a sample report from the CSVs under `tests/data/`, so
//! they can be looked at: `cargo run --release --example report_samples [OUT_DIR]`
//! (default `output/report-samples/`, git-ignored).

use std::path::PathBuf;

use fleetsim::output::write_atomic;
use fleetsim::report::html::{CalloutKind, HtmlPage};
use fleetsim::report::{failure_curve_from_csv, plot::XAxis, timeline_from_csv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "output/report-samples".into()),
    );
    let timeseries = include_str!("../tests/data/timeseries.csv");
    let curves = include_str!("../tests/data/curves.csv");

    let mut timeline = timeline_from_csv(timeseries, &["payments-prod".to_string()])?;
    timeline
        .markers
        .push(fleetsim::report::plot::Marker::new(4200.0, "istiod 40->1"));
    timeline.markers.push(fleetsim::report::plot::Marker::new(
        4320.0,
        "delete failed CSRs",
    ));
    timeline.markers.push(fleetsim::report::plot::Marker::new(
        4380.0,
        "paced restarts",
    ));
    let mut curve = failure_curve_from_csv(curves, "ca_rate_per_s", "strategy")?;
    curve.x_axis = XAxis::Log;
    curve.x_label = "CA signing rate (CSRs/s)".into();

    let timeline_svg = timeline.to_svg()?;
    let curve_svg = curve.to_svg()?;
    write_atomic(&out.join("timeline.png"), &timeline.to_png()?)?;
    write_atomic(&out.join("timeline.svg"), timeline_svg.as_bytes())?;
    write_atomic(&out.join("failure_curve.png"), &curve.to_png()?)?;
    write_atomic(&out.join("failure_curve.svg"), curve_svg.as_bytes())?;

    let page = HtmlPage::new("Pre-maintenance review: AMI rollout, fleet eu-west")
        .subtitle("scenario incident-ca-herd.toml · seed 42 · sample data")
        .section("Scenario")
        .facts(&[
            ("Clusters", "3 (2 waves)"),
            ("Pods", "2500, 1600 in payments-prod"),
            ("Certificate authorities", "pca-shared, pca-payments"),
            ("istiod", "40 replicas in payments-prod"),
        ])
        .callout(
            CalloutKind::Recommendation,
            "Use adaptive-aimd restarts: P(failure) 0.02 [0.00, 0.11] at 80 CSRs/s.",
        )
        .section("Fleet timeline")
        .figure(
            &timeline_svg,
            "Fleet totals; payments-prod highlighted.",
            "timeseries.csv",
        )
        .section("Failure curves")
        .figure(
            &curve_svg,
            "Failure probability by CA rate and strategy.",
            "curves.csv",
        )
        .table(
            &["strategy", "P(failure) at 80/s", "time to recover p50"],
            &[
                vec![
                    "all-at-once".into(),
                    "0.22 [0.13, 0.35]".into(),
                    "20m11s".into(),
                ],
                vec![
                    "adaptive-aimd".into(),
                    "0.02 [0.00, 0.11]".into(),
                    "6m10s".into(),
                ],
            ],
            &[1],
        )
        .callout(
            CalloutKind::Warning,
            "payments-prod does not recover without action.",
        );
    write_atomic(&out.join("report.html"), page.render().as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}

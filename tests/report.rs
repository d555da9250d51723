//! `fleetsim report`: the review page renders in headless Chromium with no console
//! message and every figure present; it is self-contained, deterministic, and every
//! figure's CSV is written beside it; bad input exits 2 and writes nothing.
//!
//! How the browser check works (robust without a driver or a network): Chromium loads
//! the page from a file with `--dump-dom` and `--enable-logging=stderr --v=0`, which
//! prints every console message as an `INFO:CONSOLE` line on stderr. The page carries a
//! Content Security Policy that forbids every fetch, so an attempt to load anything
//! (an image, a stylesheet, a font, a script) is blocked *and* reported on the console.
//! No `CONSOLE` line means no script error and no fetch. The dumped DOM (after parsing)
//! must hold one inline `<svg>` with drawn content per `<figure>`. A second invocation
//! takes a screenshot, checked to be a real PNG with drawn content. The negative
//! controls below prove that both checks catch what they look for.
//!
//! Chromium is found as `CHROMIUM` (a path), else `chromium`, `chromium-browser` or
//! `google-chrome` on `PATH`, else `/usr/bin/chromium`. Without one the browser checks
//! are skipped with one line saying how to install it; `FLEETSIM_REQUIRE_BROWSER=1`
//! (`.ci/run` sets it, after installing Debian's `chromium`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::util::{find_on_path, fleetsim, fleetsim_in, is_executable, root, skip_unless_required};

/// The browser binary, or `None` (after saying so) when there is none.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "CHROMIUM={} is not an executable",
            p.display()
        );
        return Some(p);
    }
    let found = find_on_path(&["chromium", "chromium-browser", "google-chrome"])
        .or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| is_executable(p)));
    if found.is_none() {
        skip_unless_required(
            "FLEETSIM_REQUIRE_BROWSER",
            "report browser checks",
            "no Chromium found (install it, e.g. `apt-get install chromium`, or set \
             CHROMIUM=/path/to/chrome)",
        );
    }
    found
}

fn browser_command(bin: &Path, profile: &Path) -> Command {
    let mut c = Command::new(bin);
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

/// What Chromium saw: the DOM after parsing, and the console messages.
struct Loaded {
    dom: String,
    console: Vec<String>,
}

fn load(bin: &Path, page: &Path) -> Loaded {
    let profile = tempfile::tempdir().unwrap();
    let out = browser_command(bin, profile.path())
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "chromium failed: {stderr}");
    Loaded {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE"))
            .map(str::to_string)
            .collect(),
    }
}

fn screenshot(bin: &Path, page: &Path, png: &Path, height: u32) {
    let profile = tempfile::tempdir().unwrap();
    let out = browser_command(bin, profile.path())
        .arg(format!("--window-size=1280,{height}"))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("start chromium");
    assert!(
        out.status.success() && png.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Problems with the figures in a DOM: each `<figure>` must hold an `<svg>` that draws
/// something. Returns the number of figures and the problems found.
fn figure_problems(dom: &str) -> (usize, Vec<String>) {
    let mut problems = Vec::new();
    let figures: Vec<&str> = dom.split("<figure").skip(1).collect();
    for (i, f) in figures.iter().enumerate() {
        let body = f.split("</figure>").next().unwrap_or("");
        let Some(svg_at) = body.find("<svg") else {
            problems.push(format!("figure {} has no inline <svg>", i + 1));
            continue;
        };
        let svg = &body[svg_at..];
        let marks = ["<path", "<line", "<polyline", "<rect", "<circle", "<text"]
            .iter()
            .map(|m| svg.matches(m).count())
            .sum::<usize>();
        if marks < 20 {
            problems.push(format!("figure {} draws only {marks} marks", i + 1));
        }
        if !svg.contains("</svg>") {
            problems.push(format!("figure {}: <svg> not closed", i + 1));
        }
    }
    (figures.len(), problems)
}

/// A PNG with drawn content: decodes, and more than 3 % of its pixels are not white.
fn png_problems(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let decoder = png::Decoder::new(std::io::BufReader::new(file));
    let mut reader = match decoder.read_info() {
        Ok(r) => r,
        Err(e) => return Some(format!("not a PNG: {e}")),
    };
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = match reader.next_frame(&mut buf) {
        Ok(i) => i,
        Err(e) => return Some(format!("bad PNG frame: {e}")),
    };
    let channels = info.color_type.samples();
    let pixels = &buf[..info.buffer_size()];
    let total = pixels.len() / channels;
    let inked = pixels
        .chunks(channels)
        .filter(|p| p.iter().take(3).any(|&v| v < 235))
        .count();
    (inked * 100 < total * 3).then(|| format!("{inked} of {total} pixels drawn: blank?"))
}

/// Static self-containment: nothing that could fetch.
fn fetch_problems(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut problems = Vec::new();
    for needle in [
        "<script", "<link", "<iframe", "<object", "<embed", "<img", "@import", "url(", " src=",
    ] {
        if lower.contains(needle) {
            problems.push(format!("contains {needle:?}"));
        }
    }
    for href in lower.split("href=\"").skip(1) {
        let target = href.split('"').next().unwrap_or("");
        if target.contains("://") || target.starts_with("//") {
            problems.push(format!("links outside: {target}"));
        }
    }
    problems
}

#[test]
fn incident_report_loads_in_chromium_with_every_figure_and_no_console_message() {
    let dir = tempfile::tempdir().unwrap();
    let sweep_dir = dir.path().join("sweep");
    let scenario = root().join("scenarios/incident-ca-herd.toml");
    let sc = scenario.to_str().unwrap();
    // A small sweep of istiod replicas (one seed per point) for the failure curves, and
    // a threshold loose enough that 3 clean runs qualify, so every figure is drawn.
    let loose = "sweep.max_failure_p=0.6";
    fleetsim(&[
        "sweep",
        sc,
        "--seeds",
        "1",
        "--set",
        loose,
        "--out",
        sweep_dir.to_str().unwrap(),
    ])
    .expect_code(0);
    let page = dir.path().join("review/report.html");
    let run = fleetsim_in(
        &root(),
        &[
            "report",
            sweep_dir.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
            "--seeds",
            "3",
            "--set",
            loose,
        ],
    )
    .expect_code(0);
    assert!(
        run.stdout
            .starts_with("seed=1 scenario=incident-ca-herd hash="),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("<- recommended"), "{}", run.stdout);
    assert!(run.stdout.contains("4 figures"), "{}", run.stdout);
    assert!(!run.stderr.contains("warning"), "{}", run.stderr);

    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(fetch_problems(&html), Vec::<String>::new());
    for must in [
        "Pre-maintenance review: incident-ca-herd",
        "31 clusters: canary, payments, web ×29",
        "40 in payments; 2 in 30 other clusters",
        "As written, the upgrade fails",
        "<strong>Recommendation</strong><p>Use ",
        "Fleet timeline with ",
        "Failure curves from the sweep",
        "<tr class=\"hl\"><td class=\"word\">payments</td>",
    ] {
        assert!(html.contains(must), "the page lacks {must:?}");
    }
    // Every figure's data is beside the page.
    let files = page.parent().unwrap();
    for link in html.split("<a href=\"").skip(1) {
        let target = link.split('"').next().unwrap();
        assert!(files.join(target).is_file(), "missing {target}");
    }
    for f in [
        "timeseries.csv",
        "clusters.csv",
        "strategies.csv",
        "strategy_runs.csv",
        "curves.csv",
    ] {
        assert!(files.join("report-files").join(f).is_file(), "no {f}");
    }

    let Some(bin) = chromium() else {
        return;
    };
    let loaded = load(&bin, &page);
    assert!(
        loaded.console.is_empty(),
        "console messages:\n{}",
        loaded.console.join("\n")
    );
    let (figures, problems) = figure_problems(&loaded.dom);
    assert_eq!(
        figures, 4,
        "timeline, recommended timeline, comparison, failure curve"
    );
    assert!(problems.is_empty(), "{problems:?}");
    let png = dir.path().join("shot.png");
    screenshot(&bin, &page, &png, 2400);
    assert_eq!(png_problems(&png), None);
}

#[test]
fn the_browser_checks_catch_console_errors_fetches_and_missing_figures() {
    let Some(bin) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A script error, and a fetch the page's policy blocks: both reach the console.
    let bad = dir.path().join("bad.html");
    std::fs::write(
        &bad,
        format!(
            "<!DOCTYPE html><html><head>{}</head><body><figure><p>no svg</p></figure>\
             <div style=\"background: url(missing.png)\">x</div>\
             <script>console.error('boom')</script></body></html>",
            fleetsim::report::html::CSP
        ),
    )
    .unwrap();
    let loaded = load(&bin, &bad);
    assert!(
        loaded.console.iter().any(|l| l.contains("missing.png")),
        "{:?}",
        loaded.console
    );
    let (figures, problems) = figure_problems(&loaded.dom);
    assert_eq!(figures, 1);
    assert_eq!(problems, vec!["figure 1 has no inline <svg>".to_string()]);
    assert!(!fetch_problems(&std::fs::read_to_string(&bad).unwrap()).is_empty());
    let blank = dir.path().join("blank.html");
    std::fs::write(&blank, "<!DOCTYPE html><html><body></body></html>").unwrap();
    let png = dir.path().join("blank.png");
    screenshot(&bin, &blank, &png, 600);
    assert!(png_problems(&png).is_some_and(|p| p.contains("blank")));
}

#[test]
fn a_scenario_without_strategies_is_reviewed_as_written_and_the_page_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    let sc = root().join("scenarios/healthy-baseline.toml");
    let mut pages = Vec::new();
    for threads in ["1", "2"] {
        let page = dir.path().join(format!("t{threads}/review.html"));
        let run = fleetsim(&[
            "report",
            sc.to_str().unwrap(),
            "-o",
            page.to_str().unwrap(),
            "--seeds",
            "4",
            "--threads",
            threads,
        ])
        .expect_code(0);
        assert!(
            run.stdout.contains("1 strategy x up to 4 seeds"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("no strategy qualifies"),
            "{}",
            run.stdout
        );
        assert!(page
            .parent()
            .unwrap()
            .join("review-files/strategies.csv")
            .is_file());
        let json: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(page.with_file_name("review.json")).unwrap(),
        )
        .unwrap();
        assert!(json["recommendation"].is_null(), "{json}");
        assert_eq!(json["strategies"][0]["name"], "as written");
        assert_eq!(json["strategies"][0]["runs"], 4);
        assert_eq!(json["affected_is_fleet"], true);
        assert_eq!(
            json["ranking"][0]["figure"],
            "affected_time_to_recover_s_p50"
        );
        pages.push(std::fs::read_to_string(&page).unwrap());
    }
    let html = &pages[0];
    // Only the output path differs between the two pages (in the regenerate command).
    let folder = |t: u32| format!("{}/", dir.path().join(format!("t{t}")).display());
    assert_eq!(
        html.replace(&folder(1), "tN/"),
        pages[1].replace(&folder(2), "tN/")
    );
    assert!(html.contains("every cluster comes through cleanly"));
    assert!(html.contains(
        "No strategy qualifies at this number of runs. as written failed in 0 of 4 runs"
    ));
    assert!(html.contains("run with --seeds 73 or more"));
    assert!(
        html.contains("a run fails when &quot;not recovered&quot;; acceptable P(failure) ≤ 0.05")
    );
}

#[test]
fn report_input_errors_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bad = root().join("tests/bad-scenarios/zero-workers.toml");
    let run =
        fleetsim_in(d, &["report", bad.to_str().unwrap(), "-o", "r/report.html"]).expect_code(2);
    assert!(
        run.stderr
            .contains("zero-workers.toml:3: ca.pca.workers: must be >= 1, got 0"),
        "{}",
        run.stderr
    );
    // A directory that is not a sweep's output.
    std::fs::create_dir(d.join("empty")).unwrap();
    let run = fleetsim_in(d, &["report", "empty", "-o", "r/report.html"]).expect_code(2);
    assert!(run.stderr.contains("manifest.json"), "{}", run.stderr);
    // A bad strategy bundle names the file, line and strategy.
    std::fs::write(
        d.join("s.toml"),
        "[ca.pca]\n[cluster.a]\n[strategies.fast]\n\"rollout.pacing\" = \"warp\"\n",
    )
    .unwrap();
    let run = fleetsim_in(
        d,
        &["report", "s.toml", "-o", "r/report.html", "--seeds", "1"],
    )
    .expect_code(2);
    assert!(run.stderr.contains("s.toml"), "{}", run.stderr);
    assert!(run.stderr.contains("strategies.fast"), "{}", run.stderr);
    fleetsim_in(d, &["report", "s.toml", "--seeds", "0"]).expect_code(2);
    fleetsim_in(d, &["report", "s.toml", "-o", "r/report.json"]).expect_code(2);
    fleetsim_in(d, &["report", "missing.toml"]).expect_code(2);
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut left = left;
    left.sort();
    assert_eq!(left, vec!["empty", "s.toml"], "nothing written");
}

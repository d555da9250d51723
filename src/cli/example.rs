//! `fleetsim example [NAME]`: the shipped scenarios (`scenarios/*.toml`), embedded in the
//! binary, so an installed fleetsim can start a scenario of one's own from one of them:
//! `fleetsim example incident-ca-herd > my-fleet.toml`.

use std::io::Write;
use std::process::ExitCode;

use super::EXIT_BAD_INPUT;

/// One shipped scenario.
#[derive(Debug, Clone, Copy)]
pub struct Example {
    /// The file name in `scenarios/` without `.toml`.
    pub name: &'static str,
    /// The file, byte for byte.
    pub text: &'static str,
}

macro_rules! examples {
    ($($name:literal),* $(,)?) => {
        &[$(Example {
            name: $name,
            text: include_str!(concat!("../../scenarios/", $name, ".toml")),
        }),*]
    };
}

/// Every file in `scenarios/`, in name order (a test checks the list against the
/// directory).
pub const EXAMPLES: &[Example] = examples![
    "field-aws-pca-issuer-479",
    "field-cert-manager-7572",
    "field-istio-csr-217",
    "healthy-baseline",
    "incident-aws-pca-direct",
    "incident-ca-herd",
    "incident-failed-csrs",
    "incident-istio-current",
    "incident-istiod-restart",
    "incident-mitigated",
    "incident-no-endpoints",
    "scale-200-clusters",
    "sweep-istiod-replicas",
    "sweep-restart-strategies",
];

impl Example {
    /// The scenario's `[scenario] description`, or "" if it has none.
    pub fn description(&self) -> String {
        self.text
            .parse::<toml::Table>()
            .ok()
            .and_then(|t| {
                t.get("scenario")?
                    .get("description")?
                    .as_str()
                    .map(str::to_string)
            })
            .unwrap_or_default()
    }
}

/// Flags of `fleetsim example`.
#[derive(clap::Args, Debug)]
pub struct ExampleArgs {
    /// The example to print (a file name of `scenarios/`, with or without `.toml`);
    /// without one, list them with their descriptions.
    #[arg(value_name = "NAME")]
    pub name: Option<String>,
}

/// The list: one line per example, name and description.
pub fn listing() -> String {
    let width = EXAMPLES.iter().map(|e| e.name.len()).max().unwrap_or(0);
    EXAMPLES
        .iter()
        .map(|e| format!("{:width$}  {}\n", e.name, e.description()))
        .collect()
}

/// Prints the named example, or the list. An unknown name exits 2 with the list.
pub fn run(args: ExampleArgs) -> anyhow::Result<ExitCode> {
    let Some(name) = args.name else {
        std::io::stdout().lock().write_all(listing().as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    };
    let stem = name.strip_suffix(".toml").unwrap_or(&name);
    match EXAMPLES.iter().find(|e| e.name == stem) {
        Some(e) => {
            std::io::stdout().lock().write_all(e.text.as_bytes())?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let mut err = std::io::stderr().lock();
            writeln!(err, "error: no example named {name:?}; the examples are:")?;
            err.write_all(listing().as_bytes())?;
            Ok(ExitCode::from(EXIT_BAD_INPUT))
        }
    }
}

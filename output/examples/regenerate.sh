#!/usr/bin/env bash
# Regenerates the figures README shows from the shipped scenarios:
#   bash output/examples/regenerate.sh
# The report screenshot needs Debian's chromium (apt-get install -y chromium).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/fleetsim
ex=output/examples
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for s in incident-ca-herd incident-mitigated incident-no-endpoints healthy-baseline; do
  "$bin" run "scenarios/$s.toml" --out "$work/$s" >/dev/null
  cp "$work/$s/timeline.png" "$ex/timeline-$s.png"
done
for s in sweep-restart-strategies sweep-istiod-replicas; do
  "$bin" sweep "scenarios/$s.toml" --out "$work/$s" >/dev/null 2>&1
  cp "$work/$s/failure_curve.png" "$ex/failure-curve-$s.png"
  cp "$work/$s/curves.csv" "$ex/curves-$s.csv"
done
# The pre-maintenance review of the incident (default seeds), as a browser shows it.
# (written under output/, git-ignored, so the page names a stable path).
"$bin" report scenarios/incident-ca-herd.toml -o output/review-incident/report.html >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$work/chromium" --window-size=1280,5600 \
  --screenshot="$ex/report-incident.png" "file://$PWD/output/review-incident/report.html" 2>/dev/null
echo "wrote $(ls "$ex"/*.png | tr '\n' ' ')"

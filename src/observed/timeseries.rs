//! A `timeseries.csv` that fleetsim wrote (see [`metrics`](crate::metrics)): a header
//! with `time_s` and `cluster` and numeric columns, one row per cluster per sample time
//! plus the fleet rows (cluster `*`). One cluster's rows are read, each numeric column
//! as a [`Timeline`] in simulated seconds.

use crate::metrics::TIMESERIES_HEADER;

use super::{ObservedError, Result, Timeline, MAX_ROWS};

/// The cluster name of the fleet-total rows.
pub const FLEET: &str = "*";

/// The series of `timeseries.csv` that can be compared (every column but `time_s` and
/// `cluster`), in file order.
pub fn series_names() -> Vec<&'static str> {
    TIMESERIES_HEADER
        .split(',')
        .filter(|c| *c != "time_s" && *c != "cluster")
        .collect()
}

/// Whether `text` looks like a fleetsim time series: its first line names `time_s` and
/// `cluster`.
pub fn looks_like(text: &str) -> bool {
    let first = text.lines().next().unwrap_or("");
    let cols: Vec<&str> = first.split(',').map(str::trim).collect();
    cols.contains(&"time_s") && cols.contains(&"cluster")
}

/// Reads the rows of `cluster` from `timeseries.csv` text: one timeline per numeric
/// column, in header order. `file` names it in errors.
pub fn parse(file: &str, text: &str, cluster: &str) -> Result<Vec<Timeline>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| ObservedError::at_line(file, 1, format!("malformed CSV: {e}")))?
        .iter()
        .map(str::to_string)
        .collect();
    if headers.iter().all(String::is_empty) {
        return Err(ObservedError::new(file, "empty: no header line"));
    }
    for (i, h) in headers.iter().enumerate() {
        if let Some(j) = headers[i + 1..].iter().position(|x| x == h) {
            return Err(ObservedError::at_line(
                file,
                1,
                format!(
                    "duplicate header: \"{h}\" is both column {} and column {}",
                    i + 1,
                    i + j + 2
                ),
            ));
        }
    }
    let col = |name: &str| {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            ObservedError::at_line(
                file,
                1,
                format!(
                    "no column \"{name}\" in the header (found: {}); a fleetsim timeseries.csv starts \"time_s,cluster,...\"",
                    headers.join(", ")
                ),
            )
        })
    };
    let (c_time, c_cluster) = (col("time_s")?, col("cluster")?);
    let numeric: Vec<usize> = (0..headers.len())
        .filter(|&i| i != c_time && i != c_cluster)
        .collect();
    let mut out: Vec<Timeline> = numeric
        .iter()
        .map(|&i| Timeline {
            name: headers[i].clone(),
            points: Vec::new(),
        })
        .collect();
    let mut clusters: Vec<String> = Vec::new();
    let mut last_t = f64::NEG_INFINITY;
    let mut rows = 0usize;
    let mut matched = 0usize;
    for record in reader.records() {
        let record = record.map_err(|e| match e.position() {
            Some(p) => ObservedError::at_line(file, p.line(), format!("malformed CSV: {e}")),
            None => ObservedError::new(file, format!("malformed CSV: {e}")),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        rows += 1;
        if rows > MAX_ROWS {
            return Err(ObservedError::at_line(
                file,
                line,
                format!("more than {MAX_ROWS} rows"),
            ));
        }
        let name = record.get(c_cluster).unwrap_or("");
        if name != cluster {
            if clusters.len() < 12 && !clusters.iter().any(|c| c == name) {
                clusters.push(name.to_string());
            }
            continue;
        }
        let num = |i: usize| -> Result<f64> {
            let raw = record.get(i).unwrap_or("");
            let e = |m: String| {
                ObservedError::at_line(file, line, m).field(format!("column \"{}\"", headers[i]))
            };
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                Ok(_) => Err(e(format!("{raw:?} is not a finite number"))),
                Err(_) => Err(e(format!("{raw:?} is not a number"))),
            }
        };
        matched += 1;
        let t = num(c_time)?;
        if t < last_t {
            return Err(ObservedError::at_line(
                file,
                line,
                format!("time_s {t} goes back (previous {last_t})"),
            )
            .field("column \"time_s\""));
        }
        last_t = t;
        for (k, &i) in numeric.iter().enumerate() {
            out[k].points.push((t, num(i)?));
        }
    }
    if matched == 0 {
        let found = if clusters.is_empty() {
            "no data rows".to_string()
        } else {
            format!("clusters: {}", clusters.join(", "))
        };
        return Err(ObservedError::new(
            file,
            format!("no rows for cluster \"{cluster}\" ({found})"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str =
        "time_s,cluster,pods_ready,ca_queue\n0,a,1,0\n0,*,1,0\n10,a,2,5\n10,*,2,5.5\n";

    #[test]
    fn reads_one_clusters_rows() {
        let t = parse("ts.csv", CSV, FLEET).unwrap();
        assert_eq!(t.len(), 2);
        assert_eq!(t[1].name, "ca_queue");
        assert_eq!(t[1].points, vec![(0.0, 0.0), (10.0, 5.5)]);
        let a = parse("ts.csv", CSV, "a").unwrap();
        assert_eq!(a[0].points, vec![(0.0, 1.0), (10.0, 2.0)]);
        assert!(looks_like(CSV));
        assert!(!looks_like("concurrency,throughput\n"));
        assert_eq!(series_names()[0], "pods_ready");
    }

    #[test]
    fn errors() {
        let e = parse("ts.csv", CSV, "b").unwrap_err().to_string();
        assert_eq!(e, "ts.csv: no rows for cluster \"b\" (clusters: a, *)");
        let e = parse("ts.csv", "time_s,cluster,x\n0,*,1\n5,*,oops\n", FLEET)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "ts.csv:3: column \"x\": \"oops\" is not a number");
        let e = parse("ts.csv", "time,cluster\n", FLEET)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ts.csv:1: no column \"time_s\""), "{e}");
        let e = parse("ts.csv", "time_s,cluster,x\n5,*,1\n0,*,1\n", FLEET)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "ts.csv:3: column \"time_s\": time_s 0 goes back (previous 5)"
        );
    }
}

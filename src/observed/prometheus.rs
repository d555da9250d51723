//! The JSON response of Prometheus' range query, `GET /api/v1/query_range`:
//!
//! ```json
//! {"status": "success",
//!  "data": {"resultType": "matrix",
//!           "result": [{"metric": {"__name__": "ca_queue", "pod": "signer-0"},
//!                       "values": [[1716796800, "3"], [1716796810, "5"]]}]}}
//! ```
//!
//! Timestamps are Unix seconds (a JSON number; a numeric string is accepted too);
//! values are strings holding a number, as Prometheus writes them (a JSON number is
//! accepted too). `"NaN"` values (0/0 in a query) are gaps and skipped; infinities and
//! anything that is not a number are errors. A response with `"status": "error"` is an
//! error carrying Prometheus' own `errorType` and `error`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{ObservedError, Result, Timeline, MAX_ROWS};

/// One series of a matrix result: its labels and its samples in time order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The labels (`__name__` included when the query kept it).
    pub labels: BTreeMap<String, String>,
    /// `(unix_s, value)` samples, `NaN` samples left out.
    pub samples: Vec<(f64, f64)>,
}

/// Parses a `query_range` response; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<Series>> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        ObservedError::new(
            format!("{file}:{}:{}", e.line(), e.column()),
            format!("malformed JSON: {e}"),
        )
    })?;
    let err =
        |path: &str, message: String| ObservedError::new(file, message).field(path.to_string());
    let Some(obj) = doc.as_object() else {
        return Err(ObservedError::new(
            file,
            format!(
                "expected a Prometheus query_range response (a JSON object), got {}",
                kind(&doc)
            ),
        ));
    };
    match obj.get("status").and_then(Value::as_str) {
        Some("success") => {}
        Some(status) => {
            let etype = obj.get("errorType").and_then(Value::as_str).unwrap_or("?");
            let error = obj.get("error").and_then(Value::as_str).unwrap_or("");
            return Err(err(
                "status",
                format!("Prometheus answered {status:?} ({etype}: {error:?})"),
            ));
        }
        None => {
            return Err(err(
                "status",
                format!(
                    "missing or not a string (got {}); expected \"success\"",
                    obj.get("status").map_or("nothing".into(), kind)
                ),
            ))
        }
    }
    let data = obj
        .get("data")
        .and_then(Value::as_object)
        .ok_or_else(|| err("data", "missing or not an object".into()))?;
    match data.get("resultType").and_then(Value::as_str) {
        Some("matrix") => {}
        Some(other) => {
            return Err(err(
                "data.resultType",
                format!("is {other:?}; expected \"matrix\" (the response of /api/v1/query_range, not /api/v1/query)"),
            ))
        }
        None => return Err(err("data.resultType", "missing; expected \"matrix\"".into())),
    }
    let result = data
        .get("result")
        .and_then(Value::as_array)
        .ok_or_else(|| err("data.result", "missing or not an array".into()))?;
    if result.is_empty() {
        return Err(err(
            "data.result",
            "is empty: the query matched no series".into(),
        ));
    }
    let mut out = Vec::with_capacity(result.len());
    let mut total = 0usize;
    for (i, entry) in result.iter().enumerate() {
        let at = format!("data.result[{i}]");
        let mut labels = BTreeMap::new();
        match entry.get("metric") {
            None | Some(Value::Null) => {}
            Some(Value::Object(m)) => {
                for (k, v) in m {
                    let v = v.as_str().ok_or_else(|| {
                        err(
                            &format!("{at}.metric.{k}"),
                            format!("label value is {}, not a string", kind(v)),
                        )
                    })?;
                    labels.insert(k.clone(), v.to_string());
                }
            }
            Some(other) => {
                return Err(err(
                    &format!("{at}.metric"),
                    format!("is {}, not an object", kind(other)),
                ))
            }
        }
        let values = entry
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                err(
                    &format!("{at}.values"),
                    "missing or not an array of [timestamp, \"value\"] pairs".into(),
                )
            })?;
        let mut samples = Vec::with_capacity(values.len());
        for (j, pair) in values.iter().enumerate() {
            let here = format!("{at}.values[{j}]");
            total += 1;
            if total > MAX_ROWS {
                return Err(err(
                    &here,
                    format!("more than {MAX_ROWS} samples in one file"),
                ));
            }
            let (ts, v) = match pair.as_array().map(Vec::as_slice) {
                Some([ts, v]) => (ts, v),
                _ => {
                    return Err(err(
                        &here,
                        format!("expected [timestamp, \"value\"], got {pair}"),
                    ))
                }
            };
            let t = number(ts).filter(|t| t.is_finite()).ok_or_else(|| {
                err(
                    &format!("{here}[0]"),
                    format!("timestamp {ts} is not a number of Unix seconds"),
                )
            })?;
            let x = number(v)
                .ok_or_else(|| err(&format!("{here}[1]"), format!("value {v} is not a number")))?;
            if x.is_nan() {
                continue;
            }
            if !x.is_finite() {
                return Err(err(
                    &format!("{here}[1]"),
                    format!("value {v} is not a finite number"),
                ));
            }
            if let Some(&(prev, _)) = samples.last() {
                if t <= prev {
                    return Err(err(
                        &format!("{here}[0]"),
                        format!("timestamp {ts} is not after the previous one ({prev})"),
                    ));
                }
            }
            samples.push((t, x));
        }
        out.push(Series { labels, samples });
    }
    Ok(out)
}

/// The metric name all series share (`__name__`), if they do.
pub fn metric_name(series: &[Series]) -> Option<String> {
    let first = series.first()?.labels.get("__name__")?;
    series
        .iter()
        .all(|s| s.labels.get("__name__") == Some(first))
        .then(|| first.clone())
}

/// The series summed per timestamp (a timestamp counts the series that have a sample
/// there), as one timeline named `name`, times in Unix seconds.
pub fn sum_series(name: &str, series: &[Series]) -> Timeline {
    let mut all: Vec<(f64, f64)> = series
        .iter()
        .flat_map(|s| s.samples.iter().copied())
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut points: Vec<(f64, f64)> = Vec::with_capacity(all.len());
    for (t, v) in all {
        match points.last_mut() {
            Some(last) if last.0 == t => last.1 += v,
            _ => points.push((t, v)),
        }
    }
    Timeline {
        name: name.to_string(),
        points,
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            t => t.parse::<f64>().ok().filter(|x| !x.is_nan()),
        },
        _ => None,
    }
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse("q.json", text).unwrap_err().to_string()
    }

    #[test]
    fn reads_a_matrix_and_sums_its_series() {
        let text = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"__name__":"up","pod":"a"},"values":[[100,"1"],[110,"2"],[120,"NaN"]]},
            {"metric":{"__name__":"up","pod":"b"},"values":[[110,"5"],[120,"6"]]}]}}"#;
        let s = parse("q.json", text).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].samples, vec![(100.0, 1.0), (110.0, 2.0)]);
        assert_eq!(metric_name(&s).as_deref(), Some("up"));
        let t = sum_series("up", &s);
        assert_eq!(t.points, vec![(100.0, 1.0), (110.0, 7.0), (120.0, 6.0)]);
    }

    #[test]
    fn errors_name_the_file_the_json_path_and_the_value() {
        assert!(
            err("{\"status\": ").starts_with("q.json:1:"),
            "{}",
            err("{\"status\": ")
        );
        assert!(err("[1]").contains("got an array"));
        assert_eq!(
            err(r#"{"status":"error","errorType":"bad_data","error":"parse error at char 4"}"#),
            "q.json: status: Prometheus answered \"error\" (bad_data: \"parse error at char 4\")"
        );
        assert_eq!(
            err(r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#),
            "q.json: data.resultType: is \"vector\"; expected \"matrix\" (the response of /api/v1/query_range, not /api/v1/query)"
        );
        assert_eq!(
            err(r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#),
            "q.json: data.result: is empty: the query matched no series"
        );
        assert_eq!(
            err(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"2"],[2,"x"]]}]}}"#
            ),
            "q.json: data.result[0].values[1][1]: value \"x\" is not a number"
        );
        assert_eq!(
            err(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[1,"+Inf"]]}]}}"#
            ),
            "q.json: data.result[0].values[0][1]: value \"+Inf\" is not a finite number"
        );
        assert_eq!(
            err(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[["t","1"]]}]}}"#
            ),
            "q.json: data.result[0].values[0][0]: timestamp \"t\" is not a number of Unix seconds"
        );
        assert_eq!(
            err(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[2,"1"],[1,"1"]]}]}}"#
            ),
            "q.json: data.result[0].values[1][0]: timestamp 1 is not after the previous one (2)"
        );
        assert_eq!(
            err(
                r#"{"status":"success","data":{"resultType":"matrix","result":[{"values":[[2]]}]}}"#
            ),
            "q.json: data.result[0].values[0]: expected [timestamp, \"value\"], got [2]"
        );
    }
}

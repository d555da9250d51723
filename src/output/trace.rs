//! `run --trace FILE`: Chrome Trace Event JSON (the "JSON Object Format" of the Trace
//! Event Format document, which Perfetto and `chrome://tracing` open): one process per
//! cluster, one thread per sampled pod with a complete event (`"ph":"X"`) per phase,
//! and counter events (`"ph":"C"`) per cluster for the sampled series.

use std::fmt::Write as _;

/// Most pods traced per cluster.
pub const MAX_PODS_PER_CLUSTER: usize = 256;
/// One pod in this many (by a hash of its serial) is traced.
pub const POD_SAMPLE_EVERY: u64 = 16;

/// A pod phase span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// Cluster index.
    pub cluster: u32,
    /// Thread: the pod's serial.
    pub pod: u32,
    /// The pod's name.
    pub pod_name: String,
    /// Phase name.
    pub phase: &'static str,
    /// Start (ns).
    pub start_ns: u64,
    /// End (ns).
    pub end_ns: u64,
}

/// One counter sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Counter {
    /// Cluster index.
    pub cluster: u32,
    /// Track name.
    pub name: &'static str,
    /// Time (ns).
    pub at_ns: u64,
    /// Value.
    pub value: f64,
}

/// Whether the pod with this serial is in the deterministic sample.
pub fn sampled(cluster: u32, serial: u32) -> bool {
    let mut x = ((cluster as u64) << 32 | serial as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 29;
    x % POD_SAMPLE_EVERY == 0
}

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

fn us(ns: u64) -> String {
    let s = format!("{:.3}", ns as f64 / 1e3);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// The trace as JSON text: metadata names the processes (clusters) and threads (pods).
pub fn render(clusters: &[String], spans: &[Span], counters: &[Counter]) -> String {
    let mut out = String::from("{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n");
    let mut first = true;
    let mut sep = |out: &mut String| {
        if !first {
            out.push_str(",\n");
        }
        first = false;
    };
    for (i, c) in clusters.iter().enumerate() {
        sep(&mut out);
        let _ = write!(
            out,
            "{{\"ph\":\"M\",\"name\":\"process_name\",\"pid\":{i},\"tid\":0,\"args\":{{\"name\":\"{}\"}}}}",
            esc(c)
        );
    }
    let mut named = std::collections::BTreeSet::new();
    for s in spans {
        if named.insert((s.cluster, s.pod)) {
            sep(&mut out);
            let _ = write!(
                out,
                "{{\"ph\":\"M\",\"name\":\"thread_name\",\"pid\":{},\"tid\":{},\"args\":{{\"name\":\"pod/{}\"}}}}",
                s.cluster,
                s.pod + 1,
                esc(&s.pod_name)
            );
        }
    }
    for s in spans {
        sep(&mut out);
        let _ = write!(
            out,
            "{{\"ph\":\"X\",\"cat\":\"pod\",\"name\":\"{}\",\"pid\":{},\"tid\":{},\"ts\":{},\"dur\":{}}}",
            s.phase,
            s.cluster,
            s.pod + 1,
            us(s.start_ns),
            us(s.end_ns.saturating_sub(s.start_ns))
        );
    }
    // Counters are step functions: a value equal to the track's last one adds nothing.
    let mut last: std::collections::HashMap<(u32, &str), f64> = Default::default();
    for c in counters {
        let v = if c.value.is_finite() { c.value } else { 0.0 };
        if last.insert((c.cluster, c.name), v) == Some(v) {
            continue;
        }
        sep(&mut out);
        let _ = write!(
            out,
            "{{\"ph\":\"C\",\"cat\":\"cluster\",\"name\":\"{}\",\"pid\":{},\"tid\":0,\"ts\":{},\"args\":{{\"value\":{}}}}}",
            c.name,
            c.cluster,
            us(c.at_ns),
            v
        );
    }
    out.push_str("\n]}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trace_is_json_with_spans_counters_and_names() {
        let spans = vec![Span {
            cluster: 0,
            pod: 4,
            pod_name: "web-abc".into(),
            phase: "waiting for cert",
            start_ns: 1_500_000,
            end_ns: 3_000_000,
        }];
        let counters = vec![Counter {
            cluster: 0,
            name: "ca_queue",
            at_ns: 10_000_000_000,
            value: 7.0,
        }];
        let text = render(&["c\"1".into()], &spans, &counters);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let ev = v["traceEvents"].as_array().unwrap();
        assert_eq!(ev.len(), 4);
        assert_eq!(ev[0]["args"]["name"], "c\"1");
        assert_eq!(ev[2]["ph"], "X");
        assert_eq!(ev[2]["ts"], 1500.0);
        assert_eq!(ev[2]["dur"], 1500.0);
        assert_eq!(ev[3]["ph"], "C");
        assert_eq!(ev[3]["args"]["value"], 7.0);
    }

    #[test]
    fn about_one_pod_in_sixteen_is_sampled() {
        let n = (0..16_000).filter(|&s| sampled(3, s)).count();
        assert!((700..1300).contains(&n), "{n}");
    }
}

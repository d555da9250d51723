//! Building blocks for one self-contained HTML page: inline CSS and SVG, no script and no
//! external fetch, readable offline and printable (`@media print`).
//!
//! ```
//! use fleetsim::report::html::{CalloutKind, HtmlPage};
//! let html = HtmlPage::new("Upgrade review: payments")
//!     .section("Recommendation")
//!     .callout(CalloutKind::Recommendation, "Restart in batches of 50 every 30 s.")
//!     .table(&["strategy", "P(failure)"], &[vec!["batches".into(), "0.02".into()]], &[0])
//!     .render();
//! assert!(html.starts_with("<!DOCTYPE html>"));
//! ```
//!
//! Every text argument is escaped. The one exception is the SVG given to
//! [`HtmlPage::figure`], which is inserted as markup: pass only SVG this crate drew.

use std::fmt::Write as _;

/// The page's Content Security Policy: inline styles only, no fetch of any kind (a
/// browser blocks and reports any attempt, which the acceptance test looks for).
pub const CSP: &str = "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";

/// Escapes `text` for HTML element content and quoted attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The kind of a highlighted box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalloutKind {
    /// The recommended course of action (green).
    Recommendation,
    /// A risk the reader must not miss (red).
    Warning,
    /// Context or a caveat (blue).
    Note,
}

impl CalloutKind {
    fn class_and_title(self) -> (&'static str, &'static str) {
        match self {
            CalloutKind::Recommendation => ("recommendation", "Recommendation"),
            CalloutKind::Warning => ("warning", "Warning"),
            CalloutKind::Note => ("note", "Note"),
        }
    }
}

/// One HTML page built block by block, in order.
#[derive(Debug, Clone)]
pub struct HtmlPage {
    title: String,
    subtitle: Option<String>,
    body: String,
    figures: usize,
}

impl HtmlPage {
    /// A page whose `<title>` and heading are `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            subtitle: None,
            body: String::new(),
            figures: 0,
        }
    }

    /// A line under the heading (e.g. scenario, seed and version).
    pub fn subtitle(mut self, text: &str) -> Self {
        self.subtitle = Some(text.to_string());
        self
    }

    /// A section heading (`<h2>`).
    pub fn section(mut self, heading: &str) -> Self {
        let _ = writeln!(self.body, "<h2>{}</h2>", escape(heading));
        self
    }

    /// A paragraph of plain text.
    pub fn paragraph(mut self, text: &str) -> Self {
        let _ = writeln!(self.body, "<p>{}</p>", escape(text));
        self
    }

    /// A list of facts as label / value pairs (e.g. the scenario in plain words).
    pub fn facts(mut self, items: &[(&str, &str)]) -> Self {
        self.body.push_str("<dl class=\"facts\">\n");
        for (k, v) in items {
            let _ = writeln!(
                self.body,
                "<div><dt>{}</dt><dd>{}</dd></div>",
                escape(k),
                escape(v)
            );
        }
        self.body.push_str("</dl>\n");
        self
    }

    /// A numbered figure: `svg` inline (an XML declaration, if any, is dropped), a
    /// caption, and the name of the CSV it was drawn from (linked relatively, as it is
    /// written beside the report). `csv_name` may be empty.
    pub fn figure(mut self, svg: &str, caption: &str, csv_name: &str) -> Self {
        self.figures += 1;
        let svg = strip_xml_declaration(svg);
        let _ = write!(
            self.body,
            "<figure>\n<div class=\"plot\">{svg}</div>\n<figcaption><span class=\"fig\">Figure {}.</span> {}",
            self.figures,
            escape(caption)
        );
        if !csv_name.is_empty() {
            let name = escape(csv_name);
            let _ = write!(
                self.body,
                " <span class=\"data\">Data: <a href=\"{name}\">{name}</a></span>"
            );
        }
        self.body.push_str("</figcaption>\n</figure>\n");
        self
    }

    /// A table. Columns whose filled cells all look numeric (numbers, percentages,
    /// durations, intervals) are right-aligned, header included; rows whose indices are
    /// in `highlight` are emphasised. Short rows are padded with empty cells.
    pub fn table(mut self, headers: &[&str], rows: &[Vec<String>], highlight: &[usize]) -> Self {
        let width = rows.iter().map(Vec::len).fold(headers.len(), usize::max);
        let numeric: Vec<bool> = (0..width)
            .map(|j| {
                let mut filled = rows
                    .iter()
                    .map(|r| cell(r, j))
                    .filter(|c| !c.trim().is_empty());
                let mut any = false;
                let all = filled.all(|c| {
                    any = true;
                    looks_numeric(c)
                });
                any && all
            })
            .collect();
        let class = |j: usize| if numeric[j] { " class=\"num\"" } else { "" };
        self.body
            .push_str("<div class=\"table-wrap\"><table>\n<thead><tr>");
        for j in 0..width {
            let h = headers.get(j).copied().unwrap_or("");
            let _ = write!(self.body, "<th{}>{}</th>", class(j), escape(h));
        }
        self.body.push_str("</tr></thead>\n<tbody>\n");
        for (i, row) in rows.iter().enumerate() {
            if highlight.contains(&i) {
                self.body.push_str("<tr class=\"hl\">");
            } else {
                self.body.push_str("<tr>");
            }
            for j in 0..width {
                let _ = write!(self.body, "<td{}>{}</td>", class(j), escape(cell(row, j)));
            }
            self.body.push_str("</tr>\n");
        }
        self.body.push_str("</tbody>\n</table></div>\n");
        self
    }

    /// A highlighted box (recommendation, warning or note) with a plain-text body.
    pub fn callout(mut self, kind: CalloutKind, text: &str) -> Self {
        let (class, title) = kind.class_and_title();
        let _ = writeln!(
            self.body,
            "<aside class=\"callout {class}\"><strong>{title}</strong><p>{}</p></aside>",
            escape(text)
        );
        self
    }

    /// The complete document.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + STYLE.len() + 512);
        out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        // Nothing may be fetched: the browser itself refuses (and reports) any load.
        out.push_str(CSP);
        let _ = writeln!(out, "<title>{}</title>", escape(&self.title));
        let _ = writeln!(out, "<style>{STYLE}</style>\n</head>\n<body>\n<main>");
        let _ = writeln!(out, "<header><h1>{}</h1>", escape(&self.title));
        if let Some(s) = &self.subtitle {
            let _ = writeln!(out, "<p class=\"subtitle\">{}</p>", escape(s));
        }
        out.push_str("</header>\n");
        out.push_str(&self.body);
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

/// Cell `j` of `row`, empty if the row is short.
fn cell(row: &[String], j: usize) -> &str {
    row.get(j).map_or("", String::as_str)
}

fn strip_xml_declaration(svg: &str) -> &str {
    let trimmed = svg.trim_start();
    if trimmed.starts_with("<?xml") {
        match trimmed.find("?>") {
            Some(end) => trimmed[end + 2..].trim_start(),
            None => trimmed,
        }
    } else {
        trimmed
    }
}

/// Numbers, percentages, durations and intervals such as `0.12 [0.05, 0.21]`, `85 %`,
/// `12m30s` or `-`.
fn looks_numeric(cell: &str) -> bool {
    let t = cell.trim();
    if t == "-" || t == "–" {
        return true;
    }
    t.chars().any(|c| c.is_ascii_digit())
        && t.chars().all(|c| {
            c.is_ascii_digit()
                || matches!(
                    c,
                    '.' | ','
                        | '-'
                        | '+'
                        | '%'
                        | ' '
                        | '['
                        | ']'
                        | '('
                        | ')'
                        | '×'
                        | 'e'
                        | 'h'
                        | 'm'
                        | 's'
                        | '–'
                        | '±'
                )
        })
}

const STYLE: &str = r#"
:root {
  --ink: #212529; --muted: #5a6068; --line: #dee2e6; --soft: #f6f7f9;
  --accent: #2f5d8a; --good: #2b7a3d; --good-bg: #eef7f0; --bad: #b02a2a; --bad-bg: #fbeeee;
  --note: #2f5d8a; --note-bg: #eef3f9; --hl: #fff6d6;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; background: #eceef1; color: var(--ink);
  font: 15px/1.55 "DejaVu Sans", "Segoe UI", Helvetica, Arial, sans-serif;
}
main {
  max-width: 1120px; margin: 24px auto; padding: 32px 44px 48px; background: #fff;
  border: 1px solid var(--line); border-radius: 6px;
}
header { border-bottom: 3px solid var(--accent); margin-bottom: 8px; padding-bottom: 10px; }
h1 { font-size: 26px; margin: 0 0 4px; letter-spacing: -0.01em; }
.subtitle { margin: 0; color: var(--muted); font-size: 13.5px; }
h2 {
  font-size: 19px; margin: 32px 0 10px; padding-bottom: 4px;
  border-bottom: 1px solid var(--line); color: var(--accent);
}
p { margin: 8px 0; max-width: 78ch; }
a { color: var(--accent); }
dl.facts {
  display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr));
  gap: 8px 16px; margin: 12px 0;
}
dl.facts div { background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 8px 12px; }
dl.facts dt { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); }
dl.facts dd { margin: 2px 0 0; font-weight: 600; }
figure { margin: 18px 0; }
figure .plot { border: 1px solid var(--line); border-radius: 4px; padding: 4px; background: #fff; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { font-size: 13.5px; color: var(--muted); margin-top: 6px; }
figcaption .fig { font-weight: 600; color: var(--ink); }
figcaption .data { white-space: nowrap; margin-left: 6px; }
.table-wrap { overflow-x: auto; margin: 12px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left; vertical-align: top; }
th { background: var(--soft); font-weight: 600; border-bottom: 2px solid #c9cdd2; white-space: nowrap; }
th.num { text-align: right; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tbody tr:nth-child(even) { background: #fbfbfc; }
tr.hl, tbody tr.hl:nth-child(even) { background: var(--hl); }
tr.hl td:first-child { box-shadow: inset 3px 0 0 #e0a800; font-weight: 600; }
.callout { border: 1px solid; border-left-width: 5px; border-radius: 4px; padding: 10px 16px; margin: 14px 0; }
.callout strong { display: block; font-size: 12px; text-transform: uppercase; letter-spacing: 0.05em; }
.callout p { margin: 4px 0 0; }
.callout.recommendation { border-color: var(--good); background: var(--good-bg); }
.callout.recommendation strong { color: var(--good); }
.callout.warning { border-color: var(--bad); background: var(--bad-bg); }
.callout.warning strong { color: var(--bad); }
.callout.note { border-color: var(--note); background: var(--note-bg); }
.callout.note strong { color: var(--note); }
@media print {
  @page { size: A4; margin: 14mm; }
  body { background: #fff; font-size: 10.5pt; }
  main { max-width: none; margin: 0; padding: 0; border: 0; }
  h2 { break-after: avoid; page-break-after: avoid; }
  figure, table, tr, .callout, dl.facts div { break-inside: avoid; page-break-inside: avoid; }
  figure .plot { border: 0; padding: 0; }
  a { color: inherit; text-decoration: none; }
  .table-wrap { overflow: visible; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_text_argument() {
        let evil = "<script>alert('x')</script> & \"q\"";
        let html = HtmlPage::new(evil)
            .subtitle(evil)
            .section(evil)
            .paragraph(evil)
            .facts(&[(evil, evil)])
            .figure("<svg></svg>", evil, evil)
            .table(&[evil], &[vec![evil.to_string()]], &[])
            .callout(CalloutKind::Warning, evil)
            .render();
        assert!(!html.contains("<script"), "{html}");
        assert!(
            html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;")
        );
    }

    #[test]
    fn page_is_self_contained_and_printable() {
        let html = HtmlPage::new("t")
            .figure(
                "<?xml version=\"1.0\"?>\n<svg width=\"10\"></svg>",
                "c",
                "timeseries.csv",
            )
            .render();
        assert!(html.contains("@media print"));
        assert!(html.contains("Content-Security-Policy\" content=\"default-src 'none'"));
        assert!(!html.contains("<?xml"));
        assert!(html.contains("Figure 1."));
        assert!(html.contains("<a href=\"timeseries.csv\">timeseries.csv</a>"));
        for external in ["http://", "https://", "<link", "<script", "@import", "url("] {
            assert!(!html.contains(external), "page fetches {external}");
        }
    }

    #[test]
    fn tables_align_numbers_and_highlight_rows() {
        let rows = vec![
            vec!["all-at-once".to_string(), "0.62 [0.48, 0.74]".to_string()],
            vec!["token-bucket".to_string(), "12m30s".to_string()],
            vec!["short".to_string()],
        ];
        let html = HtmlPage::new("t")
            .table(&["strategy", "P(failure)"], &rows, &[1])
            .render();
        assert!(html.contains("<th>strategy</th><th class=\"num\">P(failure)</th>"));
        assert!(html.contains("<td class=\"num\">0.62 [0.48, 0.74]</td>"));
        assert!(html.contains("<tr class=\"hl\"><td>token-bucket</td>"));
        assert!(html.contains("<td>short</td><td class=\"num\"></td></tr>"));
        assert!(!looks_numeric("all-at-once"));
        assert!(looks_numeric("85 %") && looks_numeric("-") && looks_numeric("1e-3"));
    }
}

//! The Prometheus text format, written straight into one buffer, and the
//! per-port label strings a scrape reuses.
//!
//! Why not the `prometheus` crate's registry: a registry per scrape hashed
//! and allocated every label set again; at 1000 ports (13 000 series) a
//! scrape took ~50 ms of a control core. Here a port's label text is built
//! (and escaped) once per port set, and a scrape only appends numbers.
//! `promtool check metrics` checks the output in `tests/metrics.rs`.

use super::{MetricDef, CATALOG};
use std::fmt::Write;

/// Escapes a label value (backslash, double quote, newline).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The exposition being written. A family's HELP and TYPE lines are written
/// with its first sample, so a family with none is left out (as the
/// registry did).
pub struct Text {
    out: String,
    family: Option<&'static MetricDef>,
    header_done: bool,
}

impl Text {
    pub fn with_capacity(n: usize) -> Text {
        Text {
            out: String::with_capacity(n),
            family: None,
            header_done: false,
        }
    }

    /// Starts family `name` (which must be in the catalog).
    pub fn family(&mut self, name: &str) {
        let d = CATALOG
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("metric {name} is not in the catalog"));
        self.family = Some(d);
        self.header_done = false;
    }

    fn header(&mut self) -> &'static MetricDef {
        let d = self.family.expect("family() first");
        if !self.header_done {
            let _ = writeln!(self.out, "# HELP {} {}", d.name, escape_help(d.help));
            let _ = writeln!(self.out, "# TYPE {} {}", d.name, d.kind.name());
            self.header_done = true;
        }
        d
    }

    /// One sample; `labels` is the inside of the braces, already escaped
    /// (empty: none).
    pub fn sample(&mut self, labels: &str, v: u64) {
        let d = self.header();
        self.line(d.name, "", labels, "", format_args!("{v}"));
    }

    /// As `sample`, with one more label appended to `labels`.
    pub fn sample_with(&mut self, labels: &str, extra: &str, v: u64) {
        let d = self.header();
        self.line(d.name, "", labels, extra, format_args!("{v}"));
    }

    pub fn sample_f64(&mut self, labels: &str, v: f64) {
        let d = self.header();
        self.line(d.name, "", labels, "", format_args!("{v}"));
    }

    /// A histogram's series (cumulative `buckets` of (upper bound, count)).
    pub fn histogram(&mut self, labels: &str, buckets: &[(f64, u64)], count: u64, sum: f64) {
        let d = self.header();
        for (le, n) in buckets {
            let le = format!("le=\"{le}\"");
            self.line(d.name, "_bucket", labels, &le, format_args!("{n}"));
        }
        self.line(
            d.name,
            "_bucket",
            labels,
            "le=\"+Inf\"",
            format_args!("{count}"),
        );
        self.line(d.name, "_sum", labels, "", format_args!("{sum}"));
        self.line(d.name, "_count", labels, "", format_args!("{count}"));
    }

    fn line(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &str,
        extra: &str,
        v: std::fmt::Arguments,
    ) {
        let o = &mut self.out;
        o.push_str(name);
        o.push_str(suffix);
        if !labels.is_empty() || !extra.is_empty() {
            o.push('{');
            o.push_str(labels);
            if !labels.is_empty() && !extra.is_empty() {
                o.push(',');
            }
            o.push_str(extra);
            o.push('}');
        }
        o.push(' ');
        let _ = o.write_fmt(v);
        o.push('\n');
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// A port's label text, built once per port set.
pub struct PortLabels {
    pub no: u16,
    pub name: String,
    /// `port="NAME"`
    pub port: String,
    /// `port="NAME",queue="Q"`, per rx and per tx queue.
    pub rxq: Vec<String>,
    pub txq: Vec<String>,
    /// `port="NAME",type="KIND"`
    pub port_type: String,
}

impl PortLabels {
    pub fn new(no: u16, name: &str, kind: &str, n_rxq: usize, n_txq: usize) -> PortLabels {
        let port = format!("port=\"{}\"", escape_label(name));
        let q = |n: usize| (0..n).map(|q| format!("{port},queue=\"{q}\"")).collect();
        PortLabels {
            no,
            name: name.to_string(),
            rxq: q(n_rxq),
            txq: q(n_txq),
            port_type: format!("{port},type=\"{}\"", escape_label(kind)),
            port,
        }
    }

    /// Still right for this port (same number, name and queues)?
    pub fn fits(&self, no: u16, name: &str, n_rxq: usize, n_txq: usize) -> bool {
        self.no == no && self.name == name && self.rxq.len() == n_rxq && self.txq.len() == n_txq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_families_written_once() {
        let l = PortLabels::new(1, "a\"b\\c", "vhost-user", 2, 1);
        assert_eq!(l.port, r#"port="a\"b\\c""#);
        assert_eq!(l.rxq[1], r#"port="a\"b\\c",queue="1""#);
        let mut t = Text::with_capacity(256);
        t.family("ferrovs_flows");
        t.family("ferrovs_port_rx_packets_total");
        t.sample(&l.rxq[0], 5);
        t.sample_with(&l.rxq[1], "reason=\"x\"", 6);
        t.family("ferrovs_fdb_entries");
        t.sample("", 7);
        let s = t.finish();
        assert!(
            !s.contains("ferrovs_flows"),
            "a family without samples is left out"
        );
        assert_eq!(
            s.matches("# TYPE ferrovs_port_rx_packets_total counter")
                .count(),
            1
        );
        assert!(s.contains("ferrovs_port_rx_packets_total{port=\"a\\\"b\\\\c\",queue=\"0\"} 5\n"));
        assert!(s.contains(",queue=\"1\",reason=\"x\"} 6\n"));
        assert!(s.contains("\nferrovs_fdb_entries 7\n"));
    }
}

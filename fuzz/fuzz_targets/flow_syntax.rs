//! The ovs-ofctl flow syntax parser (management requests, state files):
//! never panics, and what it accepts prints back to a line that parses to
//! the same rule.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switch::flow::syntax::{format_rule, parse_filter, parse_rule, PortNames};

struct Names;
impl PortNames for Names {
    fn number(&self, n: &str) -> Option<u16> {
        n.strip_prefix("vm")?.parse().ok()
    }
    fn name(&self, no: u16) -> Option<String> {
        (no < 100).then(|| format!("vm{no}"))
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rule) = parse_rule(line, &Names) {
        let again = format_rule(&rule, &Names);
        let back = parse_rule(&again, &Names)
            .unwrap_or_else(|e| panic!("{line:?} printed as {again:?}, which does not parse: {e}"));
        assert_eq!(back, rule, "{line:?} -> {again:?}");
    }
    let _ = parse_filter(line, &Names, true);
    let _ = parse_filter(line, &Names, false);
});

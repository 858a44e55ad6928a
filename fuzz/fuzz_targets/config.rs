//! The TOML config (and its validation, VLAN options included): any text
//! gives a config or an error naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switch::config::Config::parse(text, "fuzz");
    }
});

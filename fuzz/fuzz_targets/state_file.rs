//! The desired-state file ferrovsd reloads at start: any bytes give a
//! validated state or an error naming what is wrong.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = switch::state::parse_text(text);
});

//! The management socket's request parser: any bytes give a request or an error.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = switch::control::parse_request(data);
});

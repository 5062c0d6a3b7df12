#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| almr_fuzz::idx(data));

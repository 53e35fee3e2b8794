#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| markspace::fuzzing::parse_format("bpf-object", data));

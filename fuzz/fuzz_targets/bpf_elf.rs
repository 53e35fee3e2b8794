#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| markspace::fuzzing::bpf_elf(data));

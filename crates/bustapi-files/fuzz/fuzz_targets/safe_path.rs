#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| bustapi_files_fuzz::safe_path(data));

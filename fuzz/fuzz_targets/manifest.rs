//! Any text given to `mmf check`/`mmf render`: the multi-document YAML reader and the schema
//! check behind it. Must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmf_operator::core::manifest::{parse_documents, parse_manifests};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_documents("fuzz.yaml", text);
    let _ = parse_manifests("fuzz.yaml", text);
});

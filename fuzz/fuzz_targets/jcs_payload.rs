//! The signed payload (JCS canonical JSON of the typed plugin) of any plugin JSON: building it
//! must not panic, must be valid JSON, and must be stable (the payload of a plugin read back
//! from its own canonical form is the same bytes), or signatures would not verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mmf_operator::api::MmfPlugin;
use mmf_operator::core::signature::payload;

fuzz_target!(|data: &[u8]| {
    let Ok(plugin) = serde_json::from_slice::<MmfPlugin>(data) else {
        return;
    };
    let Ok(first) = payload(&plugin) else {
        return;
    };
    let canonical: serde_json::Value =
        serde_json::from_slice(&first).expect("the payload is JSON");
    let mut again = canonical.clone();
    if let Some(object) = again.as_object_mut() {
        let name = object.remove("name").unwrap_or_default();
        object.insert("metadata".to_owned(), serde_json::json!({ "name": name }));
    }
    if let Ok(reread) = serde_json::from_value::<MmfPlugin>(again) {
        assert_eq!(payload(&reread).ok().as_deref(), Some(first.as_slice()));
    }
});

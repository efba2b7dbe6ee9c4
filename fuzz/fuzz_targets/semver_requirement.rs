//! Dependency requirements and versions as plugins write them (`^1.2`, `>=1, <2`): parsing and
//! matching must not panic, and a parsed requirement prints to one that parses the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (requirement, version) = text.split_once('\n').unwrap_or((text, "1.2.3"));
    let Ok(parsed) = semver::VersionReq::parse(requirement) else {
        return;
    };
    let reprinted = semver::VersionReq::parse(&parsed.to_string()).expect("a printed requirement parses");
    if let Ok(version) = semver::Version::parse(version) {
        assert_eq!(parsed.matches(&version), reprinted.matches(&version));
    }
});

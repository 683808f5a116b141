//! Fuzz the loader and everything downstream of it: the bytes are one YAML file.
//! Run from the repository root: `cargo +nightly fuzz run loader fuzz/seeds/loader`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Inputs come from files and stdin as text: non-UTF-8 is not interesting here.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let analysis = egressc::analyze_texts(vec![("fuzz.yaml".into(), text.to_owned())]);
    if !analysis.has_errors() {
        let _ = analysis.compile();
        let _ = analysis.lower();
    }
    let _ = egressc::render_human(&analysis.findings.diagnostics, &analysis.findings.sources, false);
    let _ = egressc::render_json(&analysis.findings.diagnostics, &analysis.findings.sources);
    let _ = egressc::render_sarif(&analysis.findings.diagnostics, &analysis.findings.sources);
});

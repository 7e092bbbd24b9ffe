//! The stdio line decoder (`mcp::codec::FrameReader`) against a reference
//! model: split on `\n`; a line longer than the cap (counted before the
//! trailing `\r` is stripped) is reported as `TooLong { len }`, any other line
//! is returned without its `\r`; a last line without a newline still counts.
//!
//! Input: byte 0 picks the cap (1..=64), byte 1 the read-buffer size (1..=16,
//! so lines straddle reads at every offset); the rest is the stream.
//!
//! Shared by the fuzz target `fuzz_targets/stdio_lines.rs` and the stable replay test
//! `plugin/tests/regressions_fuzz.rs` (seeds and every crash input, on every CI run).

use channel_plugin::mcp::codec::{Frame, FrameReader};

fn model(input: &[u8], cap: usize) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut parts: Vec<&[u8]> = input.split(|&b| b == b'\n').collect();
    // "a\n" splits into ["a", ""]: the empty tail is not a line.
    if parts.last().is_some_and(|p| p.is_empty()) {
        parts.pop();
    }
    for part in parts {
        if part.len() > cap {
            out.push(Frame::TooLong { len: part.len() });
        } else {
            let line = part.strip_suffix(b"\r").unwrap_or(part);
            out.push(Frame::Line(line.to_vec()));
        }
    }
    out
}

/// Run one input; panics when a property is broken.
pub fn check(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let cap = usize::from(data[0] % 64) + 1;
    let buf_size = usize::from(data[1] % 16) + 1;
    let input = &data[2..];
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let reader = tokio::io::BufReader::with_capacity(buf_size, input);
        let mut frames = FrameReader::new(reader, cap);
        let mut got = Vec::new();
        while let Some(frame) = frames
            .next_frame()
            .await
            .expect("reading a slice cannot fail")
        {
            if let Frame::Line(line) = &frame {
                assert!(line.len() <= cap, "a line over the cap was returned");
                assert!(!line.contains(&b'\n'), "a returned line contains a newline");
            }
            got.push(frame);
            assert!(
                got.len() <= input.len() + 1,
                "more frames than bytes: reader loops"
            );
        }
        got
    });
    assert_eq!(got, model(input, cap), "cap {cap}, buffer {buf_size}");
}

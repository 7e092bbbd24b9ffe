//! The real-Claude-Code release gate: record a release black-box, derive its profile, diff it.

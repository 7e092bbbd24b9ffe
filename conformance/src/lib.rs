//! `channel-conformance`: the scenario suite and CI gate for channel plugins.

pub mod release_gate;

//! `channel-conformance`: the scenario suite and CI gate for Claude Code
//! channel plugins.
//!
//! The suite drives any plugin command through [`mock_claude`] under every
//! Claude Code profile in `fixtures/profiles/`, plays the outside world
//! through a [`trigger`], and reports one [`outcome::CheckResult`] per check
//! of the [`catalogue`] × profile. Whether a failure fails the gate is decided
//! by the profile's frozen [`requirements`] set and the [`baseline`].
//!
//! It never depends on the `plugin` crate: the harness does not trust the
//! code it tests.

pub mod app;
pub mod baseline;
pub mod catalogue;
pub mod cli;
pub mod driver;
pub mod outcome;
pub mod release_gate;
pub mod report;
pub mod requirements;
pub mod runner;
pub mod scenario;
pub mod trigger;

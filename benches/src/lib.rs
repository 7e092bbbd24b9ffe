//! Support code for `channel-bench` (the process-level driver) and the
//! criterion benches: a client that is cheap enough not to be the bottleneck.
//!
//! * [`servers`]: the servers under test (channel-plugin, the reference
//!   TypeScript server under Node and Bun, the C floor), how to find and spawn
//!   them, their discovery files;
//! * [`frames`]: the JSON-RPC lines the client writes (prepared once);
//! * [`http`], [`sse`]: sans-I/O HTTP/1.1 response and SSE parsers plus
//!   blocking connections built on them;
//! * [`aio`]: the same over tokio, for the async criterion harness;
//! * [`placement`]: pinning client and server to CPUs for the latency series;
//! * [`procfs`]: VmHWM/VmRSS from `/proc`;
//! * [`stats`], [`svg`]: percentiles and hand-rolled SVG plots.

pub mod aio;
pub mod frames;
pub mod http;
pub mod placement;
pub mod procfs;
pub mod servers;
pub mod sse;
pub mod stats;
pub mod svg;

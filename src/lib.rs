//! dcs-migration-operator: a Kubernetes operator for Huawei Cloud DCS data-migration tasks.
//!
//! - [`dcs`]: the DCS API client (wire models, SDK-HMAC-SHA256 signer, errors, retries, throttling).
//! - [`simulator`]: a DCS simulator that serves the same API over real HTTP, for tests and demos.
//! - [`cli`]: the command line.
//! - [`metrics`], [`server`], [`leader`]: `/metrics`, probes and leader election of `run`.

pub mod cli;
pub mod controller;
pub mod crash;
pub mod crd;
pub mod dcs;
pub mod leader;
pub mod metrics;
pub mod server;
pub mod simulator;
pub mod telemetry;

//! cocreate: takes civil society's input into an Open Government Partnership
//! national action plan by email and web form.
//!
//! See the README's "Architecture" section for how the modules fit together.

pub mod accountability;
pub mod app;
pub mod blocking;
pub mod clock;
pub mod commands;
pub mod config;
pub mod consultation;
pub mod domain;
pub mod inbound;
pub mod intake;
pub mod outbound;
pub mod registry;
pub mod report;
pub mod schedule;
pub mod serve;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod web;

//! The one integration-test crate (one link step on a 2-core CI).

mod check;
mod commands;
mod corpus;
mod filters;
mod findings;
mod fragments;
mod host;
mod hostile;
mod inputs;
mod layers;
mod pipeline;
mod regressions;
mod reports;
mod support;
mod tracking;
mod truncation;
mod tshark_agreement;
mod usage_errors;

//! The one integration-test crate (one link step on a 2-core CI).

mod support;
mod tshark_agreement;

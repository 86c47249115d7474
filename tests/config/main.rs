//! Integration tests of `relinkd::config` through its public API, by concern.

mod accepted;
mod channel_rejections;
mod channels;
mod egress;
mod hardening;
mod places;
mod rejected;
mod secrets;
mod support;
mod time_intervals;

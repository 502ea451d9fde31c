//! webstack-operator: a whole AWS web-application architecture, declared as one `WebStack`
//! resource and reconciled by one engine, from Kubernetes or from the `webstack` CLI.

pub mod api;
pub mod aws;
pub mod controller;
pub mod engine;
pub mod inputs;
pub mod roles;
pub mod stack;
pub mod workloads;

//! A CDK-style construct library for CloudFormation, in Rust.
//!
//! - [`sfn`]: typed Step Functions (ASL) definitions.
//! - [`cloudhsm`]: the CloudHSM constructs and their workflows.

pub mod cfn;
pub mod cloudhsm;
pub mod iam;
pub mod sfn;
pub mod tree;

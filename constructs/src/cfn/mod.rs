//! A typed CloudFormation model: expressions ([`Expr`], [`Value`]), the template document, and
//! typed resource properties.

mod expr;
pub mod resources;
mod template;

pub use expr::{sub_variables, Expr, JsonDoc, Pseudo, Value};
pub use resources::ResourceProps;
pub use template::{Output, Parameter, ParameterType, Policy, Resource, Rule, Template};

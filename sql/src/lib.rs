//! placeholder: the public surface pgserver codes against (filled in by the sql layer).

mod api;
pub use api::*;

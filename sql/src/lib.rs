//! placeholder

mod api;
pub mod catalog;
pub mod encoding;
pub(crate) mod exec;
pub mod optimizer;
pub mod parser;
pub mod plan;
pub mod planner;
mod session;
pub(crate) mod store;
pub mod types;

pub use api::*;
pub use session::SERVER_VERSION;

/// The one database a node serves.
pub const DATABASE: &str = "tinkerdb";

impl From<txn::Error> for Error {
    fn from(e: txn::Error) -> Error {
        match e {
            txn::Error::Serialization(_) => Error::Serialization(e.to_string()),
            txn::Error::Ambiguous(_) => Error::CompletionUnknown(e.to_string()),
            txn::Error::ReadOnly => Error::NotSupported(e.to_string()),
            txn::Error::Internal(m) => Error::Internal(m),
        }
    }
}

//! One error type for the whole tool: a message meant for a person.

use std::fmt;

/// A user-facing failure. The message says what went wrong, names the file
/// involved and, where there is one, what to do next.
#[derive(Debug)]
pub struct Error(pub String);

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// Result alias used throughout xtask.
pub type Result<T> = std::result::Result<T, Error>;

/// Return early with a formatted [`Error`].
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error(format!($($arg)*)))
    };
}

/// Adds a human description to lower-level errors (I/O, parsing).
pub trait Context<T> {
    /// Prefix the error with `what()`.
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T>;
}

impl<T, E: fmt::Display> Context<T> for std::result::Result<T, E> {
    fn ctx(self, what: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| Error(format!("{}: {e}", what())))
    }
}

//! Exit codes with docker's meanings.

/// The engine itself failed (bad flags, unreachable daemon, pull error...).
pub const ENGINE_ERROR: u8 = 125;
/// The command was found but could not be invoked.
pub const CANNOT_INVOKE: u8 = 126;
/// The command was not found.
pub const NOT_FOUND: u8 = 127;
/// A check (e.g. `validate`) found problems.
pub const PROBLEMS_FOUND: u8 = 1;

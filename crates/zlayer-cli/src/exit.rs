//! Exit codes with docker's meanings. 126 and 127 (the command could not be
//! invoked / was not found) come from [`zlayer_runtime::InvokeFailure`]
//! through `EngineError::exit_code`, the one place that mapping lives.

/// The engine itself failed (bad flags, unreachable daemon, pull error...).
pub const ENGINE_ERROR: u8 = zlayer_runtime::EXIT_ENGINE_ERROR as u8;
/// A check (e.g. `validate`) found problems.
pub const PROBLEMS_FOUND: u8 = 1;

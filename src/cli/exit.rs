//! Every outcome of a run and its exit code, in one place.

use std::process::ExitCode;

/// How a subcommand ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Exit {
    /// 0: success (explain: allowed).
    Success,
    /// 1: the inputs (or a cases file) have errors, or warnings with `--deny-warnings`.
    InputErrors,
    /// 2: a usage error, an unreadable input, or an output that cannot be written.
    Usage(UsageError),
    /// 2: an input could not be read (already reported as E0001).
    Unreadable,
    /// 3: `build --check` found OUT stale.
    Stale,
    /// 4: explain: denied, or not decidable offline.
    Denied,
    /// 5: test: a case failed.
    CaseFailed,
    /// 6: diff: `--fail-on` matched (access gained, or anything changed).
    DiffMatched,
}

impl Exit {
    pub fn code(&self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::InputErrors => 1,
            Exit::Usage(_) | Exit::Unreadable => 2,
            Exit::Stale => 3,
            Exit::Denied => 4,
            Exit::CaseFailed => 5,
            Exit::DiffMatched => 6,
        }
    }
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.code())
    }
}

/// A usage or I/O problem, shown as `error: …` on stderr.
#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

impl From<UsageError> for Exit {
    fn from(e: UsageError) -> Exit {
        Exit::Usage(e)
    }
}

pub fn usage(msg: impl Into<String>) -> Exit {
    Exit::Usage(UsageError(msg.into()))
}

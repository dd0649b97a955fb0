//! Build script: the commit for `--version`.

include!("../tools/git_commit.rs");

//! Group patterns (`system:bootstrappers:*`) compiled with globset.

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Errors compiling group patterns.
#[derive(Debug, thiserror::Error)]
#[error("invalid group pattern {pattern:?}: {message}")]
pub struct GroupPatternError {
    /// The pattern.
    pub pattern: String,
    /// globset's message.
    pub message: String,
}

/// A compiled list of group patterns.
#[derive(Debug, Clone)]
pub struct GroupMatcher {
    set: GlobSet,
}

impl GroupMatcher {
    /// Compiles patterns (`*` matches any run of characters, `:` included).
    pub fn new(patterns: &[String]) -> Result<GroupMatcher, GroupPatternError> {
        let mut b = GlobSetBuilder::new();
        for p in patterns {
            let glob = Glob::new(p).map_err(|e| GroupPatternError {
                pattern: p.clone(),
                message: e.to_string(),
            })?;
            b.add(glob);
        }
        let set = b.build().map_err(|e| GroupPatternError {
            pattern: patterns.join(","),
            message: e.to_string(),
        })?;
        Ok(GroupMatcher { set })
    }

    /// The first group in `groups` that matches, if any.
    pub fn first_match<'a>(&self, groups: &'a [String]) -> Option<&'a str> {
        groups
            .iter()
            .find(|g| self.set.is_match(g.as_str()))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests;

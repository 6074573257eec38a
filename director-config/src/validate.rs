//! The [`Validator`]: what every validation step needs to turn a span into
//! `file:line:column`. The steps themselves are `impl Validator` blocks in
//! the modules of what they validate (`service`, `parts`, `checks`, `node`);
//! this module names none of them, so each can use it without a loop.

use std::ops::Range;
use std::path::Path;

use lvs_common::config_error::LineIndex;
use toml::Spanned;

use crate::ConfigError;

pub(super) struct Validator<'a> {
    pub(super) path: &'a Path,
    /// Positions cost a binary search (a service's line is computed for
    /// every service: a rescan of the text each time was quadratic).
    pub(super) lines: &'a LineIndex<'a>,
    /// Where the part of the file being validated starts: the file is
    /// parsed part by part (see the `load` module), so spans are relative to
    /// it.
    pub(super) base: usize,
}

impl<'a> Validator<'a> {
    pub(super) fn at(&self, span: Option<Range<usize>>, message: String) -> ConfigError {
        match span {
            Some(s) => self.lines.error(self.path, self.base + s.start, message),
            None => ConfigError::whole_file(self.path, message),
        }
    }

    /// The same file, from `base` on.
    pub(super) fn from(&self, base: usize) -> Validator<'a> {
        Validator {
            path: self.path,
            lines: self.lines,
            base,
        }
    }

    pub(super) fn err<T>(&self, span: Range<usize>, message: String) -> Result<T, ConfigError> {
        Err(self.at(Some(span), message))
    }

    /// Where `offset` (in the part) is in the file.
    pub(super) fn position(&self, offset: usize) -> crate::Position {
        let (line, column) = self.lines.line_column(self.base + offset);
        crate::Position { line, column }
    }

    pub(super) fn line(&self, offset: usize) -> usize {
        self.lines.line(self.base + offset)
    }

    pub(super) fn int<T: TryFrom<i64>>(
        &self,
        v: &Spanned<i64>,
        name: &str,
        min: i64,
        max: i64,
    ) -> Result<T, ConfigError> {
        let n = *v.get_ref();
        if n < min || n > max {
            return self.err(
                v.span(),
                format!("{name} = {n} is out of range ({min}..={max})"),
            );
        }
        T::try_from(n).or_else(|_| self.err(v.span(), format!("{name} = {n} is out of range")))
    }
}

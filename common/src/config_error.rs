//! Configuration errors that say where: `file:line:column: message`, the form
//! compilers use, so editors jump to the place and an operator fixes every
//! problem of a file in one pass.
//!
//! Parsers keep byte offsets (toml's spans); turning one into a line and a
//! column is only done for an error, or through a [`LineIndex`] built once
//! per file, so validating N entries never rescans the file N times.

use std::fmt;
use std::path::{Path, PathBuf};

/// A configuration error with its position in the file.
///
/// `line` and `column` are 1-based; the column counts characters, not bytes.
/// An error about the file as a whole (no position) has `line == 0` and
/// `column == 0` and is displayed as `file: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line, 0 when the error concerns the whole file.
    pub line: usize,
    /// 1-based column in characters, 0 when the error concerns the whole file.
    pub column: usize,
    /// What is wrong, without the position.
    pub message: String,
}

impl ConfigError {
    /// An error at `line`:`column` (both 1-based) of `file`.
    pub fn new(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            line,
            column,
            message: message.into(),
        }
    }

    /// An error about the whole file, without a position.
    pub fn whole_file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError::new(file, 0, 0, message)
    }

    #[cfg(feature = "toml")]
    /// A toml parse or deserialization error of `source` (the text of `file`),
    /// positioned at the start of its span when it has one.
    pub fn from_toml(file: &Path, source: &str, error: &toml::de::Error) -> Self {
        match error.span() {
            Some(span) => {
                let (line, column) = line_column(source, span.start);
                ConfigError::new(file, line, column, error.message())
            }
            None => ConfigError::whole_file(file, error.message()),
        }
    }

    /// `(line, column)`, or `None` for an error about the whole file.
    pub fn position(&self) -> Option<(usize, usize)> {
        (self.line > 0).then_some((self.line, self.column))
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position() {
            Some((line, column)) => write!(
                f,
                "{}:{line}:{column}: {}",
                self.file.display(),
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A configuration file that cannot be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot read configuration: {source}", path.display())]
pub struct ReadError {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be read.
    #[source]
    pub source: std::io::Error,
}

/// Loading a configuration file: either it cannot be read, or its content
/// is invalid.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file cannot be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The content is invalid, at a position.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// Reads a configuration file, naming it in the error.
pub fn read(path: &Path) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|source| ReadError {
        path: path.to_path_buf(),
        source,
    })
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
///
/// One linear pass over the text before `offset`: fine for the one error a
/// parser reports; for many positions in one file, build a [`LineIndex`].
/// An offset past the end or inside a character is moved back to the
/// nearest character boundary.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let offset = char_boundary(source, offset);
    let before = &source[..offset];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    (line, before[line_start..].chars().count() + 1)
}

/// The start of every [`LINE_STRIDE`]th line of a text, so each position
/// costs a binary search plus a scan of at most that many lines. Every
/// line's start was 8 bytes a line: 660 kB for a file of 20,000 servers,
/// held at the peak of every load and reload.
#[derive(Debug, Clone)]
pub struct LineIndex<'a> {
    source: &'a str,
    /// Byte offset at which lines 1, 1 + LINE_STRIDE, ... start.
    starts: Vec<usize>,
}

/// Lines per entry of a [`LineIndex`].
pub const LINE_STRIDE: usize = 32;

impl<'a> LineIndex<'a> {
    /// Indexes `source` in one pass.
    pub fn new(source: &'a str) -> Self {
        let starts = std::iter::once(0)
            .chain(
                source
                    .bytes()
                    .enumerate()
                    .filter(|&(_, b)| b == b'\n')
                    .map(|(i, _)| i + 1)
                    .skip(LINE_STRIDE - 1)
                    .step_by(LINE_STRIDE),
            )
            .collect();
        LineIndex { source, starts }
    }

    /// 1-based line and column (in characters) of byte `offset`; the same
    /// result as [`line_column`].
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let offset = char_boundary(self.source, offset);
        // The last indexed line starting at or before the offset.
        let k = self.starts.partition_point(|&start| start <= offset) - 1;
        let from = self.starts[k];
        let before = &self.source[from..offset];
        let newlines = before.bytes().filter(|&b| b == b'\n').count();
        let start = before.rfind('\n').map_or(from, |i| from + i + 1);
        (
            k * LINE_STRIDE + newlines + 1,
            self.source[start..offset].chars().count() + 1,
        )
    }

    /// The 1-based line of byte `offset`.
    pub fn line(&self, offset: usize) -> usize {
        self.line_column(offset).0
    }

    /// An error of `file` (whose text this indexes) at byte `offset`.
    pub fn error(&self, file: &Path, offset: usize, message: impl Into<String>) -> ConfigError {
        let (line, column) = self.line_column(offset);
        ConfigError::new(file, line, column, message)
    }
}

/// `offset` clamped to the text and moved back to a character boundary, so
/// slicing never panics whatever offset a parser hands over.
fn char_boundary(source: &str, offset: usize) -> usize {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_matches_the_compiler_form() {
        let e = ConfigError::new("/etc/x.toml", 4, 11, "VIP listed twice");
        assert_eq!(e.to_string(), "/etc/x.toml:4:11: VIP listed twice");
        assert_eq!(e.position(), Some((4, 11)));
        let e = ConfigError::whole_file("x.toml", "empty");
        assert_eq!(e.to_string(), "x.toml: empty");
        assert_eq!(e.position(), None);
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_column("ab\ncdé f", 9), (2, 6));
        assert_eq!(line_column("x", 0), (1, 1));
        assert_eq!(line_column("a\n", 2), (2, 1));
        // Past the end, or inside a character: clamped, never a panic.
        assert_eq!(line_column("ab", 99), (1, 3));
        assert_eq!(line_column("é", 1), (1, 1));
    }

    #[test]
    fn line_index_agrees_with_the_linear_scan() {
        let text = "first\nsécond line\n\n[[vip]]\naddress = \"x\"\nlast";
        let index = LineIndex::new(text);
        for offset in 0..=text.len() + 2 {
            assert_eq!(
                index.line_column(offset),
                line_column(text, offset),
                "offset {offset}"
            );
        }
        assert_eq!(index.line(text.find("[[vip]]").unwrap()), 4);
        let e = index.error(Path::new("c.toml"), text.find("address").unwrap(), "bad");
        assert_eq!(e.to_string(), "c.toml:5:1: bad");
        // Many strides, empty lines and lines of several characters.
        let long: String = (0..200)
            .map(|i| format!("{}é{}\n", "x".repeat(i % 7), "\n".repeat(i % 3)))
            .collect();
        let index = LineIndex::new(&long);
        for offset in 0..=long.len() + 1 {
            assert_eq!(
                index.line_column(offset),
                line_column(&long, offset),
                "offset {offset}"
            );
        }
    }

    #[cfg(feature = "toml")]
    #[test]
    fn toml_errors_keep_their_position() {
        let text = "[a]\nb = \n";
        let error = toml::from_str::<toml::Table>(text).unwrap_err();
        let e = ConfigError::from_toml(Path::new("t.toml"), text, &error);
        assert_eq!(e.position().map(|p| p.0), Some(2), "{e}");
        assert!(e.to_string().starts_with("t.toml:2:"), "{e}");
    }

    #[test]
    fn read_errors_name_the_file_and_keep_the_io_error() {
        let e = read(Path::new("/nonexistent/rs.toml")).unwrap_err();
        assert_eq!(e.source.kind(), std::io::ErrorKind::NotFound);
        let text = e.to_string();
        assert!(
            text.starts_with("/nonexistent/rs.toml: cannot read configuration: "),
            "{text}"
        );
        let load: LoadError = e.into();
        assert!(std::error::Error::source(&load).is_some());
    }
}

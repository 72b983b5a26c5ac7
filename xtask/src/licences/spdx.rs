//! SPDX licence expressions as crates.io spells them, parsed into a tree
//! and judged against an allow-list.
//!
//! ```text
//! expr   = and ("OR" and)*          "/" is the legacy spelling of OR
//! and    = with ("AND" with)*
//! with   = atom ("WITH" exception)?
//! atom   = licence-id ["+"] | "(" expr ")"
//! ```
//! `AND` binds tighter than `OR`, as the SPDX spec (annex D) says: `MIT OR
//! Apache-2.0 AND ISC` is `MIT OR (Apache-2.0 AND ISC)`.

use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// One licence id (`MIT`, `GPL-3.0-or-later`); a trailing `+` is kept
    /// in the id: it only widens a GPL-style licence, never allows it.
    Licence(String),
    /// `licence WITH exception`, e.g. `Apache-2.0 WITH LLVM-exception`.
    With { licence: String, exception: String },
    /// Every one applies: each must be allowed.
    And(Vec<Expr>),
    /// The user picks one: one allowed is enough.
    Or(Vec<Expr>),
}

/// An expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty licence expression")]
    Empty,
    #[error("expected a licence id after {after:?}")]
    MissingOperand { after: String },
    #[error("unexpected {token:?}")]
    Unexpected { token: String },
    #[error("unclosed \"(\"")]
    Unclosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Id(String),
    And,
    Or,
    With,
    Open,
    Close,
}

fn tokens(text: &str) -> Vec<Token> {
    let spaced = text
        .replace('(', " ( ")
        .replace(')', " ) ")
        .replace('/', " OR ");
    spaced
        .split_whitespace()
        .map(|word| match word {
            "AND" | "and" => Token::And,
            "OR" | "or" => Token::Or,
            "WITH" | "with" => Token::With,
            "(" => Token::Open,
            ")" => Token::Close,
            id => Token::Id(id.to_owned()),
        })
        .collect()
}

/// Parses `text` (`MIT OR Apache-2.0`, `MIT/Apache-2.0`, `(MIT OR
/// Apache-2.0) AND Unicode-3.0`).
pub fn parse(text: &str) -> Result<Expr, ParseError> {
    let tokens = tokens(text);
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(expr),
        Some(t) => Err(ParseError::Unexpected {
            token: t.to_string(),
        }),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn next_is(&mut self, wanted: &Token) -> bool {
        let is = self.tokens.get(self.at) == Some(wanted);
        if is {
            self.at += 1;
        }
        is
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.and()?];
        while self.next_is(&Token::Or) {
            parts.push(self.and()?);
        }
        Ok(one_or(parts, Expr::Or))
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut parts = vec![self.with()?];
        while self.next_is(&Token::And) {
            parts.push(self.with()?);
        }
        Ok(one_or(parts, Expr::And))
    }

    fn with(&mut self) -> Result<Expr, ParseError> {
        let atom = self.atom()?;
        if !self.next_is(&Token::With) {
            return Ok(atom);
        }
        let Expr::Licence(licence) = atom else {
            return Err(ParseError::Unexpected {
                token: Token::With.to_string(),
            });
        };
        match self.tokens.get(self.at).cloned() {
            Some(Token::Id(exception)) => {
                self.at += 1;
                Ok(Expr::With { licence, exception })
            }
            _ => Err(ParseError::MissingOperand {
                after: format!("{licence} WITH"),
            }),
        }
    }

    fn atom(&mut self) -> Result<Expr, ParseError> {
        let after = self
            .at
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map_or_else(|| "the start".to_owned(), ToString::to_string);
        match self.tokens.get(self.at).cloned() {
            Some(Token::Id(id)) => {
                self.at += 1;
                Ok(Expr::Licence(id))
            }
            Some(Token::Open) => {
                self.at += 1;
                let inner = self.or()?;
                if self.next_is(&Token::Close) {
                    Ok(inner)
                } else {
                    Err(ParseError::Unclosed)
                }
            }
            Some(other) => Err(ParseError::Unexpected {
                token: other.to_string(),
            }),
            None => Err(ParseError::MissingOperand { after }),
        }
    }
}

fn one_or(mut parts: Vec<Expr>, many: fn(Vec<Expr>) -> Expr) -> Expr {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        many(parts)
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Id(id) => id,
            Self::And => "AND",
            Self::Or => "OR",
            Self::With => "WITH",
            Self::Open => "(",
            Self::Close => ")",
        })
    }
}

impl Expr {
    /// Whether the expression lets us link the crate: `allowed` says it of
    /// one licence id (or `id WITH exception`, spelt so).
    pub fn permits(&self, allowed: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Self::Licence(id) => allowed(id),
            // An exception only ever grants more, so an allowed licence
            // stays allowed with one; and a licence allowed only with its
            // exception is listed with it.
            Self::With { licence, exception } => {
                allowed(licence) || allowed(&format!("{licence} WITH {exception}"))
            }
            Self::And(parts) => parts.iter().all(|p| p.permits(allowed)),
            Self::Or(parts) => parts.iter().any(|p| p.permits(allowed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> Expr {
        Expr::Licence(s.to_owned())
    }

    #[test]
    fn or_and_with_and_slash_parse_with_spdx_precedence() {
        assert_eq!(parse("MIT").unwrap(), id("MIT"));
        assert_eq!(
            parse("MIT/Apache-2.0").unwrap(),
            Expr::Or(vec![id("MIT"), id("Apache-2.0")])
        );
        assert_eq!(
            parse("MIT OR Apache-2.0 AND ISC").unwrap(),
            Expr::Or(vec![
                id("MIT"),
                Expr::And(vec![id("Apache-2.0"), id("ISC")])
            ])
        );
        assert_eq!(
            parse("(MIT OR Apache-2.0) AND Unicode-3.0").unwrap(),
            Expr::And(vec![
                Expr::Or(vec![id("MIT"), id("Apache-2.0")]),
                id("Unicode-3.0")
            ])
        );
        assert_eq!(
            parse("Apache-2.0 WITH LLVM-exception OR MIT").unwrap(),
            Expr::Or(vec![
                Expr::With {
                    licence: "Apache-2.0".into(),
                    exception: "LLVM-exception".into()
                },
                id("MIT")
            ])
        );
    }

    #[test]
    fn malformed_expressions_are_errors() {
        assert_eq!(parse("  "), Err(ParseError::Empty));
        assert!(matches!(
            parse("MIT OR"),
            Err(ParseError::MissingOperand { .. })
        ));
        assert_eq!(parse("(MIT OR ISC"), Err(ParseError::Unclosed));
        assert!(matches!(
            parse("MIT ISC"),
            Err(ParseError::Unexpected { .. })
        ));
        assert!(matches!(
            parse("GPL-2.0 WITH"),
            Err(ParseError::MissingOperand { .. })
        ));
    }
}

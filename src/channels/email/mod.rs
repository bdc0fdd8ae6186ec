//! E-mail: a raw message → [`ParsedMail`] ([`parse()`]) → the customer's
//! question without the quoted thread, signature and boilerplate
//! ([`clean()`]).

pub mod clean;
pub mod parse;

pub use clean::{Cleaned, Removed, clean};
pub use parse::{DEFAULT_MAX_BYTES, MailError, ParsedMail, html_to_text, parse};

//! Channels that are not chat: e-mail, forms, social.
//!
//! Each channel turns what a customer sent into the short question the
//! ranking core ([`crate::search`]) expects; chat needs no such step because
//! a chat message already is the question.

pub mod email;
pub mod reply;

//! HTTP API tests against the real server over a temporary articles folder.

mod analytics;
mod articles;
mod audience;
mod bad_files;
mod bad_input;
mod bundled;
mod channels;
mod cli;
mod helpers;
mod openapi;
mod protection;
mod search;
mod sessions;

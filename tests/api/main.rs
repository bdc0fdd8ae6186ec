//! HTTP API tests against the real server over a temporary articles folder.

mod actions;
mod admin;
mod adopt;
mod adopt_files;
mod adopt_markup;
mod analytics;
mod answer_text;
mod articles;
mod audience;
mod bad_files;
mod bad_input;
mod browser;
mod bundled;
mod channels;
mod cli;
mod contract;
mod customers;
mod dashboard;
mod handoffs;
mod hardening;
mod hardening_files;
mod helpers;
mod messages;
mod openapi;
#[path = "../support/pg.rs"]
mod pg;
mod portal;
mod protection;
mod replicas;
mod search;
mod semantic;
mod sessions;
mod widget;

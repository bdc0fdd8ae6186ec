//! The dashboard's page shell: the signed-in layout (nav, period picker,
//! sign-out form), the sign-in page and short message pages. maud escapes
//! every interpolated value; there are no inline scripts or `style=`
//! attributes (the CSP forbids them), only classes from `admin.css`.

use maud::{DOCTYPE, Markup, html};

use super::session::AdminSession;
use super::{CSS_PATH, css_version};

/// The dashboard's pages, in the order the nav shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Gaps,
    Articles,
    Handoffs,
}

impl Nav {
    pub const ALL: [Nav; 4] = [Nav::Overview, Nav::Gaps, Nav::Articles, Nav::Handoffs];

    pub fn path(self) -> &'static str {
        match self {
            Nav::Overview => "/admin",
            Nav::Gaps => "/admin/gaps",
            Nav::Articles => "/admin/articles",
            Nav::Handoffs => "/admin/handoffs",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Nav::Overview => "Overview",
            Nav::Gaps => "Content gaps",
            Nav::Articles => "Articles needing work",
            Nav::Handoffs => "Hand-offs",
        }
    }
}

/// The period a report covers: the last 7, 30 or 90 days (`?days=`).
/// Anything else, or nothing, is the default 30, so a mangled link still
/// shows a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Range {
    Week,
    #[default]
    Month,
    Quarter,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Week, Range::Month, Range::Quarter];

    pub fn days(self) -> u32 {
        match self {
            Range::Week => 7,
            Range::Month => 30,
            Range::Quarter => 90,
        }
    }

    /// The range a `days` value names, or the default.
    pub fn from_days(days: Option<&str>) -> Range {
        match days.map(str::trim) {
            Some("7") => Range::Week,
            Some("90") => Range::Quarter,
            _ => Range::Month,
        }
    }

    /// The range in a query string (`days=7&…`), or the default.
    pub fn from_query(query: Option<&str>) -> Range {
        let days = query.and_then(|q| {
            q.split('&')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| *name == "days")
                .map(|(_, value)| value)
        });
        Range::from_days(days)
    }
}

/// The `<head>` every dashboard page shares: the stylesheet, nothing else.
fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            title { (title) " · rapport dashboard" }
            link rel="stylesheet" href={ (CSS_PATH) "?v=" (css_version()) };
        }
    }
}

/// A signed-in dashboard page: the nav (with `active` marked), the period
/// picker when the page has a `range` (plain links to the same page with
/// `?days=7|30|90`), the sign-out form with the session's CSRF token, and
/// `body` in the main column. Pair it with [`super::page_response`].
pub fn layout(
    title: &str,
    active: Nav,
    session: &AdminSession,
    range: Option<Range>,
    body: Markup,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.admin {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.wrap.bar {
                        a.brand href="/admin" { span.logo aria-hidden="true" { "?" } "Support dashboard" }
                        form.signout method="post" action="/admin/logout" {
                            input type="hidden" name="csrf" value=(session.csrf);
                            @if let Some(admin) = &session.admin {
                                span.who { "Signed in as " strong { (admin) } }
                            }
                            button.ghost type="submit" { "Sign out" }
                        }
                    }
                    nav.tabs aria-label="Dashboard" {
                        div.wrap {
                            @for item in Nav::ALL {
                                @if item == active {
                                    a href=(item.path()) aria-current="page" { (item.label()) }
                                } @else {
                                    a href=(item.path()) { (item.label()) }
                                }
                            }
                        }
                    }
                }
                main #main .wrap {
                    div.page-head {
                        h1 { (title) }
                        @if let Some(range) = range {
                            nav.range aria-label="Period" {
                                span.range-label { "Period:" }
                                @for option in Range::ALL {
                                    @let href = format!("{}?days={}", active.path(), option.days());
                                    @if option == range {
                                        a href=(href) aria-current="true" { "Last " (option.days()) " days" }
                                    } @else {
                                        a href=(href) { "Last " (option.days()) " days" }
                                    }
                                }
                            }
                        }
                    }
                    (body)
                }
                footer.foot {
                    div.wrap {
                        p { "Figures come from this server's analytics. Sessions end after 12 hours without use." }
                    }
                }
            }
        }
    }
}

/// The sign-in form, with `message` (why the last attempt failed) above it.
/// The key field is never filled in: a key sent back would sit in the page.
pub fn sign_in(message: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Sign in"))
            body.admin {
                main #main .wrap {
                    form.card-form.signin method="post" action="/admin/login" {
                        h1 { "Support dashboard" }
                        p { "Sign in with an admin key. Agent keys don't open the dashboard." }
                        @if let Some(message) = message {
                            p.error role="alert" { (message) }
                        }
                        label for="key" { "Admin key" }
                        input #key type="password" name="key" required autocomplete="current-password"
                            autocapitalize="off" spellcheck="false" autofocus;
                        button type="submit" { "Sign in" }
                        p.hint { "You stay signed in on this browser until you sign out or 12 hours pass without use." }
                    }
                }
            }
        }
    }
}

/// A short page for refusals (a stale form, a missing page): a heading, a
/// sentence and the way back.
pub fn message(title: &str, text: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.admin {
                main #main .wrap {
                    div.card-form {
                        h1 { (title) }
                        p { (text) }
                        p { a href="/admin" { "Back to the dashboard" } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_default_to_thirty_days() {
        assert_eq!(Range::from_query(Some("days=7")), Range::Week);
        assert_eq!(Range::from_query(Some("x=1&days=90")), Range::Quarter);
        assert_eq!(Range::from_query(Some("days=30")), Range::Month);
        assert_eq!(Range::from_query(Some("days=365")), Range::Month);
        assert_eq!(Range::from_query(Some("days")), Range::Month);
        assert_eq!(Range::from_query(None), Range::Month);
    }

    #[test]
    fn the_layout_marks_the_page_keeps_it_in_range_links_and_carries_the_token() {
        let session = AdminSession {
            csrf: "t0ken".into(),
            admin: Some("<Dana>".into()),
            created_ms: 0,
            last_seen_ms: 0,
        };
        let page = layout(
            "Content gaps",
            Nav::Gaps,
            &session,
            Some(Range::Week),
            html! { p { "body" } },
        )
        .into_string();
        assert!(page.contains(r#"<a href="/admin/gaps" aria-current="page">Content gaps</a>"#));
        assert!(page.contains(r#"<a href="/admin/gaps?days=7" aria-current="true">"#));
        assert!(page.contains(r#"<a href="/admin/gaps?days=90">"#));
        assert!(page.contains(r#"name="csrf" value="t0ken""#));
        assert!(page.contains("&lt;Dana&gt;"), "escaped");
        assert!(!page.contains("style="));
        let plain = layout("Overview", Nav::Overview, &session, None, html! {}).into_string();
        assert!(!plain.contains("days="), "no picker without a range");
    }
}

//! The portal's pages. maud escapes every interpolated value; the only
//! `PreEscaped` inputs are article HTML (sanitized by ammonia at indexing)
//! and snippets (escaped by `search::snippet`, with `<mark>` added).

use std::fmt::Write;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::article::Article;
use crate::config::PortalSettings;
use crate::http::search::{SearchResponse, TotalRelation};
use crate::search::{ArticleListing, Facets, percent_encode_into};

#[derive(Debug, Clone)]
pub struct Link {
    pub title: String,
    pub url: String,
}

#[derive(Clone, Copy)]
pub struct Assets<'a> {
    pub css: &'a str,
    pub js: &'a str,
    pub agent_js: &'a str,
    pub widget_js: &'a str,
}

pub struct SearchView<'a> {
    pub q: &'a str,
    pub category: Option<&'a str>,
    pub tag: Option<&'a str>,
    pub page: u64,
    pub page_size: u64,
    pub results: Option<&'a SearchResponse>,
}

impl SearchView<'_> {
    pub fn empty() -> SearchView<'static> {
        SearchView {
            q: "",
            category: None,
            tag: None,
            page: 1,
            page_size: 20,
            results: None,
        }
    }
}

fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    percent_encode_into(&mut out, text);
    out
}

pub fn category_url(name: &str) -> String {
    format!("/categories/{}", encode(name))
}

fn search_url(q: &str, category: Option<&str>, tag: Option<&str>, page: u64) -> String {
    let mut url = format!("/search?q={}", encode(q));
    if let Some(category) = category {
        let _ = write!(url, "&category={}", encode(category));
    }
    if let Some(tag) = tag {
        let _ = write!(url, "&tag={}", encode(tag));
    }
    if page > 1 {
        let _ = write!(url, "&page={page}");
    }
    url
}

fn layout(
    settings: &PortalSettings,
    assets: Assets,
    title: &str,
    body_class: &str,
    content: Markup,
) -> Markup {
    let page_title = if title.is_empty() {
        settings.name.clone()
    } else {
        format!("{title} · {}", settings.name)
    };
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (page_title) }
                link rel="stylesheet" href={ "/assets/portal.css?v=" (assets.css) };
                script src={ "/assets/portal.js?v=" (assets.js) } defer {}
                // The chat widget, exactly as other sites embed it.
                script src={ "/widget.js?v=" (assets.widget_js) } defer {}
            }
            body class=(body_class) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    div.wrap.bar {
                        a.brand href="/" { span.logo aria-hidden="true" { "?" } (settings.name) }
                        nav aria-label="Site" {
                            a href="/#categories" { "Categories" }
                            @if let Some(url) = &settings.support_url { a href=(url) { "Contact support" } }
                        }
                    }
                }
                main #main { (content) }
                footer.foot {
                    div.wrap {
                        p { (settings.name) " · Can't find an answer? " (contact_link(settings, "Contact our support team")) }
                    }
                }
            }
        }
    }
}

fn contact_link(settings: &PortalSettings, label: &str) -> Markup {
    html! {
        @if let Some(url) = &settings.support_url {
            a.contact-link href=(url) { (label) }
        } @else {
            span.contact-link { (label) }
        }
    }
}

fn search_form(q: &str, big: bool) -> Markup {
    html! {
        form.search.big[big] action="/search" method="get" role="search" {
            label.sr for="q" { "Search the help center" }
            input #q type="search" name="q" value=(q) autocomplete="off" spellcheck="false"
                placeholder="Search for answers…" aria-describedby="search-hint"
                aria-controls="results";
            button type="submit" { "Search" }
            p #search-hint .sr { "Results update as you type. Use the arrow keys to move through them. Press / to come back here." }
        }
    }
}

/// What a customer sees when there is nothing (yet) to show: popular
/// articles and a way to reach a person. Also cloned by the script.
/// The search box on every page but the home page.
fn slim_hero(q: &str) -> Markup {
    html! {
        section.hero.slim {
            div.wrap { (search_form(q, false)) }
        }
    }
}

/// Where live results appear as the customer types on a page that has none
/// yet, with the "no results" help ready to show.
fn live_results(settings: &PortalSettings, popular: &[Link]) -> Markup {
    html! {
        div #results .results-area hidden {}
        template #stuck-template { (stuck(settings, popular)) }
    }
}

fn stuck(settings: &PortalSettings, popular: &[Link]) -> Markup {
    html! {
        div.stuck {
            @if !popular.is_empty() {
                div.popular {
                    h2 { "Popular articles" }
                    ul.links {
                        @for link in popular {
                            li { a href=(link.url) { (link.title) } }
                        }
                    }
                }
            }
            div.contact {
                h2 { "Still need help?" }
                p { "Our support team is happy to help. " (contact_link(settings, "Contact support")) }
            }
        }
    }
}

pub fn home(
    settings: &PortalSettings,
    assets: Assets,
    facets: &Facets,
    popular: &[Link],
) -> Markup {
    let content = html! {
        section.hero {
            div.wrap {
                h1 { "How can we help?" }
                (search_form("", true))
            }
        }
        div.wrap {
            div #results .results-area hidden {}
            div #browse {
                section #categories {
                    h2 { "Browse by category" }
                    ul.cards {
                        @for (name, count) in &facets.category {
                            li {
                                a.card href=(category_url(name)) {
                                    strong { (name) }
                                    span { (count) @if *count == 1 { " article" } @else { " articles" } }
                                }
                            }
                        }
                    }
                }
                (stuck(settings, popular))
            }
            template #stuck-template { (stuck(settings, popular)) }
        }
    };
    layout(settings, assets, "", "home", content)
}

fn facet_list(
    name: &str,
    values: &std::collections::BTreeMap<String, u64>,
    view: &SearchView,
    is_category: bool,
) -> Markup {
    let active = if is_category { view.category } else { view.tag };
    let mut values: Vec<(&String, &u64)> = values.iter().collect();
    values.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    html! {
        @if !values.is_empty() {
            h2 { (name) }
            ul.facets data-facet=(if is_category { "category" } else { "tag" }) {
                @if let Some(active) = active {
                    li {
                        a.facet.clear data-value="" href=(if is_category { search_url(view.q, None, view.tag, 1) } else { search_url(view.q, view.category, None, 1) }) {
                            "× " (active)
                        }
                    }
                }
                @for (value, count) in values.into_iter().take(12) {
                    @let current = active == Some(value.as_str());
                    li {
                        a.facet.on[current] data-value=(value) aria-current=[current.then_some("true")]
                            href=(if is_category { search_url(view.q, Some(value), view.tag, 1) } else { search_url(view.q, view.category, Some(value), 1) }) {
                            span { (value) } span.n { (count) }
                        }
                    }
                }
            }
        }
    }
}

pub fn search(
    settings: &PortalSettings,
    assets: Assets,
    view: &SearchView,
    popular: &[Link],
) -> Markup {
    let content = html! {
        (slim_hero(view.q))
        div.wrap {
            div #results .results-area data-qid=[view.results.map(|r| r.query_id.as_str())] {
                @match view.results {
                    None => {
                        p.count { "Type what you're looking for above." }
                        (stuck(settings, popular))
                    }
                    Some(results) if results.total == 0 => {
                        p.count { "No articles match “" (view.q) "”." }
                        p { "Try fewer or different words, or browse the articles below." }
                        (stuck(settings, popular))
                    }
                    Some(results) => {
                        div.layout {
                            aside.filters aria-label="Filters" {
                                (facet_list("Category", &results.facets.category, view, true))
                                (facet_list("Tags", &results.facets.tags, view, false))
                            }
                            section {
                                p.count aria-live="polite" {
                                    @let exact = results.total_relation == TotalRelation::Eq;
                                    (results.total) @if !exact { "+" }
                                    @if results.total == 1 && exact { " result" } @else { " results" }
                                    " for “" (view.q) "”"
                                }
                                ol.hits {
                                    @for hit in &results.hits {
                                        li {
                                            a.hit href=(hit.url) data-id=(hit.id) {
                                                span.crumb {
                                                    @if let Some(category) = &hit.category { (category) " › " }
                                                    (hit.section.heading)
                                                }
                                                strong.title { (hit.title) }
                                                span.snippet { (PreEscaped(&hit.snippet)) }
                                            }
                                        }
                                    }
                                }
                                @let shown = (view.page - 1) * view.page_size + results.hits.len() as u64;
                                nav.pager aria-label="Pages" {
                                    @if view.page > 1 {
                                        a href=(search_url(view.q, view.category, view.tag, view.page - 1)) { "← Previous" }
                                    }
                                    @if (results.total as u64) > shown {
                                        a href=(search_url(view.q, view.category, view.tag, view.page + 1)) { "Next →" }
                                    }
                                }
                                div.contact.small {
                                    p { "Didn't find it? " (contact_link(settings, "Contact support")) }
                                }
                            }
                        }
                    }
                }
            }
            template #stuck-template { (stuck(settings, popular)) }
        }
    };
    let title = if view.q.is_empty() {
        "Search".to_string()
    } else {
        format!("“{}”", view.q)
    };
    layout(settings, assets, &title, "search-page", content)
}

pub fn article(
    settings: &PortalSettings,
    assets: Assets,
    article: &Article,
    related: &[Link],
) -> Markup {
    let toc: Vec<_> = article
        .sections
        .iter()
        .filter_map(|s| s.anchor.as_ref().map(|a| (a, s)))
        .collect();
    let content = html! {
        (slim_hero(""))
        div.wrap {
            (live_results(settings, &[]))
            nav.crumbs aria-label="Breadcrumb" {
                ol {
                    li { a href="/" { "Home" } }
                    @if let Some(category) = &article.category {
                        li { a href=(category_url(category)) { (category) } }
                    }
                    li aria-current="page" { (article.title) }
                }
            }
            div.article-layout {
                article.prose data-article=(article.id) {
                    h1 { (article.title) }
                    @if let Some(updated) = &article.updated {
                        p.meta { "Updated " time datetime=(updated) { (updated) } }
                    }
                    (PreEscaped(&article.html))
                    section.vote #vote aria-labelledby="vote-title" hidden {
                        h2 #vote-title { "Was this helpful?" }
                        div.vote-buttons {
                            button type="button" data-vote="helpful" { "Yes" }
                            button type="button" data-vote="not_helpful" { "No" }
                        }
                        form #vote-comment hidden {
                            label for="comment" { "What were you looking for? (optional)" }
                            textarea #comment rows="3" maxlength="2000" {}
                            button type="submit" { "Send feedback" }
                        }
                        p.thanks #vote-thanks role="status" {}
                    }
                }
                aside.side {
                    @if toc.len() > 1 {
                        nav.toc aria-labelledby="toc-title" {
                            h2 #toc-title { "On this page" }
                            ol {
                                @for (anchor, section) in &toc {
                                    li.{ "l" (section.level) } { a href={ "#" (anchor) } { (section.heading) } }
                                }
                            }
                        }
                    }
                    @if !related.is_empty() {
                        h2 { "Related articles" }
                        ul.links {
                            @for link in related { li { a href=(link.url) { (link.title) } } }
                        }
                    }
                    div.contact.small {
                        h2 { "Need more help?" }
                        p { (contact_link(settings, "Contact support")) }
                    }
                }
            }
        }
    };
    layout(settings, assets, &article.title, "article-page", content)
}

pub fn category(
    settings: &PortalSettings,
    assets: Assets,
    name: &str,
    total: usize,
    page: u64,
    page_size: usize,
    listings: &[ArticleListing],
) -> Markup {
    let display = listings
        .first()
        .and_then(|l| l.category.clone())
        .unwrap_or_else(|| name.to_string());
    let shown = (page as usize - 1) * page_size + listings.len();
    let content = html! {
        (slim_hero(""))
        div.wrap {
            (live_results(settings, &[]))
            nav.crumbs aria-label="Breadcrumb" {
                ol {
                    li { a href="/" { "Home" } }
                    li aria-current="page" { (display) }
                }
            }
            h1 { (display) }
            p.count { (total) @if total == 1 { " article" } @else { " articles" } }
            ul.listing {
                @for listing in listings {
                    li {
                        a href=(listing.url) {
                            strong { (listing.title) }
                            @if !listing.summary.is_empty() { span { (listing.summary) } }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if page > 1 { a href={ (category_url(name)) "?page=" (page - 1) } { "← Previous" } }
                @if total > shown { a href={ (category_url(name)) "?page=" (page + 1) } { "Next →" } }
            }
        }
    };
    layout(settings, assets, &display, "category-page", content)
}

pub fn not_found(
    settings: &PortalSettings,
    assets: Assets,
    message: &str,
    popular: &[Link],
) -> Markup {
    let content = html! {
        section.hero.slim {
            div.wrap {
                h1 { (message) }
                (search_form("", false))
            }
        }
        div.wrap {
            (live_results(settings, popular))
            (stuck(settings, popular))
        }
    };
    layout(settings, assets, "Not found", "not-found", content)
}

pub fn agent(settings: &PortalSettings, assets: Assets, host_origins: &[String]) -> Markup {
    let page_title = format!("Agent assist · {}", settings.name);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (page_title) }
                link rel="stylesheet" href={ "/assets/portal.css?v=" (assets.css) };
                script src={ "/assets/agent.js?v=" (assets.agent_js) } defer {}
            }
            body.agent-page data-host-origins=(host_origins.join(" ")) {
                header.top {
                    div.wrap.bar {
                        a.brand href="/agent" { span.logo aria-hidden="true" { "A" } "Agent assist" }
                        nav { button.ghost #forget type="button" hidden { "Forget key" } }
                    }
                }
                main #main .wrap {
                    form #key-form .card-form {
                        h1 { "Sign in with your agent key" }
                        p { "Suggestions include internal articles, so they need an agent key. It is kept only in this browser tab's session storage." }
                        label for="key" { "Agent key" }
                        input #key type="password" autocomplete="off" required;
                        button type="submit" { "Use key" }
                        p.error #key-error role="alert" {}
                    }
                    // Customers the widget handed off; filled and kept live by agent.js.
                    section #queue .queue aria-labelledby="queue-title" hidden {
                        div.queue-head {
                            h2 #queue-title { "Waiting customers" }
                            span #queue-live .pill { "Connecting…" }
                        }
                        p.hint #queue-status role="status" {}
                        ol #queue-waiting .handoffs {}
                        p.hint #waiting-empty { "Nobody is waiting." }
                        h2 { "Claimed" }
                        ol #queue-claimed .handoffs {}
                        p.hint #claimed-empty { "No claimed conversations." }
                    }
                    div #panel .agent-grid hidden {
                        section.convo {
                            label for="transcript" { "Conversation" }
                            textarea #transcript rows="14" spellcheck="false"
                                placeholder="Customer: hi, I was charged twice this month\nAgent: Sorry about that, let me check" {}
                            p.hint { "One turn per line, starting with “Customer:” or “Agent:” (lines without one are the customer's). A host app can send the transcript with postMessage." }
                            label for="session" { "Bot session (optional)" }
                            input #session type="text" autocomplete="off" spellcheck="false"
                                placeholder="the chatbot's session id, to see what it already tried";
                        }
                        section.assist aria-live="polite" {
                            div #brief .brief hidden {
                                h2 { "Before you took over" }
                                p #brief-text {}
                            }
                            div #signals .signals {}
                            h2 { "Suggested articles" }
                            p.hint #status { "Paste the conversation to see suggestions." }
                            ol #suggestions .suggestions {}
                        }
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
    fn urls_encode_names_and_queries() {
        assert_eq!(
            category_url("Account & sign-in"),
            "/categories/Account%20%26%20sign-in"
        );
        assert_eq!(
            search_url("a&b c", Some("x/y"), None, 2),
            "/search?q=a%26b%20c&category=x%2Fy&page=2"
        );
    }

    #[test]
    fn titles_and_names_are_escaped() {
        let settings = PortalSettings {
            name: "<script>alert(1)</script>".into(),
            ..PortalSettings::default()
        };
        let assets = Assets {
            css: "a",
            js: "b",
            agent_js: "c",
            widget_js: "d",
        };
        let page = not_found(&settings, assets, "<img src=x onerror=alert(1)>", &[]).into_string();
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<img src=x"), "{page}");
        assert!(page.contains("&lt;script&gt;"));
    }
}

//! An e-mail body → the customer's own words: quoted thread, forwarded
//! headers, signature, sign-off, mobile footer, disclaimer and greeting
//! removed, so they don't drown the question in the ranking core.
//!
//! Line rules written by hand with `regex`: the crates for this (talon ports,
//! `email_reply_parser`) are English-only or unmaintained. Each rule marks
//! lines of the body as removed; the rules run from the most reliable (quote
//! headers, `-- `) to the most guessing (sign-offs, greetings).
//!
//! Forwarded messages: the customer's own words above a forward marker are
//! the question and the forwarded message is dropped (it is context, and
//! often about something else); when there are none ("see below"), the
//! forwarded body without its `From:/Date:/Subject:` block is cleaned and
//! becomes the question.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// The cleaned text is cut to this many characters: the question sits near
/// the top, and a long body only dilutes the query.
pub const MAX_QUESTION_CHARS: usize = 2000;

/// A kind of text [`clean`] took out, for the agent's view and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Removed {
    Quote,
    Signature,
    Greeting,
    SignOff,
    Disclaimer,
    /// A forwarded message's header block (or the whole forwarded message
    /// when the customer wrote above it).
    Forward,
    MobileFooter,
}

/// What [`clean`] keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleaned {
    /// The customer's own words, at most [`MAX_QUESTION_CHARS`] characters;
    /// never quoted text. Empty only when the customer wrote nothing and
    /// the subject is empty too.
    pub question_text: String,
    /// What was taken out, each kind once, in the order it appears in the
    /// body.
    pub removed: Vec<Removed>,
    /// The name the customer signed with (the line after a sign-off), when
    /// it looks like a name: 1–3 capitalised words.
    pub greeting_name: Option<String>,
    /// What to search with: the subject (without `Re:`/`Fwd:` prefixes and
    /// ticket tags) as the first line unless the question already contains
    /// it, then the question. A field rather than a method because
    /// [`clean`] already has the subject, and a second argument could
    /// disagree with the first.
    pub query_text: String,
}

/// Cleans one e-mail body; `subject` is the message's subject as received.
pub fn clean(subject: Option<&str>, body: &str) -> Cleaned {
    let subject = subject.and_then(normalize_subject);
    let normalized = normalize(body);
    let lines: Vec<&str> = normalized.lines().collect();

    let mut outcome = match FORWARD_MARKER.find_line(&lines) {
        Some(marker) => clean_forward(&lines, marker),
        None => clean_lines(&lines, 0, Rules::All),
    };
    if outcome.text.is_empty() {
        outcome = match &subject {
            Some(subject) => Outcome {
                text: subject.clone(),
                ..outcome
            },
            None => Outcome {
                text: clean_lines(&lines, 0, Rules::QuotesOnly).text,
                ..outcome
            },
        };
    }

    let question_text = truncate_chars(&outcome.text, MAX_QUESTION_CHARS);
    let query_text = match &subject {
        Some(subject) if !contains_words(&question_text, subject) => {
            format!("{subject}\n{question_text}").trim().to_string()
        }
        _ => question_text.clone(),
    };
    let mut removed = outcome.removed;
    removed.sort_by_key(|&(line, _)| line);
    let mut kinds = Vec::new();
    for (_, kind) in removed {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    Cleaned {
        question_text,
        removed: kinds,
        greeting_name: outcome.greeting_name,
        query_text,
    }
}

/// The subject without reply/forward prefixes (`Re:`, `Fwd:`, `AW:`, `WG:`,
/// `TR:`, `RV:`…, repeated) and ticket tags (`[#1234]`); `None` when
/// nothing is left.
pub fn normalize_subject(subject: &str) -> Option<String> {
    let without_tags = TICKET_TAG.replace_all(subject, " ");
    let mut rest = without_tags.trim();
    while let Some(prefix) = SUBJECT_PREFIX.find(rest) {
        rest = rest[prefix.end()..].trim_start();
    }
    let collapsed = rest.split_whitespace().collect::<Vec<_>>().join(" ");
    (!collapsed.is_empty()).then_some(collapsed)
}

static TICKET_TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\[[^\]\n]*\d+[^\]\n]*\]").expect("static regex"));
static SUBJECT_PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:re|fwd?|aw|wg|tr|rv|sv|antw|r|ref)\s*(?:\[\d+\])?\s*:")
        .expect("static regex")
});

/// Line endings to `\n`, non-breaking and zero-width spaces to plain ones,
/// trailing whitespace off (`-- ` keeps its space: it is matched as a
/// trimmed `--`).
fn normalize(body: &str) -> String {
    body.replace("\r\n", "\n")
        .replace('\r', "\n")
        .replace(['\u{a0}', '\u{202f}'], " ")
        .replace(['\u{200b}', '\u{feff}'], "")
        .lines()
        .map(str::trim_end)
        .collect::<Vec<_>>()
        .join("\n")
}

fn contains_words(text: &str, words: &str) -> bool {
    let squash = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    squash(text).contains(&squash(words))
}

fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].trim_end().to_string(),
        None => text.to_string(),
    }
}

#[derive(Debug, Default)]
struct Outcome {
    text: String,
    /// (line index in the body, kind): sorted into first-seen order later.
    removed: Vec<(usize, Removed)>,
    greeting_name: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rules {
    All,
    /// The least aggressive cleaning: only what is certainly not the
    /// customer's (quotes).
    QuotesOnly,
}

fn clean_forward(lines: &[&str], marker: usize) -> Outcome {
    let mut own = clean_lines(&lines[..marker], 0, Rules::All);
    if !own.text.is_empty() {
        own.removed.push((marker, Removed::Forward));
        return own;
    }
    let forwarded = &lines[marker + 1..];
    let header_end = forwarded_header_end(forwarded);
    let mut outcome = clean_lines(
        &forwarded[header_end..],
        marker + 1 + header_end,
        Rules::All,
    );
    outcome.removed.extend(own.removed);
    outcome.removed.push((marker, Removed::Forward));
    outcome
}

/// The forwarded message's header block: `Name: value` lines (and their
/// wrapped continuations) up to the first blank line after them.
fn forwarded_header_end(lines: &[&str]) -> usize {
    let mut index = 0;
    while index < lines.len() && lines[index].trim().is_empty() {
        index += 1;
    }
    let mut seen_header = false;
    while index < lines.len() {
        let line = lines[index];
        if line.trim().is_empty() {
            if seen_header {
                return index;
            }
        } else if FORWARD_HEADER_FIELD.is_match(line) {
            seen_header = true;
        } else if !seen_header {
            return index;
        }
        index += 1;
    }
    index
}

static FORWARD_HEADER_FIELD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\*?(?:from|von|de|da|van|från|date|datum|fecha|data|sent|gesendet|envoyé|enviado|subject|betreff|objet|asunto|oggetto|onderwerp|ämne|assunto|to|an|à|a|para|aan|till|cc|reply-to)\s?:")
        .expect("static regex")
});

/// Which lines of the body survive; every rule reads only surviving lines.
struct Lines<'a> {
    lines: &'a [&'a str],
    keep: Vec<bool>,
    /// Index of `lines[0]` in the whole body, for first-seen order.
    offset: usize,
    removed: Vec<(usize, Removed)>,
}

impl<'a> Lines<'a> {
    fn kept(&self) -> Vec<usize> {
        (0..self.lines.len()).filter(|&i| self.keep[i]).collect()
    }

    fn cut_from(&mut self, start: usize, kind: Removed) {
        self.keep[start..].iter_mut().for_each(|keep| *keep = false);
        self.removed.push((self.offset + start, kind));
    }

    fn drop_line(&mut self, index: usize, kind: Removed) {
        self.keep[index] = false;
        self.removed.push((self.offset + index, kind));
    }

    fn text(&self) -> String {
        super::join_lines(
            self.kept().into_iter().map(|index| self.lines[index]),
            |line| line.trim().is_empty(),
        )
    }
}

fn clean_lines(lines: &[&str], offset: usize, rules: Rules) -> Outcome {
    let mut work = Lines {
        lines,
        keep: vec![true; lines.len()],
        offset,
        removed: Vec::new(),
    };
    cut_quotes(&mut work);
    let mut greeting_name = None;
    if rules == Rules::All {
        cut_signature(&mut work);
        cut_disclaimer(&mut work);
        drop_mobile_footers(&mut work);
        greeting_name = cut_sign_off(&mut work).or_else(|| cut_bare_name(&mut work));
        drop_greeting(&mut work);
    }
    Outcome {
        text: work.text(),
        removed: work.removed,
        greeting_name,
    }
}

/// The quoted thread: from a reply header ("On … wrote:" in eight
/// languages, Outlook's header block, `-----Original Message-----`, an
/// underscore rule before `From:`) to the end; and every `>` line.
fn cut_quotes(work: &mut Lines<'_>) {
    let kept = work.kept();
    for (position, &index) in kept.iter().enumerate() {
        let line = work.lines[index].trim();
        let next = kept[position + 1..]
            .iter()
            .map(|&i| work.lines[i].trim())
            .find(|l| !l.is_empty());
        let header_starts_here = ORIGINAL_MESSAGE.is_match(line)
            || reply_header(line, next)
            || outlook_header_block(work, &kept[position..])
            || (UNDERSCORE_RULE.is_match(line) && next.is_some_and(|n| OUTLOOK_FROM.is_match(n)));
        if header_starts_here {
            work.cut_from(index, Removed::Quote);
            break;
        }
    }
    for index in work.kept() {
        if work.lines[index].trim_start().starts_with('>') {
            work.drop_line(index, Removed::Quote);
        }
    }
}

/// "On … wrote:" and its translations, alone on a line or wrapped over two
/// (Gmail wraps long ones, often inside the e-mail address).
fn reply_header(line: &str, next: Option<&str>) -> bool {
    if !REPLY_HEADER_OPENER.is_match(line) {
        return false;
    }
    REPLY_HEADER.is_match(line)
        || next.is_some_and(|next| REPLY_HEADER.is_match(&format!("{line} {next}")))
}

static REPLY_HEADER_OPENER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?:On|Am|Le|El|Op|Il|Em|Den)\s").expect("static regex"));
static REPLY_HEADER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?x)^(?:
            On\s.{1,250}\swrote\s?:
          | Am\s.{1,250}\sschrieb\b.{0,250}:
          | Le\s.{1,250}\sa\s+écrit\s?:
          | El\s.{1,250}\sescribió\s?:
          | Op\s.{1,250}\sschreef\b.{0,250}:
          | Il\s.{1,250}\sha\s+scritto\s?:
          | Em\s.{1,250}\sescreveu\s?:
          | Den\s.{1,250}\sskrev\b.{0,250}:
        )\s*$",
    )
    .expect("static regex")
});
static ORIGINAL_MESSAGE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|messaggio originale|oorspronkelijk bericht|originalmeddelande|mensagem original)\s*-{2,}$")
        .expect("static regex")
});
static UNDERSCORE_RULE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^_{10,}$").expect("static regex"));
static OUTLOOK_FROM: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\*?(?:from|von|de|da|van|från)\s?:\*?\s*\S").expect("static regex")
});
static OUTLOOK_SENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\*?(?:sent|date|gesendet|datum|envoyé|enviado(?: el)?|fecha|inviato|data|verzonden|skickat)\s?:").expect("static regex")
});
static OUTLOOK_TO_OR_SUBJECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\*?(?:to|an|à|a|para|aan|till|subject|betreff|objet|asunto|oggetto|onderwerp|ämne|assunto)\s?:").expect("static regex")
});

/// Outlook's `From: … Sent: … To: … Subject:` block (and its translations):
/// a `From:` line with a date line and a to/subject line among the next few.
fn outlook_header_block(work: &Lines<'_>, from_here: &[usize]) -> bool {
    let Some((&first, rest)) = from_here.split_first() else {
        return false;
    };
    if !OUTLOOK_FROM.is_match(work.lines[first].trim()) {
        return false;
    }
    let following: Vec<&str> = rest.iter().take(5).map(|&i| work.lines[i].trim()).collect();
    following.iter().any(|l| OUTLOOK_SENT.is_match(l))
        && following.iter().any(|l| OUTLOOK_TO_OR_SUBJECT.is_match(l))
}

/// RFC 3676's `-- ` delimiter (also a bare `--`) and everything below.
fn cut_signature(work: &mut Lines<'_>) {
    if let Some(index) = work
        .kept()
        .into_iter()
        .find(|&i| work.lines[i].trim() == "--")
    {
        work.cut_from(index, Removed::Signature);
    }
}

/// A legal disclaimer paragraph and everything after it (disclaimers close
/// a message).
fn cut_disclaimer(work: &mut Lines<'_>) {
    let kept = work.kept();
    let paragraph_start = kept.iter().enumerate().find(|&(position, &index)| {
        let starts_paragraph = position == 0 || work.lines[kept[position - 1]].trim().is_empty();
        starts_paragraph && DISCLAIMER.is_match(work.lines[index].trim())
    });
    if let Some((_, &index)) = paragraph_start {
        work.cut_from(index, Removed::Disclaimer);
    }
}

static DISCLAIMER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:\*+\s*)?(?:this\s+(?:e-?mail|message|communication)\b.{0,80}\b(?:is|are|may\s+be)\s+(?:strictly\s+)?(?:confidential|privileged|intended)|confidentiality\s+notice|the\s+information\s+(?:contained\s+)?in\s+this|if\s+you\s+are\s+not\s+the\s+intended\s+recipient|disclaimer\b|diese\s+e-?mail\s+(?:enthält|kann)|ce\s+(?:message|courriel)\s+(?:et\s+ses\s+pièces\s+jointes\s+)?(?:est|sont)\s+confidentiel)")
        .expect("static regex")
});

/// "Sent from my iPhone" and kin, wherever they stand alone on a line.
fn drop_mobile_footers(work: &mut Lines<'_>) {
    for index in work.kept() {
        if MOBILE_FOOTER.is_match(work.lines[index].trim()) {
            work.drop_line(index, Removed::MobileFooter);
        }
    }
}

static MOBILE_FOOTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^(?:sent\s+(?:from|via|with)\s+(?:my\s+)?(?:iphone|ipad|android|samsung|galaxy|mobile|blackberry|huawei|pixel|mail\s+for\s+windows|outlook\s+for\s+(?:ios|android)|yahoo\s+mail)\b.*|get\s+outlook\s+for\s+(?:ios|android)|von\s+meinem\s+(?:iphone|ipad|android|smartphone|samsung|mobiltelefon)\b.*\s+gesendet|envoyé\s+de\s+mon\s+(?:iphone|ipad|android|smartphone)|enviado\s+desde\s+mi\s+(?:iphone|ipad|android|smartphone)|verzonden\s+(?:vanaf|met)\s+(?:mijn\s+)?(?:iphone|ipad|android)|inviato\s+da\s+(?:iphone|ipad|android))[.!]?$")
        .expect("static regex")
});

/// A sign-off ("Thanks,", "Best regards", "Mit freundlichen Grüßen"…) as
/// the whole line, followed only by a few short lines (name, title,
/// phone); cuts from it and returns the name on the line after it. A line
/// that merely starts like a sign-off ("Thanks for the help but…") is text.
fn cut_sign_off(work: &mut Lines<'_>) -> Option<String> {
    let kept = work.kept();
    for (position, &index) in kept.iter().enumerate() {
        let Some(sign_off) = SIGN_OFF.captures(work.lines[index].trim()) else {
            continue;
        };
        let tail: Vec<&str> = kept[position + 1..]
            .iter()
            .map(|&i| work.lines[i].trim())
            .filter(|l| !l.is_empty())
            .collect();
        let looks_like_signature_block = tail.len() <= 5
            && tail
                .iter()
                .all(|l| l.chars().count() <= 60 && !l.ends_with('?'));
        if !looks_like_signature_block {
            continue;
        }
        let inline_name = sign_off.name("name").map(|m| m.as_str().to_string());
        let name = inline_name.or_else(|| {
            tail.first()
                .filter(|l| NAME.is_match(l))
                .map(|l| l.to_string())
        });
        work.cut_from(index, Removed::SignOff);
        return name;
    }
    None
}

static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?xi)^(?:
        (?:many\s+|thanks\s+and\s+)?thanks(?:\s+(?:a\s+lot|so\s+much|again|in\s+advance))?
      | thank\s+you(?:\s+(?:so\s+much|very\s+much|in\s+advance|again))?
      | thx | ty | tia
      | (?:best|kind|warm|warmest|many)\s+(?:regards|wishes)
      | (?:with\s+)?(?:best|kind)\s+regards | regards | best | cheers | sincerely | yours\s+(?:truly|sincerely)
      | all\s+the\s+best | take\s+care
      | mit\s+freundlichen\s+grüßen | mit\s+freundlichen\s+grüssen | (?:viele|beste|liebe)\s+grüße | (?:viele|beste|liebe)\s+grüsse | mfg | gruß | grüße | danke(?:\s+schön)?
      | (?:bien\s+)?cordialement | bien\s+à\s+vous | merci(?:\s+beaucoup|\s+d'avance)?
      | (?:un\s+)?saludos?(?:\s+cordiales)? | atentamente | gracias
      | (?:met\s+vriendelijke\s+)?groet(?:en)? | bedankt
      | cordiali\s+saluti | saluti | grazie(?:\s+mille)?
      | atenciosamente | obrigad[oa] | abraços
      | med\s+vänliga\s+hälsningar | vänliga\s+hälsningar | hälsningar | mvh | tack
    )\s*[,.!]*(?:\s*[,-]?\s+(?-i:(?P<name>\p{Lu}[\p{L}'-]*(?:\s\p{Lu}[\p{L}'-]*){0,2})))?\s*[,.!]*$")
    .expect("static regex")
});
/// 1–3 capitalised words: a name as people sign with one.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\p{Lu}[\p{L}'.-]*(?:\s\p{Lu}[\p{L}'.-]*){0,2}$").expect("static regex")
});

/// A message that ends in a bare name ("…my new phone?\n\nPriya") without
/// a sign-off: the name, alone in its last paragraph of one line, is a
/// sign-off too. One or two capitalised words only, so a closing
/// "Google Calendar Sync Settings" stays text.
fn cut_bare_name(work: &mut Lines<'_>) -> Option<String> {
    let kept: Vec<usize> = work
        .kept()
        .into_iter()
        .filter(|&i| !work.lines[i].trim().is_empty())
        .collect();
    let (&last, before) = kept.split_last()?;
    let &previous = before.last()?;
    let line = work.lines[last].trim();
    let paragraph_alone = (previous + 1..last).any(|i| work.lines[i].trim().is_empty());
    if !paragraph_alone || !BARE_NAME.is_match(line) || line.split_whitespace().count() > 2 {
        return None;
    }
    work.cut_from(last, Removed::SignOff);
    Some(line.to_string())
}

/// Stricter than [`NAME`]: letters, hyphens and apostrophes only, so a
/// closing "Done." or "E42" stays text.
static BARE_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\p{Lu}[\p{L}'-]*(?:\s\p{Lu}[\p{L}'-]*)?$").expect("static regex")
});

/// A first line that is only a greeting ("Hi,", "Dear Support,", "Hi
/// there!", "Bonjour,"): addressee words must be capitalised or a known
/// group word, so "Hi I cannot log in!" stays.
fn drop_greeting(work: &mut Lines<'_>) {
    let first = work
        .kept()
        .into_iter()
        .find(|&i| !work.lines[i].trim().is_empty());
    if let Some(index) = first
        && GREETING.is_match(work.lines[index].trim())
    {
        work.drop_line(index, Removed::Greeting);
    }
}

static GREETING: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?x)^(?i:
        hi | hello | hey | hiya | dear | greetings | good\s+(?:morning|afternoon|evening|day)
      | hallo | moin | servus | guten\s+(?:tag|morgen|abend) | liebe[rs]? | sehr\s+geehrte[rs]?(?:\s+damen\s+und\s+herren)?
      | bonjour | bonsoir | salut | madame,?\s+monsieur
      | hola | buenos\s+días | buenas(?:\s+tardes)? | estimad[oa]s?
      | hoi | beste | goedemorgen | goedemiddag
      | ciao | buongiorno | salve | gentile
      | olá | oi | bom\s+dia | prezad[oa]s?
      | hej | god\s+morgon
    )
    (?:
        \s*[,!.:]*\s*$
      | (?:\s+(?:\p{Lu}[\p{L}'.-]*|(?i:there|team|all|everyone|folks|support|guys|sir|madam|y'all|and|or|the|du|le|la|les|equipo|équipe)))+\s*[,!:.]+\s*$
    )")
    .expect("static regex")
});

/// The first line that is a forward marker.
static FORWARD_MARKER: LazyLock<LineFinder> = LazyLock::new(|| {
    LineFinder(
        Regex::new(r"(?i)^(?:-{3,}\s*(?:forwarded\s+message|weitergeleitete\s+nachricht|message\s+transféré|mensaje\s+reenviado|messaggio\s+inoltrato|doorgestuurd\s+bericht|vidarebefordrat\s+meddelande|mensagem\s+encaminhada)\s*-{3,}|begin\s+forwarded\s+message\s*:|anfang\s+der\s+weitergeleiteten\s+nachricht\s*:|début\s+du\s+message\s+réexpédié\s*:)$")
            .expect("static regex"),
    )
});

struct LineFinder(Regex);

impl LineFinder {
    fn find_line(&self, lines: &[&str]) -> Option<usize> {
        lines.iter().position(|line| self.0.is_match(line.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(body: &str) -> String {
        clean(None, body).question_text
    }

    #[test]
    fn quote_headers_in_eight_languages_cut_the_thread() {
        let headers = [
            "On Mon, 3 Nov 2025 at 14:02, Jane <jane@example.com> wrote:",
            "Am Mo., 3. Nov. 2025 um 14:02 Uhr schrieb Jane <jane@example.com>:",
            "Le lun. 3 nov. 2025 à 14:02, Jane <jane@example.com> a écrit :",
            "El lun, 3 nov 2025 a las 14:02, Jane (<jane@example.com>) escribió:",
            "Op ma 3 nov 2025 om 14:02 schreef Jane <jane@example.com>:",
            "Il giorno lun 3 nov 2025 alle ore 14:02 Jane <jane@example.com> ha scritto:",
            "Em seg., 3 de nov. de 2025 às 14:02, Jane <jane@example.com> escreveu:",
            "Den 3 nov. 2025 kl. 14:02 skrev Jane <jane@example.com>:",
        ];
        for header in headers {
            let body = format!("How do I export my data?\n\n{header}\nOld answer about billing.\n");
            let cleaned = clean(None, &body);
            assert_eq!(
                cleaned.question_text, "How do I export my data?",
                "{header}"
            );
            assert_eq!(cleaned.removed, vec![Removed::Quote], "{header}");
        }
    }

    #[test]
    fn a_reply_header_wrapped_over_two_lines_is_still_found() {
        let body = "Sync fails with E42.\n\nOn Mon, 3 Nov 2025 at 14:02, Jane Smith <jane.smith@\nexample.com> wrote:\n\nUnquoted old text about invoices.\n";
        assert_eq!(question(body), "Sync fails with E42.");
    }

    #[test]
    fn greater_than_lines_are_quotes_even_without_a_header() {
        let body = "> did you try again?\nYes, and it still fails.\n> which browser?\nFirefox 132.";
        let cleaned = clean(None, body);
        assert_eq!(
            cleaned.question_text,
            "Yes, and it still fails.\nFirefox 132."
        );
        assert_eq!(cleaned.removed, vec![Removed::Quote]);
    }

    #[test]
    fn outlook_header_blocks_in_four_languages_cut_the_thread() {
        for block in [
            "From: Jane <jane@example.com>\nSent: Monday, 3 November 2025 14:02\nTo: Tom\nSubject: Billing",
            "Von: Jane <jane@example.com>\nGesendet: Montag, 3. November 2025 14:02\nAn: Tom\nBetreff: Rechnung",
            "De : Jane <jane@example.com>\nEnvoyé : lundi 3 novembre 2025 14:02\nÀ : Tom\nObjet : Facture",
            "De: Jane <jane@example.com>\nEnviado el: lunes, 3 de noviembre de 2025 14:02\nPara: Tom\nAsunto: Factura",
            "-----Original Message-----\nFrom: Jane",
            "________________________________\nFrom: Jane <jane@example.com>\nSent: Monday",
        ] {
            let body = format!("Printing cuts off the last column.\n\n{block}\n\nOld text.");
            assert_eq!(
                question(&body),
                "Printing cuts off the last column.",
                "{block}"
            );
        }
    }

    #[test]
    fn signature_delimiter_with_and_without_space() {
        for delimiter in ["-- ", "--"] {
            let body =
                format!("Where is the export button?\n{delimiter}\nBen Carter\n07700 900123");
            let cleaned = clean(None, &body);
            assert_eq!(cleaned.question_text, "Where is the export button?");
            assert_eq!(cleaned.removed, vec![Removed::Signature]);
        }
    }

    #[test]
    fn sign_offs_in_several_languages_capture_the_name() {
        for sign_off in [
            "Thanks,",
            "Thank you!",
            "Best regards,",
            "Kind regards",
            "Cheers,",
            "Regards,",
            "Best,",
            "Sincerely",
            "Mit freundlichen Grüßen",
            "Cordialement,",
            "Saludos",
            "Groeten,",
        ] {
            let body = format!(
                "My invoice shows the wrong VAT number.\n\n{sign_off}\nAnna Berg\nHead of Finance\n+46 8 123 456"
            );
            let cleaned = clean(None, &body);
            assert_eq!(
                cleaned.question_text, "My invoice shows the wrong VAT number.",
                "{sign_off}"
            );
            assert_eq!(
                cleaned.greeting_name.as_deref(),
                Some("Anna Berg"),
                "{sign_off}"
            );
            assert_eq!(cleaned.removed, vec![Removed::SignOff], "{sign_off}");
        }
    }

    #[test]
    fn a_line_that_starts_like_a_sign_off_is_text() {
        let body = "Thanks for the help but it still fails when I print.\nThe preview is blank.";
        let cleaned = clean(None, body);
        assert_eq!(cleaned.question_text, body);
        assert!(cleaned.removed.is_empty());
    }

    #[test]
    fn a_sign_off_followed_by_more_text_is_not_cut() {
        let body = "The export works now.\n\nThanks!\n\nBut the import still fails with a 413 error when the file is over 5 MB, why is that?";
        assert_eq!(question(body), body);
    }

    #[test]
    fn a_name_after_the_sign_off_only_when_it_looks_like_one() {
        let cleaned = clean(None, "Export fails.\n\nThanks,\n+44 20 7946 0321");
        assert_eq!(cleaned.question_text, "Export fails.");
        assert_eq!(cleaned.greeting_name, None);
    }

    #[test]
    fn mobile_footers_are_dropped() {
        for footer in [
            "Sent from my iPhone",
            "Sent from my Android",
            "Get Outlook for iOS",
            "Get Outlook for Android",
            "Sent from Mail for Windows",
            "Von meinem iPhone gesendet",
            "Envoyé de mon iPhone",
        ] {
            let cleaned = clean(
                None,
                &format!("Calendar sharing is greyed out.\n\n{footer}"),
            );
            assert_eq!(
                cleaned.question_text, "Calendar sharing is greyed out.",
                "{footer}"
            );
            assert_eq!(cleaned.removed, vec![Removed::MobileFooter], "{footer}");
        }
    }

    #[test]
    fn disclaimers_are_cut_to_the_end() {
        for disclaimer in [
            "This e-mail (and any attachments) is confidential and may be privileged.",
            "This email is confidential.",
            "CONFIDENTIALITY NOTICE: the contents of this message are private.",
            "The information contained in this message is intended only for the addressee.",
            "If you are not the intended recipient, please delete this message.",
            "DISCLAIMER: views are my own.",
        ] {
            let body = format!(
                "Two-factor codes never arrive.\n\n{disclaimer}\nPlease notify the sender."
            );
            let cleaned = clean(None, &body);
            assert_eq!(
                cleaned.question_text, "Two-factor codes never arrive.",
                "{disclaimer}"
            );
            assert_eq!(cleaned.removed, vec![Removed::Disclaimer], "{disclaimer}");
        }
    }

    #[test]
    fn greetings_alone_on_the_first_line_are_dropped() {
        for greeting in [
            "Hi,",
            "Hello team,",
            "Dear Support,",
            "Hi there!",
            "Good morning,",
            "Hallo,",
            "Bonjour,",
            "Hi Jane,",
        ] {
            let cleaned = clean(
                None,
                &format!("{greeting}\n\nMy password reset link expired."),
            );
            assert_eq!(
                cleaned.question_text, "My password reset link expired.",
                "{greeting}"
            );
            assert_eq!(cleaned.removed, vec![Removed::Greeting], "{greeting}");
        }
    }

    #[test]
    fn a_greeting_that_carries_the_question_stays() {
        for body in [
            "Hello, my export fails with an error.",
            "Hi I cannot log in!",
        ] {
            assert_eq!(question(body), body);
        }
    }

    #[test]
    fn forwarded_message_without_own_words_becomes_the_question() {
        let body = "---------- Forwarded message ---------\nFrom: Billing <billing@example.com>\nDate: Fri, 7 Nov 2025 at 09:00\nSubject: Invoice\nTo: <tom@example.com>\n\n\nYour payment failed. Update your card.\n";
        let cleaned = clean(None, body);
        assert_eq!(
            cleaned.question_text,
            "Your payment failed. Update your card."
        );
        assert_eq!(cleaned.removed, vec![Removed::Forward]);
    }

    #[test]
    fn own_words_above_a_forward_win() {
        let body = "Why did this fail?\n\nBegin forwarded message:\n\nFrom: Billing <billing@example.com>\nSubject: Invoice\n\nYour payment failed.\n";
        let cleaned = clean(None, body);
        assert_eq!(cleaned.question_text, "Why did this fail?");
        assert_eq!(cleaned.removed, vec![Removed::Forward]);
    }

    #[test]
    fn an_all_quote_body_falls_back_to_the_subject_and_never_to_the_quote() {
        let body = "On Mon, 3 Nov 2025 at 14:02, Jane <jane@example.com> wrote:\n> Old answer\n";
        let cleaned = clean(Some("Re: Re: [#1234] Password reset"), body);
        assert_eq!(cleaned.question_text, "Password reset");
        assert_eq!(cleaned.query_text, "Password reset");
        let without_subject = clean(None, body);
        assert_eq!(without_subject.question_text, "");
    }

    #[test]
    fn a_body_of_only_a_sign_off_falls_back_to_the_subject_then_the_light_cleaning() {
        assert_eq!(
            clean(Some("Printing"), "Thanks!\n").question_text,
            "Printing"
        );
        assert_eq!(clean(None, "Thanks!\n> quoted\n").question_text, "Thanks!");
    }

    #[test]
    fn subjects_lose_prefixes_and_ticket_tags() {
        assert_eq!(
            normalize_subject("RE: AW: WG: Fwd: TR: RV: [#4471] Invoice for October").as_deref(),
            Some("Invoice for October")
        );
        assert_eq!(normalize_subject("Re: [Ticket #12] "), None);
        assert_eq!(
            normalize_subject("Regarding exports").as_deref(),
            Some("Regarding exports")
        );
    }

    #[test]
    fn the_subject_is_prepended_to_the_query_unless_the_body_has_it() {
        let prepended = clean(Some("Re: Sync error"), "The app is stuck.");
        assert_eq!(prepended.query_text, "Sync error\nThe app is stuck.");
        let contained = clean(Some("Re: sync error"), "I get a Sync  error on start.");
        assert_eq!(contained.query_text, "I get a Sync  error on start.");
    }

    #[test]
    fn removed_kinds_are_listed_once_in_body_order() {
        let body = "Hi,\n\nExport fails.\n> old\nStill fails.\n> older\n\nThanks,\nTom\n\nSent from my iPhone";
        let cleaned = clean(None, body);
        assert_eq!(cleaned.question_text, "Export fails.\nStill fails.");
        assert_eq!(
            cleaned.removed,
            vec![
                Removed::Greeting,
                Removed::Quote,
                Removed::SignOff,
                Removed::MobileFooter
            ]
        );
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let body = "é".repeat(MAX_QUESTION_CHARS + 50);
        let cleaned = clean(None, &body);
        assert_eq!(cleaned.question_text.chars().count(), MAX_QUESTION_CHARS);
    }

    #[test]
    fn blank_line_runs_collapse_and_crlf_is_normalised() {
        assert_eq!(question("One.\r\n\r\n\r\n\r\nTwo.\r\n"), "One.\n\nTwo.");
    }

    #[test]
    fn removed_serializes_in_snake_case() {
        assert_eq!(
            serde_json::to_string(&Removed::SignOff).unwrap(),
            "\"sign_off\""
        );
        assert_eq!(
            serde_json::to_string(&Removed::MobileFooter).unwrap(),
            "\"mobile_footer\""
        );
    }
}

//! An HTML-only reply as text, with the quoted history marked by the HTML's
//! own structure before it becomes text.
//!
//! Clients mark what they quote in the HTML, and lose the mark when the
//! HTML is flattened: Gmail wraps it in `div.gmail_quote`, Apple Mail,
//! Thunderbird, Yandex and Mail.ru in a `blockquote`, Yahoo and Proton in
//! their own classes; Outlook.com, Hotmail, Windows Mail and Outlook for
//! Windows quote nothing and draw a separator instead (`#divRplyFwdMsg`,
//! `#appendonsend`, a `div` with only a top border), after which everything
//! is the earlier message. Here a quoted element's lines, and everything
//! after such a separator, come out with `> ` in front, as a plain-text
//! client would write them, so trimming treats both kinds of reply alike.
//!
//! The text keeps the sender's paragraphs and line breaks (`<p>`, `<div>`,
//! `<br>`, Word's one-paragraph-per-line `MsoNormal`), lists and preformatted
//! text; it leaves out what a reader never sees (`<head>`, `<style>`,
//! `<script>`, hidden elements).

use ego_tree::iter::Edge;
use scraper::node::Element;
use scraper::{Html, Node};

/// Deeper quotes than this are drawn with this many marks: each line's
/// prefix stays bounded however deeply hostile HTML nests.
const MAX_DRAWN_DEPTH: usize = 8;

/// An element's inline style without spaces, in lower case, so that
/// `border-top: solid` and `BORDER-TOP:SOLID` read alike.
fn style(e: &Element) -> Option<String> {
    e.attr("style").map(|s| {
        s.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_lowercase()
    })
}

/// Elements whose content is the earlier message, quoted.
fn is_quote(e: &Element) -> bool {
    e.name() == "blockquote"
        || e.classes().any(|c| {
            matches!(
                c,
                "gmail_quote"
                    | "gmail_quote_container"
                    | "yahoo_quoted"
                    | "protonmail_quote"
                    | "moz-cite-prefix"
                    | "moz-forward-container"
                    | "zmail_extra"
            )
        })
        || e.id().is_some_and(|id| id.starts_with("yahoo_quoted"))
}

/// Separators after which the rest of the document is the earlier message
/// (Outlook's families quote nothing; they draw a line).
fn starts_history(e: &Element) -> bool {
    if let Some(id) = e.id() {
        let id = id.strip_prefix("x_").unwrap_or(id);
        if matches!(
            id,
            "divRplyFwdMsg"
                | "appendonsend"
                | "stopSpelling"
                | "mail-editor-reference-message-container"
                | "divtagdefaultwrapper_reply"
        ) {
            return true;
        }
    }
    if e.classes().any(|c| c == "OutlookMessageHeader") {
        return true;
    }
    // Outlook for Windows and Windows Mail: the header block of the
    // earlier message sits in a div with only a top border.
    e.name() == "div"
        && style(e).is_some_and(|s| s.contains("border:none") && s.contains("border-top:solid"))
}

/// What a reader never sees.
fn is_hidden(e: &Element) -> bool {
    matches!(
        e.name(),
        "head" | "style" | "script" | "title" | "template" | "xml" | "noscript"
    ) || e.attr("hidden").is_some()
        || style(e).is_some_and(|s| s.contains("display:none") || s.contains("mso-hide:all"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Block {
    /// Not a block: text runs on.
    Inline,
    /// Starts and ends a line.
    Line,
    /// Stands apart with a blank line around it.
    Paragraph,
}

fn block(e: &Element) -> Block {
    match e.name() {
        "p" if e.classes().any(|c| c.eq_ignore_ascii_case("MsoNormal")) => Block::Line,
        "p" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "blockquote" | "pre" | "ul" | "ol"
        | "table" | "dl" => Block::Paragraph,
        "div" | "li" | "tr" | "hr" | "address" | "section" | "article" | "header" | "footer"
        | "center" | "dt" | "dd" | "form" | "fieldset" | "figure" | "main" | "nav" | "aside"
        | "caption" | "body" => Block::Line,
        _ => Block::Inline,
    }
}

#[derive(Default)]
struct Writer {
    lines: Vec<String>,
    line: String,
    /// The quote depth of the line being written.
    line_depth: usize,
    depth: usize,
    /// After a separator: everything is history.
    history: bool,
    space: bool,
    /// A block held only non-breaking spaces: a blank line on purpose.
    blank_on_purpose: bool,
    pre: usize,
    hidden: usize,
    lists: Vec<Option<u32>>,
    /// The link being written: its address and the text shown so far.
    link: Option<(String, String)>,
}

impl Writer {
    fn effective_depth(&self) -> usize {
        (self.depth + usize::from(self.history)).min(MAX_DRAWN_DEPTH)
    }

    fn push_line(&mut self, text: &str, depth: usize) {
        let mut out = String::with_capacity(text.len() + 2 * depth);
        for _ in 0..depth {
            out.push('>');
        }
        if depth > 0 && !text.is_empty() {
            out.push(' ');
        }
        out.push_str(text);
        self.lines.push(out);
    }

    /// Ends the line being written; with `force`, even an empty one.
    fn end_line(&mut self, force: bool) {
        if !self.line.is_empty() || force {
            let line = std::mem::take(&mut self.line);
            let depth = if line.is_empty() {
                self.effective_depth()
            } else {
                self.line_depth
            };
            self.push_line(line.trim_end(), depth);
        }
        self.space = false;
    }

    fn paragraph_break(&mut self) {
        self.end_line(false);
        if self
            .lines
            .last()
            .is_some_and(|l| !l.trim_matches('>').is_empty())
        {
            let depth = self.effective_depth();
            self.push_line("", depth);
        }
    }

    fn write_char(&mut self, c: char) {
        if self.line.is_empty() {
            self.line_depth = self.effective_depth();
        }
        self.line.push(c);
        if let Some((_, shown)) = self.link.as_mut() {
            shown.push(c);
        }
        self.blank_on_purpose = false;
    }

    fn text(&mut self, text: &str) {
        if self.pre > 0 {
            for (i, part) in text.split('\n').enumerate() {
                if i > 0 {
                    self.end_line(true);
                }
                part.chars()
                    .filter(|c| *c != '\r')
                    .for_each(|c| self.write_char(c));
            }
            return;
        }
        if self.line.is_empty()
            && text.contains('\u{a0}')
            && text.chars().all(|c| c.is_whitespace())
        {
            self.blank_on_purpose = true;
        }
        for c in text.chars() {
            if c.is_whitespace() {
                self.space = !self.line.is_empty();
            } else if !matches!(
                c,
                '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}' | '\u{ad}'
            ) {
                if self.space {
                    self.write_char(' ');
                    self.space = false;
                }
                self.write_char(c);
            }
        }
    }

    fn open(&mut self, e: &Element) {
        if self.hidden > 0 || is_hidden(e) {
            self.hidden += 1;
            return;
        }
        if starts_history(e) && !self.history {
            self.end_line(false);
            self.history = true;
        }
        match block(e) {
            Block::Paragraph => self.paragraph_break(),
            Block::Line => self.end_line(false),
            Block::Inline => {}
        }
        if is_quote(e) {
            self.end_line(false);
            self.depth += 1;
        }
        match e.name() {
            "br" => self.end_line(true),
            "pre" => self.pre += 1,
            "ul" => self.lists.push(None),
            "ol" => self.lists.push(Some(0)),
            "li" => {
                let mark = match self.lists.last_mut() {
                    Some(Some(n)) => {
                        *n += 1;
                        format!("{n}. ")
                    }
                    _ => "- ".to_string(),
                };
                mark.chars().for_each(|c| self.write_char(c));
            }
            "td" | "th" => self.space = !self.line.is_empty(),
            "a" => {
                self.link = e
                    .attr("href")
                    .map(str::trim)
                    .filter(|h| h.starts_with("https://") || h.starts_with("http://"))
                    .map(|h| (h.to_string(), String::new()));
            }
            _ => {}
        }
    }

    fn close(&mut self, e: &Element) {
        if self.hidden > 0 {
            self.hidden -= 1;
            return;
        }
        match e.name() {
            "pre" => self.pre = self.pre.saturating_sub(1),
            "ul" | "ol" => {
                self.lists.pop();
            }
            "a" => {
                // A link whose text is not its address keeps the address,
                // so a document the sender points to is not lost.
                if let Some((href, shown)) = self.link.take() {
                    let shown = shown.trim();
                    if !shown.is_empty() && !href.contains(shown) && !shown.contains(&href) {
                        format!(" ({href})")
                            .chars()
                            .for_each(|c| self.write_char(c));
                    }
                }
            }
            _ => {}
        }
        if is_quote(e) {
            self.end_line(false);
            self.depth = self.depth.saturating_sub(1);
        }
        let kind = block(e);
        if kind != Block::Inline && self.line.is_empty() && self.blank_on_purpose {
            self.end_line(true);
            self.blank_on_purpose = false;
        }
        match kind {
            Block::Paragraph => self.paragraph_break(),
            Block::Line => self.end_line(false),
            Block::Inline => {}
        }
    }

    fn finish(mut self) -> String {
        self.end_line(false);
        while self
            .lines
            .last()
            .is_some_and(|l| l.trim_matches('>').is_empty())
        {
            self.lines.pop();
        }
        let first = self
            .lines
            .iter()
            .position(|l| !l.trim_matches('>').is_empty())
            .unwrap_or(self.lines.len());
        self.lines[first..].join("\n")
    }
}

/// HTML nested deeper than this is not built into a tree: the HTML parser
/// checks the stack of open elements for most tags it meets, so a hostile
/// message of thousands of nested elements would cost seconds. Real mail
/// nests a few dozen deep.
pub const MAX_DEPTH: usize = 400;

/// Elements that never hold others, or that the parser closes by itself
/// when the next one opens: they do not deepen the tree.
fn never_nests(name: &[u8]) -> bool {
    const NAMES: &[&[u8]] = &[
        b"area", b"base", b"br", b"col", b"embed", b"hr", b"img", b"input", b"link", b"meta",
        b"source", b"track", b"wbr", b"p", b"li", b"td", b"th", b"tr", b"dt", b"dd", b"option",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// How deep `html` could nest at most, by its tags alone, counting up to
/// `limit + 1`: an upper bound of what the parser would build.
fn nesting(html: &str, limit: usize) -> usize {
    let bytes = html.as_bytes();
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut at = 0;
    while let Some(lt) = bytes[at..].iter().position(|&b| b == b'<') {
        let start = at + lt + 1;
        let closing = bytes.get(start) == Some(&b'/');
        let name_start = start + usize::from(closing);
        let name_len = bytes[name_start..]
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric())
            .count();
        let end = bytes[name_start..]
            .iter()
            .position(|&b| b == b'>')
            .map_or(bytes.len(), |p| name_start + p);
        let name = &bytes[name_start..name_start + name_len];
        if name_len > 0 && !never_nests(name) {
            if closing {
                depth = depth.saturating_sub(1);
            } else if end == 0 || bytes.get(end - 1) != Some(&b'/') {
                depth += 1;
                deepest = deepest.max(depth);
                if deepest > limit {
                    return deepest;
                }
            }
        }
        at = (name_start + name_len).max(start);
    }
    deepest
}

/// The text of an HTML body, quoted history marked with `> `; None when it
/// nests deeper than [`MAX_DEPTH`] (the caller flattens it without a tree).
pub fn to_text(html: &str) -> Option<String> {
    if nesting(html, MAX_DEPTH) > MAX_DEPTH {
        return None;
    }
    let document = Html::parse_document(html);
    let mut w = Writer::default();
    for edge in document.tree.root().traverse() {
        match edge {
            Edge::Open(node) => match node.value() {
                Node::Element(e) => w.open(e),
                Node::Text(t) if w.hidden == 0 => w.text(t),
                _ => {}
            },
            Edge::Close(node) => {
                if let Node::Element(e) = node.value() {
                    w.close(e);
                }
            }
        }
    }
    Some(w.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(html: &str) -> String {
        to_text(html).expect("shallow enough")
    }

    #[test]
    fn paragraphs_and_line_breaks_are_kept() {
        assert_eq!(
            text(
                "<html><head><style>p{margin:0}</style><title>x</title></head><body><p>Përshëndetje,</p><p>Propozimi ynë: <b>të dhëna</b>\n çdo muaj.</p><div>Rreshti një<br>Rreshti dy</div></body></html>"
            ),
            "Përshëndetje,\n\nPropozimi ynë: të dhëna çdo muaj.\n\nRreshti një\nRreshti dy"
        );
        // Gmail: a div per line, a div holding <br> per blank line.
        assert_eq!(
            text(
                "<div dir=\"ltr\"><div>Hello,</div><div><br></div><div>We propose open data.</div></div>"
            ),
            "Hello,\n\nWe propose open data."
        );
        // Word: a paragraph per line, &nbsp; for a blank one.
        assert_eq!(
            text(
                "<div class=WordSection1><p class=MsoNormal>Dear colleagues,<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p><p class=MsoNormal>We support draft 2.<o:p></o:p></p></div>"
            ),
            "Dear colleagues,\n\nWe support draft 2."
        );
    }

    #[test]
    fn lists_links_and_preformatted_text() {
        assert_eq!(
            text(
                "<p>Our proposals:</p><ol><li>Budgets</li><li>Contracts</li></ol><ul><li>see <a href=\"https://cso.example.org/plan.pdf\">our plan</a></li></ul><pre>  a   b\n  c</pre>"
            ),
            "Our proposals:\n\n1. Budgets\n2. Contracts\n\n- see our plan (https://cso.example.org/plan.pdf)\n\n  a   b\n  c"
        );
    }

    #[test]
    fn hidden_text_is_left_out() {
        assert_eq!(
            text(
                "<div style=\"display: none\">preview</div><span style='mso-hide:all'>x</span><script>alert(1)</script><p>Visible</p>"
            ),
            "Visible"
        );
    }

    #[test]
    fn quotes_and_everything_after_a_separator_are_marked() {
        assert_eq!(
            text(
                "<div>Yes.</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Tue, A &lt;a@b.example&gt; wrote:<br></div><blockquote class=\"gmail_quote\">Question?</blockquote></div>"
            ),
            "Yes.\n> On Tue, A <a@b.example> wrote:\n>\n>> Question?"
        );
        assert_eq!(
            text(
                "<div>Po.</div><div id=\"appendonsend\"></div><hr><div id=\"divRplyFwdMsg\"><b>From:</b> OGP</div><div>Invitation</div>"
            ),
            "Po.\n> From: OGP\n> Invitation"
        );
    }

    /// Quotes deeper than the drawn limit get the limit's marks; HTML
    /// deeper than the parser is given is not parsed at all (quickly).
    #[test]
    fn deep_nesting_is_bounded() {
        let html = "<blockquote>".repeat(100) + "deep";
        assert_eq!(
            to_text(&html).unwrap(),
            format!("{} deep", ">".repeat(MAX_DRAWN_DEPTH))
        );
        assert_eq!(to_text(&"<div><blockquote>".repeat(50_000)), None);
        // Paragraphs and breaks that never nest do not count.
        assert!(to_text(&"<p>a<br><img src=x>".repeat(10_000)).is_some());
    }
}

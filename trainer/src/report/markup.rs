//! HTML pieces shared by the run report ([`super::html`]) and the sweep
//! report's page ([`super::sweep`]).

use std::fmt::Write as _;

/// `s` escaped for HTML text and attributes.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A row of charts under a heading.
pub(crate) fn chart_row(html: &mut String, title: &str, svgs: &[String]) {
    let _ = write!(html, "<h2>{}</h2>\n<div class=\"charts\">\n", esc(title));
    for s in svgs {
        html.push_str(s);
        html.push('\n');
    }
    html.push_str("</div>\n");
}

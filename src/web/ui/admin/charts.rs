//! Server-rendered SVG bar charts for the overview. Accessible: `role="img"` with a
//! `<title>` and `aria-labelledby`; each bar carries its own `<title>`; the page shows the
//! same numbers in a table.

/// Escapes text for SVG/HTML.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: i64 = 480;
const H: i64 = 220;
const TOP: i64 = 20;
const BOTTOM: i64 = 40;

/// A vertical bar chart of `(label, value)` pairs.
pub fn bars(id: &str, title: &str, data: &[(String, i64)]) -> String {
    let max = data.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let n = data.len().max(1) as i64;
    let slot = W / n;
    let bar = (slot * 6 / 10).max(4);
    let plot = H - TOP - BOTTOM;
    let mut svg = format!(
        r#"<svg class="chart" id="{id}" role="img" aria-labelledby="{id}-title" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{t}: {summary}</title>"#,
        t = esc(title),
        summary = esc(&data
            .iter()
            .map(|(l, v)| format!("{l} {v}"))
            .collect::<Vec<_>>()
            .join(", ")),
    );
    svg.push_str(&format!(
        r##"<line x1="0" y1="{y}" x2="{W}" y2="{y}" stroke="#8c959f" stroke-width="1"/>"##,
        y = H - BOTTOM
    ));
    for (i, (label, v)) in data.iter().enumerate() {
        let h = v * plot / max;
        let x = i as i64 * slot + (slot - bar) / 2;
        let y = H - BOTTOM - h;
        svg.push_str(&format!(
            r##"<g><title>{l}: {v}</title><rect x="{x}" y="{y}" width="{bar}" height="{h}" fill="#0969da" rx="2"/><text x="{cx}" y="{ty}" text-anchor="middle" font-size="13" fill="#24292f">{v}</text><text x="{cx}" y="{ly}" text-anchor="middle" font-size="12" fill="#57606a">{l}</text></g>"##,
            l = esc(label),
            cx = x + bar / 2,
            ty = (y - 4).max(12),
            ly = H - BOTTOM + 16,
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// Stacked daily bars: `(day, completed, failed)`.
pub fn stacked_days(id: &str, title: &str, days: &[(String, i64, i64)]) -> String {
    let max = days.iter().map(|d| d.1 + d.2).max().unwrap_or(0).max(1);
    let n = days.len().max(1) as i64;
    let slot = W / n;
    let bar = (slot * 6 / 10).max(4);
    let plot = H - TOP - BOTTOM;
    let mut svg = format!(
        r#"<svg class="chart" id="{id}" role="img" aria-labelledby="{id}-title" viewBox="0 0 {W} {H}" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{t}: {summary}</title>"#,
        t = esc(title),
        summary = esc(&days
            .iter()
            .map(|(d, c, f)| format!("{d} {c} completed, {f} failed"))
            .collect::<Vec<_>>()
            .join("; ")),
    );
    svg.push_str(&format!(
        r##"<line x1="0" y1="{y}" x2="{W}" y2="{y}" stroke="#8c959f" stroke-width="1"/>"##,
        y = H - BOTTOM
    ));
    for (i, (day, ok, failed)) in days.iter().enumerate() {
        let x = i as i64 * slot + (slot - bar) / 2;
        let h_ok = ok * plot / max;
        let h_failed = failed * plot / max;
        let y_ok = H - BOTTOM - h_ok;
        let y_failed = y_ok - h_failed;
        let short = day.get(5..).unwrap_or(day);
        svg.push_str(&format!(
            r##"<g><title>{d}: {ok} completed, {failed} failed</title><rect x="{x}" y="{y_ok}" width="{bar}" height="{h_ok}" fill="#1a7f37"/><rect x="{x}" y="{y_failed}" width="{bar}" height="{h_failed}" fill="#cf222e"/><text x="{cx}" y="{ty}" text-anchor="middle" font-size="13" fill="#24292f">{total}</text><text x="{cx}" y="{ly}" text-anchor="middle" font-size="12" fill="#57606a">{s}</text></g>"##,
            d = esc(day),
            s = esc(short),
            cx = x + bar / 2,
            ty = (y_failed - 4).max(12),
            total = ok + failed,
            ly = H - BOTTOM + 16,
        ));
    }
    svg.push_str("</svg>");
    svg
}

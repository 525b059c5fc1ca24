//! `etl-run report`: one self-contained HTML page of the runs log, for a
//! person with a browser. No script, no network, no CDN: CSS and inline SVG.
//! Per pipeline: duration, rows loaded and rejects over time (failures
//! marked), its last failures with their log tails; above them the status
//! table. A year of daily runs of 50 pipelines (18,250 runs) stays a page
//! of about a megabyte: one path per chart, one mark per failure.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;

use etl_core::{Error, Result};

use crate::duration::human_ms;
use crate::runslog::{self, RunRecord, Status};
use crate::status::{self, Series};

/// `etl-run report`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// The runs log etl-run appends to.
    #[arg(long, value_name = "FILE", env = "ETL_RUNS_LOG")]
    pub runs_log: Option<PathBuf>,
    /// Where to write the page (atomically); - for stdout.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// How many of each pipeline's last failures to show with their log tails.
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub failures: usize,
    /// The page's title.
    #[arg(long, value_name = "TEXT", default_value = "etl-run report")]
    pub title: String,
}

/// One run on a chart.
#[derive(Debug, Clone)]
struct Point {
    t: i64,
    duration_ms: u64,
    rows: u64,
    rejects: u64,
    status: Status,
    run_id: String,
    exit_code: i32,
}

#[derive(Debug, Default)]
struct Pipeline {
    points: Vec<Point>,
    failures: VecDeque<RunRecord>,
}

/// `etl-run report`.
pub fn run(a: &ReportArgs) -> Result<()> {
    let path = status::runs_log_path(a.runs_log.as_deref())?;
    let mut pipelines: BTreeMap<String, Pipeline> = BTreeMap::new();
    let mut series = status::Collector::default();
    runslog::read(&path, |r| {
        let p = pipelines.entry(r.label()).or_default();
        if r.status != Status::Skipped {
            if let Some(t) = r.start_ts() {
                p.points.push(Point {
                    t: t.as_second(),
                    duration_ms: r.duration_ms,
                    rows: r.rows_loaded,
                    rejects: r.rejects,
                    status: r.status,
                    run_id: r.run_id.clone(),
                    exit_code: r.exit_code,
                });
            }
        }
        if r.status == Status::Failed && a.failures > 0 {
            if p.failures.len() == a.failures {
                p.failures.pop_front();
            }
            p.failures.push_back(r.clone());
        }
        let mut light = r;
        light.stages.clear();
        light.log_tail.clear();
        series.push(light);
    })?;
    let series = series.into_series();
    let page = render(&a.title, &path.display().to_string(), &series, &pipelines);
    if a.out.as_os_str() == "-" {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        return out
            .write_all(page.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| Error::stdout(&e));
    }
    etl_core::fsutil::atomic_write(&a.out, page.as_bytes()).map_err(|e| Error::output(&a.out, &e))
}

/// Text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222;padding:0 1em}\
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}h3{font-size:1.05em}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.25em .6em;border-bottom:1px solid #eee}\
td.n{text-align:right}tr.failed td.status,tr.interrupted td.status{color:#b00;font-weight:600}tr.ok td.status{color:#070}\
figure{margin:.5em 0}figcaption{font-size:.85em;color:#555}svg{display:block;background:#fafafa;border:1px solid #eee}\
.line{fill:none;stroke:#2a6fdb;stroke-width:1.5}.bars{stroke:#5a9;stroke-width:2}.rej{stroke:#d80;stroke-width:2}\
.fail{fill:#d22}.ok{fill:#2a6fdb}.axis{font-size:10px;fill:#777}pre{background:#f4f4f4;padding:.6em;overflow-x:auto;font-size:12px}\
article.failure{border-left:3px solid #d22;padding-left:.8em;margin:1em 0}";

const W: f64 = 900.0;
const H: f64 = 110.0;
const PAD: f64 = 14.0;

fn render(
    title: &str,
    source: &str,
    series: &[Series],
    pipelines: &BTreeMap<String, Pipeline>,
) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let total: usize = pipelines.values().map(|p| p.points.len()).sum();
    let t0 = pipelines
        .values()
        .filter_map(|p| p.points.first())
        .map(|p| p.t)
        .min()
        .unwrap_or(0);
    let t1 = pipelines
        .values()
        .filter_map(|p| p.points.last())
        .map(|p| p.t)
        .max()
        .unwrap_or(0);
    let day = |t: i64| {
        jiff::Timestamp::from_second(t)
            .map(|t| t.strftime("%Y-%m-%d").to_string())
            .unwrap_or_default()
    };
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{t}</title><style>{STYLE}</style></head><body>\n<header><h1>{t}</h1><p>{total} runs of {n} pipelines in <code>{src}</code>, {from} to {to}; written {now}.</p></header>\n",
        t = esc(title),
        n = pipelines.len(),
        src = esc(source),
        from = day(t0),
        to = day(t1),
        now = esc(&format!("{:.0}", jiff::Timestamp::now())),
    );
    status_table(&mut h, series);

    let span = (t1 - t0).max(1);
    #[allow(clippy::cast_precision_loss)] // chart coordinates
    let x = |t: i64| PAD + (W - 2.0 * PAD) * ((t - t0) as f64 / span as f64);
    for (label, p) in pipelines {
        let _ = writeln!(
            h,
            "<section class=\"pipeline\" id=\"{}\" data-pipeline=\"{}\"><h2>{}</h2>",
            anchor(label),
            esc(label),
            esc(label)
        );
        if p.points.is_empty() {
            h.push_str("<p>No run has run yet (every run was skipped).</p>\n");
        } else {
            chart(
                &mut h,
                "Duration of each run (failures in red)",
                p,
                &x,
                |pt| pt.duration_ms,
                true,
                &day(t0),
                &day(t1),
            );
            chart(
                &mut h,
                "Rows loaded",
                p,
                &x,
                |pt| pt.rows,
                false,
                &day(t0),
                &day(t1),
            );
            if p.points.iter().any(|pt| pt.rejects > 0) {
                chart(
                    &mut h,
                    "Records rejected",
                    p,
                    &x,
                    |pt| pt.rejects,
                    false,
                    &day(t0),
                    &day(t1),
                );
            }
        }
        failures(&mut h, p);
        h.push_str("</section>\n");
    }
    h.push_str("</body></html>\n");
    h
}

/// A pipeline's last failures with their log tails.
fn failures(h: &mut String, p: &Pipeline) {
    if !p.failures.is_empty() {
        let _ = writeln!(h, "<h3>Last failures</h3>");
        for f in p.failures.iter().rev() {
            let why = if f.timed_out {
                "timed out".to_owned()
            } else {
                format!("exit {}", f.exit_code)
            };
            let _ = writeln!(
                h,
                "<article class=\"failure\" data-run-id=\"{id}\"><h4>{start} · {why} · {attempts} attempt(s) · run {id}</h4><pre>{tail}</pre></article>",
                id = esc(&f.run_id),
                start = esc(&f.start),
                why = esc(&why),
                attempts = f.attempts,
                tail = esc(&f.log_tail.join("\n")),
            );
        }
    }
}

/// The status table: one row per pipeline.
fn status_table(h: &mut String, series: &[Series]) {
    h.push_str("<section id=\"status\"><h2>Status</h2><table><thead><tr><th>Pipeline</th><th>Last run (UTC)</th><th>Status</th><th>Took</th><th>Rows</th><th>Rejects</th><th>Last success</th><th>Runs</th><th>Failed</th></tr></thead><tbody>\n");
    for s in series {
        let label = s.label();
        let _ = writeln!(
            h,
            "<tr class=\"{st}\" data-pipeline=\"{l}\"><td><a href=\"#{id}\">{l}</a></td><td>{start}</td><td class=\"status\">{st}{code}</td><td class=\"n\">{took}</td><td class=\"n\">{rows}</td><td class=\"n\">{rej}</td><td>{ok}</td><td class=\"n\">{runs}</td><td class=\"n\">{failed}</td></tr>",
            st = s.last.status.as_str(),
            l = esc(&label),
            id = anchor(&label),
            start = esc(s.last.start.get(..16).unwrap_or(&s.last.start)).replace('T', " "),
            code = if s.last.exit_code == 0 { String::new() } else { format!(" ({})", s.last.exit_code) },
            took = human_ms(s.last.duration_ms),
            rows = s.last.rows_loaded,
            rej = s.last.rejects,
            ok = s.last_success.map_or_else(|| "never".to_owned(), |t| format!("{t:.0}").get(..16).unwrap_or("").replace('T', " ")),
            runs = s.counts.values().sum::<u64>(),
            failed = s.counts.get("failed").copied().unwrap_or(0),
        );
    }
    h.push_str("</tbody></table></section>\n");
}

/// A stable id for a pipeline's section.
fn anchor(label: &str) -> String {
    let mut id = String::from("p-");
    for c in label.chars() {
        id.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        });
    }
    id
}

/// One chart: a line (durations) or bars (counts) over time, the failed
/// runs marked with a red dot carrying the run id.
#[allow(clippy::too_many_arguments, clippy::cast_precision_loss)]
fn chart(
    h: &mut String,
    caption: &str,
    p: &Pipeline,
    x: &dyn Fn(i64) -> f64,
    value: impl Fn(&Point) -> u64,
    line: bool,
    from: &str,
    to: &str,
) {
    let max = p.points.iter().map(&value).max().unwrap_or(0).max(1);
    let y = |v: u64| H - PAD - (H - 2.0 * PAD) * (v as f64 / max as f64);
    let _ = write!(
        h,
        "<figure><figcaption>{}</figcaption><svg viewBox=\"0 0 {W} {H}\" width=\"100%\" role=\"img\" aria-label=\"{}\">",
        esc(caption),
        esc(caption)
    );
    let mut d = String::with_capacity(p.points.len() * 16);
    if line {
        for (i, pt) in p
            .points
            .iter()
            .filter(|pt| pt.status == Status::Ok)
            .enumerate()
        {
            let _ = write!(
                d,
                "{}{:.1} {:.1}",
                if i == 0 { "M" } else { "L" },
                x(pt.t),
                y(value(pt))
            );
        }
        if !d.is_empty() {
            let _ = write!(h, "<path class=\"line\" d=\"{d}\"/>");
        }
        // A few runs: each one a dot too, so a lone run shows.
        if p.points.len() <= 60 {
            for pt in p.points.iter().filter(|pt| pt.status == Status::Ok) {
                let _ = write!(
                    h,
                    "<circle class=\"ok\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.5\"/>",
                    x(pt.t),
                    y(value(pt))
                );
            }
        }
    } else {
        for pt in &p.points {
            let _ = write!(d, "M{:.1} {:.1}V{:.1}", x(pt.t), H - PAD, y(value(pt)));
        }
        let _ = write!(
            h,
            "<path class=\"{}\" d=\"{d}\"/>",
            if caption.starts_with("Records") {
                "rej"
            } else {
                "bars"
            }
        );
    }
    if line {
        for pt in p.points.iter().filter(|pt| pt.status != Status::Ok) {
            let _ = write!(
                h,
                "<circle class=\"fail\" data-run-id=\"{id}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3.5\"><title>{id}: {} exit {}</title></circle>",
                x(pt.t),
                y(value(pt)),
                pt.status.as_str(),
                pt.exit_code,
                id = esc(&pt.run_id),
            );
        }
    }
    let label = if line { human_ms(max) } else { max.to_string() };
    let _ = writeln!(
        h,
        "<text class=\"axis\" x=\"2\" y=\"10\">{}</text><text class=\"axis\" x=\"{PAD}\" y=\"{}\">{from}</text><text class=\"axis\" x=\"{}\" y=\"{}\" text-anchor=\"end\">{to}</text></svg></figure>",
        esc(&label),
        H - 2.0,
        W - PAD,
        H - 2.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_anchors() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(anchor("sync.sh/acme corp"), "p-sync_sh_acme_corp");
    }
}

//! The HTML timeline in a real browser: `hal-sim run FILE --html` and `replay --html`
//! write a page that headless Chromium loads without a script error, whose lanes and marks
//! are in the document it builds, and whose screenshot is not blank; a client named to
//! break out of the page stays text.
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; .ci/run installs it), or
//! `HAL_CHROMIUM` naming a Chromium or Chrome binary. Without one the tests fail, saying
//! so: they never skip.

#![allow(clippy::unwrap_used)] // a failed step is a failed test

#[path = "../../hal-net/tests/support/browser.rs"]
mod browser;

use std::path::{Path, PathBuf};
use std::process::Command;

use browser::chromium;

const HAL_SIM: &str = env!("CARGO_BIN_EXE_hal-sim");

/// Headless Chromium on `page` with `args`: (stdout, stderr).
fn browse(page: &Path, profile: &Path, args: &[&str]) -> (String, String) {
    // `#selftest`: the page hovers a mark and zooms in, and says how that went.
    let url = format!("file://{}#selftest", page.display());
    let out = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1400,1100",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", chromium().display()));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium failed on {url}:\n{stderr}");
    (stdout, stderr)
}

/// The document the page's script built, checked for a clean start: the script marked
/// the body ready, no error element, no uncaught exception on the console; and hovering a
/// mark showed its record, zooming in changed the view (the page's self-test).
fn loaded_dom(page: &Path, dir: &Path) -> String {
    let (dom, log) = browse(page, &dir.join("profile-dom"), &["--dump-dom"]);
    assert!(!log.contains("Uncaught"), "the page's script threw:\n{log}");
    assert!(
        !dom.contains(r#"data-error=""#),
        "the page reported an error:\n{dom}"
    );
    assert!(
        dom.contains(r#"data-ready="true""#),
        "the page's script did not finish:\n{log}"
    );
    let body = &dom[dom.find("<body").unwrap()..];
    let body = &body[..body.find('>').unwrap()];
    assert!(
        body.contains(r#"data-selftest-hover="ok""#),
        "hovering a mark: {body}"
    );
    assert!(
        body.contains(r#"data-selftest-zoom="ok""#),
        "zooming in: {body}"
    );
    dom
}

/// A screenshot of the page: how many distinct colours, and the share of pixels not white.
fn screenshot(page: &Path, dir: &Path) -> (usize, f64) {
    let png = dir.join("shot.png");
    browse(
        page,
        &dir.join("profile-shot"),
        &[&format!("--screenshot={}", png.display())],
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "a screenshot of {:?}", info.color_type);
    let mut colours = std::collections::BTreeSet::new();
    let (mut total, mut coloured) = (0u64, 0u64);
    for pixel in pixels[..info.buffer_size()].chunks(channels) {
        let rgb = (pixel[0], pixel[1], pixel[2]);
        colours.insert(rgb);
        total += 1;
        if rgb != (255, 255, 255) {
            coloured += 1;
        }
    }
    (colours.len(), coloured as f64 / total.max(1) as f64)
}

fn count(dom: &str, what: &str) -> usize {
    dom.matches(what).count()
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scenarios/incidents")
        .join(name)
}

#[test]
fn a_failover_runs_page_draws_every_lane_and_is_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("busy-hour.html");
    let out = Command::new(HAL_SIM)
        .arg("run")
        .arg(scenario("primary-crash-busy-hour.toml"))
        .arg("--html")
        .arg(&page)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let html = std::fs::read_to_string(&page).unwrap();
    for outside in [" src=", " href=", "<link", "@import", "url("] {
        assert!(
            !html.contains(outside),
            "the page loads nothing ({outside})"
        );
    }

    let dom = loaded_dom(&page, dir.path());
    assert_eq!(
        count(&dom, r#"class="lane server""#),
        3,
        "a lane per server"
    );
    // eng1 .. eng10 and maria.
    assert_eq!(
        count(&dom, r#"class="lane client""#),
        11,
        "a lane per client"
    );
    assert!(
        count(&dom, r#"class="bar active""#) >= 3,
        "#1, #2, then #1 active"
    );
    assert!(
        dom.contains(r#"data-lane="crash #1""#),
        "the crash's fault row"
    );
    assert!(count(&dom, r#"class="bar crash""#) >= 1, "the crash's bar");
    assert_eq!(
        count(&dom, r#"class="lane seats""#),
        1,
        "the seat chart of sim"
    );
    assert!(dom.contains(r#"class="in-use""#) && dom.contains(r#"class="count""#));
    assert!(dom.contains("COUNT 6"));
    assert!(
        count(&dom, r#"class="bar seat""#) > 10,
        "seats held as bars"
    );
    assert!(
        count(&dom, r#"class="mark request""#) > 10,
        "requests as marks"
    );
    assert!(
        count(&dom, r#"class="mark denied""#) >= 1,
        "all six seats in use"
    );
    let resent = count(&dom, r#"class="mark retry""#) + count(&dom, r#"class="mark redirect""#);
    assert!(resent >= 1, "the failover's retries and redirects");
    // Every expectation and check the run judged, all met: `passed (N/N ...)`.
    let judged: usize = stdout
        .split("passed (")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no verdict line: {stdout}"));
    assert!(judged >= 5, "{stdout}");
    assert_eq!(
        count(&dom, r#"class="mark met""#),
        judged,
        "expectations met"
    );
    assert_eq!(count(&dom, r#"class="mark unmet""#), 0);
    assert!(!dom.contains(r#"class="violation""#));

    let (colours, coloured) = screenshot(&page, dir.path());
    assert!(colours >= 12, "{colours} colours: a blank page?");
    assert!(
        coloured > 0.05,
        "{coloured} of the pixels not white: a blank page?"
    );
}

#[test]
fn a_violating_runs_page_marks_the_violation() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("double-count.html");
    let out = Command::new(HAL_SIM)
        .args([
            "replay",
            "--seed",
            "0",
            "--duration",
            "12s",
            "--clients",
            "12",
            "--plant",
            "double-count",
            "--html",
        ])
        .arg(&page)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let dom = loaded_dom(&page, dir.path());
    assert_eq!(count(&dom, r#"class="lane server""#), 3);
    assert!(
        count(&dom, r#"class="lane client""#) >= 12,
        "a lane per client"
    );
    assert_eq!(
        count(&dom, r#"line class="violation""#),
        1,
        "the violation's line"
    );
    assert!(dom.contains("violation: 1 no overuse"), "named");
}

#[test]
fn a_client_named_like_markup_stays_text_in_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    let evil = r#"</script><script>document.title='pwned';document.body.setAttribute('data-pwned','1')</script><img src=x onerror="document.title='pwned'">"#;
    let name = serde_json::to_string(evil).unwrap();
    let history = [
        r#"{"kind":"meta","schema":2,"seed":1,"scenario":"<i>escaped</i>","features":{"cad":{"count":1,"hal":true}},"lease_ms":10000,"election_timeout_ms":1000,"failover_delay_ms":500,"failback_hold_ms":10000,"max_clock_skew_ms":100}"#.to_string(),
        format!(r#"{{"kind":"request","t_ms":100,"client":{name},"req":1,"op":"checkout","server":1,"feature":"cad"}}"#),
        format!(r#"{{"kind":"client","t_ms":200,"client":{name},"event":"denied","req":1,"reason":"all_in_use","attempts":1}}"#),
        r#"{"kind":"end","t_ms":1000}"#.to_string(),
    ];
    let page = dir.path().join("evil.html");
    std::fs::write(&page, hal_sim::html::page(&history, None, None)).unwrap();
    let dom = loaded_dom(&page, dir.path());
    // The name's script did not run: the body has no attribute it sets, the title is ours.
    let body = &dom[dom.find("<body").unwrap()..];
    let body = &body[..body.find('>').unwrap()];
    assert!(!body.contains("data-pwned"), "{body}");
    assert!(body.contains(r#"data-ready="true""#), "{body}");
    assert!(!dom.contains("<title>pwned"), "{dom}");
    assert!(!dom.contains("<img"), "{dom}");
    assert!(!dom.contains("<i>escaped"), "{dom}");
    assert!(
        dom.contains("&lt;i&gt;escaped&lt;/i&gt;"),
        "the title as text: {dom}"
    );
    // The lane is there, named by the text.
    assert_eq!(count(&dom, r#"class="lane client""#), 1);
    assert!(
        dom.contains("&lt;/script&gt;&lt;script&gt;document.title"),
        "{dom}"
    );
}

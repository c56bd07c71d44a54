//! `report.html` in a real browser: headless Chromium (Debian's `chromium`, installed by
//! `scripts/setup`) opens the page, screenshots it and must log no console message and no
//! failed load. The page must also reference nothing outside itself.

use culturesteer_core::CountryCode;
use culturesteer_eval::report::{render_summary, write_report, ReportInput};
use culturesteer_eval::{Component, CountryScore, MetricInfo};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 2000;

/// A small report with awkward names (markup, `&`, quotes, `|`) in every place a name appears.
fn input() -> ReportInput {
    let usa = CountryCode::new("USA").unwrap();
    let deu = CountryCode::new("DEU").unwrap();
    let score = |country, value: f64, shift: f64| CountryScore {
        country,
        value,
        n_items: 40,
        components: (0..5)
            .map(|k| Component {
                name: format!("dim <{k}> & \"q\""),
                model: 0.2 + 0.1 * k as f64 + shift,
                human: Some(0.5),
            })
            .collect(),
        secondary: vec![("first_option_share".into(), 0.6 + shift)],
    };
    let methods = ["vanilla", "<script>alert(1)</script>", "a|b & 'c'"];
    let mut scores = Vec::new();
    let mut bootstrap = Vec::new();
    for (k, m) in methods.iter().enumerate() {
        for (c, base) in [(usa, 0.40), (deu, 0.50)] {
            let v = base - 0.03 * k as f64;
            scores.push((m.to_string(), score(c, v, 0.05 * k as f64)));
            bootstrap.push((
                m.to_string(),
                c,
                (0..50).map(|b| v + (b as f64 - 25.0) / 500.0).collect(),
            ));
        }
    }
    ReportInput {
        benchmark: "multitp".into(),
        metric: MetricInfo {
            name: "MIS",
            lower_is_better: true,
        },
        model: "model <file> & \"sha\"".into(),
        methods: methods.iter().map(|m| m.to_string()).collect(),
        scores,
        floors: vec![(usa, 0.45), (deu, 0.48)],
        floor_label: "uniform <p = 1/n>".into(),
        bootstrap,
        same_as_parent: vec![],
    }
}

fn committed_disca_html() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/results/disca/report.html")
}

/// What the page refers to outside itself: every URL, source, link, import or script. The
/// namespace URIs of inline SVG (`xmlns`) name a vocabulary and fetch nothing, so they are
/// dropped first.
fn external_references(html: &str) -> Vec<String> {
    let mut rest = html.to_string();
    for ns in [
        " xmlns=\"http://www.w3.org/2000/svg\"",
        " xmlns:xlink=\"http://www.w3.org/1999/xlink\"",
    ] {
        rest = rest.replace(ns, "");
    }
    let lower = rest.to_ascii_lowercase();
    [
        "http:", "https:", "src=", "href=", "url(", "@import", "<link", "<script", "<iframe",
        "<object", "<embed", "<img",
    ]
    .iter()
    .filter(|p| lower.contains(*p))
    .map(|p| p.to_string())
    .collect()
}

#[test]
fn report_html_references_nothing_outside_itself() {
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), &input()).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert_eq!(external_references(&html), Vec::<String>::new());
    // The names reach the page as text, not markup.
    assert!(
        !html.contains("<script>alert"),
        "a method name became a script element"
    );
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(html.contains("a|b &amp; &#39;c&#39;"));
    assert!(html.contains("model &lt;file&gt; &amp; &quot;sha&quot;"));
    // Every plot is inline, every table of the summary is there.
    assert_eq!(html.matches("<svg").count(), 3, "bars and two radars");
    assert_eq!(html.matches("<table>").count(), 5);
    for heading in [
        "Per country",
        "What the numbers say",
        "95% intervals per country",
        "Per dimension",
        "Secondary metrics",
        "Plots",
    ] {
        assert!(html.contains(&format!("<h2>{heading}</h2>")), "{heading}");
    }
    // The detector itself finds what it is meant to find.
    assert_eq!(
        external_references("<img src=\"https://example.org/a.png\">"),
        ["https:", "src=", "<img"]
    );

    let disca = std::fs::read_to_string(committed_disca_html()).unwrap();
    assert_eq!(external_references(&disca), Vec::<String>::new());
}

#[test]
fn report_html_shows_what_summary_md_shows() {
    let dir = tempfile::tempdir().unwrap();
    let input = input();
    write_report(dir.path(), &input).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
    assert_eq!(md, render_summary(&input));
    // Same table rows (Markdown's alignment rows aside), same bold, same list items.
    let md_rows = md
        .lines()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---"))
        .count();
    assert_eq!(html.matches("<tr>").count(), md_rows);
    assert_eq!(
        html.matches("<strong>").count(),
        md.matches("**").count() / 2
    );
    assert_eq!(
        html.matches("<li>").count() + html.matches("<figure>").count(),
        md.lines().filter(|l| l.starts_with("- ")).count()
    );

    // A run without scores still gets a page.
    let empty = ReportInput {
        scores: vec![],
        floors: vec![],
        bootstrap: vec![],
        ..input
    };
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), &empty).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.contains("<p>No results yet: no (method, country) pair has been scored.</p>"));
    assert!(html.ends_with("</html>\n"));
}

/// What a headless Chromium run left behind.
struct Shot {
    png: Vec<u8>,
    stderr: String,
}

fn chromium() -> &'static str {
    let found = Command::new("chromium")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(
        found,
        "chromium not found on PATH: run scripts/setup, which installs Debian's chromium package"
    );
    "chromium"
}

/// Opens `page` in headless Chromium with a fresh profile and screenshots it.
fn screenshot(page: &Path) -> Shot {
    let work = tempfile::tempdir().unwrap();
    let shot = work.path().join("shot.png");
    let page = page.canonicalize().unwrap();
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--window-size={WIDTH},{HEIGHT}"))
        .arg(format!("file://{}", page.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium took over 120 s on {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stderr = reader.join().unwrap();
    assert!(status.success(), "chromium failed ({status}):\n{stderr}");
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot from chromium ({e}):\n{stderr}"));
    Shot { png, stderr }
}

/// Lines of Chromium's log that report the page: console messages (the page has no script,
/// so any is wrong) and failed loads.
fn page_problems(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| {
            l.contains(":CONSOLE")
                || l.contains("Failed to load resource")
                || l.contains("net::ERR")
                || l.contains("Not allowed to load local resource")
        })
        .collect()
}

/// A decoded 8-bit PNG: width, height, bytes per pixel and the unfiltered pixel rows.
struct Image {
    width: usize,
    height: usize,
    bpp: usize,
    pixels: Vec<u8>,
}

fn decode_png(png: &[u8]) -> Image {
    assert!(
        png.len() > 33 && png[..8] == *b"\x89PNG\r\n\x1a\n",
        "not a PNG"
    );
    let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize;
    let (mut pos, mut idat) = (8, Vec::new());
    let (mut width, mut height, mut bpp) = (0, 0, 0);
    while pos + 8 <= png.len() {
        let len = be(&png[pos..]);
        let kind = &png[pos + 4..pos + 8];
        let data = &png[pos + 8..pos + 8 + len];
        match kind {
            b"IHDR" => {
                width = be(data);
                height = be(&data[4..]);
                assert_eq!(data[8], 8, "bit depth");
                assert_eq!(data[12], 0, "interlaced PNG");
                bpp = match data[9] {
                    2 => 3,
                    6 => 4,
                    t => panic!("colour type {t}"),
                };
            }
            b"IDAT" => idat.extend_from_slice(data),
            b"IEND" => break,
            _ => {}
        }
        pos += 12 + len;
    }
    let raw = miniz_oxide::inflate::decompress_to_vec_zlib(&idat).expect("inflate IDAT");
    let stride = width * bpp;
    assert_eq!(raw.len(), height * (stride + 1), "image data size");
    let mut pixels = vec![0u8; height * stride];
    for y in 0..height {
        let filter = raw[y * (stride + 1)];
        let line = &raw[y * (stride + 1) + 1..(y + 1) * (stride + 1)];
        for x in 0..stride {
            let a = if x >= bpp {
                pixels[y * stride + x - bpp]
            } else {
                0
            };
            let b = if y > 0 {
                pixels[(y - 1) * stride + x]
            } else {
                0
            };
            let c = if x >= bpp && y > 0 {
                pixels[(y - 1) * stride + x - bpp]
            } else {
                0
            };
            let predicted = match filter {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((a as u16 + b as u16) / 2) as u8,
                4 => {
                    let p = a as i16 + b as i16 - c as i16;
                    let (pa, pb, pc) = (
                        (p - a as i16).abs(),
                        (p - b as i16).abs(),
                        (p - c as i16).abs(),
                    );
                    if pa <= pb && pa <= pc {
                        a
                    } else if pb <= pc {
                        b
                    } else {
                        c
                    }
                }
                f => panic!("PNG filter {f}"),
            };
            pixels[y * stride + x] = line[x].wrapping_add(predicted);
        }
    }
    Image {
        width,
        height,
        bpp,
        pixels,
    }
}

/// Checks a screenshot of a rendered report: the window's size, mostly white background, and
/// enough ink to be text and tables rather than a blank or error page; with `plot_in_view`,
/// enough colour to be a plot too.
fn assert_looks_rendered(shot: &Shot, what: &str, plot_in_view: bool) {
    let img = decode_png(&shot.png);
    assert_eq!(
        (img.width, img.height),
        (WIDTH as usize, HEIGHT as usize),
        "{what}: screenshot size"
    );
    let n = img.width * img.height;
    let px = |k: usize| &img.pixels[k * img.bpp..k * img.bpp + 3];
    let white = (0..n).filter(|&k| px(k).iter().all(|&v| v >= 250)).count();
    let dark = (0..n).filter(|&k| px(k).iter().all(|&v| v < 100)).count();
    let coloured = (0..n)
        .filter(|&k| {
            let p = px(k);
            let (lo, hi) = (p.iter().min().unwrap(), p.iter().max().unwrap());
            hi - lo > 60
        })
        .count();
    assert!(
        white * 2 > n,
        "{what}: background is not mostly white ({white}/{n})"
    );
    assert!(
        dark * 1000 > n,
        "{what}: almost no text ({dark}/{n} dark pixels)"
    );
    assert!(
        !plot_in_view || coloured * 1000 > n,
        "{what}: no coloured plot ({coloured}/{n} coloured pixels)"
    );
}

#[test]
fn report_html_renders_in_chromium_without_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    write_report(dir.path(), &input()).unwrap();
    // The small report's plots start within the window; DISCA's 20-country tables fill it.
    for (page, what, plot_in_view) in [
        (dir.path().join("report.html"), "small report", true),
        (committed_disca_html(), "docs/results/disca", false),
    ] {
        let shot = screenshot(&page);
        let problems = page_problems(&shot.stderr);
        assert!(
            problems.is_empty(),
            "{what}: chromium logged\n{}",
            problems.join("\n")
        );
        assert_looks_rendered(&shot, what, plot_in_view);
        if let Some(keep) = std::env::var_os("CULTURESTEER_SCREENSHOTS") {
            let keep = PathBuf::from(keep);
            std::fs::create_dir_all(&keep).unwrap();
            let name = what.replace(['/', ' '], "_");
            std::fs::write(keep.join(format!("{name}.png")), &shot.png).unwrap();
        }
    }
}

/// The checks above can fail: a page with a console error is caught, and a blank page does
/// not pass for a rendered report.
#[test]
fn chromium_checks_catch_a_broken_page() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><body><script>console.error(\"boom\")</script></body></html>\n",
    )
    .unwrap();
    let shot = screenshot(&page);
    let problems = page_problems(&shot.stderr);
    assert!(
        problems.iter().any(|l| l.contains("boom")),
        "the console error went unnoticed:\n{}",
        shot.stderr
    );
    let blank = std::panic::catch_unwind(|| assert_looks_rendered(&shot, "blank page", false));
    assert!(blank.is_err(), "a blank page passed for a rendered report");
}

//! A libFuzzer-free driver for the fuzz targets, for stable Rust and CI.
//!
//! ```text
//! cargo run --release --no-default-features --bin smoke -- <target> [seconds] [seed]
//! ```
//!
//! It starts from the seed corpus (`corpus/<target>/`), then feeds mutated
//! corpus entries, spliced dictionary tokens and random bytes to the target
//! for the given time (default 30 s). It has no coverage feedback, so it is a
//! smoke test, not a replacement for `cargo +nightly fuzz run`. A failing
//! input is written to `artifacts/<target>/` and the process exits non-zero.

use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Tokens that matter to the parsers, spliced into inputs.
const DICTIONARY: &[&[u8]] = &[
    b"bytes=",
    b"BYTES=",
    b"-",
    b",",
    b" ",
    b"\t",
    b"0",
    b"9",
    b"18446744073709551616",
    b"\"",
    b"W/",
    b"*",
    b"\"abc\"",
    b"Sun, 06 Nov 1994 08:49:37 GMT",
    b"\n",
    b"\n\x00",
    b"\n\x01",
    b"\n\x02",
    b"\n\x03",
    b"\n\x04",
    b"\n\x05",
    b"/",
    b"..",
    b".",
    b"%2e",
    b"%2E%2e",
    b"%2F",
    b"%5C",
    b"\\",
    b"%00",
    b"%25",
    b"%",
    b"%C3%A9",
    b"%FF",
    b"a.txt",
    b"dir",
    b"link_in",
    b"out",
    b"out_file",
    b".env",
    b"index.html",
    b"//",
];

/// xorshift64*: small, seedable, good enough to drive mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let at = rng.below(input.len() + 1);
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] = rng.next() as u8;
            }
            2 if !input.is_empty() => {
                let end = (at + rng.below(8)).min(input.len());
                input.drain(at.min(end)..end);
            }
            3 => {
                let token = DICTIONARY[rng.below(DICTIONARY.len())];
                input.splice(at..at, token.iter().copied());
            }
            4 => {
                let n = rng.below(8);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                input.splice(at..at, bytes);
            }
            _ => {
                // Duplicate a slice (repeats ranges, segments, headers).
                if !input.is_empty() {
                    let s = rng.below(input.len());
                    let e = (s + 1 + rng.below(16)).min(input.len());
                    let copy = input[s..e].to_vec();
                    input.splice(at..at, copy);
                }
            }
        }
    }
    input.truncate(4096);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let target = args.next().unwrap_or_else(|| {
        eprintln!("usage: smoke <range_conditional|safe_path> [seconds] [seed]");
        std::process::exit(2)
    });
    let run: fn(&[u8]) = match target.as_str() {
        "range_conditional" => bustapi_files_fuzz::range_conditional,
        "safe_path" => bustapi_files_fuzz::safe_path,
        other => {
            eprintln!("unknown target {other}");
            std::process::exit(2)
        }
    };
    let seconds: u64 = args.next().map_or(30, |s| s.parse().expect("seconds"));
    let seed: u64 = args.next().map_or_else(
        || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        },
        |s| s.parse().expect("seed"),
    );

    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(dir.join("corpus").join(&target))
        .map(|entries| {
            entries
                .filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    corpus.push(Vec::new());

    // Report failures ourselves, once, with the input that caused them.
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runs: u64 = 0;
    let check = |input: &[u8], runs: u64| {
        if let Err(e) = panic::catch_unwind(AssertUnwindSafe(|| run(input))) {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            let out = dir.join("artifacts").join(&target);
            std::fs::create_dir_all(&out).unwrap();
            let file = out.join(format!("crash-smoke-{seed}-{runs}"));
            std::fs::write(&file, input).unwrap();
            eprintln!(
                "FAILED on {input:?}: {msg}\ninput saved to {}",
                file.display()
            );
            std::process::exit(1);
        }
    };
    for input in &corpus {
        check(input, runs);
    }
    while Instant::now() < deadline {
        for _ in 0..256 {
            let input = match rng.below(8) {
                0 => (0..rng.below(64)).map(|_| rng.next() as u8).collect(),
                _ => {
                    let mut input = corpus[rng.below(corpus.len())].clone();
                    mutate(&mut rng, &mut input);
                    input
                }
            };
            check(&input, runs);
            runs += 1;
        }
    }
    println!("{target}: {runs} inputs in {seconds}s without failure (seed {seed})");
}

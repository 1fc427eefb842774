//! End to end: signing, propagation, the ledger, exit codes, and what happens with bad input.

mod common;

use common::*;

fn png() -> String {
    sample("image.png").display().to_string()
}

#[test]
fn signed_labels_verify_and_tampering_is_caught() {
    let s = Scratch::new();
    let key = s.json(&["keygen", "--json", "--provider", CODE], 0);
    let key_id = key["key_id"].as_str().expect("key id").to_string();
    let out = s.path("signed.png").display().to_string();
    s.json(
        &[
            "label",
            &png(),
            "-o",
            &out,
            "--producer",
            CODE,
            "--produce-id",
            "sig-1",
            "--sign",
            &key_id,
            "--json",
        ],
        0,
    );
    let r = s.json(&["inspect", "--json", "--require-label", &out], 0);
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["state"],
        "valid"
    );
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["algorithm"],
        "sm2"
    );

    // With another key directory the key is unknown, and the label still counts.
    let empty = s.path("no-keys").display().to_string();
    let r = s.json(
        &[
            "inspect",
            "--json",
            "--keys",
            &empty,
            "--require-label",
            &out,
        ],
        0,
    );
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["state"],
        "unknown-key"
    );

    // A label changed after signing fails verification: the file no longer passes --require-label.
    let bytes = std::fs::read(&out).expect("read");
    let at = bytes
        .windows(5)
        .position(|w| w == b"sig-1")
        .expect("id in file");
    let tampered = s.path("tampered.png");
    let mut patched = bytes.clone();
    patched[at + 4] = b'2';
    // Fix the iTXt chunk CRC so that only the signature can tell.
    fix_png_crcs(&mut patched);
    std::fs::write(&tampered, &patched).expect("write");
    let r = s.json(
        &[
            "inspect",
            "--json",
            "--require-label",
            &tampered.display().to_string(),
        ],
        1,
    );
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["state"],
        "invalid"
    );
}

fn fix_png_crcs(b: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= b.len() {
        let len = u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let end = at + 8 + len;
        let crc = crc32(&b[at + 4..end]);
        b[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn ed25519_keys_work_too() {
    let s = Scratch::new();
    let key = s.json(&["keygen", "--json", "--algorithm", "ed25519"], 0);
    let secret = key["secret_key_file"].as_str().expect("path").to_string();
    let out = s.path("ed.png").display().to_string();
    s.json(
        &[
            "label",
            &png(),
            "-o",
            &out,
            "--producer",
            CODE,
            "--sign",
            &secret,
            "--json",
        ],
        0,
    );
    let r = s.json(&["inspect", "--json", &out], 0);
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["state"],
        "valid"
    );
    assert_eq!(
        r["files"][0]["labels"][0]["producer_signature"]["algorithm"],
        "ed25519"
    );
}

#[test]
fn a_platform_propagates_the_producers_label() {
    let s = Scratch::new();
    let key = s.json(&["keygen", "--json"], 0);
    let key_id = key["key_id"].as_str().expect("key id").to_string();
    let produced = s.path("produced.png").display().to_string();
    s.json(
        &[
            "label",
            &png(),
            "-o",
            &produced,
            "--producer",
            CODE,
            "--produce-id",
            "gen-7",
            "--sign",
            &key_id,
            "--json",
        ],
        0,
    );
    let shared = s.path("shared.png").display().to_string();
    let r = s.json(
        &[
            "label",
            &produced,
            "-o",
            &shared,
            "--propagate",
            "--propagator",
            PLATFORM,
            "--propagate-id",
            "post-9",
            "--sign",
            &key_id,
            "--json",
        ],
        0,
    );
    assert_eq!(r["labelled"][0]["replaced_labels"], 1);
    let r = s.json(&["inspect", "--json", "--require-label", &shared], 0);
    let label = &r["files"][0]["labels"][0];
    assert_eq!(label["record"]["ContentProducer"], CODE);
    assert_eq!(label["record"]["ProduceID"], "gen-7");
    assert_eq!(label["record"]["ContentPropagator"], PLATFORM);
    assert_eq!(label["record"]["PropagateID"], "post-9");
    assert_eq!(
        label["producer_signature"]["state"], "valid",
        "the producer's signature survives propagation"
    );
    assert_eq!(label["propagator_signature"]["state"], "valid");

    // Unlabelled content: a platform must say 2 or 3.
    let out = s.path("declared.png").display().to_string();
    let args = [
        "label",
        &png(),
        "-o",
        &out,
        "--propagate",
        "--propagator",
        PLATFORM,
        "--propagate-id",
        "up-1",
    ];
    let st = s.run(&args);
    assert_eq!(st.status.code(), Some(2));
    assert!(
        text(&st.stderr).contains("--label 2"),
        "{}",
        text(&st.stderr)
    );
    assert!(!std::path::Path::new(&out).exists());
    let mut with_label = args.to_vec();
    with_label.extend(["--label", "2", "--json"]);
    s.json(&with_label, 0);
    let r = s.json(&["inspect", "--json", &out], 0);
    assert_eq!(r["files"][0]["labels"][0]["record"]["Label"], "2");
    assert_eq!(
        r["files"][0]["labels"][0]["record"]["ContentPropagator"],
        PLATFORM
    );
}

#[test]
fn the_ledger_records_every_label_and_finds_it() {
    let s = Scratch::new();
    let out = s.path("l.png").display().to_string();
    let r = s.json(
        &[
            "label",
            &png(),
            "-o",
            &out,
            "--producer",
            CODE,
            "--produce-id",
            "ledger-1",
            "--json",
        ],
        0,
    );
    let sha = r["labelled"][0]["output_sha256"]
        .as_str()
        .expect("sha")
        .to_string();
    let found = s.json(&["ledger", "--id", "ledger-1", "--json"], 0);
    assert_eq!(found["entries"].as_array().map(Vec::len), Some(1));
    let found = s.json(&["ledger", "--hash", &sha, "--json"], 0);
    assert_eq!(
        found["entries"][0]["record_json"]
            .as_str()
            .map(|j| j.contains("ledger-1")),
        Some(true)
    );
    let found = s.json(&["ledger", "--file", &out, "--json"], 0);
    assert_eq!(found["entries"].as_array().map(Vec::len), Some(1));
    s.json(&["ledger", "--id", "unknown", "--json"], 1);
    let payload = r["labelled"][0]["watermark_payload"]
        .as_str()
        .expect("payload")
        .to_string();
    let found = s.json(&["ledger", "--payload", &payload, "--json"], 0);
    assert_eq!(found["entries"][0]["watermark_payload"], payload.as_str());
    // --no-ledger records nothing.
    let out2 = s.path("l2.png").display().to_string();
    s.json(
        &[
            "label",
            &png(),
            "-o",
            &out2,
            "--producer",
            CODE,
            "--produce-id",
            "ledger-2",
            "--no-ledger",
            "--json",
        ],
        0,
    );
    s.json(&["ledger", "--id", "ledger-2", "--json"], 1);
}

#[test]
fn bad_input_gives_clear_errors_and_no_output() {
    let s = Scratch::new();
    // Not a supported format.
    let junk = s.path("junk.png");
    std::fs::write(&junk, [0u8, 1, 2, 3, 0xFF, 0xFE]).expect("write");
    let out = s.path("junk-out.png");
    let st = s.run(&[
        "label",
        &junk.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--producer",
        CODE,
    ]);
    assert_eq!(st.status.code(), Some(2));
    let err = text(&st.stderr);
    assert!(
        err.contains("junk.png") && err.contains("unrecognised file format"),
        "{err}"
    );
    assert!(!out.exists());
    // Truncated PNG: names the file and the problem.
    let bytes = std::fs::read(sample("image.png")).expect("read");
    let cut = s.path("cut.png");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let st = s.run(&[
        "label",
        &cut.display().to_string(),
        "-o",
        &out.display().to_string(),
        "--producer",
        CODE,
    ]);
    assert_eq!(st.status.code(), Some(2));
    let err = text(&st.stderr);
    assert!(
        err.contains("cut.png") && err.contains("truncated"),
        "{err}"
    );
    assert!(!out.exists());
    // A provider code with a wrong check character names the rule.
    let st = s.run(&[
        "label",
        &png(),
        "-o",
        &out.display().to_string(),
        "--producer",
        "001191440300708461136A1XGW3",
    ]);
    assert_eq!(st.status.code(), Some(2));
    assert!(
        text(&st.stderr).contains("GB 32100"),
        "{}",
        text(&st.stderr)
    );
    // Missing file.
    let st = s.run(&["inspect", &s.path("missing.png").display().to_string()]);
    assert_eq!(st.status.code(), Some(2));
    // Usage error.
    let st = s.run(&["label", &png()]);
    assert_eq!(st.status.code(), Some(2));
}

#[test]
fn inputs_are_never_overwritten_without_in_place() {
    let s = Scratch::new();
    let file = s.path("mine.png");
    std::fs::copy(sample("image.png"), &file).expect("copy");
    let before = std::fs::read(&file).expect("read");
    let f = file.display().to_string();
    let st = s.run(&["label", &f, "-o", &f, "--producer", CODE]);
    assert_eq!(st.status.code(), Some(2));
    assert!(
        text(&st.stderr).contains("--in-place"),
        "{}",
        text(&st.stderr)
    );
    assert_eq!(std::fs::read(&file).expect("read"), before);
    s.json(
        &["label", &f, "--in-place", "--producer", CODE, "--json"],
        0,
    );
    s.json(&["inspect", "--json", "--require-label", &f], 0);
}

#[test]
fn inspect_exit_codes_and_resume() {
    let s = Scratch::new();
    // Unlabelled with --require-label: exit 1.
    s.json(&["inspect", "--json", "--require-label", &png()], 1);
    s.json(&["inspect", "--json", &png()], 0);
    // A batch resumes: the second run skips what is done.
    let out = s.path("batch").display().to_string();
    let samples = samples_dir().display().to_string();
    let first = s.json(
        &["label", &samples, "-o", &out, "--producer", CODE, "--json"],
        0,
    );
    let done = first["labelled"]
        .as_array()
        .map(Vec::len)
        .unwrap_or_default();
    assert!(done > 10);
    let second = s.json(
        &[
            "label",
            &samples,
            "-o",
            &out,
            "--producer",
            CODE,
            "--resume",
            "--json",
        ],
        0,
    );
    assert_eq!(second["labelled"].as_array().map(Vec::len), Some(0));
    assert!(
        second["skipped"]
            .as_array()
            .map(Vec::len)
            .unwrap_or_default()
            >= done
    );
}

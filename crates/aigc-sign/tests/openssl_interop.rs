//! SM2 signatures checked by an independent implementation: OpenSSL 3 (`openssl dgst -sm3
//! -sigopt distid:1234567812345678`) verifies ours, and ours verifies OpenSSL's.

use aigc_sign::{Algorithm, PublicKey, SM2_USER_ID, SecretKey};
use std::process::Command;

fn openssl(args: &[&str]) -> std::process::Output {
    Command::new("openssl")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("openssl is needed by this test ({e}); install it with: bash .ci/install-deps")
        })
}

/// SubjectPublicKeyInfo DER for an SM2 point (id-ecPublicKey, curve 1.2.156.10197.1.301).
fn spki_der(point: &[u8]) -> Vec<u8> {
    let mut der = vec![0x30, 0x59, 0x30, 0x13];
    der.extend([0x06, 0x07, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x02, 0x01]);
    der.extend([0x06, 0x08, 0x2A, 0x81, 0x1C, 0xCF, 0x55, 0x01, 0x82, 0x2D]);
    der.extend([0x03, 0x42, 0x00]);
    der.extend_from_slice(point);
    der
}

fn der_integer(x: &[u8]) -> Vec<u8> {
    let mut v: Vec<u8> = x.iter().copied().skip_while(|b| *b == 0).collect();
    if v.first().is_none_or(|b| b & 0x80 != 0) {
        v.insert(0, 0);
    }
    let mut out = vec![0x02, v.len() as u8];
    out.extend(v);
    out
}

/// r‖s → DER ECDSA-Sig-Value.
fn sig_der(rs: &[u8]) -> Vec<u8> {
    let body: Vec<u8> = [der_integer(&rs[..32]), der_integer(&rs[32..])].concat();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// DER ECDSA-Sig-Value → r‖s.
fn sig_raw(der: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut at = 2;
    for _ in 0..2 {
        assert_eq!(der[at], 0x02);
        let len = der[at + 1] as usize;
        let int = &der[at + 2..at + 2 + len];
        let int = &int[int.len().saturating_sub(32)..];
        out.extend(std::iter::repeat_n(0, 32 - int.len()));
        out.extend_from_slice(int);
        at += 2 + len;
    }
    out
}

#[test]
fn openssl_verifies_our_sm2_signature_and_we_verify_openssls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |n: &str| dir.path().join(n).display().to_string();
    let msg =
        br#""Label":"1","ContentProducer":"001191440300708461136T1XGW3","ProduceID":"interop""#;
    std::fs::write(p("msg"), msg).expect("write");
    let distid = format!("distid:{SM2_USER_ID}");

    // Ours → OpenSSL.
    let key = SecretKey::generate(Algorithm::Sm2).expect("key");
    std::fs::write(p("pub.der"), spki_der(&key.public_key().to_bytes())).expect("write");
    std::fs::write(p("sig.der"), sig_der(&key.sign(msg))).expect("write");
    let out = openssl(&[
        "pkey",
        "-pubin",
        "-inform",
        "DER",
        "-in",
        &p("pub.der"),
        "-out",
        &p("pub.pem"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openssl(&[
        "dgst",
        "-sm3",
        "-verify",
        &p("pub.pem"),
        "-sigopt",
        &distid,
        "-signature",
        &p("sig.der"),
        &p("msg"),
    ]);
    assert!(
        out.status.success(),
        "OpenSSL rejects our signature: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    // OpenSSL → ours.
    let out = openssl(&["genpkey", "-algorithm", "SM2", "-out", &p("theirs.pem")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openssl(&[
        "dgst",
        "-sm3",
        "-sign",
        &p("theirs.pem"),
        "-sigopt",
        &distid,
        "-out",
        &p("theirs.sig"),
        &p("msg"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = openssl(&[
        "pkey",
        "-in",
        &p("theirs.pem"),
        "-pubout",
        "-outform",
        "DER",
        "-out",
        &p("theirs.der"),
    ]);
    assert!(out.status.success());
    let spki = std::fs::read(p("theirs.der")).expect("read");
    let public =
        PublicKey::from_bytes(Algorithm::Sm2, &spki[spki.len() - 65..]).expect("their key");
    let sig = sig_raw(&std::fs::read(p("theirs.sig")).expect("read"));
    assert!(public.verify(msg, &sig), "we reject OpenSSL's signature");
    assert!(!public.verify(b"other message", &sig));
}

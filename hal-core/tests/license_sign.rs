//! Signatures over the canonical form: layout and order do not matter, values do; and
//! `sign_text` fills in KEY lines without touching the rest of the file.

// A test that meets an impossible state should fail at once, with the value shown.
#![allow(clippy::unwrap_used)]

use ed25519_dalek::SigningKey;
use hal_core::license::{SignatureError, canonical_bytes, parse, sign_text};

fn vendor_key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

const TEMPLATE: &str = "\
# Acme licenses for Example Corp
FEATURE cad
{
    VENDOR = acme       # the vendor
    COUNT = 10
    HAL_SERVERS = 3
    END = 2027-12-31
}

FEATURE cam {
  VENDOR = acme
  COUNT = 2
  HAL_SERVERS = 3
  KEY = 00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
}
";

#[test]
fn signed_features_verify_and_others_do_not() {
    let mut license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    let key = vendor_key(7);
    license.sign(&key);
    for (feature, verdict) in license.verify(&key.verifying_key()) {
        assert_eq!(verdict, Ok(()), "{}", feature.name);
    }
    let other = vendor_key(8).verifying_key();
    for (_, verdict) in license.verify(&other) {
        assert_eq!(verdict, Err(SignatureError::Mismatch));
    }
}

#[test]
fn an_unsigned_feature_is_reported_missing() {
    let license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    let verdicts = license.verify(&vendor_key(7).verifying_key());
    assert_eq!(verdicts[0].1, Err(SignatureError::Missing));
    assert_eq!(verdicts[1].1, Err(SignatureError::Mismatch));
}

#[test]
fn sign_text_keeps_comments_and_layout() {
    let mut license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    license.sign(&vendor_key(7));
    let signed = sign_text(TEMPLATE, &license);

    let cad_key = license.features[0].key.unwrap().to_string();
    let cam_key = license.features[1].key.unwrap().to_string();
    let expected = TEMPLATE
        .replace(
            "    END = 2027-12-31\n}",
            &format!("    END = 2027-12-31\n    KEY = {cad_key}\n}}"),
        )
        .replace(
            &format!("KEY = {}", "0".repeat(128)),
            &format!("KEY = {cam_key}"),
        );
    assert_eq!(signed, expected);

    let reparsed = parse("t.lic", signed.as_bytes()).unwrap();
    for (_, verdict) in reparsed.verify(&vendor_key(7).verifying_key()) {
        assert_eq!(verdict, Ok(()));
    }
}

#[test]
fn sign_text_keeps_crlf_line_endings() {
    let text = "FEATURE a\r\n{\r\n\tVENDOR = x\r\n\tCOUNT = 1\r\n}\r\n";
    let mut license = parse("t.lic", text.as_bytes()).unwrap();
    license.sign(&vendor_key(1));
    let signed = sign_text(text, &license);
    let key = license.features[0].key.unwrap();
    assert_eq!(
        signed,
        format!("FEATURE a\r\n{{\r\n\tVENDOR = x\r\n\tCOUNT = 1\r\n\tKEY = {key}\r\n}}\r\n")
    );
}

#[test]
fn reformatting_and_reordering_keep_a_signature() {
    let mut license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    license.sign(&vendor_key(3));
    let key = license.features[0].key.unwrap();
    let reshuffled = format!(
        "FEATURE cad {{   # reordered\n END=2027-12-31\n\tHAL_SERVERS   =  3\n COUNT = 0010\n VENDOR = \"acme\"\n KEY = {}\n}}\n",
        key.to_string().to_uppercase()
    );
    let reparsed = parse("moved.lic", reshuffled.as_bytes()).unwrap();
    assert_eq!(
        reparsed.features[0].verify(&vendor_key(3).verifying_key()),
        Ok(())
    );
}

#[test]
fn changing_a_value_breaks_the_signature() {
    let mut license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    license.sign(&vendor_key(3));
    let signed = sign_text(TEMPLATE, &license);
    let public = vendor_key(3).verifying_key();
    for (from, to) in [
        ("COUNT = 10", "COUNT = 11"),
        ("END = 2027-12-31", "END = 2028-12-31"),
        ("FEATURE cad", "FEATURE cae"),
        ("VENDOR = acme       # the vendor", "VENDOR = acne"),
        ("    COUNT = 10\n", "    COUNT = 10\n    BORROW = 24\n"),
    ] {
        let tampered = signed.replacen(from, to, 1);
        let reparsed = parse("t.lic", tampered.as_bytes()).unwrap();
        assert_eq!(
            reparsed.features[0].verify(&public),
            Err(SignatureError::Mismatch),
            "{from} -> {to}"
        );
    }
}

#[test]
fn the_canonical_form_is_stable() {
    // Changing this form invalidates every license ever signed: this test pins it.
    let license = parse("t.lic", TEMPLATE.as_bytes()).unwrap();
    let canonical = String::from_utf8(canonical_bytes(&license.features[0])).unwrap();
    assert_eq!(
        canonical,
        "hal-license-v1\nFEATURE cad\nVENDOR=acme\nCOUNT=10\nHAL_SERVERS=3\nEND=2027-12-31\n"
    );
}

#[test]
fn sign_text_replaces_only_the_value_of_an_existing_key() {
    let old = "0".repeat(128);
    let text = format!(
        "FEATURE a {{\n\tVENDOR = x\n\t KEY   =   {old}   # signed 2026-01-01\n}}\n\
         FEATURE b {{\n  VENDOR = x\n  KEY = \"{old}\"# quoted\n}}\n"
    );
    let mut license = parse("t.lic", text.as_bytes()).unwrap();
    license.sign(&vendor_key(2));
    let signed = sign_text(&text, &license);
    let (a, b) = (
        license.features[0].key.unwrap(),
        license.features[1].key.unwrap(),
    );
    assert_eq!(
        signed,
        format!(
            "FEATURE a {{\n\tVENDOR = x\n\t KEY   =   {a}   # signed 2026-01-01\n}}\n\
             FEATURE b {{\n  VENDOR = x\n  KEY = {b}# quoted\n}}\n"
        )
    );
    let reparsed = parse("t.lic", signed.as_bytes()).unwrap();
    for (_, verdict) in reparsed.verify(&vendor_key(2).verifying_key()) {
        assert_eq!(verdict, Ok(()));
    }
}

#[test]
fn an_added_key_line_takes_the_files_line_ending() {
    // The `}` ends the file with no line ending of its own.
    let text = "FEATURE a\r\n{\r\n  VENDOR = x\r\n}";
    let mut license = parse("t.lic", text.as_bytes()).unwrap();
    license.sign(&vendor_key(1));
    let key = license.features[0].key.unwrap();
    assert_eq!(
        sign_text(text, &license),
        format!("FEATURE a\r\n{{\r\n  VENDOR = x\r\n  KEY = {key}\r\n}}")
    );
    let text = "FEATURE a {\n  VENDOR = x\n}";
    let mut license = parse("t.lic", text.as_bytes()).unwrap();
    license.sign(&vendor_key(1));
    let key = license.features[0].key.unwrap();
    assert_eq!(
        sign_text(text, &license),
        format!("FEATURE a {{\n  VENDOR = x\n  KEY = {key}\n}}")
    );
}

#[test]
fn sign_text_keeps_a_byte_order_mark() {
    let text = format!(
        "\u{feff}FEATURE a {{\n  VENDOR = x\n  KEY = {}\n}}\n",
        "0".repeat(128)
    );
    let mut license = parse("t.lic", text.as_bytes()).unwrap();
    license.sign(&vendor_key(1));
    let signed = sign_text(&text, &license);
    let key = license.features[0].key.unwrap();
    assert_eq!(
        signed,
        format!("\u{feff}FEATURE a {{\n  VENDOR = x\n  KEY = {key}\n}}\n")
    );
}

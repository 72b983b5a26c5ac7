//! PEM as an admin pastes it into the deploy wizard: `console.certificate`
//! and `console.key`.
//!
//! The vSphere wizard's text fields are one line: a pasted PEM arrives
//! with its newlines dropped (`-----BEGIN CERTIFICATE-----MIIB...`) or
//! turned into spaces, and a file from Windows has CRLF. The markers
//! survive all of that, so each block is found by its `-----BEGIN X-----`
//! and `-----END X-----`, the base64 between them stripped of whitespace,
//! decoded to check it, and written back in the 64-column form every PEM
//! reader takes. Text outside the blocks (`Bag Attributes` from `openssl
//! pkcs12`) is ignored, as PEM readers do. Only the text is checked here;
//! init checks the certificate and key themselves (its TLS stack).

use base64::Engine as _;

/// Longest PEM value accepted: a certificate chain of a few
/// certificates, or a 4096-bit RSA key, is well under this.
pub const PEM_MAX_LEN: usize = 64 * 1024;
/// Base64 columns per line (RFC 7468 section 2).
const LINE_LEN: usize = 64;
const BEGIN: &str = "-----BEGIN ";
const END: &str = "-----END ";
const DASHES: &str = "-----";

/// Labels of an unencrypted private key that rustls loads: PKCS#8, PKCS#1
/// (RSA) and SEC1 (EC).
pub const KEY_LABELS: [&str; 3] = ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"];
/// Label of a certificate.
pub const CERTIFICATE_LABEL: &str = "CERTIFICATE";

/// One `-----BEGIN label-----` block, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub label: String,
    pub der: Vec<u8>,
}

impl Block {
    /// The block in canonical form: markers on their own lines, base64 in
    /// lines of 64.
    fn to_pem(&self) -> String {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&self.der);
        let mut out = format!("{BEGIN}{}{DASHES}\n", self.label);
        // Base64 is ASCII: every index is a character boundary.
        for chunk in b64.as_bytes().chunks(LINE_LEN) {
            out.push_str(&String::from_utf8_lossy(chunk));
            out.push('\n');
        }
        out.push_str(&format!("{END}{}{DASHES}\n", self.label));
        out
    }
}

/// Every PEM block in `raw`, in order, however its whitespace was mangled.
pub fn blocks(raw: &str) -> Result<Vec<Block>, String> {
    if raw.len() > PEM_MAX_LEN {
        return Err(format!("too long: at most {PEM_MAX_LEN} bytes of PEM"));
    }
    let mut out = Vec::new();
    let mut rest = raw;
    while let Some(start) = rest.find(BEGIN) {
        let after = &rest[start + BEGIN.len()..];
        let label_end = after
            .find(DASHES)
            .ok_or_else(|| "a -----BEGIN line has no closing -----".to_owned())?;
        let label = after[..label_end].trim().to_owned();
        let body_and_rest = &after[label_end + DASHES.len()..];
        let end_marker = format!("{END}{label}{DASHES}");
        let body_end = body_and_rest
            .find(&end_marker)
            .ok_or_else(|| format!("the {label} block has no {end_marker} line (cut short?)"))?;
        let body = &body_and_rest[..body_end];
        if body.contains(':') {
            return Err(format!(
                "the {label} block has headers (Proc-Type: an encrypted key): decrypt it first \
                 with `openssl pkey -in key.pem -out plain.pem`"
            ));
        }
        let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|e| format!("the {label} block is not base64 ({e}): paste the whole file"))?;
        out.push(Block { label, der });
        rest = &body_and_rest[body_end + end_marker.len()..];
    }
    if out.is_empty() {
        return Err("no -----BEGIN ...----- block: paste the PEM file itself, \
             markers included (cat cert.pem)"
            .to_owned());
    }
    Ok(out)
}

/// `console.certificate`: one or more CERTIFICATE blocks (the server's
/// first, then its chain), in canonical form.
pub fn parse_certificate_chain(raw: &str) -> Result<String, String> {
    let blocks = blocks(raw)?;
    if let Some(b) = blocks.iter().find(|b| b.label != CERTIFICATE_LABEL) {
        let hint = if KEY_LABELS.contains(&b.label.as_str()) {
            " (a private key goes in console.key)"
        } else {
            ""
        };
        return Err(format!(
            "holds a {} block{hint}: expected only CERTIFICATE blocks, the server's \
             certificate first, then its chain",
            b.label
        ));
    }
    Ok(blocks.iter().map(Block::to_pem).collect())
}

/// `console.key`: exactly one unencrypted private key block, in canonical
/// form.
pub fn parse_private_key(raw: &str) -> Result<String, String> {
    let blocks = blocks(raw)?;
    let fix = "expected one unencrypted private key (-----BEGIN PRIVATE KEY-----, \
               RSA PRIVATE KEY or EC PRIVATE KEY)";
    match blocks.as_slice() {
        [b] if KEY_LABELS.contains(&b.label.as_str()) => Ok(b.to_pem()),
        [b] if b.label == "ENCRYPTED PRIVATE KEY" => Err(
            "is an encrypted key: decrypt it first with `openssl pkey -in key.pem -out plain.pem`"
                .to_owned(),
        ),
        [b] if b.label == CERTIFICATE_LABEL => Err(format!(
            "holds a CERTIFICATE (it goes in console.certificate): {fix}"
        )),
        [b] => Err(format!("holds a {} block: {fix}", b.label)),
        many => Err(format!("holds {} PEM blocks: {fix}", many.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short certificate-shaped block: the text checks do not parse DER.
    const DER: &[u8] = &[0x30; 100];

    fn pem(label: &str) -> String {
        Block {
            label: label.into(),
            der: DER.to_vec(),
        }
        .to_pem()
    }

    /// Input: a PEM whose newlines the wizard dropped. Output: the
    /// canonical PEM.
    #[test]
    fn one_line_is_repaired() {
        let good = pem("CERTIFICATE");
        let one_line = good.replace('\n', "");
        assert_eq!(parse_certificate_chain(&one_line), Ok(good));
    }

    #[test]
    fn spaces_for_newlines_are_repaired() {
        let good = pem("PRIVATE KEY");
        let spaced = good.replace('\n', " ");
        assert_eq!(parse_private_key(&spaced), Ok(good));
    }

    #[test]
    fn crlf_is_repaired() {
        let good = pem("EC PRIVATE KEY");
        assert_eq!(parse_private_key(&good.replace('\n', "\r\n")), Ok(good));
    }

    #[test]
    fn good_pem_and_a_chain_stay_as_they_are() {
        let chain = format!("{}{}", pem("CERTIFICATE"), pem("CERTIFICATE"));
        assert_eq!(parse_certificate_chain(&chain), Ok(chain.clone()));
        // openssl pkcs12's output: attributes before the block.
        let with_bags = format!("Bag Attributes\n    localKeyID: 01\n{chain}");
        assert_eq!(parse_certificate_chain(&with_bags), Ok(chain));
    }

    /// Input: garbage, a cut block, a key in the certificate field, an
    /// encrypted key. Output: each refused with what to paste instead.
    #[test]
    fn bad_values_name_the_fix() {
        let e = parse_certificate_chain("hello").unwrap_err();
        assert!(e.contains("paste the PEM file itself"), "{e}");
        let cut = &pem("CERTIFICATE")[..60];
        let e = parse_certificate_chain(cut).unwrap_err();
        assert!(e.contains("cut short"), "{e}");
        let e = parse_certificate_chain(&pem("PRIVATE KEY")).unwrap_err();
        assert!(e.contains("goes in console.key"), "{e}");
        let e = parse_private_key(&pem("ENCRYPTED PRIVATE KEY")).unwrap_err();
        assert!(e.contains("openssl pkey"), "{e}");
        let two = format!("{}{}", pem("PRIVATE KEY"), pem("PRIVATE KEY"));
        assert!(parse_private_key(&two)
            .unwrap_err()
            .contains("2 PEM blocks"));
        let bad64 = "-----BEGIN CERTIFICATE-----MII*-----END CERTIFICATE-----";
        let e = parse_certificate_chain(bad64).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
    }
}

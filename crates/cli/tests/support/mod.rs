//! What the command-line tests share: running the `medcert` binary as a user does,
//! registering a patient with it, and a doctor's commands for the patient.

#![allow(dead_code)] // each test binary uses the part it needs

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use medcert_network::Network;
use tempfile::TempDir;

/// Where a test starts: the initialised network, and a fresh directory for the patients'
/// wallets.
pub(crate) fn start() -> (Network, TempDir) {
    (
        medcert_test_support::initialised_network(),
        tempfile::tempdir().unwrap(),
    )
}

/// How one run of `medcert` ended.
pub(crate) struct Run {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Run {
    /// Its standard output, read as one JSON value.
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} / {}", self.stdout, self.stderr))
    }

    /// Its error, checked to be the one `medcert: ` line a user is promised.
    pub(crate) fn one_line_error(&self) -> &str {
        let line = self.stderr.trim_end();
        assert!(!line.is_empty(), "no error message");
        assert_eq!(line.lines().count(), 1, "{line}");
        assert!(line.starts_with("medcert: "), "{line}");
        line
    }
}

/// `medcert --patients-dir <patients> <args>`, with `password` in MEDCERT_PASSWORD (and
/// nothing there otherwise) and `stdin` as its standard input (none otherwise).
pub(crate) fn medcert(
    patients: &Path,
    args: &[&str],
    password: Option<&str>,
    stdin: Option<&str>,
) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_medcert"));
    command
        .arg("--patients-dir")
        .arg(patients)
        .args(args)
        .env_remove("MEDCERT_PASSWORD")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        command.env("MEDCERT_PASSWORD", password);
    }
    let mut child = command.spawn().expect("run medcert");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// `medcert --json patient register` of `patient` at `hospital` with `password`, which
/// must succeed; returns its report.
pub(crate) fn register(
    patients: &Path,
    patient: &str,
    hospital: &str,
    password: &str,
) -> serde_json::Value {
    let run = medcert(
        patients,
        &[
            "--json",
            "patient",
            "register",
            "--patient",
            patient,
            "--hospital",
            hospital,
            "--id-number",
            &format!("ID-{patient}"),
        ],
        Some(password),
        None,
    );
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    run.json()
}

/// A patient's treatment at a hospital, which the doctor commands name.
pub(crate) struct Visit<'a> {
    pub(crate) patients: &'a Path,
    pub(crate) hospital: &'a str,
    pub(crate) treatment: &'a str,
}

impl Visit<'_> {
    /// `medcert doctor <command> --hospital <hospital> --treatment <treatment> <args>`, with
    /// `password` and `stdin` as [`medcert`] takes them.
    pub(crate) fn doctor(
        &self,
        command: &str,
        args: &[&str],
        password: Option<&str>,
        stdin: Option<&str>,
    ) -> Run {
        let visit = [
            "doctor",
            command,
            "--hospital",
            self.hospital,
            "--treatment",
            self.treatment,
        ];
        medcert(self.patients, &[&visit[..], args].concat(), password, stdin)
    }
}

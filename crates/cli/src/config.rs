//! Settings: a TOML file (default `~/.config/medcert/config.toml`), overridden by
//! `MEDCERT_*` environment variables, overridden by command-line flags.
//!
//! ```toml
//! network = "/srv/medcert/.run/network.json"  # default: the one deploy/up writes
//! patients_dir = "/home/me/medcert-patients"  # default: <run_dir>/patients
//!
//! [relay]
//! confirmations = 1        # blocks before the relay trusts a receipt
//! request_timeout_s = 60   # the relay fails a request it cannot serve in time
//! state_dir = "/var/lib/medcert-relay"        # default: <run_dir>/relay-cli
//!
//! [recover]
//! wait_s = 180             # how long `ehr recover` waits for the relay's answer
//! ```
//!
//! Environment: `MEDCERT_CONFIG` (the file), `MEDCERT_NETWORK`, `MEDCERT_PATIENTS_DIR`,
//! `MEDCERT_RELAY_CONFIRMATIONS`, `MEDCERT_RELAY_TIMEOUT_S`, `MEDCERT_RELAY_STATE_DIR`,
//! `MEDCERT_RECOVER_WAIT_S`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why the settings cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid; see `medcert --help` for its keys")]
    Invalid {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("environment variable {name}={value:?} is not a whole number")]
    NotANumber { name: String, value: String },
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    network: Option<PathBuf>,
    patients_dir: Option<PathBuf>,
    #[serde(default)]
    relay: RelayFileSettings,
    #[serde(default)]
    recover: RecoverFileSettings,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RelayFileSettings {
    confirmations: Option<usize>,
    request_timeout_s: Option<u64>,
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct RecoverFileSettings {
    wait_s: Option<u64>,
}

/// The settings in force.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    /// The network description; `None` means the one deploy/up writes.
    pub(crate) network: Option<PathBuf>,
    /// `None` means `<run_dir>/patients`.
    pub(crate) patients_dir: Option<PathBuf>,
    pub(crate) relay_confirmations: usize,
    pub(crate) relay_timeout: Duration,
    /// `None` means `<run_dir>/relay-cli`.
    pub(crate) relay_state_dir: Option<PathBuf>,
    pub(crate) recover_wait: Duration,
}

/// The default config file: `$XDG_CONFIG_HOME/medcert/config.toml` or
/// `~/.config/medcert/config.toml`.
pub(crate) fn default_config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("XDG_CONFIG_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("medcert/config.toml"));
    }
    env("HOME").map(|home| PathBuf::from(home).join(".config/medcert/config.toml"))
}

impl Settings {
    /// Reads the settings. `explicit_file` (from `--config`) must exist; the default file
    /// may be absent. `env` looks up environment variables.
    pub(crate) fn load(
        explicit_file: Option<&Path>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let explicit = explicit_file
            .map(Path::to_owned)
            .or_else(|| env("MEDCERT_CONFIG").map(PathBuf::from));
        let file = match &explicit {
            Some(path) => read_file(path)?,
            None => match default_config_path(env) {
                Some(path) if path.exists() => read_file(&path)?,
                _ => FileSettings::default(),
            },
        };
        let number = |name: &str| -> Result<Option<u64>, ConfigError> {
            env(name)
                .map(|text| {
                    text.trim()
                        .parse::<u64>()
                        .map_err(|_| ConfigError::NotANumber {
                            name: name.to_owned(),
                            value: text.clone(),
                        })
                })
                .transpose()
        };
        Ok(Settings {
            network: env("MEDCERT_NETWORK").map(PathBuf::from).or(file.network),
            patients_dir: env("MEDCERT_PATIENTS_DIR")
                .map(PathBuf::from)
                .or(file.patients_dir),
            relay_confirmations: number("MEDCERT_RELAY_CONFIRMATIONS")?
                .map(|n| n as usize)
                .or(file.relay.confirmations)
                .unwrap_or(1),
            relay_timeout: Duration::from_secs(
                number("MEDCERT_RELAY_TIMEOUT_S")?
                    .or(file.relay.request_timeout_s)
                    .unwrap_or(60),
            ),
            relay_state_dir: env("MEDCERT_RELAY_STATE_DIR")
                .map(PathBuf::from)
                .or(file.relay.state_dir),
            recover_wait: Duration::from_secs(
                number("MEDCERT_RECOVER_WAIT_S")?
                    .or(file.recover.wait_s)
                    .unwrap_or(180),
            ),
        })
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Invalid {
        path: path.to_owned(),
        source,
    })
}

/// A duration such as `90s`, `15m`, `1h` or `7d` (a bare number is seconds).
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration such as 90s, 15m, 1h or 7d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: the unit must be s, m, h or d")),
    };
    value
        .checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let tmp = tempfile::tempdir().unwrap();
        let none =
            Settings::load(None, &env_of(&[("HOME", tmp.path().to_str().unwrap())])).unwrap();
        assert_eq!(none.network, None);
        assert_eq!(none.relay_confirmations, 1);
        assert_eq!(none.relay_timeout, Duration::from_secs(60));
        assert_eq!(none.recover_wait, Duration::from_secs(180));

        let dir = tmp.path().join(".config/medcert");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("config.toml"),
            "network = \"/n.json\"\npatients_dir = \"/p\"\n[relay]\nconfirmations = 2\nrequest_timeout_s = 30\n[recover]\nwait_s = 10\n",
        )
        .unwrap();
        let home = tmp.path().to_str().unwrap();
        let file = Settings::load(None, &env_of(&[("HOME", home)])).unwrap();
        assert_eq!(file.network, Some(PathBuf::from("/n.json")));
        assert_eq!(file.patients_dir, Some(PathBuf::from("/p")));
        assert_eq!(file.relay_confirmations, 2);
        assert_eq!(file.relay_timeout, Duration::from_secs(30));
        assert_eq!(file.recover_wait, Duration::from_secs(10));

        let env = Settings::load(
            None,
            &env_of(&[
                ("HOME", home),
                ("MEDCERT_NETWORK", "/e.json"),
                ("MEDCERT_RELAY_CONFIRMATIONS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(env.network, Some(PathBuf::from("/e.json")));
        assert_eq!(env.relay_confirmations, 3);
        assert_eq!(env.relay_timeout, Duration::from_secs(30));
    }

    #[test]
    fn bad_files_and_values_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("absent.toml");
        assert!(matches!(
            Settings::load(Some(&missing), &env_of(&[])),
            Err(ConfigError::Read { .. })
        ));
        let typo = tmp.path().join("typo.toml");
        std::fs::write(&typo, "netwrok = \"x\"\n").unwrap();
        let error = Settings::load(Some(&typo), &env_of(&[])).unwrap_err();
        assert!(error.to_string().contains("typo.toml"), "{error}");
        let error =
            Settings::load(None, &env_of(&[("MEDCERT_RECOVER_WAIT_S", "soon")])).unwrap_err();
        assert!(error.to_string().contains("MEDCERT_RECOVER_WAIT_S"));
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("h").is_err());
    }
}

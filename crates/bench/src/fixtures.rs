//! What every figure needs: patients registered at the hospitals with a wallet, and C-CDA
//! documents of the sizes measured. Every id is fresh per run, so runs share the network
//! with other users and with each other.

use std::path::{Path, PathBuf};

use medcert_ccda::{GeneratorConfig, generate};
use medcert_flows::{PatientWallet, RegisterRequest, register_patient};
use medcert_network::{Hospital, Network};
use tempfile::TempDir;
use zeroize::Zeroizing;

use crate::error::BenchError;

/// The network's first hospital, where the figures and floors measured at one hospital run.
pub fn first_hospital(network: &Network) -> Result<&Hospital, BenchError> {
    network
        .fabric
        .hospitals
        .first()
        .ok_or_else(|| BenchError::Unavailable("the network has no hospital".into()))
}

/// A patient of the run: one wallet, registered at some hospitals.
pub struct Patient {
    /// The wallet name.
    pub name: String,
    /// The patient's password at every hospital, random.
    pub password: Zeroizing<String>,
    /// (hospital id, treatment number), in registration order.
    pub registrations: Vec<(String, String)>,
}

impl Patient {
    /// The patient's treatment number at `hospital`, if registered there.
    pub fn treatment_number(&self, hospital: &str) -> Option<&str> {
        self.registrations
            .iter()
            .find(|(h, _)| h == hospital)
            .map(|(_, t)| t.as_str())
    }
}

/// The run's scratch space: patient wallets and documents, removed at the end.
pub struct Workspace {
    dir: TempDir,
    /// Tells this run's ids apart from other runs'.
    pub run_id: String,
}

impl Workspace {
    /// A fresh scratch directory and run id.
    pub fn new() -> Result<Self, BenchError> {
        let dir = tempfile::Builder::new()
            .prefix("medcert-bench-")
            .tempdir()
            .map_err(BenchError::io(
                "cannot create a scratch directory",
                std::env::temp_dir(),
            ))?;
        Ok(Self {
            dir,
            run_id: format!("{:08x}", rand::random::<u32>()),
        })
    }

    /// The directory of the run's patient wallets.
    pub fn patients_dir(&self) -> PathBuf {
        self.dir.path().join("patients")
    }

    /// The scratch directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A new patient with a wallet, registered at each of `hospitals` by its first doctor.
    pub async fn patient(
        &self,
        network: &Network,
        label: &str,
        hospitals: &[&Hospital],
    ) -> Result<Patient, BenchError> {
        let name = format!("{label}-{}-{:08x}", self.run_id, rand::random::<u32>());
        let password = Zeroizing::new(format!("bench-{:032x}", rand::random::<u128>()));
        let mut registrations = Vec::new();
        for hospital in hospitals {
            let report = register_patient(
                network,
                &self.patients_dir(),
                &RegisterRequest {
                    patient: &name,
                    hospital: &hospital.id,
                    doctor: 0,
                    treatment_number: None,
                    id_number: &name,
                    password: &password,
                },
            )
            .await?;
            registrations.push((hospital.id.clone(), report.treatment_number));
        }
        Ok(Patient {
            name,
            password,
            registrations,
        })
    }

    /// Opens `patient`'s wallet.
    pub fn wallet(&self, patient_name: &str) -> Result<PatientWallet, BenchError> {
        PatientWallet::open(&self.patients_dir(), patient_name)
            .map_err(|e| BenchError::Flow(e.into()))
    }

    /// A C-CDA document of about `size` bytes for the patient at the hospital.
    pub fn document(
        &self,
        size: u64,
        treatment_number: &str,
        hospital: &str,
    ) -> Result<PathBuf, BenchError> {
        let path = self
            .dir
            .path()
            .join(format!("{hospital}-{treatment_number}-{size}.xml"));
        let file = std::fs::File::create(&path)
            .map_err(BenchError::io("cannot create a document", &path))?;
        let config = GeneratorConfig {
            seed: rand::random(),
            target_size: size,
            patient_id: treatment_number.to_string(),
            hospital: hospital.to_string(),
        };
        generate(&config, std::io::BufWriter::new(file))
            .map_err(BenchError::io("cannot write a document", &path))?;
        Ok(path)
    }
}

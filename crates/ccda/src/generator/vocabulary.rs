//! The codes, names and phrases generated documents are made of: real LOINC, SNOMED CT
//! and RxNorm codes with their display names, and plausible people and places.

pub(super) const SNOMED: &str = "2.16.840.1.113883.6.96";
pub(super) const RXNORM: &str = "2.16.840.1.113883.6.88";
pub(super) const LOINC: &str = "2.16.840.1.113883.6.1";

pub(super) const PROBLEMS: &[(&str, &str)] = &[
    ("38341003", "Essential hypertension"),
    ("44054006", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("49436004", "Atrial fibrillation"),
    ("35489007", "Depressive disorder"),
    ("55822004", "Hyperlipidemia"),
    ("69896004", "Rheumatoid arthritis"),
    ("709044004", "Chronic kidney disease"),
    ("399211009", "History of myocardial infarction"),
];
pub(super) const MEDICATIONS: &[(&str, &str)] = &[
    ("314076", "Lisinopril 10 MG Oral Tablet"),
    ("860975", "Metformin hydrochloride 500 MG Oral Tablet"),
    ("197361", "Amlodipine 5 MG Oral Tablet"),
    ("617312", "Atorvastatin 10 MG Oral Tablet"),
    ("745679", "Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
    ("855332", "Warfarin Sodium 5 MG Oral Tablet"),
    ("312961", "Simvastatin 20 MG Oral Tablet"),
    ("310965", "Ibuprofen 200 MG Oral Tablet"),
];
pub(super) const ALLERGENS: &[(&str, &str)] = &[
    ("7980", "Penicillin G"),
    ("2670", "Codeine"),
    ("1191", "Aspirin"),
    ("10831", "Sulfamethoxazole"),
    ("733", "Ampicillin"),
];
pub(super) const REACTIONS: &[(&str, &str)] = &[
    ("247472004", "Hives"),
    ("39579001", "Anaphylaxis"),
    ("271807003", "Rash"),
    ("422587007", "Nausea"),
    ("267036007", "Dyspnea"),
];
/// LOINC code, name, unit, low and high of the reference range.
pub(super) const RESULTS: &[(&str, &str, &str, f64, f64)] = &[
    (
        "2345-7",
        "Glucose [Mass/volume] in Serum or Plasma",
        "mg/dL",
        70.0,
        99.0,
    ),
    (
        "718-7",
        "Hemoglobin [Mass/volume] in Blood",
        "g/dL",
        13.5,
        17.5,
    ),
    (
        "2160-0",
        "Creatinine [Mass/volume] in Serum or Plasma",
        "mg/dL",
        0.7,
        1.3,
    ),
    (
        "2951-2",
        "Sodium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        136.0,
        145.0,
    ),
    (
        "2823-3",
        "Potassium [Moles/volume] in Serum or Plasma",
        "mmol/L",
        3.5,
        5.1,
    ),
    (
        "4548-4",
        "Hemoglobin A1c/Hemoglobin.total in Blood",
        "%",
        4.0,
        5.6,
    ),
    (
        "2093-3",
        "Cholesterol [Mass/volume] in Serum or Plasma",
        "mg/dL",
        125.0,
        200.0,
    ),
    (
        "6690-2",
        "Leukocytes [#/volume] in Blood by Automated count",
        "10*3/uL",
        4.5,
        11.0,
    ),
];
pub(super) const GIVEN_NAMES: &[&str] = &[
    "Maria", "James", "Aiko", "Lena", "Omar", "Sofia", "Jonas", "Priya", "Mateo", "Chen",
];
pub(super) const FAMILY_NAMES: &[&str] = &[
    "Garcia", "Smith", "Tanaka", "Novak", "Haddad", "Rossi", "Berg", "Patel", "Lopez", "Wang",
];
pub(super) const CITIES: &[(&str, &str, &str)] = &[
    ("Boston", "MA", "02115"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Denver", "CO", "80202"),
    ("Madison", "WI", "53703"),
];
pub(super) const STREETS: &[&str] = &[
    "Elm Street",
    "Harbor Road",
    "Maple Avenue",
    "Hill Lane",
    "Main Street",
];
pub(super) const NOTE_SENTENCES: &[&str] = &[
    "Patient reports improved energy since the last visit.",
    "Blood pressure remains above goal despite adherence to current regimen.",
    "No chest pain, palpitations or shortness of breath at rest.",
    "Discussed diet, daily walking and reduction of salt intake.",
    "Medication list reconciled with the patient and the pharmacy record.",
    "Follow-up laboratory tests ordered before the next appointment.",
    "Lungs clear to auscultation bilaterally; no peripheral edema.",
    "Patient understands the plan and agrees to return in three months.",
];

//! The structured body's sections and their entries: allergies, medications, problems,
//! results and notes, each with its narrative table row and coded entry.

use std::fmt::Write as _;

use rand::Rng;

use super::vocabulary::*;
use super::{Generator, SectionKind};

impl Generator<'_> {
    /// One top-level section holding as many entries as fit in `budget` bytes.
    pub(super) fn section(&mut self, kind: SectionKind, budget: usize) -> String {
        let (template, code, name, title, columns) = match kind {
            SectionKind::Allergies => (
                "2.16.840.1.113883.10.20.22.2.6.1",
                "48765-2",
                "Allergies and adverse reactions Document",
                "Allergies and Intolerances",
                "<th>Substance</th><th>Reaction</th><th>Status</th>",
            ),
            SectionKind::Medications => (
                "2.16.840.1.113883.10.20.22.2.1.1",
                "10160-0",
                "History of Medication use Narrative",
                "Medications",
                "<th>Medication</th><th>Instructions</th><th>Start date</th>",
            ),
            SectionKind::Problems => (
                "2.16.840.1.113883.10.20.22.2.5.1",
                "11450-4",
                "Problem list - Reported",
                "Problems",
                "<th>Problem</th><th>Status</th><th>Onset</th>",
            ),
            SectionKind::Results => (
                "2.16.840.1.113883.10.20.22.2.3.1",
                "30954-2",
                "Relevant diagnostic tests/laboratory data Narrative",
                "Results",
                "<th>Test</th><th>Value</th><th>Date</th>",
            ),
            SectionKind::Notes => (
                "2.16.840.1.113883.10.20.22.2.65",
                "11506-3",
                "Progress note",
                "Notes",
                "<th>Date</th><th>Note</th>",
            ),
        };
        let mut rows = String::new();
        let mut entries = String::new();
        let frame = 700;
        loop {
            let (row, entry) = match kind {
                SectionKind::Allergies => self.allergy(),
                SectionKind::Medications => self.medication(),
                SectionKind::Problems => self.problem(),
                SectionKind::Results => self.result(),
                SectionKind::Notes => self.note(),
            };
            let size = frame + rows.len() + entries.len() + row.len() + entry.len();
            if size > budget {
                break;
            }
            rows.push_str(&row);
            entries.push_str(&entry);
        }
        if matches!(kind, SectionKind::Notes) {
            // The last structured section takes up the slack, so that small documents
            // still reach their size.
            let used = frame + rows.len() + entries.len();
            self.addendum(&mut rows, budget.saturating_sub(used));
        }
        if rows.is_empty() {
            rows.push_str("                <tr><td>None recorded</td></tr>\n");
        }
        format!(
            r##"      <component>
        <section>
          <templateId root="{template}" extension="2015-08-01"/>
          <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{name}"/>
          <title>{title}</title>
          <text>
            <table border="1" width="100%">
              <thead><tr>{columns}</tr></thead>
              <tbody>
{rows}              </tbody>
            </table>
          </text>
{entries}        </section>
      </component>
"##
        )
    }

    /// A narrative row of about `room` bytes, if there is room for one.
    fn addendum(&mut self, rows: &mut String, room: usize) {
        const OPEN: &str = "                <tr><td>Addendum</td><td>";
        const CLOSE: &str = "</td></tr>\n";
        let Some(room) = room.checked_sub(OPEN.len() + CLOSE.len() + 60) else {
            return;
        };
        rows.push_str(OPEN);
        let mut written = 0;
        while written < room {
            let sentence = self.pick(NOTE_SENTENCES);
            let take = sentence.len().min(room - written);
            rows.push_str(&sentence[..take]);
            rows.push(' ');
            written += take + 1;
        }
        rows.push_str(CLOSE);
    }

    fn next_reference(&mut self, prefix: &str) -> String {
        self.entry_number += 1;
        format!("{prefix}{}", self.entry_number)
    }

    fn allergy(&mut self) -> (String, String) {
        let (code, substance) = self.pick(ALLERGENS);
        let (reaction_code, reaction) = self.pick(REACTIONS);
        let (reference, _, entry) = self.concern(
            "allergy",
            &Concern {
                act_template: "2.16.840.1.113883.10.20.22.4.30",
                act_code: r#"code="CONC" codeSystem="2.16.840.1.113883.5.6""#,
                observation_template: r#"root="2.16.840.1.113883.10.20.22.4.7" extension="2014-06-09""#,
                observation_code: r#"code="ASSERTION" codeSystem="2.16.840.1.113883.5.4""#,
                value: &format!(
                    r#"code="419511003" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="Propensity to adverse reactions to drug""#
                ),
                details: &format!(
                    r##"                  <participant typeCode="CSM">
                    <participantRole classCode="MANU">
                      <playingEntity classCode="MMAT">
                        <code code="{code}" codeSystem="{RXNORM}" codeSystemName="RxNorm" displayName="{substance}"/>
                      </playingEntity>
                    </participantRole>
                  </participant>
                  <entryRelationship typeCode="MFST" inversionInd="true">
                    <observation classCode="OBS" moodCode="EVN">
                      <templateId root="2.16.840.1.113883.10.20.22.4.9" extension="2014-06-09"/>
                      <code code="ASSERTION" codeSystem="2.16.840.1.113883.5.4"/>
                      <statusCode code="completed"/>
                      <value xsi:type="CD" code="{reaction_code}" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="{reaction}"/>
                    </observation>
                  </entryRelationship>
"##
                ),
            },
        );
        (row(&reference, [substance, reaction, "Active"]), entry)
    }

    fn medication(&mut self) -> (String, String) {
        let reference = self.next_reference("medication");
        let (code, drug) = self.pick(MEDICATIONS);
        let times = self.rng.gen_range(1..4);
        let (id, start) = (self.uuid(), self.date());
        let row = row(
            &reference,
            [drug, &format!("1 tablet {times} times daily"), &start],
        );
        let hours = 24 / times;
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <substanceAdministration classCode="SBADM" moodCode="INT">
              <templateId root="2.16.840.1.113883.10.20.22.4.16" extension="2014-06-09"/>
              <id root="{id}"/>
              <text><reference value="#{reference}"/></text>
              <statusCode code="active"/>
              <effectiveTime xsi:type="IVL_TS"><low value="{start}"/></effectiveTime>
              <effectiveTime xsi:type="PIVL_TS" institutionSpecified="true" operator="A"><period value="{hours}" unit="h"/></effectiveTime>
              <routeCode code="C38288" codeSystem="2.16.840.1.113883.3.26.1.1" codeSystemName="NCI Thesaurus" displayName="ORAL"/>
              <doseQuantity value="1"/>
              <consumable>
                <manufacturedProduct classCode="MANU">
                  <templateId root="2.16.840.1.113883.10.20.22.4.23" extension="2014-06-09"/>
                  <manufacturedMaterial>
                    <code code="{code}" codeSystem="{RXNORM}" codeSystemName="RxNorm" displayName="{drug}"/>
                  </manufacturedMaterial>
                </manufacturedProduct>
              </consumable>
            </substanceAdministration>
          </entry>
"##
        );
        (row, entry)
    }

    fn problem(&mut self) -> (String, String) {
        let (code, problem) = self.pick(PROBLEMS);
        let (reference, onset, entry) = self.concern(
            "problem",
            &Concern {
                act_template: "2.16.840.1.113883.10.20.22.4.3",
                act_code: r#"code="CONC" codeSystem="2.16.840.1.113883.5.6" displayName="Concern""#,
                observation_template: r#"root="2.16.840.1.113883.10.20.22.4.4" extension="2015-08-01""#,
                observation_code: &format!(
                    r#"code="55607006" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="Problem""#
                ),
                value: &format!(
                    r#"code="{code}" codeSystem="{SNOMED}" codeSystemName="SNOMED CT" displayName="{problem}""#
                ),
                details: "",
            },
        );
        (row(&reference, [problem, "Active", &onset]), entry)
    }

    fn result(&mut self) -> (String, String) {
        let reference = self.next_reference("result");
        let (code, test, unit, low, high) = self.pick(RESULTS);
        let value = self.rng.gen_range(low * 0.8..high * 1.2);
        let value = format!("{value:.1}");
        let interpretation = if value.parse::<f64>().unwrap_or(low) > high {
            ("H", "High")
        } else if value.parse::<f64>().unwrap_or(high) < low {
            ("L", "Low")
        } else {
            ("N", "Normal")
        };
        let (organizer_id, obs_id, time) = (self.uuid(), self.uuid(), self.timestamp());
        let row = row(&reference, [test, &format!("{value} {unit}"), &time]);
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <organizer classCode="BATTERY" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.1" extension="2015-08-01"/>
              <id root="{organizer_id}"/>
              <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{test}"/>
              <statusCode code="completed"/>
              <component>
                <observation classCode="OBS" moodCode="EVN">
                  <templateId root="2.16.840.1.113883.10.20.22.4.2" extension="2015-08-01"/>
                  <id root="{obs_id}"/>
                  <code code="{code}" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="{test}"/>
                  <text><reference value="#{reference}"/></text>
                  <statusCode code="completed"/>
                  <effectiveTime value="{time}"/>
                  <value xsi:type="PQ" value="{value}" unit="{unit}"/>
                  <interpretationCode code="{}" codeSystem="2.16.840.1.113883.5.83" displayName="{}"/>
                  <referenceRange>
                    <observationRange>
                      <value xsi:type="IVL_PQ"><low value="{low}" unit="{unit}"/><high value="{high}" unit="{unit}"/></value>
                    </observationRange>
                  </referenceRange>
                </observation>
              </component>
            </organizer>
          </entry>
"##,
            interpretation.0, interpretation.1
        );
        (row, entry)
    }

    fn note(&mut self) -> (String, String) {
        let reference = self.next_reference("note");
        let mut text = String::new();
        for _ in 0..self.rng.gen_range(3..7) {
            let sentence = self.pick(NOTE_SENTENCES);
            let _ = write!(text, "{sentence} ");
        }
        let text = text.trim_end();
        let (id, time) = (self.uuid(), self.timestamp());
        let row =
            format!("                <tr><td>{time}</td><td ID=\"{reference}\">{text}</td></tr>\n");
        let entry = format!(
            r##"          <entry>
            <act classCode="ACT" moodCode="EVN">
              <templateId root="2.16.840.1.113883.10.20.22.4.202" extension="2016-11-01"/>
              <id root="{id}"/>
              <code code="11506-3" codeSystem="{LOINC}" codeSystemName="LOINC" displayName="Progress note"/>
              <text><reference value="#{reference}"/></text>
              <statusCode code="completed"/>
              <effectiveTime value="{time}"/>
            </act>
          </entry>
"##
        );
        (row, entry)
    }
}

/// A narrative table row of three cells, which an entry's text points at by `reference`.
fn row(reference: &str, [first, second, third]: [&str; 3]) -> String {
    format!(
        "                <tr ID=\"{reference}\"><td>{first}</td><td>{second}</td><td>{third}</td></tr>\n"
    )
}

/// An allergy or a problem as C-CDA records both: a concern act that tracks it over time,
/// around the one observation that states it with a coded value. Attribute lists go in
/// as written in the markup.
struct Concern<'a> {
    act_template: &'a str,
    act_code: &'a str,
    observation_template: &'a str,
    observation_code: &'a str,
    value: &'a str,
    /// Markup that follows the value inside the observation.
    details: &'a str,
}

impl Generator<'_> {
    /// The entry of `concern` under fresh ids and onset; returns the id of the narrative
    /// row its text points at (a `prefix` and a number), the onset and the entry.
    fn concern(&mut self, prefix: &str, concern: &Concern<'_>) -> (String, String, String) {
        let reference = self.next_reference(prefix);
        let (act_id, observation_id, onset) = (self.uuid(), self.uuid(), self.date());
        let Concern {
            act_template,
            act_code,
            observation_template,
            observation_code,
            value,
            details,
        } = concern;
        let entry = format!(
            r##"          <entry typeCode="DRIV">
            <act classCode="ACT" moodCode="EVN">
              <templateId root="{act_template}" extension="2015-08-01"/>
              <id root="{act_id}"/>
              <code {act_code}/>
              <statusCode code="active"/>
              <effectiveTime><low value="{onset}"/></effectiveTime>
              <entryRelationship typeCode="SUBJ">
                <observation classCode="OBS" moodCode="EVN">
                  <templateId {observation_template}/>
                  <id root="{observation_id}"/>
                  <code {observation_code}/>
                  <text><reference value="#{reference}"/></text>
                  <statusCode code="completed"/>
                  <effectiveTime><low value="{onset}"/></effectiveTime>
                  <value xsi:type="CD" {value}/>
{details}                </observation>
              </entryRelationship>
            </act>
          </entry>
"##
        );
        (reference, onset, entry)
    }
}

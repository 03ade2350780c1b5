"""What clinicians see inside their EHR: CDS Hooks cards and the SMART on FHIR alliance trend."""
